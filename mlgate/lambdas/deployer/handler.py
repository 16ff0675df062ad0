"""Deployer hook: rolls one approved model version out to one environment's Serving stack.

A CodePipeline Lambda action. It updates the environment's Serving stack with the model
package from release.json as its `ModelPackageArn` parameter (the template stays the one
`cdk deploy` put there: `UsePreviousTemplate`), then comes back through CodePipeline's
continuation token until CloudFormation finishes. CloudFormation performs the endpoint's
blue/green update, and rolls it back on the rollback alarms; a rollback fails the stage.

A stack still busy when the job arrives (an earlier release rolling back, a `cdk deploy`) is
waited for the same way: the update starts once the stack is stable. A stack CloudFormation
will not update (UPDATE_ROLLBACK_FAILED, ROLLBACK_COMPLETE, ...) fails the job, naming the
state and the way out.

The Model Monitor baseline registered with the version (release.json's baseline_statistics_uri
and baseline_constraints_uri) goes into the stack's baseline parameters.

Event: the CodePipeline job event (Powertools' CodePipelineJobEvent). UserParameters (JSON):
{"environment": "staging", "stack": "<serving stack name>", "role_arn": "<deploy role in the
target account>" (optional)}.
Input artifact: the release source (release.json, zipped or as is).
Environment: none besides Powertools'.
AWS calls: s3:GetObject (artifact, with the job's artifact credentials),
sts:AssumeRole (optional: only when role_arn is set), codepipeline:PutJobSuccessResult,
codepipeline:PutJobFailureResult.
Under the assumed role when one is set: cloudformation:DescribeStacks,
cloudformation:UpdateStack, cloudformation:DescribeStackEvents, iam:PassRole (UpdateStack
passes the stack's CloudFormation execution role).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from shared.accounts import session
from shared.jobs import Job, JobError, fail, is_transient, job_id_of, parse_job, read_release

logger = Logger()
codepipeline = boto3.client("codepipeline")

IN_PROGRESS = "_IN_PROGRESS"
DONE = {"UPDATE_COMPLETE", "CREATE_COMPLETE"}
# The stable states UpdateStack accepts: the "last known stable state" statuses of
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackStack.html
UPDATABLE = DONE | {"UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
# States that never end by themselves or that UpdateStack refuses, and what gets the stack out
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html).
STUCK = {
    "UPDATE_ROLLBACK_FAILED": "continue the rollback (aws cloudformation "
    "continue-update-rollback), then retry the stage",
    "ROLLBACK_COMPLETE": "its creation failed and it cannot be updated: delete it and deploy "
    "it again with cdk deploy, then retry the stage",
    "ROLLBACK_FAILED": "delete it and deploy it again with cdk deploy, then retry the stage",
    "CREATE_FAILED": "roll it back or delete it, deploy it again with cdk deploy, then retry "
    "the stage",
    "UPDATE_FAILED": "roll it back (aws cloudformation rollback-stack) or fix and update it, "
    "then retry the stage",
    "DELETE_FAILED": "finish deleting it, deploy it again with cdk deploy, then retry the stage",
    "DELETE_COMPLETE": "deploy it again with cdk deploy, then retry the stage",
    "REVIEW_IN_PROGRESS": "a change set created it and was never executed: execute or delete "
    "it, then retry the stage",
}
PARAMETER = "ModelPackageArn"
# Serving stack parameter -> release.json key; the baseline travels with its model version.
FROM_RELEASE = {
    PARAMETER: "model_package_arn",
    "BaselineStatisticsUri": "baseline_statistics_uri",
    "BaselineConstraintsUri": "baseline_constraints_uri",
}


def cloudformation(job: Job) -> Any:
    """CloudFormation of the environment: in its own account through role_arn, if set."""
    role = job.params.get("role_arn")
    return session(role, f"mlgate-deploy-{job.params['environment']}").client("cloudformation")


class Busy(Exception):
    """The stack is in the middle of another operation; the update starts once it ends."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def refuse_stuck(job: Job, status: str) -> None:
    if status in STUCK or (status not in UPDATABLE and not status.endswith(IN_PROGRESS)):
        way_out = STUCK.get(status, "bring it back to a stable state, then retry the stage")
        raise JobError(
            f"{job.params['environment']}: stack {job.params['stack']} is {status}, which "
            f"CloudFormation will not update: {way_out}"
        )


def start(job: Job, cfn: Any) -> str | None:
    """Start the stack update; None when the stack already runs this model version. Raises
    Busy while the stack is in the middle of another operation."""
    release = read_release(job)
    arn = release["model_package_arn"]
    stack = cfn.describe_stacks(StackName=job.params["stack"])["Stacks"][0]
    keys = [p["ParameterKey"] for p in stack.get("Parameters", [])]
    if PARAMETER not in keys:
        raise JobError(
            f"stack {job.params['stack']} has no {PARAMETER} parameter: is it a Serving stack?"
        )
    current = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    status = str(stack.get("StackStatus", ""))
    refuse_stuck(job, status)
    if status.endswith(IN_PROGRESS) and current[PARAMETER] == arn:
        # An earlier try of this job started the update and failed to report it (Lambda
        # retries it): UpdateStack would be refused while the update runs; carry on with it.
        return str(arn)
    if status.endswith(IN_PROGRESS):
        # UpdateStack is refused while another operation runs (an earlier release rolling
        # back, a cdk deploy): wait for it rather than fail the release.
        raise Busy(status)
    parameters = [
        {"ParameterKey": k, "ParameterValue": str(release[FROM_RELEASE[k]])}
        if k in FROM_RELEASE and release.get(FROM_RELEASE[k])
        else {"ParameterKey": k, "UsePreviousValue": True}
        for k in keys
    ]
    try:
        cfn.update_stack(
            StackName=job.params["stack"],
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
        job = parse_job(event, required=("environment", "stack"))
    except JobError as err:
        logger.error("malformed event", extra={"reason": str(err)})
        job_id = job_id_of(event)
        if job_id:
            report_failure(str(job_id), str(err))
        return {"result": "failed", "reason": str(err)}
    try:
        return step(job, cloudformation(job))
    except JobError as err:
        report_failure(job.id, str(err))
        return {"result": "failed", "reason": str(err)}
    except ClientError as err:
        if is_transient(err):
            raise
        message = f"{job.params['environment']}: {err.response['Error'].get('Message', str(err))}"
        report_failure(job.id, message)
        return {"result": "failed", "reason": message}


def step(job: Job, cfn: Any) -> dict[str, str]:
    waiting = job.continuation is not None and json.loads(job.continuation).get("waiting")
    if job.continuation is None or waiting:
        try:
            arn = start(job, cfn)
        except Busy as busy:
            token = json.dumps({"stack": job.params["stack"], "waiting": True})
            codepipeline.put_job_success_result(jobId=job.id, continuationToken=token)
            reason = f"{job.params['stack']} is {busy.status}; the update starts once it ends"
            logger.info("waiting for the stack", extra={"stack": job.params["stack"],
                                                        "status": busy.status})  # fmt: skip
            return {"result": "waiting", "reason": reason}
        if arn is None:
            message = f"{job.params['stack']} already serves this model version; nothing to deploy"
            codepipeline.put_job_success_result(jobId=job.id)
            logger.info(message)
            return {"result": "succeeded", "reason": message}
        token = json.dumps({"stack": job.params["stack"], "model_package_arn": arn})
        codepipeline.put_job_success_result(jobId=job.id, continuationToken=token)
        logger.info(
            "update started", extra={"stack": job.params["stack"], "model_package_arn": arn}
        )
        return {"result": "in_progress", "reason": f"updating {job.params['stack']} to {arn}"}

    arn = json.loads(job.continuation)["model_package_arn"]
    status = cfn.describe_stacks(StackName=job.params["stack"])["Stacks"][0]["StackStatus"]
    if status.endswith(IN_PROGRESS) and "ROLLBACK" not in status:
        codepipeline.put_job_success_result(jobId=job.id, continuationToken=job.continuation)
        return {"result": "in_progress", "reason": f"{job.params['stack']} is {status}"}
    if status in DONE:
        message = f"{job.params['environment']} now serves {arn}"
        codepipeline.put_job_success_result(
            jobId=job.id, executionDetails={"summary": message[:2048]}
        )
        return {"result": "succeeded", "reason": message}
    reason = rollback_reason(cfn, job.params["stack"])
    way_out = f"; the stack cannot be updated until you {STUCK[status]}" if status in STUCK else ""
    raise JobError(
        f"{job.params['environment']} deployment of {arn} did not complete ({status}); "
        f"CloudFormation rolled back: {reason}{way_out}"
    )


def report_failure(job_id: str, message: str) -> None:
    logger.warning("job failed", extra={"job_id": job_id, "reason": message})
    fail(codepipeline, job_id, message)
