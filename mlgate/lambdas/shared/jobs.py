"""CodePipeline Lambda actions: read the job whole, read the release, report the result.

A job is read in one go, before any AWS call (shared/models.py): its id first (a job whose id
is unusable cannot be answered: Unanswerable), then the event, the action's UserParameters and
its continuation token, each with its model; anything wrong is a JobError naming the field,
which fails the job (PutJobFailureResult, the documented answer:
https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-Lambda.html).
The event is never logged: it carries the artifact credentials.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import boto3
from botocore.exceptions import ClientError

from shared.models import (
    ArtifactCredentials,
    JobEvent,
    JobReference,
    Refusal,
    Release,
    S3Location,
    read,
)

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
class Job(Generic[P]):
    id: str
    params: P
    artifact: S3Location | None
    credentials: ArtifactCredentials | None
    continuation: str | None

    def token(self, model: type[T]) -> T:
        """The continuation token, read with the hook's own token model."""
        assert self.continuation is not None
        try:
            return read(self.continuation, model, "continuationToken")
        except Refusal as refusal:
            raise Refused(self.id, f"{refusal} (not a token this action wrote)") from None


def read_job(event: Any, params: type[P]) -> Job[P]:
    """The job event and its UserParameters (JSON text, read with `params`). Unanswerable when
    the job id is unusable, Refused naming the field for anything else."""
    try:
        job_id = read(event, JobReference).job.id
    except Refusal as refusal:
        raise Unanswerable(str(refusal)) from None
    try:
        job = read(event, JobEvent).job
        parameters = read(
            job.data.actionConfiguration.configuration.UserParameters, params, "UserParameters"
        )
    except Refusal as refusal:
        raise Refused(job_id, str(refusal)) from None
    artifacts = job.data.inputArtifacts
    return Job(
        id=job_id,
        params=parameters,
        artifact=artifacts[0].location.s3Location if artifacts else None,
        credentials=job.data.artifactCredentials,
        continuation=job.data.continuationToken,
    )


def read_release(job: Job[Any]) -> Release:
    """release.json from the job's input artifact (zipped or as is), read whole."""
    if job.artifact is None:
        raise Refused(job.id, "inputArtifacts: the action has none: give it the release source")
    # CodePipeline's session for its artifact bucket; without one, the function's own role.
    lent = job.credentials
    s3 = boto3.client(
        "s3",
        aws_access_key_id=lent.accessKeyId if lent else None,
        aws_secret_access_key=lent.secretAccessKey if lent else None,
        aws_session_token=lent.sessionToken if lent else None,
    )
    where = (
        f"inputArtifacts.0.location.s3Location: s3://{job.artifact.bucketName}/"
        f"{job.artifact.objectKey}"
    )
    try:
        obj = s3.get_object(Bucket=job.artifact.bucketName, Key=job.artifact.objectKey)
    except ClientError as err:
        if is_transient(err):
            raise
        raise Refused(job.id, f"{where} cannot be read: {refused_by_aws(err)}") from None
    body = obj["Body"].read(RELEASE_BYTES + 1)
    try:
        if body[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                if archive.getinfo("release.json").file_size > RELEASE_BYTES:
                    raise ValueError("release.json is larger than 1 MB")
                body = archive.read("release.json")
        elif len(body) > RELEASE_BYTES:
            raise ValueError("larger than 1 MB")
        text = body.decode("utf-8")
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise Refused(job.id, f"{where} is not a release: {err}") from None
    try:
        return read(text, Release, "release.json")
    except Refusal as refusal:
        raise Refused(job.id, f"{where} is not a release: {refusal}") from None


def answer(
    event: Any,
    params: type[P],
    act: Callable[[Job[P]], dict[str, str]],
    *,
    client: Any,
    logger: Any,
) -> dict[str, str]:
    """Run `act` on the job read whole, and answer CodePipeline whatever happens: "refused"
    (the job, its parameters, its token or its release are not what the action takes; `act`
    raises Refused for what it checks itself before its first AWS call), "failed" (the work
    failed: JobError, or AWS refused a call outright), or what `act` answers. A job whose id is
    unusable is logged and dropped; a throttle or a service error is raised, for Lambda's
    retries. Each refusal or failure is one log line."""
    try:
        job = read_job(event, params)
        return act(job)
    except Unanswerable as err:
        logger.set_correlation_id(None)  # the id is what was refused
        logger.warning("refused: the event is no job to answer", extra={"reason": str(err)})
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
