"""Deployer hook: rolls one approved model version out to one environment's Serving stack.

A CodePipeline Lambda action. It updates the environment's Serving stack with the release of
its own pipeline execution: `ModelPackageArn`, `ModelDataUrl` (the version's model artifact as
the release hook copied it to the released folder) and the Model Monitor baseline registered
with the version (`BaselineStatisticsUri`, `BaselineConstraintsUri`, when it has one). The
template stays the one `cdk deploy` put there (`UsePreviousTemplate`), and CloudFormation runs
the update as the Serving stack's own service role (`RoleARN`: UserParameters' service_role),
never as the role CDK deploys with. Then it comes back through CodePipeline's continuation
token until CloudFormation finishes. CloudFormation performs the endpoint's blue/green update,
and rolls it back on the rollback alarms; a rollback fails the stage.

A stack still busy when the job arrives (an earlier release rolling back, a `cdk deploy`) is
waited for the same way: the update starts once the stack is stable. A stack CloudFormation
will not update (UPDATE_ROLLBACK_FAILED, ROLLBACK_COMPLETE, ...) fails the job, naming the
state and the way out.

Input: only the job id from the event (shared/jobs.py): the job itself (UserParameters,
continuation token, pipeline and execution) from CodePipeline's GetJobDetails, a job of the
product's release pipeline only; release.json at the execution's source revision (Release);
the version checked in the registry: of this product's group, Approved now.
UserParameters (JSON): {"environment": "staging", "stack": "<serving stack name>",
"service_role": "<the Serving stack's CloudFormation service role>", "role_arn": "<deploy role
in the target account>" (optional)}. Continuation token: the deployer's own, for the stack of
the job's parameters.

Answers: an event whose job id CodePipeline does not know, or a job of another pipeline, is
logged and dropped (there is no job of ours to answer); a malformed job, a token that is not
the deployer's own, a release.json that is not a release of this product, a version of another
group or not Approved, and AWS refusing a name (a stack that does not exist, or is another
product's or another account's: ValidationException, AccessDenied) fail the job naming the
field or the answer, before any stack is touched. Only a throttle or a service error fails the
invocation, for Lambda's retries.
Environment: RELEASE_PIPELINE, RELEASE_BUCKET, MODEL_PACKAGE_GROUP, ARTIFACT_BUCKET,
RELEASED_PREFIX; RELEASE_KEY (default release.json); POWERTOOLS_METRICS_NAMESPACE (one EMF
count per invocation, through the log group: JobsInProgress, JobsWaiting, JobsSucceeded,
JobsFailed or JobsRefused).
AWS calls: codepipeline:GetJobDetails, codepipeline:GetPipelineExecution,
s3:GetObjectVersion (release.json at the execution's source revision),
sagemaker:DescribeModelPackage, sts:AssumeRole (optional: only when role_arn is set),
codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult.
Under the assumed role when one is set: cloudformation:DescribeStacks,
cloudformation:UpdateStack, cloudformation:DescribeStackEvents, iam:PassRole (UpdateStack
passes the Serving stack's CloudFormation service role).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from shared.accounts import session
from shared.coldstart import settle
from shared.jobs import (
    CORRELATION_ID,
    OUTCOMES,
    Job,
    JobError,
    Refused,
    answer,
    check_approved,
    read_release,
    succeed,
)
from shared.models import DeployParameters, DeployToken, Release
from shared.served import (
    DONE,
    IN_PROGRESS,
    PARAMETER,
    REQUIRED,
    STUCK,
    rollback_reason,
    stack_parameters,
    stuck,
    update_parameters,
    update_stack,
)

logger = Logger()
metrics = Metrics()
codepipeline = boto3.client("codepipeline")
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")
HOOK = "deployer"


def cloudformation(job: Job[DeployParameters]) -> Any:
    """CloudFormation of the environment: in its own account through role_arn, if set."""
    return session(job.params.role_arn, f"mlgate-deploy-{job.params.environment}").client(
        "cloudformation"
    )


class Busy(Exception):
    """The stack is in the middle of another operation; the update starts once it ends."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def refuse_stuck(job: Job[DeployParameters], status: str) -> None:
    if (way_out := stuck(status)) is not None:
        raise JobError(
            f"{job.params.environment}: stack {job.params.stack} is {status}, which "
            f"CloudFormation will not update: {way_out}"
        )


def start(job: Job[DeployParameters], release: Release, cfn: Any) -> str | None:
    """Start the stack update; None when the stack already runs this model version. Raises
    Busy while the stack is in the middle of another operation."""
    arn = release.model_package_arn
    stack = cfn.describe_stacks(StackName=job.params.stack)["Stacks"][0]
    keys = [p["ParameterKey"] for p in stack.get("Parameters", [])]
    if missing := [k for k in REQUIRED if k not in keys]:
        raise JobError(
            f"stack {job.params.stack} has no {' or '.join(missing)} parameter: is it a "
            "Serving stack of this mlgate version (cdk deploy it)?"
        )
    current = stack_parameters(stack)
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
    parameters = update_parameters(keys, release.document())
    if not update_stack(cfn, job.params.stack, parameters, job.params.service_role):
        return None
    return arn


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID)
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    outcome = answer(event, DeployParameters, act, client=codepipeline, logger=logger, hook=HOOK)
    metrics.add_metric(name=OUTCOMES[outcome["result"]], unit=MetricUnit.Count, value=1)
    return outcome


def act(job: Job[DeployParameters]) -> dict[str, str]:
    """Check the token against the job, then deploy or follow the update."""
    token = job.token(DeployToken) if job.continuation is not None else None
    if token is not None and token.stack != job.params.stack:
        raise Refused(
            job.id,
            f"continuationToken.stack: names stack {token.stack}, not this job's "
            f"{job.params.stack} (not a token this action wrote)",
        )
    return step(job, token)


def step(job: Job[DeployParameters], token: DeployToken | None) -> dict[str, str]:
    stack = job.params.stack
    if token is None or token.waiting:
        release = read_release(job, codepipeline, s3)
        check_approved(job, release, sagemaker)
        cfn = cloudformation(job)
        try:
            arn = start(job, release, cfn)
        except Busy as busy:
            waiting = DeployToken(stack=stack, waiting=True).model_dump_json(exclude_none=True)
            succeed(codepipeline, job.id, continuation=waiting)
            reason = f"{stack} is {busy.status}; the update starts once it ends"
            logger.info("waiting for the stack", extra={"stack": stack, "status": busy.status})
            return {"result": "waiting", "reason": reason}
        if arn is None:
            message = f"{stack} already serves this model version; nothing to deploy"
            succeed(codepipeline, job.id)
            logger.info(message)
            return {"result": "succeeded", "reason": message}
        started = DeployToken(stack=stack, model_package_arn=arn)
        succeed(codepipeline, job.id, continuation=started.model_dump_json(exclude_none=True))
        logger.info("update started", extra={"stack": stack, "model_package_arn": arn})
        return {"result": "in_progress", "reason": f"updating {stack} to {arn}"}

    arn = str(token.model_package_arn)
    cfn = cloudformation(job)
    status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    if status.endswith(IN_PROGRESS) and "ROLLBACK" not in status:
        succeed(codepipeline, job.id, continuation=job.continuation)
        return {"result": "in_progress", "reason": f"{stack} is {status}"}
    if status in DONE:
        message = f"{job.params.environment} now serves {arn}"
        succeed(codepipeline, job.id, message)
        return {"result": "succeeded", "reason": message}
    reason = rollback_reason(cfn, stack)
    way_out = f"; the stack cannot be updated until you {STUCK[status]}" if status in STUCK else ""
    raise JobError(
        f"{job.params.environment} deployment of {arn} did not complete ({status}); "
        f"CloudFormation rolled back: {reason}{way_out}"
    )


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
