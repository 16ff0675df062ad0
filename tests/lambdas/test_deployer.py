"""Deployer hook under moto: CloudFormation and S3 for real, CodePipeline's job API and the
registry stood in for (conftest: Jobs, Registry). The hook takes only the job id from its
event: the job, its release and its version's approval come from CodePipeline, the release
source and the registry."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from .conftest import (
    CONTEXT,
    JOB_ID,
    Faults,
    Jobs,
    Registry,
    fail_then_retry,
    moto,
    package_arn,
    release_source,
    released,
)

EVENT = json.loads((Path(__file__).parents[1] / "events" / "codepipeline_job.json").read_text())
STACK = "mlgate-fraud-detection-staging-serving"
OLD = package_arn(1)
NEW = package_arn(2)
NEW_DATA = "s3://artifacts/released/fraud-detection/2/model.tar.gz"
SERVICE_ROLE = "arn:aws:iam::111111111111:role/mlgate-fraud-detection-staging-serving-cfn"
TEMPLATE = json.dumps(
    {
        "Parameters": {
            "ModelPackageArn": {"Type": "String"},
            "ModelDataUrl": {"Type": "String"},
            "InstanceCount": {"Type": "String", "Default": "2"},
            "BaselineStatisticsUri": {"Type": "String"},
        },
        "Resources": {
            "Marker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": "/mlgate/marker",
                    "Type": "String",
                    "Value": {"Ref": "ModelPackageArn"},
                },
            }
        },
    }
)


def serving_stack(cfn: Any, name: str, instances: int) -> None:
    """A stand-in Serving stack that serves the previous version."""
    cfn.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE,
        Parameters=[
            {"ParameterKey": "ModelPackageArn", "ParameterValue": OLD},
            {"ParameterKey": "ModelDataUrl", "ParameterValue": "s3://artifacts/released/1.tgz"},
            {"ParameterKey": "InstanceCount", "ParameterValue": str(instances)},
            {"ParameterKey": "BaselineStatisticsUri", "ParameterValue": "s3://old/stats.json"},
        ],
    )


@dataclass
class World:
    handler: Any
    jobs: Jobs
    registry: Registry
    revision: str

    def job(self, continuation: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        """The deployer's job as CodePipeline holds it, and the event that names it."""
        given = {"environment": "staging", "stack": STACK, "service_role": SERVICE_ROLE,
                 **params}  # fmt: skip
        token = json.dumps(continuation) if continuation is not None else None
        self.jobs.add(given, continuation=token, revision=self.revision)
        return job_event()

    @property
    def recorded(self) -> list[tuple[str, dict[str, Any]]]:
        """The job results reported, as ("success" | "failure", arguments)."""
        return [(n.split("_")[2], k) for n, k in self.jobs.reports()]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with moto():
        from deployer import handler

        jobs, registry = Jobs(), Registry()
        registry.hold(NEW)
        monkeypatch.setattr(handler, "codepipeline", jobs)
        monkeypatch.setattr(handler, "sagemaker", registry)
        # Read from POWERTOOLS_METRICS_NAMESPACE when the module is imported, as in Lambda.
        monkeypatch.setattr(handler.metrics, "namespace", "mlgate/fraud-detection/release")
        revision = release_source(monkeypatch, released(2))
        serving_stack(boto3.client("cloudformation"), STACK, instances=2)
        yield World(handler, jobs, registry, revision)


def job_event() -> dict[str, Any]:
    """AWS's sample job event: the deployer reads its job id only."""
    return copy.deepcopy(EVENT)


def parameter(name: str) -> str:
    stack = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    return next(p["ParameterValue"] for p in stack["Parameters"] if p["ParameterKey"] == name)


def test_updates_the_serving_stack_with_the_released_model_and_keeps_other_parameters(
    aws: World,
) -> None:
    result = aws.handler.handler(aws.job(), CONTEXT)
    assert result["result"] == "in_progress", result
    assert parameter("ModelPackageArn") == NEW
    assert parameter("ModelDataUrl") == NEW_DATA
    assert parameter("BaselineStatisticsUri") == (
        "s3://artifacts/released/fraud-detection/2/baseline/statistics.json"
    )
    assert parameter("InstanceCount") == "2"
    kind, call = aws.recorded[-1]
    assert kind == "success"
    assert json.loads(call["continuationToken"]) == {"stack": STACK, "model_package_arn": NEW}
    # The job came from CodePipeline, the release from the execution's source revision.
    assert aws.jobs.names()[:2] == ["get_job_details", "get_pipeline_execution"]
    assert aws.registry.calls == [NEW]


def test_continuation_reports_success_once_the_stack_is_updated(aws: World) -> None:
    aws.handler.handler(aws.job(), CONTEXT)
    result = aws.handler.handler(aws.job({"stack": STACK, "model_package_arn": NEW}), CONTEXT)
    assert result == {"result": "succeeded", "reason": f"staging now serves {NEW}"}
    assert aws.recorded[-1] == (
        "success",
        {"jobId": JOB_ID, "executionDetails": {"summary": result["reason"]}},
    )


def test_a_rolled_back_stack_fails_the_stage_with_the_reason(
    aws: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    class RolledBack:
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            return {"Stacks": [{"StackStatus": "UPDATE_ROLLBACK_COMPLETE"}]}

        def describe_stack_events(self, StackName: str) -> dict[str, Any]:
            return {
                "StackEvents": [
                    {
                        "LogicalResourceId": "Endpoint",
                        "ResourceStatus": "UPDATE_FAILED",
                        "ResourceStatusReason": "Alarm model-latency-p99 fired during canary",
                    }
                ]
            }

    monkeypatch.setattr(aws.handler, "cloudformation", lambda job: RolledBack())
    result = aws.handler.handler(aws.job({"stack": STACK, "model_package_arn": NEW}), CONTEXT)
    assert result["result"] == "failed"
    assert "UPDATE_ROLLBACK_COMPLETE" in result["reason"]
    assert "Endpoint: Alarm model-latency-p99 fired during canary" in result["reason"]
    assert aws.recorded[-1][0] == "failure"


def test_redeploying_the_same_version_is_a_no_op(aws: World) -> None:
    aws.handler.handler(aws.job(), CONTEXT)
    result = aws.handler.handler(aws.job(), CONTEXT)
    assert result["result"] == "succeeded"
    assert "already serves" in result["reason"]
    summary = f"{STACK} already serves this model version; nothing to deploy"
    assert aws.recorded[-1] == (
        "success",
        {"jobId": JOB_ID, "executionDetails": {"summary": summary}},
    )


@pytest.mark.parametrize(
    ("params", "token", "message"),
    [
        ("not json", None, "UserParameters: Invalid JSON"),
        (None, "A continuation token if continuing job", "continuationToken: Invalid JSON"),
        ({"environment": "staging", "stack": STACK}, None,
         "UserParameters.service_role: Field required"),
    ],
)  # fmt: skip
def test_a_malformed_job_is_refused_and_changes_nothing(
    aws: World, params: Any, token: str | None, message: str
) -> None:
    """What CodePipeline holds for the job is read like any input: a job it holds that the
    deployer cannot take is failed, naming the field."""
    aws.jobs.add(
        params if params is not None else
        {"environment": "staging", "stack": STACK, "service_role": SERVICE_ROLE},
        continuation=token, revision=aws.revision,
    )  # fmt: skip
    result = aws.handler.handler(job_event(), CONTEXT)
    assert result["result"] == "refused"
    assert result["reason"].startswith(message), result["reason"]
    assert parameter("ModelPackageArn") == OLD
    assert aws.recorded == [("failure", {"jobId": JOB_ID, "failureDetails": {
        "type": "JobFailed", "message": result["reason"]}})]  # fmt: skip


# --- forged events: only CodePipeline's job, only the execution's release, only Approved ------


def test_an_event_without_a_usable_job_id_is_dropped_unanswered(aws: World) -> None:
    event = job_event()
    event.pop("CodePipeline.job")
    result = aws.handler.handler(event, CONTEXT)
    assert result["result"] == "refused"
    assert result["reason"].startswith("CodePipeline.job: Field required")
    assert aws.jobs.calls == []
    assert parameter("ModelPackageArn") == OLD


def test_a_forged_event_with_a_made_up_job_id_is_refused_without_a_deployment(
    aws: World,
) -> None:
    """Anyone allowed to invoke the deployer can send a CodePipeline-shaped event naming any
    stack and any release.json: with a job id CodePipeline does not know, nothing is deployed
    and nothing is answered (there is no job to answer)."""
    aws.job()  # the real job, of another id
    event = job_event()
    event["CodePipeline.job"]["id"] = str(uuid.uuid4())
    result = aws.handler.handler(event, CONTEXT)
    assert result["result"] == "refused"
    assert "is no job of this account" in result["reason"]
    assert "JobNotFoundException" in result["reason"]
    assert aws.jobs.names() == ["get_job_details"]
    assert aws.registry.calls == []
    assert parameter("ModelPackageArn") == OLD


@pytest.mark.parametrize("forged", [False, True], ids=["real job", "forged id"])
def test_a_job_getjobdetails_will_not_describe_is_failed_not_left_to_time_out(
    aws: World, forged: bool
) -> None:
    """Should GetJobDetails refuse a Lambda action's job (its API reference words it for custom
    actions), the job fails naming why instead of hanging until CodePipeline times it out;
    for a forged id the same failure reaches no job (JobNotFoundException: settled)."""
    event = aws.job()
    if forged:
        event["CodePipeline.job"]["id"] = str(uuid.uuid4())
    aws.jobs.details_refused = "AccessDeniedException"
    result = aws.handler.handler(event, CONTEXT)
    assert result["result"] == "refused"
    assert "cannot verify job" in result["reason"]
    assert "AccessDeniedException" in result["reason"]
    assert aws.jobs.names() == ["get_job_details", "put_job_failure_result"]
    assert parameter("ModelPackageArn") == OLD


def test_a_real_job_id_with_forged_parameters_and_artifact_in_the_event_deploys_the_real_job(
    aws: World,
) -> None:
    """The event's UserParameters (another stack, another service role) and input artifact
    (a release.json of the attacker's) are never read: the job's own parameters and the
    release of its execution are deployed."""
    event = aws.job()
    data = event["CodePipeline.job"]["data"]
    data["actionConfiguration"]["configuration"]["UserParameters"] = json.dumps(
        {"environment": "prod", "stack": "mlgate-other-prod-serving",
         "service_role": "arn:aws:iam::111111111111:role/cdk-hnb659fds-cfn-exec-role"}
    )  # fmt: skip
    data["inputArtifacts"][0]["location"]["s3Location"] = {
        "bucketName": "attacker",
        "objectKey": "release.json",
    }
    del data["continuationToken"]
    result = aws.handler.handler(event, CONTEXT)
    assert result["result"] == "in_progress", result
    assert parameter("ModelPackageArn") == NEW
    assert parameter("ModelDataUrl") == NEW_DATA


def test_a_job_of_another_pipeline_is_not_answered(aws: World) -> None:
    aws.jobs.add({"environment": "staging", "stack": STACK, "service_role": SERVICE_ROLE},
                 pipeline="another-pipeline", revision=aws.revision)  # fmt: skip
    result = aws.handler.handler(job_event(), CONTEXT)
    assert result["result"] == "refused"
    assert (
        "is of pipeline another-pipeline, not this product's release pipeline" in (result["reason"])
    )
    assert aws.jobs.reports() == []
    assert parameter("ModelPackageArn") == OLD


OTHER_GROUP = package_arn(2, group="mlgate-other-product")


@pytest.mark.parametrize(
    ("release", "status", "group", "reason"),
    [
        (released(2), "Rejected", None, "version 2 is Rejected, not Approved"),
        (released(2), "PendingManualApproval", None,
         "version 2 is PendingManualApproval, not Approved"),
        (released(2, model_package_arn=OTHER_GROUP), "Approved", "mlgate-other-product",
         "version 2 belongs to group mlgate-other-product, not this product's "
         "mlgate-fraud-detection"),
        (released(2), "Approved", "mlgate-other-product",
         "version 2 belongs to group mlgate-other-product"),
        (released(3, model_package_arn=package_arn(3)), None, None,
         "DescribeModelPackage refused: ValidationException"),
    ],
)  # fmt: skip
def test_a_release_of_a_version_not_approved_in_this_group_is_refused(
    aws: World, monkeypatch: pytest.MonkeyPatch, release: dict[str, Any], status: str | None,
    group: str | None, reason: str,
) -> None:  # fmt: skip
    """release.json names a version the registry holds as Rejected or PendingManualApproval,
    of another group, or not at all: the job fails naming why, and no stack is touched."""
    aws.registry.packages.clear()
    if status is not None:
        aws.registry.hold(release["model_package_arn"], status, group)
    aws.revision = release_source(monkeypatch, release)
    result = aws.handler.handler(aws.job(), CONTEXT)
    assert result["result"] == "refused"
    assert result["reason"].startswith("release.json.model_package_arn: ")
    assert reason in result["reason"], result["reason"]
    assert parameter("ModelPackageArn") == OLD
    assert [kind for kind, _ in aws.recorded] == ["failure"]


@pytest.mark.parametrize(
    ("release", "reason"),
    [
        (released(2, model_data_url="s3://attacker/released/fraud-detection/2/model.tar.gz",
                  baseline_statistics_uri=None),
         "s3://attacker/released/fraud-detection is not this product's released folder"),
        (released(2, model_data_url="s3://artifacts/released/other-product/2/model.tar.gz",
                  baseline_statistics_uri=None),
         "s3://artifacts/released/other-product is not this product's released folder"),
        (released(2, model_data_url="s3://artifacts/training/fraud-detection/run/model.tar.gz"),
         "model_data_url is not s3://<bucket>/released/<product>/<model_version>/model.tar.gz"),
        (released(2, model_data_url="s3://artifacts/released/fraud-detection/1/model.tar.gz"),
         "model_data_url is not s3://<bucket>/released/<product>/<model_version>"),
        (released(2, baseline_statistics_uri="s3://artifacts/training/x/statistics.json"),
         "baseline_statistics_uri is not baseline/statistics.json in the version's released"),
    ],
)  # fmt: skip
def test_a_release_whose_artifacts_are_not_this_products_released_copies_is_refused(
    aws: World, monkeypatch: pytest.MonkeyPatch, release: dict[str, Any], reason: str
) -> None:
    aws.revision = release_source(monkeypatch, release)
    result = aws.handler.handler(aws.job(), CONTEXT)
    assert result["result"] == "refused"
    assert reason in result["reason"], result["reason"]
    assert parameter("ModelPackageArn") == OLD
    assert aws.registry.calls == []


def test_the_release_is_the_one_of_the_jobs_own_execution(
    aws: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later release.json (another execution's, queued behind this one) is not this job's:
    the job deploys the version at its execution's source revision."""
    first = aws.revision
    aws.registry.hold(package_arn(3))
    release_source(monkeypatch, released(3))
    aws.revision = first
    assert aws.handler.handler(aws.job(), CONTEXT)["result"] == "in_progress"
    assert parameter("ModelPackageArn") == NEW


def test_an_execution_whose_source_revision_is_gone_is_refused(aws: World) -> None:
    aws.revision = "not-a-version-id"
    result = aws.handler.handler(aws.job(), CONTEXT)
    assert result["result"] == "refused"
    assert result["reason"].startswith("release.json: s3://releases/release.json at version "
                                       "not-a-version-id")  # fmt: skip
    assert parameter("ModelPackageArn") == OLD


def test_codepipeline_s_answer_is_read_as_its_api_documents_it(aws: World) -> None:
    """GetJobDetails' answer, checked by botocore's Stubber against CodePipeline's own service
    model: the fields the hooks read are where the API puts them."""
    aws.job()
    client = boto3.client("codepipeline", region_name="eu-west-1")
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_job_details", aws.jobs.get_job_details(jobId=JOB_ID), {"jobId": JOB_ID}
        )
        from shared.jobs import read_job
        from shared.models import DeployParameters

        job = read_job(job_event(), DeployParameters, client, "deployer")
    assert (job.id, job.params.stack, job.params.service_role) == (JOB_ID, STACK, SERVICE_ROLE)
    assert job.execution == "4a2e8c1f-0b7d-4e59-9c3a-6f1d2b8e7a90"


def test_a_stack_without_the_parameters_is_refused(aws: World) -> None:
    boto3.client("cloudformation").create_stack(
        StackName="other",
        TemplateBody=json.dumps(
            {"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {}}}}
        ),
    )
    result = aws.handler.handler(aws.job(stack="other"), CONTEXT)
    assert result == {
        "result": "failed",
        "reason": "stack other has no ModelPackageArn or ModelDataUrl parameter: is it a "
        "Serving stack of this mlgate version (cdk deploy it)?",
    }
    assert aws.recorded[-1][0] == "failure"


PROD_ROLE = "arn:aws:iam::222222222222:role/mlgate-fraud-detection-prod-deploy"
PROD_STACK = "mlgate-fraud-detection-prod-serving"


def test_prod_in_another_account_is_updated_through_its_deploy_role(aws: World) -> None:
    creds = boto3.client("sts").assume_role(RoleArn=PROD_ROLE, RoleSessionName="setup")[
        "Credentials"
    ]
    prod = boto3.client(
        "cloudformation",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    serving_stack(prod, PROD_STACK, instances=4)
    event = aws.job(role_arn=PROD_ROLE, environment="prod", stack=PROD_STACK)
    result = aws.handler.handler(event, CONTEXT)
    assert result["result"] == "in_progress", result
    stack = prod.describe_stacks(StackName=PROD_STACK)["Stacks"][0]
    values = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert values == {
        "ModelPackageArn": NEW,
        "ModelDataUrl": NEW_DATA,
        "InstanceCount": "4",
        "BaselineStatisticsUri": "s3://artifacts/released/fraud-detection/2/baseline/"
        "statistics.json",
    }
    assert stack["StackId"].split(":")[4] == "222222222222"
    # The home account's stacks are untouched, and it has no prod stack.
    assert parameter("ModelPackageArn") == OLD
    names = [s["StackName"] for s in boto3.client("cloudformation").describe_stacks()["Stacks"]]
    assert PROD_STACK not in names
    assert aws.recorded[-1][0] == "success"


CALLS = [
    "recorder.get_job_details", "recorder.get_pipeline_execution", "s3.get_object",
    "recorder.describe_model_package", "cloudformation.describe_stacks",
    "cloudformation.update_stack", "recorder.put_job_success_result",
]  # fmt: skip


@pytest.mark.parametrize("index", range(len(CALLS)))
def test_a_transient_fault_then_the_retry_updates_the_stack_once(
    aws: World, faults: Faults, index: int
) -> None:
    """Reading the job, its execution, release.json or the registry, describing the stack,
    updating it or reporting to CodePipeline is throttled once: the invocation fails (the job
    does not), and Lambda's retry of the same job updates the stack to the release and
    reports it once."""
    event = aws.job()
    fail_then_retry(faults, index, lambda: aws.handler.handler(event, CONTEXT))
    assert faults.failed == CALLS[index]
    assert parameter("ModelPackageArn") == NEW
    assert [kind for kind, _ in aws.recorded] == ["success"]


def stack_answer(status: str, model: str = OLD) -> dict[str, Any]:
    """DescribeStacks as CloudFormation answers it for the Serving stack in `status`."""
    return {
        "Stacks": [
            {
                "StackName": STACK,
                "CreationTime": datetime(2026, 11, 1, tzinfo=UTC),
                "StackStatus": status,
                "Parameters": [
                    {"ParameterKey": "ModelPackageArn", "ParameterValue": model},
                    {"ParameterKey": "ModelDataUrl", "ParameterValue": "s3://a/1.tgz"},
                    {"ParameterKey": "InstanceCount", "ParameterValue": "2"},
                    {"ParameterKey": "BaselineStatisticsUri", "ParameterValue": "s3://old/s.json"},
                ],
            }
        ]
    }


@pytest.fixture
def stubbed(aws: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """CloudFormation through botocore's Stubber: moto cannot hold a stack in a rollback."""
    cfn = boto3.client("cloudformation")
    monkeypatch.setattr(aws.handler, "cloudformation", lambda job: cfn)
    with Stubber(cfn) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_a_stack_rolling_back_is_waited_for_then_updated(aws: World, stubbed: Stubber) -> None:
    """The previous release is still rolling back when this one's job arrives: the job waits
    through continuation tokens instead of failing, and updates the stack once it is stable,
    as the Serving stack's own service role."""
    stubbed.add_response("describe_stacks", stack_answer("UPDATE_ROLLBACK_IN_PROGRESS"))
    stubbed.add_response(
        "describe_stacks", stack_answer("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    )
    stubbed.add_response("describe_stacks", stack_answer("UPDATE_ROLLBACK_COMPLETE"))
    stubbed.add_response(
        "update_stack",
        {"StackId": "stack-id"},
        {
            "StackName": STACK,
            "UsePreviousTemplate": True,
            "Parameters": [
                {"ParameterKey": "ModelPackageArn", "ParameterValue": NEW},
                {"ParameterKey": "ModelDataUrl", "ParameterValue": NEW_DATA},
                {"ParameterKey": "InstanceCount", "UsePreviousValue": True},
                {"ParameterKey": "BaselineStatisticsUri", "ParameterValue":
                 "s3://artifacts/released/fraud-detection/2/baseline/statistics.json"},
            ],
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            "RoleARN": SERVICE_ROLE,
        },
    )  # fmt: skip
    first = aws.handler.handler(aws.job(), CONTEXT)
    assert first == {
        "result": "waiting",
        "reason": f"{STACK} is UPDATE_ROLLBACK_IN_PROGRESS; the update starts once it ends",
    }
    token = json.loads(aws.recorded[-1][1]["continuationToken"])
    assert token == {"stack": STACK, "waiting": True}
    assert aws.handler.handler(aws.job(token), CONTEXT)["result"] == "waiting"
    third = aws.handler.handler(aws.job(token), CONTEXT)
    assert third["result"] == "in_progress"
    assert json.loads(aws.recorded[-1][1]["continuationToken"]) == {
        "stack": STACK,
        "model_package_arn": NEW,
    }
    assert [kind for kind, _ in aws.recorded] == ["success"] * 3


@pytest.mark.parametrize(
    ("status", "way_out"),
    [
        ("UPDATE_ROLLBACK_FAILED", "continue-update-rollback"),
        ("ROLLBACK_COMPLETE", "delete it and deploy it again with cdk deploy"),
        ("REVIEW_IN_PROGRESS", "execute or delete it"),
    ],
)
@pytest.mark.parametrize("waited", [False, True])
def test_a_stack_cloudformation_will_not_update_fails_the_job_naming_state_and_way_out(
    aws: World, stubbed: Stubber, status: str, way_out: str, waited: bool
) -> None:
    """Whether the job finds the stack so at once or after waiting for it, it fails without
    trying UpdateStack (the Stubber refuses any call not queued)."""
    stubbed.add_response("describe_stacks", stack_answer(status))
    result = aws.handler.handler(
        aws.job({"stack": STACK, "waiting": True} if waited else None), CONTEXT
    )
    assert result["result"] == "failed"
    assert result["reason"].startswith(f"staging: stack {STACK} is {status}, which CloudFormation")
    assert way_out in result["reason"]
    ((kind, sent),) = aws.recorded
    assert kind == "failure"
    assert status in sent["failureDetails"]["message"]


def test_a_stack_aws_does_not_know_fails_the_job_not_the_invocation(
    aws: World, stubbed: Stubber
) -> None:
    """Another product's stack, or one of another account: CloudFormation answers
    ValidationException. That is AWS refusing the name, not the hook failing: the job fails
    saying so, nothing is updated, and no exception sends the event to the dead-letter queue."""
    other = "mlgate-other-product-staging-serving"
    stubbed.add_client_error(
        "describe_stacks",
        service_error_code="ValidationException",
        service_message=f"Stack with id {other} does not exist",
        http_status_code=400,
        expected_params={"StackName": other},
    )
    result = aws.handler.handler(aws.job(stack=other), CONTEXT)
    assert result == {
        "result": "failed",
        "reason": f"DescribeStacks refused: ValidationException: Stack with id {other} does not "
        "exist",
    }
    ((kind, sent),) = aws.recorded
    assert kind == "failure"
    assert sent["failureDetails"]["message"] == result["reason"]


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("A continuation token if continuing job", "continuationToken: Invalid JSON"),
        ("null", "continuationToken: Input should be an object"),
        ('["a"]', "continuationToken: Input should be an object"),
        ("{}", "continuationToken.stack: Field required"),
        (json.dumps({"stack": STACK}), "a deployer token carries either waiting or"),
        (json.dumps({"stack": "other", "model_package_arn": NEW}), "continuationToken.stack: "
         "names stack other, not this job's"),
    ],
)  # fmt: skip
def test_a_continuation_token_that_is_not_the_deployers_own_is_refused(
    aws: World, faults: Faults, token: str, reason: str
) -> None:
    """AWS's sample text, JSON null, a list, a token without its fields, another stack's, as
    CodePipeline holds the job: the job fails naming the token, before any AWS call but
    reading the job and answering it."""
    aws.jobs.add({"environment": "staging", "stack": STACK, "service_role": SERVICE_ROLE},
                 continuation=token, revision=aws.revision)  # fmt: skip
    result = aws.handler.handler(job_event(), CONTEXT)
    assert result["result"] == "refused"
    assert reason in result["reason"], result["reason"]
    assert "not a token this action wrote" in result["reason"]
    assert faults.seen == ["recorder.get_job_details", "recorder.put_job_failure_result"]
    assert parameter("ModelPackageArn") == OLD
