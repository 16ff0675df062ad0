"""Deployer hook: rolls one approved model version out to one environment's Serving stack.

A CodePipeline Lambda action. It updates the environment's Serving stack with the model
package from release.json as its `ModelPackageArn` parameter (the template stays the one
`cdk deploy` put there: `UsePreviousTemplate`), then comes back through CodePipeline's
continuation token until CloudFormation finishes. CloudFormation performs the endpoint's
blue/green update, and rolls it back on the rollback alarms; a rollback fails the stage.

The Model Monitor baseline registered with the version (release.json's baseline_statistics_uri
and baseline_constraints_uri) goes into the stack's baseline parameters.

Event: the CodePipeline job event. UserParameters (JSON): {"environment": "staging",
"stack": "<serving stack name>", "role_arn": "<deploy role in the target account>" (optional)}.
Input artifact: the release source (release.json, zipped or as is).
Environment: none besides Powertools'.
AWS calls: s3:GetObject (artifact, with the job's artifact credentials),
sts:AssumeRole (optional: only when role_arn is set), cloudformation:DescribeStacks,
cloudformation:UpdateStack, cloudformation:DescribeStackEvents, iam:PassRole (UpdateStack
passes the stack's CloudFormation execution role),
codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

logger = Logger()
codepipeline = boto3.client("codepipeline")

IN_PROGRESS = ("_IN_PROGRESS",)
DONE = {"UPDATE_COMPLETE", "CREATE_COMPLETE"}
PARAMETER = "ModelPackageArn"
# Serving stack parameter -> release.json key; the baseline travels with its model version.
FROM_RELEASE = {
    PARAMETER: "model_package_arn",
    "BaselineStatisticsUri": "baseline_statistics_uri",
    "BaselineConstraintsUri": "baseline_constraints_uri",
}


class JobError(ValueError):
    """The job cannot go on; the message is what the pipeline shows."""


@dataclass(frozen=True)
class Job:
    id: str
    environment: str
    stack: str
    role_arn: str | None
    artifact: dict[str, Any] | None
    credentials: dict[str, str]
    continuation: dict[str, Any] | None


def parse(event: Any) -> Job:
    """The CodePipeline job event, or a JobError naming the part that is missing or wrong."""
    try:
        job = event["CodePipeline.job"]
        data = job["data"]
        raw = data["actionConfiguration"]["configuration"].get("UserParameters", "")
        job_id = job["id"]
    except (KeyError, TypeError) as err:
        raise JobError(f"not a CodePipeline job event: missing {err}") from None
    try:
        params = json.loads(raw)
        environment, stack = params["environment"], params["stack"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise JobError(f"UserParameters must be JSON with environment and stack: {err}") from None
    artifacts = data.get("inputArtifacts") or []
    token = data.get("continuationToken")
    return Job(
        id=job_id,
        environment=environment,
        stack=stack,
        role_arn=params.get("role_arn"),
        artifact=artifacts[0]["location"]["s3Location"] if artifacts else None,
        credentials=data.get("artifactCredentials") or {},
        continuation=json.loads(token) if token else None,
    )


def read_release(job: Job) -> dict[str, Any]:
    if job.artifact is None:
        raise JobError("the action has no input artifact: give it the release source")
    s3 = boto3.client(
        "s3",
        aws_access_key_id=job.credentials.get("accessKeyId"),
        aws_secret_access_key=job.credentials.get("secretAccessKey"),
        aws_session_token=job.credentials.get("sessionToken"),
    )
    body = s3.get_object(Bucket=job.artifact["bucketName"], Key=job.artifact["objectKey"])[
        "Body"
    ].read()
    if body[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            body = archive.read("release.json")
    try:
        release: dict[str, Any] = json.loads(body)
        release["model_package_arn"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise JobError(f"release.json is not a release: {err}") from None
    return release


def cloudformation(job: Job) -> Any:
    if not job.role_arn:
        return boto3.client("cloudformation")
    creds = boto3.client("sts").assume_role(
        RoleArn=job.role_arn, RoleSessionName=f"mlgate-deploy-{job.environment}"
    )["Credentials"]
    return boto3.client(
        "cloudformation",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def start(job: Job, cfn: Any) -> str | None:
    """Start the stack update; None when the stack already runs this model version."""
    release = read_release(job)
    arn = release["model_package_arn"]
    stack = cfn.describe_stacks(StackName=job.stack)["Stacks"][0]
    keys = [p["ParameterKey"] for p in stack.get("Parameters", [])]
    if PARAMETER not in keys:
        raise JobError(f"stack {job.stack} has no {PARAMETER} parameter: is it a Serving stack?")
    parameters = [
        {"ParameterKey": k, "ParameterValue": str(release[FROM_RELEASE[k]])}
        if k in FROM_RELEASE and release.get(FROM_RELEASE[k])
        else {"ParameterKey": k, "UsePreviousValue": True}
        for k in keys
    ]
    try:
        cfn.update_stack(
            StackName=job.stack,
            UsePreviousTemplate=True,
            Parameters=parameters,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
    except ClientError as err:
        if "No updates are to be performed" in str(err):
            return None
        raise
    return str(arn)


def rollback_reason(cfn: Any, stack: str) -> str:
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    failed = [e for e in events if e.get("ResourceStatus", "").endswith("FAILED")]
    if failed:
        first = failed[-1]
        return f"{first['LogicalResourceId']}: {first.get('ResourceStatusReason', 'no reason')}"
    return "no failed resource reported"


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    try:
        job = parse(event)
    except JobError as err:
        logger.error("malformed event", extra={"reason": str(err)})
        job_id = event.get("CodePipeline.job", {}).get("id") if isinstance(event, dict) else None
        if job_id:
            fail(job_id, str(err))
        return {"result": "failed", "reason": str(err)}
    try:
        return step(job, cloudformation(job))
    except JobError as err:
        fail(job.id, str(err))
        return {"result": "failed", "reason": str(err)}
    except ClientError as err:
        message = f"{job.environment}: {err.response['Error'].get('Message', str(err))}"
        fail(job.id, message)
        return {"result": "failed", "reason": message}


def step(job: Job, cfn: Any) -> dict[str, str]:
    if job.continuation is None:
        arn = start(job, cfn)
        if arn is None:
            message = f"{job.stack} already serves this model version; nothing to deploy"
            codepipeline.put_job_success_result(jobId=job.id)
            logger.info(message)
            return {"result": "succeeded", "reason": message}
        token = json.dumps({"stack": job.stack, "model_package_arn": arn})
        codepipeline.put_job_success_result(jobId=job.id, continuationToken=token)
        logger.info("update started", extra={"stack": job.stack, "model_package_arn": arn})
        return {"result": "in_progress", "reason": f"updating {job.stack} to {arn}"}

    arn = job.continuation["model_package_arn"]
    status = cfn.describe_stacks(StackName=job.stack)["Stacks"][0]["StackStatus"]
    if status.endswith(IN_PROGRESS) and "ROLLBACK" not in status:
        codepipeline.put_job_success_result(
            jobId=job.id, continuationToken=json.dumps(job.continuation)
        )
        return {"result": "in_progress", "reason": f"{job.stack} is {status}"}
    if status in DONE:
        message = f"{job.environment} now serves {arn}"
        codepipeline.put_job_success_result(
            jobId=job.id, executionDetails={"summary": message[:2048]}
        )
        return {"result": "succeeded", "reason": message}
    reason = rollback_reason(cfn, job.stack)
    raise JobError(
        f"{job.environment} deployment of {arn} did not complete ({status}); "
        f"CloudFormation rolled back: {reason}"
    )


def fail(job_id: str, message: str) -> None:
    logger.warning("job failed", extra={"job_id": job_id, "reason": message})
    codepipeline.put_job_failure_result(
        jobId=job_id, failureDetails={"type": "JobFailed", "message": message[:5000]}
    )
