"""Release hook under moto: an Approved version becomes release.json and a pipeline run, once;
anything else, refused before any AWS call, naming what it refused."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from .conftest import Faults, LambdaContext, Recorder, audit_items, bucket, event, fail_then_retry

EVENT = event("model_package_state_change.json")
GROUP = EVENT["detail"]["ModelPackageGroupName"]
ARN = EVENT["detail"]["ModelPackageArn"]
# The release hook of AWS's sample event: in the account and region the event names.
CONTEXT = LambdaContext(
    invoked_function_arn=f"arn:aws:lambda:{EVENT['region']}:{EVENT['account']}:function:release"
)
NAMESPACE = "mlgate/fraud-detection/release"


RUN = "s3://artifacts/training/fraud-detection/run-1"
RELEASED = "s3://artifacts/released/fraud-detection/2"
REPORT = "training/fraud-detection/run-1/evaluation/evaluation.json"
APPROVED_AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def registered(status: str = "Approved", **changes: Any) -> dict[str, Any]:
    """DescribeModelPackage's answer for the sample event's version, as the training pipeline
    registers it (mlgate/infra/ml/pipeline.py) and the ML lead approved it."""
    return {
        "ModelPackageArn": ARN,
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": 2,
        "ModelApprovalStatus": status,
        "LastModifiedBy": {"IamIdentity": {"Arn": "arn:aws:sts::123456789012:assumed-role/"
                                                  "ml-lead/amara"}},
        "LastModifiedTime": APPROVED_AT,
        "InferenceSpecification": {
            "Containers": [{"Image": "xgboost", "ModelDataUrl": f"{RUN}/train/model.tar.gz"}]
        },
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"S3Uri": f"{RUN}/evaluation/evaluation.json"}}
        },
        "DriftCheckBaselines": {
            "ModelDataQuality": {
                "Statistics": {"S3Uri": f"{RUN}/data-quality-baseline/statistics.json"},
                "Constraints": {"S3Uri": f"{RUN}/data-quality-baseline/constraints.json"},
            }
        },
        "CustomerMetadataProperties": {
            "mlgate:manifest-sha256": "abc",
            "mlgate:baseline-dataset": f"{RUN}/baseline/baseline.csv",
        },
        **changes,
    }  # fmt: skip


OBJECTS = {
    "train/model.tar.gz": b"model",
    "data-quality-baseline/statistics.json": b"{}",
    "data-quality-baseline/constraints.json": b"{}",
    "baseline/baseline.csv": b"a,b\n1,2\n",
    "evaluation/evaluation.json": json.dumps(
        {"binary_classification_metrics": {"precision": {"value": 0.97}, "auc": {"value": 0.95}}}
    ).encode(),
}


@pytest.fixture
def release(audit_table: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from release import handler

    bucket("releases")
    bucket("artifacts")
    for key, body in OBJECTS.items():
        boto3.client("s3").put_object(
            Bucket="artifacts", Key=f"training/fraud-detection/run-1/{key}", Body=body
        )
    sagemaker = Recorder(describe_model_package=registered())
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
    # Read from POWERTOOLS_METRICS_NAMESPACE when the module is imported, as in Lambda.
    monkeypatch.setattr(handler.metrics, "namespace", NAMESPACE)
    for key, value in {
        "MODEL_PACKAGE_GROUP": GROUP,
        "RELEASE_BUCKET": "releases",
        "RELEASE_KEY": "release.json",
        "RELEASE_PIPELINE": "mlgate-fraud-detection-release",
        "AUDIT_TABLE": audit_table,
        "ARTIFACT_BUCKET": "artifacts",
        "TRAINING_PREFIX": "training/fraud-detection",
        "RELEASED_PREFIX": "released/fraud-detection",
    }.items():
        monkeypatch.setenv(key, value)
    return handler, codepipeline


def release_json() -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket="releases", Key="release.json")["Body"].read()
    return dict(json.loads(body))


def released_keys() -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket="artifacts", Prefix="released/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def assert_nothing_released(codepipeline: Any) -> None:
    assert codepipeline.calls == []
    assert boto3.client("s3").list_objects_v2(Bucket="releases").get("KeyCount") == 0
    assert released_keys() == []
    assert audit_items() == []


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
    # Who approved it and when: the registry's record, not the event's "bruno".
    assert written["approved_by"] == "arn:aws:sts::123456789012:assumed-role/ml-lead/amara"
    assert written["approved_at"] == "2026-11-24T09:30:00Z"
    assert written["metrics"] == {"precision": 0.97, "auc": 0.95}
    # The version's artifact and baselines, copied to its released folder.
    assert written["model_data_url"] == f"{RELEASED}/model.tar.gz"
    assert written["baseline_statistics_uri"] == f"{RELEASED}/baseline/statistics.json"
    assert written["baseline_constraints_uri"] == f"{RELEASED}/baseline/constraints.json"
    assert written["baseline_dataset_uri"] == f"{RELEASED}/baseline/dataset/baseline.csv"
    assert released_keys() == [
        "released/fraud-detection/2/baseline/constraints.json",
        "released/fraud-detection/2/baseline/dataset/baseline.csv",
        "released/fraud-detection/2/baseline/statistics.json",
        "released/fraud-detection/2/model.tar.gz",
    ]
    body = (
        boto3.client("s3")
        .get_object(Bucket="artifacts", Key="released/fraud-detection/2/model.tar.gz")["Body"]
        .read()
    )
    assert body == b"model"
    assert codepipeline.calls[0][1]["name"] == "mlgate-fraud-detection-release"
    (event,) = [i for i in audit_items() if i.get("event") == "released"]
    assert (event["who"], event["decision"], event["model_version"]) == (
        written["approved_by"],
        "Approved",
        "2",
    )
    # The audit event is dated by the registry's approval, not by the event's own time.
    assert EVENT["time"] != written["approved_at"]
    assert event["sk"].startswith(f"{written['approved_at']}#released#"), event["sk"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (registered("PendingManualApproval"),
         "the registry: version 2 is PendingManualApproval, not Approved in the registry"),
        (registered("Rejected"), "the registry: version 2 is Rejected, not Approved"),
        (registered(ModelPackageGroupName="mlgate-other-product"),
         "the registry: version 2 belongs to group mlgate-other-product, not this product's"),
    ],
)  # fmt: skip
def test_an_event_claiming_an_approval_the_registry_does_not_hold_releases_nothing(
    release: Any, monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any], reason: str
) -> None:
    """Anyone allowed to invoke the hook can send a state change whose detail says Approved
    (by anyone): the registry decides, and here it says otherwise."""
    handler, codepipeline = release
    monkeypatch.setattr(handler, "sagemaker", Recorder(describe_model_package=answer))
    forged = copy.deepcopy(EVENT)
    forged["detail"]["LastModifiedBy"] = {"UserProfileName": "the-ml-lead"}
    result = handler.handler(forged, CONTEXT)
    assert result["released"] == "false"
    assert reason in result["reason"], result["reason"]
    assert_nothing_released(codepipeline)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"InferenceSpecification": {"Containers": [
            {"ModelDataUrl": "s3://attacker/model.tar.gz"}]}},
         "InferenceSpecification.Containers.0.ModelDataUrl: s3://attacker/model.tar.gz is not "
         "in a training run of this product"),
        ({"InferenceSpecification": {"Containers": [{"ModelDataUrl": f"{RUN}/../../x.tgz"}]}},
         "is not in a training run of this product"),
        ({"InferenceSpecification": {"Containers": [{"Image": "x"}]}},
         "the version registers no model artifact to release"),
        ({"CustomerMetadataProperties": {"mlgate:baseline-dataset":
          "s3://artifacts/training/other-product/run/baseline.csv"}},
         "CustomerMetadataProperties.mlgate:baseline-dataset: s3://artifacts/training/"
         "other-product/run/baseline.csv is not in a training run of this product"),
    ],
)  # fmt: skip
def test_a_version_whose_artifacts_are_not_this_products_training_runs_is_not_released(
    release: Any, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], reason: str
) -> None:
    handler, codepipeline = release
    monkeypatch.setattr(
        handler, "sagemaker", Recorder(describe_model_package=registered(**changes))
    )
    result = handler.handler(EVENT, CONTEXT)
    assert result["released"] == "false"
    assert reason in result["reason"], result["reason"]
    assert_nothing_released(codepipeline)


def test_an_artifact_larger_than_one_copy_is_refused_naming_the_limit(
    release: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 answers CopyObject of a source over 5 GB with InvalidRequest: the release is refused
    saying so, and nothing is written (release.json, the pipeline, the audit trail)."""
    handler, codepipeline = release
    real = handler.s3

    class Large:
        def copy_object(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "InvalidRequest", "Message": "The specified "
                               "copy source is larger than the maximum allowable size for a "
                               "copy source: 5368709120"}}, "CopyObject")  # fmt: skip

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(handler, "s3", Large())
    result = handler.handler(EVENT, CONTEXT)
    assert result["released"] == "false"
    assert result["reason"].startswith(
        f"InferenceSpecification.Containers.0.ModelDataUrl: {RUN}/train/model.tar.gz is larger "
        "than 5 GB, the most CopyObject copies in one request"
    )
    assert codepipeline.calls == []
    assert boto3.client("s3").list_objects_v2(Bucket="releases").get("KeyCount") == 0
    assert audit_items() == []


def test_the_same_version_twice_is_released_once(release: Any) -> None:
    handler, codepipeline = release
    handler.handler(EVENT, CONTEXT)
    again = handler.handler(EVENT, CONTEXT)
    assert again == {"released": "false", "reason": f"{ARN} was already released"}
    assert codepipeline.names() == ["start_pipeline_execution"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda d: d.update(ModelApprovalStatus="Rejected"),
            "detail.ModelApprovalStatus: version 2 is Rejected, not Approved",
        ),
        (lambda d: d.update(ModelApprovalStatus="PendingManualApproval"), "not Approved"),
        (
            lambda d: d.update(ModelPackageGroupName="another-product"),
            "detail: Value error, ModelPackageArn is a version of versionedmp-p-idy6c3e1fiqj, "
            "not of the group named",
        ),
        (lambda d: d.pop("ModelPackageArn"), "detail.ModelPackageArn: Field required"),
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


OTHER_GROUP_ARN = ARN.replace("versionedmp-p-idy6c3e1fiqj", "another-product")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e.update(source="aws.events"), "source: Input should be 'aws.sagemaker'"),
        (lambda e: e.update(**{"detail-type": "Scheduled Event"}), "detail-type: Input should be"),
        (lambda e: e.update(account="210987654321"), "account: 210987654321 is not this product's"),
        (
            lambda e: e.update(region="eu-west-1"),
            "region: eu-west-1 is not this product's us-east-1",
        ),
        (
            lambda e: e["detail"].update(
                ModelPackageGroupName="another-product", ModelPackageArn=OTHER_GROUP_ARN
            ),
            "detail.ModelPackageGroupName: another-product is not this product's",
        ),
        (
            lambda e: e["detail"].update(
                ModelPackageArn=ARN.replace("123456789012", "210987654321")
            ),
            "detail.ModelPackageArn (account): 210987654321 is not this product's 123456789012",
        ),
        (
            lambda e: e["detail"].update(ModelPackageArn=ARN.replace("us-east-1", "eu-west-1")),
            "detail.ModelPackageArn (region): eu-west-1 is not this product's us-east-1",
        ),
        (
            lambda e: e["detail"].update(ModelPackageVersion=3),
            "is version 2, not ModelPackageVersion",
        ),
    ],
)
def test_an_event_of_another_source_account_region_or_group_is_refused_without_an_aws_call(
    release: Any, faults: Faults, change: Any, reason: str
) -> None:
    """The rule matches this product's group only; the hook checks the event's source, type,
    account, region and resource itself, and refuses before any AWS call."""
    handler, _ = release
    changed = copy.deepcopy(EVENT)
    change(changed)
    result = handler.handler(changed, CONTEXT)
    assert result["released"] == "false"
    assert reason in result["reason"], result["reason"]
    assert faults.seen == []


def test_a_package_sagemaker_does_not_know_is_refused_not_retried(
    release: Any, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SageMaker answers a package that does not exist (or that this role may not describe)
    with ValidationException: not the hook's failure, so no exception (no retry, no
    dead-letter queue), one refusal naming it, and nothing written."""
    handler, codepipeline = release
    missing = ClientError(
        {
            "Error": {
                "Code": "ValidationException",
                "Message": f"ModelPackage {ARN} does not exist.",
            }
        },
        "DescribeModelPackage",
    )
    monkeypatch.setattr(handler, "sagemaker", Recorder(describe_model_package=missing))
    result = handler.handler(EVENT, CONTEXT)
    assert result["released"] == "false"
    assert "detail.ModelPackageArn: SageMaker refused" in result["reason"]
    assert "ValidationException" in result["reason"]
    assert codepipeline.calls == []
    assert boto3.client("s3").list_objects_v2(Bucket="releases").get("KeyCount") == 0
    assert audit_items() == []
    # The refusal leaves no idempotency record: once the package exists, a redelivery releases.
    items = boto3.client("dynamodb").scan(TableName="idempotency")["Items"]
    assert items == []


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        (None, f"the evaluation report {RUN}/evaluation/evaluation.json cannot be read"),
        (b"not json", "is not JSON"),
        (b'{"regression_metrics": {"rmse": {"value": "NaN"}}}', "metrics.rmse"),
    ],
)
def test_an_evaluation_report_that_is_missing_or_is_not_one_is_refused(
    release: Any, report: bytes | None, reason: str
) -> None:
    handler, codepipeline = release
    s3 = boto3.client("s3")
    if report is None:
        s3.delete_object(Bucket="artifacts", Key=REPORT)
    else:
        s3.put_object(Bucket="artifacts", Key=REPORT, Body=report)
    result = handler.handler(EVENT, CONTEXT)
    assert result["released"] == "false"
    assert reason in result["reason"], result["reason"]
    assert_nothing_released(codepipeline)


def test_an_event_without_a_lambda_context_is_refused(release: Any) -> None:
    """The hook's own account comes from its ARN; without one it cannot tell whose the event
    is, and releases nothing."""
    handler, _ = release
    result = handler.answer(EVENT, None)
    assert result["released"] == "false"
    assert "names no function ARN" in result["reason"]


def test_each_invocation_publishes_one_emf_count(
    release: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, _ = release
    handler.handler(EVENT, CONTEXT)
    handler.handler(EVENT, CONTEXT)
    handler.handler({"detail-type": "Scheduled Event"}, CONTEXT)
    counts = [
        (blob["_aws"]["CloudWatchMetrics"][0]["Namespace"], name, blob[name])
        for blob in emf_blobs(capsys.readouterr().out)
        for name in ("Released", "AlreadyReleased", "Refused")
        if name in blob
    ]
    assert counts == [
        (NAMESPACE, "Released", [1.0]),
        (NAMESPACE, "AlreadyReleased", [1.0]),
        (NAMESPACE, "Refused", [1.0]),
    ]


def emf_blobs(out: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools Metrics printed."""
    blobs = []
    for line in out.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" in blob:
            blobs.append(blob)
    return blobs


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


@pytest.mark.parametrize("index", range(12))
def test_a_transient_fault_in_any_call_then_the_retry_releases_exactly_once(
    release: Any, faults: Faults, index: int
) -> None:
    """Each AWS call of a release (the idempotency store's own included) fails once in turn;
    the retry releases: one release.json, one pipeline execution, one audit event, the
    released copies in place."""
    handler, codepipeline = release
    answer = fail_then_retry(faults, index, lambda: handler.handler(EVENT, CONTEXT))
    if not faults.failed:
        pytest.skip(f"a release makes fewer than {index + 1} AWS calls")
    assert answer["model_package_arn"] == ARN, faults.failed
    assert release_json()["model_package_arn"] == ARN
    assert list(codepipeline.executions.values()) == ["exec-1"]
    assert len([i for i in audit_items() if i.get("event") == "released"]) == 1, faults.failed
    assert len(released_keys()) == 4
    again = handler.handler(EVENT, CONTEXT)
    assert again == {"released": "false", "reason": f"{ARN} was already released"}


def test_the_release_reads_the_metrics_of_any_problem_type() -> None:
    from release.handler import Copy, ModelApproval, build_release

    class Report:
        def get_object(self, Bucket: str, Key: str) -> dict[str, object]:
            import io

            body = b'{"regression_metrics": {"rmse": {"value": 3.1}, "mae": {"value": 2.4}}}'
            return {"Body": io.BytesIO(body)}

    package = {"ModelMetrics": {"ModelQuality": {"Statistics": {"S3Uri": "s3://bkt/e.json"}}}}
    approval = ModelApproval.model_validate(EVENT)
    model = Copy("model", "s3://bkt/training/p/m.tgz", "model.tar.gz",
                 "released/p/2/model.tar.gz", "s3://bkt/released/p/2/model.tar.gz")  # fmt: skip
    release = build_release(approval, package, Report(), [model])
    assert release.metrics == {"rmse": 3.1, "mae": 2.4}
