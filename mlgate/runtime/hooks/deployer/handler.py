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

In a Shadow stage (UserParameters' `shadow`, mlgate/manifest/shadow.py) it sets only the
Serving stack's ShadowModelDataUrl: "start" to the release's model artifact (the endpoint gains
the version as its shadow variant, beside the version it serves), "stop" to none (the shadow
variant is removed); then, after "stop", it reads the shadow test's verdict that the deploy
verifier recorded for this execution (shared/shadow_record.py) and fails the job unless the
test passed, so a failed test stops the release before any traffic moves. A release's own
update (no `shadow`) and a rollback always set ShadowModelDataUrl to none.

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
RELEASED_PREFIX; RELEASE_KEY (default release.json); AUDIT_TABLE (the shadow test's
verdict); POWERTOOLS_METRICS_NAMESPACE (one EMF count per invocation, through the log group:
JobsInProgress, JobsWaiting, JobsSucceeded, JobsFailed or JobsRefused).
AWS calls: codepipeline:GetJobDetails, codepipeline:GetPipelineExecution,
s3:GetObjectVersion (release.json at the execution's source revision),
sagemaker:DescribeModelPackage, sts:AssumeRole (optional: only when role_arn is set),
dynamodb:GetItem (optional: a Shadow stage's verdict, "shadow#" keys of the audit table),
codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult.
Under the assumed role when one is set: cloudformation:DescribeStacks,
cloudformation:UpdateStack, cloudformation:DescribeStackEvents, iam:PassRole (UpdateStack
passes the Serving stack's CloudFormation service role).
"""

from __future__ import annotations

import os
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
    NO_SHADOW,
    PARAMETER,
    REQUIRED,
    SHADOW,
    STUCK,
    rollback_reason,
    shadow_parameters,
    stack_parameters,
    stuck,
    update_parameters,
    update_stack,
)
from shared.shadow_record import read_verdict

logger = Logger()
metrics = Metrics()
codepipeline = boto3.client("codepipeline")
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")
HOOK = "deployer"
# What the stack does once the job's update is done, and what it did when there was nothing to
# update, by the job's shadow parameter.
NOW_SAYS = {None: "now serves", "start": "now shadows", "stop": "no longer shadows"}
DONE_SAYS = {
    None: "serves this model version",
    "start": "has this version as its shadow variant",
    "stop": "has no shadow variant",
}


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


def target(job: Job[DeployParameters], release: Release) -> tuple[str, str]:
    """The parameter the job sets and its value: the model version (ModelPackageArn), or in a
    Shadow stage the shadow variant's model artifact (the release's to start, none to stop)."""
    if job.params.shadow == "start":
        return SHADOW, release.model_data_url
    if job.params.shadow == "stop":
        return SHADOW, NO_SHADOW
    return PARAMETER, release.model_package_arn


def start(job: Job[DeployParameters], release: Release, cfn: Any) -> str | None:
    """Start the stack update; None when the stack already runs this model version (or, in a
    Shadow stage, already has or lacks the shadow variant). Raises Busy while the stack is in
    the middle of another operation."""
    arn = release.model_package_arn
    stack = cfn.describe_stacks(StackName=job.params.stack)["Stacks"][0]
    keys = [p["ParameterKey"] for p in stack.get("Parameters", [])]
    needed = [*REQUIRED, SHADOW] if job.params.shadow else list(REQUIRED)
    if missing := [k for k in needed if k not in keys]:
        shadowed = ", with the manifest's shadow test," if job.params.shadow else ""
        raise JobError(
            f"stack {job.params.stack} has no {' or '.join(missing)} parameter: is it a "
            f"Serving stack of this mlgate version{shadowed} (cdk deploy it)?"
        )
    current = stack_parameters(stack)
    status = str(stack.get("StackStatus", ""))
    refuse_stuck(job, status)
    key, value = target(job, release)
    if status.endswith(IN_PROGRESS) and current.get(key) == value:
        # An earlier try of this job started the update and failed to report it (Lambda
        # retries it): UpdateStack would be refused while the update runs; carry on with it.
        return str(arn)
    if status.endswith(IN_PROGRESS):
        # UpdateStack is refused while another operation runs (an earlier release rolling
        # back, a cdk deploy): wait for it rather than fail the release.
        raise Busy(status)
    parameters = (
        shadow_parameters(keys, value)
        if job.params.shadow
        else update_parameters(keys, release.document())
    )
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
    if token is not None and token.model_package_arn and token.shadow != job.params.shadow:
        raise Refused(
            job.id,
            f"continuationToken.shadow: {token.shadow}, not this job's {job.params.shadow} "
            "(not a token this action wrote)",
        )
    return step(job, token)


def finished(job: Job[DeployParameters], arn: str, message: str) -> dict[str, str]:
    """The update is done: report it; after removing a shadow variant, pass on the shadow
    test's verdict (a failed or missing one fails the job: no traffic moves)."""
    if job.params.shadow == "stop":
        env = job.params.environment
        verdict = read_verdict(os.environ.get("AUDIT_TABLE", ""), job.execution, env)
        if verdict is None:
            raise JobError(
                f"{env}: no shadow test verdict was recorded for execution {job.execution}; "
                "the shadow variant is removed and the release stops before any traffic moves"
            )
        if verdict["passed"] != "true":
            raise JobError(
                f"{env}: {verdict['summary']}; the shadow variant is removed and the release "
                "stops before any traffic moves"
            )
        message = f"{message}; {verdict['summary']}"
    succeed(codepipeline, job.id, message[:2000])
    return {"result": "succeeded", "reason": message}


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
            message = f"{stack} already {DONE_SAYS[job.params.shadow]}; nothing to deploy"
            logger.info(message)
            return finished(job, release.model_package_arn, message)
        started = DeployToken(stack=stack, model_package_arn=arn, shadow=job.params.shadow)
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
        message = f"{job.params.environment} {NOW_SAYS[job.params.shadow]} {arn}"
        return finished(job, arn, message)
    reason = rollback_reason(cfn, stack)
    way_out = f"; the stack cannot be updated until you {STUCK[status]}" if status in STUCK else ""
    raise JobError(
        f"{job.params.environment} deployment of {arn} did not complete ({status}); "
        f"CloudFormation rolled back: {reason}{way_out}"
    )


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
