"""Release hook under moto: an Approved version becomes release.json and a pipeline run, once;
anything else, refused before any AWS call, naming what it refused."""

from __future__ import annotations

import copy
import json
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
    # Read from POWERTOOLS_METRICS_NAMESPACE when the module is imported, as in Lambda.
    monkeypatch.setattr(handler.metrics, "namespace", NAMESPACE)
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
        (None, "the evaluation report s3://artifacts/eval/evaluation.json cannot be read"),
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
        s3.delete_object(Bucket="artifacts", Key="eval/evaluation.json")
    else:
        s3.put_object(Bucket="artifacts", Key="eval/evaluation.json", Body=report)
    result = handler.handler(EVENT, CONTEXT)
    assert result["released"] == "false"
    assert reason in result["reason"], result["reason"]
    assert codepipeline.calls == []
    assert s3.list_objects_v2(Bucket="releases").get("KeyCount") == 0


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
    from release.handler import ModelApproval, build_release

    class Report:
        def get_object(self, Bucket: str, Key: str) -> dict[str, object]:
            import io

            body = b'{"regression_metrics": {"rmse": {"value": 3.1}, "mae": {"value": 2.4}}}'
            return {"Body": io.BytesIO(body)}

    package = {"ModelMetrics": {"ModelQuality": {"Statistics": {"S3Uri": "s3://bkt/e.json"}}}}
    approval = ModelApproval.model_validate(EVENT)
    release = build_release(approval, package, Report())
    assert release.metrics == {"rmse": 3.1, "mae": 2.4}
