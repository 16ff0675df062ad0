"""Deployer hook under moto: CloudFormation for real, CodePipeline's job results recorded."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from .conftest import CONTEXT, FAULTS, Faults, fail_then_retry

EVENT = json.loads((Path(__file__).parents[1] / "events" / "codepipeline_job.json").read_text())
STACK = "mlgate-fraud-detection-staging-serving"
OLD = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlgate-fraud-detection/1"
NEW = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlgate-fraud-detection/2"
TEMPLATE = json.dumps(
    {
        "Parameters": {
            "ModelPackageArn": {"Type": "String"},
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
            {"ParameterKey": "InstanceCount", "ParameterValue": str(instances)},
            {"ParameterKey": "BaselineStatisticsUri", "ParameterValue": "s3://old/stats.json"},
        ],
    )


class Recorder:
    """Stands in for CodePipeline's job-result calls, which moto does not implement."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def put_job_success_result(self, **kwargs: Any) -> None:
        self.calls.append(("success", kwargs))

    def put_job_failure_result(self, **kwargs: Any) -> None:
        self.calls.append(("failure", kwargs))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Recorder]]:
    with mock_aws():
        from deployer import handler

        recorder = Recorder()
        monkeypatch.setattr(handler, "codepipeline", recorder)
        # Read from POWERTOOLS_METRICS_NAMESPACE when the module is imported, as in Lambda.
        monkeypatch.setattr(handler.metrics, "namespace", "mlgate/fraud-detection/release")
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        s3.put_object(
            Bucket="artifacts",
            Key="release/release.json",
            Body=json.dumps(
                {
                    "model_package_arn": NEW,
                    "model_version": 2,
                    "baseline_statistics_uri": "s3://new/stats.json",
                }
            ),
        )
        serving_stack(boto3.client("cloudformation"), STACK, instances=2)
        yield handler, recorder


def job_event(continuation: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    event = copy.deepcopy(EVENT)
    data = event["CodePipeline.job"]["data"]
    data["actionConfiguration"]["configuration"]["UserParameters"] = json.dumps(
        {"environment": "staging", "stack": STACK, **params}
    )
    data["inputArtifacts"][0]["location"]["s3Location"] = {
        "bucketName": "artifacts",
        "objectKey": "release/release.json",
    }
    data["artifactCredentials"] = {}
    if continuation is None:
        del data["continuationToken"]
    else:
        data["continuationToken"] = json.dumps(continuation)
    return event


def parameter(name: str) -> str:
    stack = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    return next(p["ParameterValue"] for p in stack["Parameters"] if p["ParameterKey"] == name)


def test_updates_the_serving_stack_with_the_released_model_and_keeps_other_parameters(
    aws: tuple[Any, Recorder],
) -> None:
    handler, recorder = aws
    result = handler.handler(job_event(), CONTEXT)
    assert result["result"] == "in_progress"
    assert parameter("ModelPackageArn") == NEW
    assert parameter("BaselineStatisticsUri") == "s3://new/stats.json"
    assert parameter("InstanceCount") == "2"
    kind, call = recorder.calls[-1]
    assert kind == "success"
    assert json.loads(call["continuationToken"]) == {"stack": STACK, "model_package_arn": NEW}


def test_continuation_reports_success_once_the_stack_is_updated(
    aws: tuple[Any, Recorder],
) -> None:
    handler, recorder = aws
    handler.handler(job_event(), CONTEXT)
    result = handler.handler(job_event({"stack": STACK, "model_package_arn": NEW}), CONTEXT)
    assert result == {"result": "succeeded", "reason": f"staging now serves {NEW}"}
    assert recorder.calls[-1] == (
        "success",
        {
            "jobId": EVENT["CodePipeline.job"]["id"],
            "executionDetails": {"summary": result["reason"]},
        },
    )


def test_a_rolled_back_stack_fails_the_stage_with_the_reason(
    aws: tuple[Any, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, recorder = aws

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

    monkeypatch.setattr(handler, "cloudformation", lambda job: RolledBack())
    result = handler.handler(job_event({"stack": STACK, "model_package_arn": NEW}), CONTEXT)
    assert result["result"] == "failed"
    assert "UPDATE_ROLLBACK_COMPLETE" in result["reason"]
    assert "Endpoint: Alarm model-latency-p99 fired during canary" in result["reason"]
    assert recorder.calls[-1][0] == "failure"


def test_redeploying_the_same_version_is_a_no_op(aws: tuple[Any, Recorder]) -> None:
    handler, recorder = aws
    handler.handler(job_event(), CONTEXT)
    result = handler.handler(job_event(), CONTEXT)
    assert result["result"] == "succeeded"
    assert "already serves" in result["reason"]
    assert recorder.calls[-1] == ("success", {"jobId": EVENT["CodePipeline.job"]["id"]})


@pytest.mark.parametrize(
    ("mutate", "message", "answered"),
    [
        (lambda e: e.pop("CodePipeline.job"), "CodePipeline.job: Field required", False),
        (
            lambda e: e["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"].update(
                UserParameters="not json"
            ),
            "UserParameters: Invalid JSON",
            True,
        ),
        (
            lambda e: e["CodePipeline.job"]["data"].update(
                continuationToken="A continuation token"
            ),
            "continuationToken: Invalid JSON",
            True,
        ),
    ],
)
def test_a_malformed_event_is_refused_and_changes_nothing(
    aws: tuple[Any, Recorder], mutate: Any, message: str, answered: bool
) -> None:
    handler, recorder = aws
    event = job_event()
    mutate(event)
    result = handler.handler(event, CONTEXT)
    assert result["result"] == "refused"
    assert result["reason"].startswith(message), result["reason"]
    assert parameter("ModelPackageArn") == OLD
    # A job whose id is unusable cannot be answered; any other is failed, saying why.
    assert recorder.calls == ([("failure", {"jobId": EVENT["CodePipeline.job"]["id"],
        "failureDetails": {"type": "JobFailed", "message": result["reason"]}})] if answered
        else [])  # fmt: skip


def test_a_stack_without_the_parameter_is_refused(aws: tuple[Any, Recorder]) -> None:
    handler, recorder = aws
    boto3.client("cloudformation").create_stack(
        StackName="other",
        TemplateBody=json.dumps(
            {"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {}}}}
        ),
    )
    event = job_event()
    params = json.loads(
        event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"]
    )
    params["stack"] = "other"
    event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] = (
        json.dumps(params)
    )
    result = handler.handler(event, CONTEXT)
    assert result == {
        "result": "failed",
        "reason": "stack other has no ModelPackageArn parameter: is it a Serving stack?",
    }
    assert recorder.calls[-1][0] == "failure"


PROD_ROLE = "arn:aws:iam::222222222222:role/mlgate-fraud-detection-prod-deploy"
PROD_STACK = "mlgate-fraud-detection-prod-serving"


def test_prod_in_another_account_is_updated_through_its_deploy_role(
    aws: tuple[Any, Recorder],
) -> None:
    handler, recorder = aws
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
    event = job_event(role_arn=PROD_ROLE)
    params = json.loads(
        event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"]
    )
    params.update(environment="prod", stack=PROD_STACK)
    event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] = (
        json.dumps(params)
    )
    result = handler.handler(event, CONTEXT)
    assert result["result"] == "in_progress", result
    stack = prod.describe_stacks(StackName=PROD_STACK)["Stacks"][0]
    values = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert values == {
        "ModelPackageArn": NEW,
        "InstanceCount": "4",
        "BaselineStatisticsUri": "s3://new/stats.json",
    }
    assert stack["StackId"].split(":")[4] == "222222222222"
    # The home account's stacks are untouched, and it has no prod stack.
    assert parameter("ModelPackageArn") == OLD
    names = [s["StackName"] for s in boto3.client("cloudformation").describe_stacks()["Stacks"]]
    assert PROD_STACK not in names
    assert recorder.calls[-1][0] == "success"


@pytest.mark.parametrize("index", range(4))
def test_a_transient_fault_then_the_retry_updates_the_stack_once(
    aws: tuple[Any, Recorder], faults: Faults, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    """Reading release.json, describing the stack, updating it or reporting to CodePipeline
    is throttled once: the invocation fails (the job does not), and Lambda's retry of the same
    job updates the stack to the release and reports it once."""
    handler, recorder = aws
    report = recorder.put_job_success_result

    def reported(**kwargs: Any) -> None:
        FAULTS.call("codepipeline.put_job_success_result")
        report(**kwargs)

    monkeypatch.setattr(recorder, "put_job_success_result", reported)
    fail_then_retry(faults, index, lambda: handler.handler(job_event(), CONTEXT))
    assert faults.failed == ["s3.get_object", "cloudformation.describe_stacks",
                             "cloudformation.update_stack",
                             "codepipeline.put_job_success_result"][index]  # fmt: skip
    assert parameter("ModelPackageArn") == NEW
    assert [kind for kind, _ in recorder.calls] == ["success"]


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
                    {"ParameterKey": "InstanceCount", "ParameterValue": "2"},
                    {"ParameterKey": "BaselineStatisticsUri", "ParameterValue": "s3://old/s.json"},
                ],
            }
        ]
    }


@pytest.fixture
def stubbed(aws: tuple[Any, Recorder], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """CloudFormation through botocore's Stubber: moto cannot hold a stack in a rollback."""
    handler, _ = aws
    cfn = boto3.client("cloudformation")
    monkeypatch.setattr(handler, "cloudformation", lambda job: cfn)
    with Stubber(cfn) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_a_stack_rolling_back_is_waited_for_then_updated(
    aws: tuple[Any, Recorder], stubbed: Stubber
) -> None:
    """The previous release is still rolling back when this one's job arrives: the job waits
    through continuation tokens instead of failing, and updates the stack once it is stable."""
    handler, recorder = aws
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
                {"ParameterKey": "InstanceCount", "UsePreviousValue": True},
                {"ParameterKey": "BaselineStatisticsUri", "ParameterValue": "s3://new/stats.json"},
            ],
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        },
    )
    first = handler.handler(job_event(), CONTEXT)
    assert first == {
        "result": "waiting",
        "reason": f"{STACK} is UPDATE_ROLLBACK_IN_PROGRESS; the update starts once it ends",
    }
    token = json.loads(recorder.calls[-1][1]["continuationToken"])
    assert token == {"stack": STACK, "waiting": True}
    assert handler.handler(job_event(token), CONTEXT)["result"] == "waiting"
    third = handler.handler(job_event(token), CONTEXT)
    assert third["result"] == "in_progress"
    assert json.loads(recorder.calls[-1][1]["continuationToken"]) == {
        "stack": STACK,
        "model_package_arn": NEW,
    }
    assert [kind for kind, _ in recorder.calls] == ["success"] * 3


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
    aws: tuple[Any, Recorder], stubbed: Stubber, status: str, way_out: str, waited: bool
) -> None:
    """Whether the job finds the stack so at once or after waiting for it, it fails without
    trying UpdateStack (the Stubber refuses any call not queued)."""
    handler, recorder = aws
    stubbed.add_response("describe_stacks", stack_answer(status))
    result = handler.handler(
        job_event({"stack": STACK, "waiting": True} if waited else None), CONTEXT
    )
    assert result["result"] == "failed"
    assert result["reason"].startswith(f"staging: stack {STACK} is {status}, which CloudFormation")
    assert way_out in result["reason"]
    ((kind, sent),) = recorder.calls
    assert kind == "failure"
    assert status in sent["failureDetails"]["message"]


def test_a_stack_aws_does_not_know_fails_the_job_not_the_invocation(
    aws: tuple[Any, Recorder], stubbed: Stubber
) -> None:
    """Another product's stack, or one of another account: CloudFormation answers
    ValidationException. That is AWS refusing the name, not the hook failing: the job fails
    saying so, nothing is updated, and no exception sends the event to the dead-letter queue."""
    handler, recorder = aws
    other = "mlgate-other-product-staging-serving"
    stubbed.add_client_error(
        "describe_stacks",
        service_error_code="ValidationException",
        service_message=f"Stack with id {other} does not exist",
        http_status_code=400,
        expected_params={"StackName": other},
    )
    event = job_event()
    params = json.loads(
        event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"]
    )
    event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] = (
        json.dumps({**params, "stack": other})
    )
    result = handler.handler(event, CONTEXT)
    assert result == {
        "result": "failed",
        "reason": f"DescribeStacks refused: ValidationException: Stack with id {other} does not "
        "exist",
    }
    ((kind, sent),) = recorder.calls
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
    aws: tuple[Any, Recorder], faults: Faults, token: str, reason: str
) -> None:
    """AWS's sample text, JSON null, a list, a token without its fields, another stack's:
    the job fails naming the token, before any AWS call but that answer."""
    handler, recorder = aws
    event = job_event()
    event["CodePipeline.job"]["data"]["continuationToken"] = token
    result = handler.handler(event, CONTEXT)
    assert result["result"] == "refused"
    assert reason in result["reason"], result["reason"]
    assert "not a token this action wrote" in result["reason"]
    assert faults.seen == []
    assert [kind for kind, _ in recorder.calls] == ["failure"]
    assert parameter("ModelPackageArn") == OLD
