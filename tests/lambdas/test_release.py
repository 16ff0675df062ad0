"""Release hook under moto: an Approved version becomes release.json and a pipeline run, once."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from .conftest import Recorder, audit_items, bucket, event

EVENT = event("model_package_state_change.json")
GROUP = EVENT["detail"]["ModelPackageGroupName"]
ARN = EVENT["detail"]["ModelPackageArn"]


@pytest.fixture
def release(audit_table: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from release import handler

    bucket("releases")
    bucket("artifacts")
    boto3.client("s3").put_object(
        Bucket="artifacts",
        Key="eval/evaluation.json",
        Body=json.dumps(
            {
                "binary_classification_metrics": {
                    "precision": {"value": 0.97},
                    "auc": {"value": 0.95},
                }
            }
        ),
    )
    package = {
        "ModelPackageArn": ARN,
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"S3Uri": "s3://artifacts/eval/evaluation.json"}}
        },
        "DriftCheckBaselines": {
            "ModelDataQuality": {
                "Statistics": {"S3Uri": "s3://artifacts/baseline/statistics.json"},
                "Constraints": {"S3Uri": "s3://artifacts/baseline/constraints.json"},
            }
        },
        "CustomerMetadataProperties": {"mlgate:manifest-sha256": "abc"},
    }
    sagemaker = Recorder(describe_model_package=package)
    codepipeline = Recorder(start_pipeline_execution={"pipelineExecutionId": "exec-1"})
    real = boto3.client

    def client(name: str, *args: Any, **kwargs: Any) -> Any:
        return {"sagemaker": sagemaker, "codepipeline": codepipeline}.get(name) or real(
            name, *args, **kwargs
        )

    monkeypatch.setattr(handler.boto3, "client", client)
    for key, value in {
        "MODEL_PACKAGE_GROUP": GROUP,
        "RELEASE_BUCKET": "releases",
        "RELEASE_KEY": "release.json",
        "RELEASE_PIPELINE": "mlgate-fraud-detection-release",
        "AUDIT_TABLE": audit_table,
    }.items():
        monkeypatch.setenv(key, value)
    return handler, codepipeline


def release_json() -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket="releases", Key="release.json")["Body"].read()
    return dict(json.loads(body))


def test_an_approved_version_is_released_with_its_evidence(release: Any) -> None:
    handler, codepipeline = release
    assert handler.handler(EVENT, None) == {
        "released": "true",
        "execution": "exec-1",
        "model_package_arn": ARN,
    }
    written = release_json()
    assert written["model_package_arn"] == ARN
    assert written["model_version"] == 2
    assert written["approved_by"] == "bruno"
    assert written["metrics"] == {"precision": 0.97, "auc": 0.95}
    assert written["baseline_statistics_uri"] == "s3://artifacts/baseline/statistics.json"
    assert codepipeline.calls[0][1]["name"] == "mlgate-fraud-detection-release"
    (released,) = [i for i in audit_items() if i.get("event") == "released"]
    assert (released["who"], released["decision"], released["model_version"]) == (
        "bruno",
        "Approved",
        "2",
    )


def test_the_same_version_twice_is_released_once(release: Any) -> None:
    handler, codepipeline = release
    handler.handler(EVENT, None)
    again = handler.handler(EVENT, None)
    assert again == {"released": "false", "reason": f"{ARN} was already released"}
    assert codepipeline.names() == ["start_pipeline_execution"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(ModelApprovalStatus="Rejected"), "is Rejected, not Approved"),
        (lambda d: d.update(ModelApprovalStatus="PendingManualApproval"), "not Approved"),
        (lambda d: d.update(ModelPackageGroupName="another-product"), "is not " + GROUP),
        (lambda d: d.pop("ModelPackageArn"), "has no ModelPackageArn"),
    ],
)
def test_anything_but_an_approval_of_this_group_releases_nothing(
    release: Any, change: Any, reason: str
) -> None:
    handler, codepipeline = release
    changed = copy.deepcopy(EVENT)
    change(changed["detail"])
    result = handler.handler(changed, None)
    assert result["released"] == "false"
    assert reason in result["reason"]
    assert codepipeline.calls == []
    assert boto3.client("s3").list_objects_v2(Bucket="releases").get("KeyCount") == 0
    assert audit_items() == []
