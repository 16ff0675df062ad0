"""CodePipeline Lambda actions: take the job from CodePipeline, read the release of its own
execution, check it in the registry, report the result.

Anyone allowed to invoke a hook can write its event; only CodePipeline holds its jobs. So a
hook takes nothing from its event but the job id (a job whose id is unusable cannot be
answered: Unanswerable), and reads the job itself with codepipeline:GetJobDetails
(https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_GetJobDetails.html: its
UserParameters, continuation token and pipelineContext, the pipeline and execution it belongs
to). AWS's API reference says GetJobDetails is "used for custom actions only"; for a Lambda
invoke job it answers the same job data: a job id CodePipeline does not know
(JobNotFoundException, ValidationException), or a job of another pipeline, is not answered.
The release is read from the release source (RELEASE_BUCKET/RELEASE_KEY) at the object version
CodePipeline recorded as the execution's source revision (GetPipelineExecution:
artifactRevisions[].revisionId; the S3 source action's revision is the object's VersionId,
https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-S3.html), never
from an artifact location in the event, and its version is checked with DescribeModelPackage:
a version of this product's group, Approved now.

Anything wrong after the job id is a JobError naming the field or the answer, which fails the
job (PutJobFailureResult, the documented answer:
https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-Lambda.html).
The event is never logged: it may carry artifact credentials.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError

from shared.models import (
    JobDetailsAnswer,
    JobPipeline,
    JobReference,
    Refusal,
    Release,
    read,
)
from shared.settings import SettingsError
from shared.settings import read as read_settings

P = TypeVar("P")
T = TypeVar("T")


class JobError(ValueError):
    """The job cannot go on; the message is what the pipeline shows."""


class Refused(JobError):
    """A job read and refused before any work: its id, to fail it, and why."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(reason)
        self.job_id = job_id


class Unanswerable(ValueError):
    """An event whose job id CodePipeline would refuse: there is no job to answer."""


# Answers that say "not now" rather than "no": the invocation fails and Lambda retries it,
# instead of failing the pipeline's job for a throttle (and CodePipeline's own report calls are
# always retried this way: a failed report cannot be reported).
TRANSIENT = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "TooManyRequestsException", "SlowDown", "ServiceUnavailable", "InternalError",
    "InternalFailure", "InternalServerError",
}  # fmt: skip
REPORTS = ("PutJobSuccessResult", "PutJobFailureResult")
# CodePipeline's answers to a report that no retry changes: the job is not this account's, it
# was answered already (an earlier try's report whose answer was lost), or it timed out
# (https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_PutJobFailureResult.html).
SETTLED = {"JobNotFoundException", "InvalidJobStateException", "ValidationException"}
# GetJobDetails' answers for an id that is no job (https://docs.aws.amazon.com/codepipeline/
# latest/APIReference/API_GetJobDetails.html: JobNotFoundException, ValidationException).
NO_SUCH_JOB = {"JobNotFoundException", "ValidationException"}
# Logger's correlation id: the job id names every log line of the job (JMESPath).
CORRELATION_ID = '"CodePipeline.job".id'
# One EMF count per invocation, named after how it answered.
OUTCOMES = {
    "in_progress": "JobsInProgress", "waiting": "JobsWaiting", "succeeded": "JobsSucceeded",
    "failed": "JobsFailed", "refused": "JobsRefused",
}  # fmt: skip
# release.json is a few kilobytes; anything far larger is not a release.
RELEASE_BYTES = 1 << 20


def is_transient(err: ClientError) -> bool:
    return err.operation_name in REPORTS or err.response["Error"].get("Code") in TRANSIENT


def refused_by_aws(err: ClientError) -> str:
    """AWS's own refusal (a name that does not exist, another product's, another account's:
    ValidationException, AccessDenied, ...) as the job's failure message."""
    error = err.response.get("Error", {})
    return f"{err.operation_name} refused: {error.get('Code', '?')}: {error.get('Message', '')}"


@dataclass(frozen=True)
class ReleaseSource:
    """Where a job hook finds and checks releases: its environment, set by the stack
    (mlgate/infra/constructs/release_hooks.py)."""

    pipeline: str
    """RELEASE_PIPELINE: the product's release pipeline, the only one whose jobs it takes."""
    bucket: str
    """RELEASE_BUCKET and RELEASE_KEY: the pipeline's source, release.json (versioned)."""
    key: str
    group: str
    """MODEL_PACKAGE_GROUP: the product's model package group."""
    artifacts: str
    """ARTIFACT_BUCKET and RELEASED_PREFIX: where the release hook copies released versions."""
    released: str


SOURCE_KEYS = (
    "RELEASE_PIPELINE", "RELEASE_BUCKET", "MODEL_PACKAGE_GROUP", "ARTIFACT_BUCKET",
    "RELEASED_PREFIX",
)  # fmt: skip


def release_source(hook: str) -> ReleaseSource:
    env = read_settings(hook, SOURCE_KEYS, {"RELEASE_KEY": "release.json"})
    return ReleaseSource(
        pipeline=env["RELEASE_PIPELINE"],
        bucket=env["RELEASE_BUCKET"],
        key=env["RELEASE_KEY"],
        group=env["MODEL_PACKAGE_GROUP"],
        artifacts=env["ARTIFACT_BUCKET"],
        released=env["RELEASED_PREFIX"],
    )


@dataclass(frozen=True)
class Job(Generic[P]):
    """A job as CodePipeline holds it (GetJobDetails), of the product's release pipeline."""

    id: str
    params: P
    execution: str
    continuation: str | None
    source: ReleaseSource

    def token(self, model: type[T]) -> T:
        """The continuation token, read with the hook's own token model."""
        assert self.continuation is not None
        try:
            return read(self.continuation, model, "continuationToken")
        except Refusal as refusal:
            raise Refused(self.id, f"{refusal} (not a token this action wrote)") from None


def job_id(event: Any) -> str:
    """The one thing a hook takes from its event; Unanswerable when it is unusable."""
    try:
        return read(event, JobReference).job.id
    except Refusal as refusal:
        raise Unanswerable(str(refusal)) from None


def read_job(event: Any, params: type[P], client: Any, hook: str) -> Job[P]:
    """The job of the event's id, as CodePipeline answers GetJobDetails for it, with its
    UserParameters read with `params`. Unanswerable for an id CodePipeline does not know or
    a job of another pipeline; Refused naming the field for anything else."""
    identity = job_id(event)
    try:
        source = release_source(hook)
    except SettingsError as err:
        raise Refused(identity, str(err)) from None
    try:
        answer = client.get_job_details(jobId=identity)
    except ClientError as err:
        if is_transient(err):
            raise
        if err.response.get("Error", {}).get("Code") in NO_SUCH_JOB:
            raise Unanswerable(
                f"CodePipeline.job.id: {identity} is no job of this account ({refused_by_aws(err)})"
            ) from None
        # Any other refusal (access denied; or, should CodePipeline keep GetJobDetails to
        # custom actions as its API reference words it, the job itself): fail the job, naming
        # the answer, rather than leave the action to time out. A forged id fails nothing:
        # PutJobFailureResult answers JobNotFoundException, which `fail` takes as settled.
        raise Refused(
            identity, f"cannot verify job {identity} with GetJobDetails ({refused_by_aws(err)})"
        ) from None
    try:
        whose = read(answer, JobPipeline, "GetJobDetails").jobDetails
    except Refusal as refusal:
        raise Refused(identity, f"{refusal}: cannot tell whose job this is") from None
    pipeline = whose.data.pipelineContext.pipelineName
    if whose.id != identity or pipeline != source.pipeline:
        raise Unanswerable(
            f"GetJobDetails: job {identity} is of pipeline {pipeline}, not this product's "
            f"release pipeline {source.pipeline}"
        )
    try:
        details = read(answer, JobDetailsAnswer, "GetJobDetails").jobDetails
        parameters = read(
            details.data.actionConfiguration.configuration.UserParameters, params, "UserParameters"
        )
    except Refusal as refusal:
        raise Refused(identity, str(refusal)) from None
    return Job(
        id=identity,
        params=parameters,
        execution=details.data.pipelineContext.pipelineExecutionId,
        continuation=details.data.continuationToken,
        source=source,
    )


# S3's and CodePipeline's answers for a release that is not there: an object version or an
# execution that does not exist (https://docs.aws.amazon.com/AmazonS3/latest/API/
# API_GetObject.html).
MISSING = ("NoSuchKey", "NoSuchVersion", "InvalidArgument", "PipelineExecutionNotFoundException")


class ReleaseUnreadable(ValueError):
    """The execution has no single source revision, or release.json at it is gone or is not a
    JSON object: no retry brings it back."""


def release_document(client: Any, s3: Any, source: ReleaseSource, execution: str) -> Any:
    """release.json as `execution`'s source action took it: at the S3 object version
    CodePipeline recorded as the execution's source revision, read whole (at most 1 MB) with
    the caller's own role. ReleaseUnreadable says why not; a throttle is raised."""
    where = f"s3://{source.bucket}/{source.key}"
    try:
        described = client.get_pipeline_execution(
            pipelineName=source.pipeline, pipelineExecutionId=execution
        )
        revisions = described["pipelineExecution"].get("artifactRevisions") or []
        versions = [r["revisionId"] for r in revisions if r.get("revisionId")]
        if len(versions) != 1:
            raise ReleaseUnreadable(
                f"execution {execution} of {source.pipeline} has {len(versions)} source "
                "revisions; expected the one of its release.json source"
            )
        where = f"{where} at version {versions[0]} (execution {execution})"
        body = s3.get_object(Bucket=source.bucket, Key=source.key, VersionId=versions[0])[
            "Body"
        ].read(RELEASE_BYTES + 1)
    except ClientError as err:
        if is_transient(err):
            raise
        raise ReleaseUnreadable(f"{where} cannot be read: {refused_by_aws(err)}") from None
    if len(body) > RELEASE_BYTES:
        raise ReleaseUnreadable(f"{where} is larger than 1 MB: not a release")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ReleaseUnreadable(f"{where} is not JSON: {err}") from None


def read_release(job: Job[Any], client: Any, s3: Any) -> Release:
    """The release of the job's own execution, read whole and checked: its version copied
    to this product's released folder (ARTIFACT_BUCKET/RELEASED_PREFIX)."""
    source = job.source
    try:
        document = release_document(client, s3, source, job.execution)
    except ReleaseUnreadable as err:
        raise Refused(job.id, f"release.json: {err}") from None
    try:
        release = read(document, Release, "release.json")
    except Refusal as refusal:
        raise Refused(job.id, f"{refusal} (execution {job.execution})") from None
    bucket, prefix = release.released_in
    if (bucket, prefix) != (source.artifacts, source.released):
        raise Refused(
            job.id,
            f"release.json.model_data_url: s3://{bucket}/{prefix} is not this product's "
            f"released folder s3://{source.artifacts}/{source.released}",
        )
    return release


def unapproved(package: dict[str, Any], arn: str, group: str) -> str | None:
    """Why the registry's description of `arn` is not a version to release: of another
    group, or not Approved now; None when it is."""
    version = arn.rsplit("/", 1)[-1]
    described = package.get("ModelPackageArn")
    if described != arn:
        return f"SageMaker describes {described} for {arn}"
    found = package.get("ModelPackageGroupName")
    if found != group:
        return f"version {version} belongs to group {found}, not this product's {group}"
    status = package.get("ModelApprovalStatus")
    if status != "Approved":
        return f"version {version} is {status}, not Approved in the registry"
    return None


def check_approved(job: Job[Any], release: Release, sagemaker: Any) -> dict[str, Any]:
    """DescribeModelPackage of the release's version: a version of this product's group,
    Approved now, or the job is refused naming why. Returns the description."""
    arn = release.model_package_arn
    try:
        package: dict[str, Any] = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as err:
        if is_transient(err):
            raise
        raise Refused(
            job.id, f"release.json.model_package_arn: {arn}: {refused_by_aws(err)}"
        ) from None
    why = unapproved(package, arn, job.source.group)
    if why is not None:
        raise Refused(job.id, f"release.json.model_package_arn: {why}: nothing to act on")
    return package


def answer(
    event: Any,
    params: type[P],
    act: Callable[[Job[P]], dict[str, str]],
    *,
    client: Any,
    logger: Any,
    hook: str,
) -> dict[str, str]:
    """Run `act` on the job CodePipeline holds for the event's id, and answer CodePipeline
    whatever happens: "refused" (the job, its parameters, its token, its release or the
    registry's answer for it are not what the action takes; `act` raises Refused for what it
    checks itself before its work), "failed" (the work
    failed: JobError, or AWS refused a call outright), or what `act` answers. A job whose id is
    unusable, unknown to CodePipeline or another pipeline's is logged and dropped; a throttle
    or a service error is raised, for Lambda's retries. Each refusal or failure is one log
    line."""
    try:
        job = read_job(event, params, client, hook)
        return act(job)
    except Unanswerable as err:
        logger.set_correlation_id(None)  # the id is what was refused
        logger.warning("refused: the event is no job of ours to answer", extra={"reason": str(err)})
        return {"result": "refused", "reason": str(err)}
    except Refused as err:
        outcome = {"result": "refused", "reason": str(err)}
        job_id = err.job_id
    except JobError as err:
        outcome = {"result": "failed", "reason": str(err)}
        job_id = job.id
    except ClientError as err:
        if is_transient(err):
            raise
        outcome = {"result": "failed", "reason": refused_by_aws(err)}
        job_id = job.id
    logger.warning(outcome["result"], extra={"reason": outcome["reason"]})
    fail(client, job_id, outcome["reason"])
    return outcome


def succeed(
    client: Any, job_id: str, summary: str | None = None, continuation: str | None = None
) -> bool:
    """PutJobSuccessResult; False when CodePipeline says the job is settled already."""
    kwargs: dict[str, Any] = {"jobId": job_id}
    if summary is not None:
        kwargs["executionDetails"] = {"summary": summary[:2048]}
    if continuation is not None:
        kwargs["continuationToken"] = continuation
    return _report(client.put_job_success_result, kwargs)


def fail(client: Any, job_id: str, message: str) -> bool:
    """PutJobFailureResult; False when CodePipeline says the job is settled already."""
    failure = {"type": "JobFailed", "message": message[:5000]}
    return _report(client.put_job_failure_result, {"jobId": job_id, "failureDetails": failure})


def _report(call: Any, kwargs: dict[str, Any]) -> bool:
    try:
        call(**kwargs)
    except ClientError as err:
        if err.response["Error"].get("Code") in SETTLED:
            return False
        raise
    return True
