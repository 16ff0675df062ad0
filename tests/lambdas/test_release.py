"""Release hook under moto: an Approved version becomes release.json and a pipeline run, once."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from .conftest import CONTEXT, Faults, Recorder, audit_items, bucket, event, fail_then_retry

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
    executions: dict[str, str] = {}

    def start(**kwargs: Any) -> dict[str, str]:
        # CodePipeline starts one execution per clientRequestToken.
        token = kwargs["clientRequestToken"]
        executions.setdefault(token, f"exec-{len(executions) + 1}")
        return {"pipelineExecutionId": executions[token]}

    codepipeline = Recorder(start_pipeline_execution=start)
    codepipeline.executions = executions  # type: ignore[attr-defined]
    monkeypatch.setattr(handler, "sagemaker", sagemaker)
    monkeypatch.setattr(handler, "codepipeline", codepipeline)
    handler.settings.cache_clear()
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
    assert handler.handler(EVENT, CONTEXT) == {
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
    handler.handler(EVENT, CONTEXT)
    again = handler.handler(EVENT, CONTEXT)
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
    result = handler.handler(changed, CONTEXT)
    assert result["released"] == "false"
    assert reason in result["reason"]
    assert codepipeline.calls == []
    assert boto3.client("s3").list_objects_v2(Bucket="releases").get("KeyCount") == 0
    assert audit_items() == []


def test_the_same_version_approved_again_later_is_refused_without_a_second_release(
    release: Any,
) -> None:
    handler, codepipeline = release
    handler.handler(EVENT, CONTEXT)
    later = copy.deepcopy(EVENT)
    later["detail"]["LastModifiedTime"] = "2027-01-01T00:00:00Z"
    again = handler.handler(later, CONTEXT)
    assert again["released"] == "false"
    assert "already released for an earlier approval" in again["reason"]
    assert codepipeline.names() == ["start_pipeline_execution"]


@pytest.mark.parametrize("index", range(8))
def test_a_transient_fault_in_any_call_then_the_retry_releases_exactly_once(
    release: Any, faults: Faults, index: int
) -> None:
    """Each AWS call of a release (the idempotency store's own included) fails once in turn;
    the retry releases: one release.json, one pipeline execution, one audit event."""
    handler, codepipeline = release
    answer = fail_then_retry(faults, index, lambda: handler.handler(EVENT, CONTEXT))
    if not faults.failed:
        pytest.skip(f"a release makes fewer than {index + 1} AWS calls")
    assert answer["model_package_arn"] == ARN, faults.failed
    assert release_json()["model_package_arn"] == ARN
    assert list(codepipeline.executions.values()) == ["exec-1"]
    assert len([i for i in audit_items() if i.get("event") == "released"]) == 1, faults.failed
    again = handler.handler(EVENT, CONTEXT)
    assert again == {"released": "false", "reason": f"{ARN} was already released"}


def test_the_release_reads_the_metrics_of_any_problem_type() -> None:
    from release.handler import build_release

    class Report:
        def get_object(self, Bucket: str, Key: str) -> dict[str, object]:
            import io

            body = b'{"regression_metrics": {"rmse": {"value": 3.1}, "mae": {"value": 2.4}}}'
            return {"Body": io.BytesIO(body)}

    package = {"ModelMetrics": {"ModelQuality": {"Statistics": {"S3Uri": "s3://b/e.json"}}}}
    detail = {
        "ModelPackageArn": "arn:aws:sagemaker:eu-west-1:1:model-package/g/1",
        "ModelPackageGroupName": "g",
        "ModelPackageVersion": 1,
    }
    release = build_release(detail, package, Report())
    assert release["metrics"] == {"rmse": 3.1, "mae": 2.4}
