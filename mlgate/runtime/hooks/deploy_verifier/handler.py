"""Deploy verifier hook: the endpoint really serves the version the pipeline just deployed.

A CodePipeline Lambda action after each deploy stage. It fails the stage when the endpoint is
not InService, or when it is InService on another model version (a blue/green rollback that
CloudFormation reported as a successful update: a silent rollback), or when one sample
invocation fails. The sample goes the way the endpoint's mode takes it (its endpoint config,
shared/serving.py): InvokeEndpoint for a real-time or serverless endpoint; for an asynchronous
one the sample is written to async/<env>/input/verify-<job id>.csv and queued with
InvokeEndpointAsync, and the verifier comes back through CodePipeline's continuation token
(PutJobSuccessResult continuationToken, at most 2,048 characters:
https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_PutJobSuccessResult.html)
until SageMaker has written the result (the job succeeds) or the failure object (the job fails
with its text), or DEADLINE_SECONDS after the submission (the job fails: an endpoint scaled to
zero wakes in minutes, not in half an hour). The token (VerifyToken) names the endpoint, the
config and the two result objects: a continuation submits nothing, and a Lambda retry of the
first invocation writes the same input key under the same InferenceId. The version the
endpoint serves is what its model's container names: the
released model artifact (ModelDataUrl, released/<product>/<version>/model.tar.gz) or, for a
Serving stack built before released copies, the model package.

An endpoint whose config names no model in its variant hosts its model as an inference
component (shared/serving.py): the version is the component's model's, the component must be
InService (its rolling update finished, not rolled back), and the sample names the component
(InvokeEndpoint's InferenceComponentName).

Once it has verified an environment (its success path, before it reports success), it records
what the environment serves: a "served" item of the audit trail (shared/served.py: pk
"served#<release pipeline>#<env>", sk "<endpoint LastModifiedTime>#<version>"), with the model
package, the model data URL and the baselines the deployer set, and the execution; a
conditional put, so a Lambda retry writes the same key once. `python -m mlgate rollback` reads
them (mlgate/cli/rollback.py).

In a Shadow stage (UserParameters' `shadow`: deploy_verifier/shadow.py) it judges the shadow
test instead: it confirms the endpoint carries the shadow variant, waits the test's minutes
through its continuation token (ShadowToken), then measures both variants (CloudWatch, the
endpoint's data capture), records the verdict once in the audit trail ("shadow#" keys) and
succeeds whatever the verdict; the deployer's next action removes the shadow variant and
fails the stage unless the test passed.

In a batch environment (UserParameters' `batch` instead of `endpoint`:
deploy_verifier/batch.py) there is no endpoint: it checks the live model package parameter is
the release's version, starts the release's sample run on the batch_run function, waits for
its record through its continuation token (BatchToken), and fails unless every sample row was
scored; then it records the served item as above.

The endpoint config it names may be gone by the time it is read: CloudFormation deletes the
previous EndpointConfig (and Model) in the cleanup after a blue/green update. The verifier
then reads the endpoint again, a bounded number of times, and fails the stage saying so if it
still cannot tell which version serves.

Input: only the job id from the event (shared/jobs.py): the job (UserParameters
{"environment", "endpoint", "role_arn" (optional: the verify role of an environment in another
account)}, pipeline, execution) from CodePipeline's GetJobDetails, a job of the product's
release pipeline only; release.json at the execution's source revision; its version checked
in the registry (this product's group, Approved now). A continuation token is read as
VerifyToken: one that is not its own (another endpoint's, result objects outside the
environment's async prefixes) is refused.
An id CodePipeline does not know, or another pipeline's job, is logged and dropped; a
malformed job, a release.json that is not a release of this product, a version of another
group or not Approved, and AWS refusing a name (an endpoint that does not exist or is another
product's: ValidationException) fail the job naming the field or the answer. Only a throttle
or a service error fails the invocation, for Lambda's retries.
Environment: SAMPLE_PAYLOAD (one CSV record), RELEASE_PIPELINE, RELEASE_BUCKET,
MODEL_PACKAGE_GROUP, ARTIFACT_BUCKET, RELEASED_PREFIX; RELEASE_KEY (default release.json);
AUDIT_TABLE (the served records; the delivery stack always sets it, without it none is
written), AUDIT_RETENTION_DAYS; POWERTOOLS_METRICS_NAMESPACE (one EMF count per invocation:
JobsSucceeded, JobsFailed or JobsRefused).
AWS calls: codepipeline:GetJobDetails, codepipeline:GetPipelineExecution,
s3:GetObjectVersion (release.json at the execution's source revision),
sagemaker:DescribeModelPackage, sts:AssumeRole (optional: only when role_arn is set),
dynamodb:PutItem (the served record, "served#" keys of the audit table; a shadow test's
verdict, "shadow#" keys), dynamodb:GetItem (optional: a shadow test's verdict, on a retry),
codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult.
Under the assumed role when one is set: sagemaker:DescribeEndpoint,
sagemaker:DescribeEndpointConfig, sagemaker:DescribeModel, sagemaker:InvokeEndpoint,
sagemaker:ListInferenceComponents (optional: inference components only),
sagemaker:DescribeInferenceComponent (optional: inference components only),
sagemaker:InvokeEndpointAsync (optional: async endpoints only), cloudwatch:GetMetricData
(optional: a shadow test), s3:ListBucket (optional: a shadow test's captured traffic),
s3:PutObject (optional: the async sample, async/<env>/input/), s3:GetObject (optional: its
result or failure, async/<env>/output/ and async/<env>/failures/; a shadow test's captured
traffic). In a batch environment, under the assumed role when one is set: ssm:GetParameter
(its live model and model package parameters), lambda:InvokeFunction (its batch_run function),
s3:GetObject (batch/<env>/runs/*/record.json of its artifact bucket) and s3:ListBucket (that
prefix: a record not written yet is then NoSuchKey, not AccessDenied).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from shared.accounts import session
from shared.audit import AuditTrail
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
from shared.models import Release, ShadowToken, VerifyParameters, VerifyToken
from shared.served import Serving, read_endpoint, served_item
from shared.serving import (
    ASYNC,
    SERVERLESS,
    NoComponent,
    NotAsync,
    Queue,
    Queued,
    mode_of,
    result,
    submit,
)
from shared.settings import SettingsError, read

logger = Logger()
metrics = Metrics()
codepipeline = boto3.client("codepipeline")
s3 = boto3.client("s3")
dynamodb = boto3.client("dynamodb")
# The registry, in the home account: the endpoint's own describes go through `session`.
registry = boto3.client("sagemaker")
HOOK = "deploy_verifier"
# Reads of the endpoint while what it names is being replaced, and the pause before each
# re-read (seconds): the cleanup after a blue/green update takes seconds, not minutes.
READS = 4
PAUSE = 5.0
pause = time.sleep
# How long an asynchronous sample may take from its submission: the wake from zero instances
# (two minutes of HasBacklogWithoutCapacity, then an instance starting) plus its processing.
DEADLINE_SECONDS = 30 * 60
now = time.time


@cache
def sample_payload() -> str:
    return read("deploy_verifier", ("SAMPLE_PAYLOAD",))["SAMPLE_PAYLOAD"]


def served_version(sagemaker: Any, endpoint: str) -> Serving:
    """What the endpoint runs now (shared/served.py), read again while what it names is being
    replaced: READS reads, PAUSE seconds apart."""
    return read_endpoint(
        sagemaker,
        endpoint,
        reads=READS,
        pause_seconds=PAUSE,
        pause=lambda seconds: pause(seconds),
        log=lambda message, extra: logger.info(message, extra=extra),
    )


def record_served(job: Job[VerifyParameters], release: Release, serving: Serving) -> None:
    """The served record of the verified environment (module docstring), once."""
    table = os.environ.get("AUDIT_TABLE", "")
    if not table:
        logger.info("no AUDIT_TABLE: the served record is not written")
        return
    if serving.modified is None:
        # DescribeEndpoint always answers it (a required member of its output, botocore's
        # sagemaker model); a stand-in that does not has no time to key the record on.
        logger.info("DescribeEndpoint named no LastModifiedTime: no served record")
        return
    item = served_item(
        pipeline=job.source.pipeline,
        env=job.params.environment,
        when=serving.modified,
        version=release.model_version,
        document=release.document(),
        execution=job.execution,
        endpoint=job.params.endpoint_name,
    )
    written = AuditTrail(dynamodb, table).append(item)
    logger.info("served record", extra={"sk": item["sk"]["S"], "written": written})


def verify(
    job: Job[VerifyParameters], release: Release, env_session: Any, payload: str
) -> dict[str, str]:
    env, endpoint = job.params.environment, job.params.endpoint_name
    expected = release.model_data_url
    sagemaker = env_session.client("sagemaker")
    try:
        serving = served_version(sagemaker, endpoint)
    except NoComponent as err:
        raise JobError(f"{env}: {err}") from None
    status, config, served, described = (
        serving.status,
        serving.config,
        serving.named,
        serving.described,
    )
    if status != "InService":
        raise JobError(f"{env}: endpoint {endpoint} is {status}, not InService")
    if served is None:
        raise JobError(
            f"{env}: cannot tell which model version {endpoint} serves: it names endpoint "
            f"config {config}, which (or whose model) no longer exists, in {READS} reads; "
            "CloudFormation may still be replacing it: retry the stage once the Serving "
            "stack is stable"
        )
    if not {release.model_data_url, release.model_package_arn} & set(served):
        raise JobError(
            f"{env}: silent rollback: {endpoint} is InService on {config} serving {served[0]}, "
            f"but the pipeline deployed {expected}; the blue/green update was rolled back "
            "(see the endpoint's rollback alarms)"
        )
    serves = f"{env}: {endpoint} serves {expected} on {config}"
    component = serving.component
    if component is not None:
        # The rolling update has finished (or rolled back) once the component is InService.
        if component.status != "InService":
            raise JobError(
                f"{env}: inference component {component.name} on {endpoint} is "
                f"{component.status}, not InService: its rolling update has not finished"
            )
        serves = f"{serves}, inference component {component.name}"
    runtime = env_session.client("sagemaker-runtime")
    mode = mode_of(described)
    if mode != ASYNC:
        # An endpoint of inference components answers only a request naming one.
        named = {"InferenceComponentName": component.name} if component else {}
        answer = runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Body=payload, **named
        )
        score = answer["Body"].read().decode().strip()
        how = " (serverless)" if mode == SERVERLESS else ""
        summary = f"{serves}; sample scored {score}{how}"
        record_served(job, release, serving)
        succeed(codepipeline, job.id, summary)
        return {"result": "succeeded", "reason": summary}
    try:
        queue = Queue.of(described, env)
    except NotAsync as err:
        raise JobError(f"{env}: {endpoint} is asynchronous but its {err}") from None
    s3_env = env_session.client("s3")
    queued = submit(s3_env, runtime, endpoint, queue, f"verify-{job.id}", payload)
    token = VerifyToken(
        endpoint=endpoint,
        config=config,
        output=queued.output,
        failure=queued.failure,
        deadline=int(now()) + DEADLINE_SECONDS,
    )
    logger.info("async sample queued", extra={"output": queued.output})
    return look(
        job, token, s3_env, f"{serves} (asynchronous)", lambda: record_served(job, release, serving)
    )


def look(
    job: Job[VerifyParameters],
    token: VerifyToken,
    s3_env: Any,
    serves: str,
    record: Callable[[], None],
) -> dict[str, str]:
    """The queued sample's result: succeed (`record` the served version first), fail with
    SageMaker's failure text, or continue (the same token) until the deadline."""
    env = job.params.environment
    found = result(s3_env, Queued(token.output, token.failure))
    if found is not None and found[0] == "failed":
        raise JobError(
            f"{env}: the async sample on {token.endpoint} failed ({token.failure}): {found[1]}"
        )
    if found is not None:
        summary = f"{serves}; sample scored {found[1]} ({token.output})"
        record()
        succeed(codepipeline, job.id, summary)
        return {"result": "succeeded", "reason": summary}
    if now() > token.deadline:
        raise JobError(
            f"{env}: no result of the async sample on {token.endpoint} at {token.output} "
            f"{DEADLINE_SECONDS // 60} minutes after it was queued: the endpoint did not wake "
            "or did not process it (see its HasBacklogWithoutCapacity alarm and scaling "
            "activities)"
        )
    succeed(codepipeline, job.id, continuation=token.model_dump_json(exclude_none=True))
    return {"result": "in_progress", "reason": f"waiting for {token.output}"}


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID)
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    outcome = answer(event, VerifyParameters, act, client=codepipeline, logger=logger, hook=HOOK)
    metrics.add_metric(name=OUTCOMES[outcome["result"]], unit=MetricUnit.Count, value=1)
    return outcome


def own_token(job: Job[VerifyParameters]) -> VerifyToken:
    """The job's continuation token, refused unless it is one this verifier wrote for it:
    its endpoint, result objects under the environment's async output and failure prefixes."""
    token = job.token(VerifyToken)
    env, endpoint = job.params.environment, job.params.endpoint_name
    if token.endpoint != endpoint:
        raise Refused(
            job.id,
            f"continuationToken.endpoint: names {token.endpoint}, not this job's {endpoint} "
            "(not a token this action wrote)",
        )
    for field, uri, prefix in (
        ("output", token.output, f"async/{env}/output/"),
        ("failure", token.failure, f"async/{env}/failures/"),
    ):
        if uri is not None and not urlparse(uri).path.lstrip("/").startswith(prefix):
            raise Refused(
                job.id,
                f"continuationToken.{field}: {uri} is not under {prefix} (not a token this "
                "action wrote)",
            )
    return token


def act(job: Job[VerifyParameters]) -> dict[str, str]:
    """Every refusal before the endpoint is touched, then verify and report."""
    if job.params.batch is not None:
        from deploy_verifier import batch

        outcome = batch.step(
            job,
            codepipeline=codepipeline,
            s3_home=s3,
            registry=registry,
            dynamodb=dynamodb,
            env=session(job.params.role_arn, f"mlgate-batch-{job.params.environment}"),
            now=now(),
            log=lambda message, extra: logger.info(message, extra=extra),
        )
        logger.info(outcome["result"], extra={"reason": outcome["reason"]})
        return outcome
    if job.params.shadow is not None:
        from deploy_verifier import shadow

        waiting = job.token(ShadowToken) if job.continuation is not None else None
        outcome = shadow.step(
            job,
            codepipeline=codepipeline,
            s3_home=s3,
            registry=registry,
            env=session(job.params.role_arn, f"mlgate-shadow-{job.params.environment}"),
            now=now(),
            token=waiting,
        )
        logger.info(outcome["result"], extra={"reason": outcome["reason"]})
        return outcome
    if job.continuation is not None:
        token = own_token(job)
        env = session(job.params.role_arn, f"mlgate-verify-{job.params.environment}")
        serves = f"{job.params.environment}: {token.endpoint} on {token.config} (asynchronous)"

        def record() -> None:
            # The continuation has only the token: the release and the endpoint's time are
            # read again, once, when the sample has answered.
            release = read_release(job, codepipeline, s3)
            record_served(job, release, served_version(env.client("sagemaker"), token.endpoint))

        outcome = look(job, token, env.client("s3"), serves, record)
        logger.info(outcome["result"], extra={"reason": outcome["reason"]})
        return outcome
    try:
        payload = sample_payload()
    except SettingsError as err:
        raise Refused(job.id, str(err)) from None
    release = read_release(job, codepipeline, s3)
    check_approved(job, release, registry)
    env = session(job.params.role_arn, f"mlgate-verify-{job.params.environment}")
    outcome = verify(job, release, env, payload)
    logger.info(outcome["result"], extra={"reason": outcome["reason"]})
    return outcome


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
