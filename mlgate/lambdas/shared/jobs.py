"""CodePipeline Lambda actions: parse the job event, read the release, report the result."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import CodePipelineJobEvent
from botocore.exceptions import ClientError


class JobError(ValueError):
    """The job cannot go on; the message is what the pipeline shows."""


# Answers that say "not now" rather than "no": the invocation fails and Lambda retries it,
# instead of failing the pipeline's job for a throttle (and CodePipeline's own report calls are
# always retried this way: a failed report cannot be reported).
TRANSIENT = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "TooManyRequestsException", "SlowDown", "ServiceUnavailable", "InternalError",
    "InternalFailure", "InternalServerError",
}  # fmt: skip
REPORTS = ("PutJobSuccessResult", "PutJobFailureResult")


def is_transient(err: ClientError) -> bool:
    return err.operation_name in REPORTS or err.response["Error"].get("Code") in TRANSIENT


@dataclass(frozen=True)
class Job:
    id: str
    params: dict[str, Any]
    artifact: dict[str, str] | None
    credentials: dict[str, str]
    continuation: str | None


def parse_job(event: Any, required: tuple[str, ...] = ()) -> Job:
    """The CodePipeline job event, read through Powertools' CodePipelineJobEvent; JobError
    names what is missing or wrong (the data class is a lazy view: a bad field raises only
    when read, so every read happens here)."""
    try:
        job = CodePipelineJobEvent(event)
        job_id = job.get_id
        raw = job.user_parameters or "{}"
        if not isinstance(job_id, str) or not job_id or not isinstance(raw, str):
            raise TypeError("CodePipeline.job.id or UserParameters")
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as err:
        raise JobError(f"not a CodePipeline job event: missing or bad {err}") from None
    try:
        params = json.loads(raw)
        if not isinstance(params, dict):
            raise TypeError("not an object")
    except (json.JSONDecodeError, TypeError) as err:
        raise JobError(f"UserParameters must be a JSON object: {err}") from None
    missing = [k for k in required if k not in params]
    if missing:
        raise JobError(f"UserParameters lacks {missing}")
    try:
        data = job.data
        artifacts = data.get("inputArtifacts") or []
        location: dict[str, str] | None = None
        if artifacts:
            s3 = data.input_artifacts[0].location.s3_location
            location = {"bucketName": s3.bucket_name, "objectKey": s3.key}
            if not all(isinstance(v, str) for v in location.values()):
                raise TypeError("s3Location.bucketName/objectKey")
        credentials = data.get("artifactCredentials") or {}
        token = data.continuation_token
        if not isinstance(credentials, dict) or not isinstance(token, str | None):
            raise TypeError("artifactCredentials or continuationToken")
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as err:
        raise JobError(f"the job's input artifact is malformed: {err}") from None
    return Job(
        id=job_id, params=params, artifact=location, credentials=credentials, continuation=token
    )


def job_id_of(event: Any) -> str | None:
    """The job id of an event too malformed to parse, to fail that job rather than let it
    wait for its timeout."""
    try:
        job_id = CodePipelineJobEvent(event).get_id
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    return job_id if isinstance(job_id, str) and job_id else None


def read_release(job: Job) -> dict[str, Any]:
    """release.json from the job's input artifact (zipped or as is)."""
    if job.artifact is None:
        raise JobError("the action has no input artifact: give it the release source")
    s3 = boto3.client(
        "s3",
        aws_access_key_id=job.credentials.get("accessKeyId"),
        aws_secret_access_key=job.credentials.get("secretAccessKey"),
        aws_session_token=job.credentials.get("sessionToken"),
    )
    obj = s3.get_object(Bucket=job.artifact["bucketName"], Key=job.artifact["objectKey"])
    body = obj["Body"].read()
    if body[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            body = archive.read("release.json")
    try:
        release: dict[str, Any] = json.loads(body)
        if not isinstance(release.get("model_package_arn"), str):
            raise KeyError("model_package_arn")
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise JobError(f"release.json is not a release: {err}") from None
    return release


def succeed(client: Any, job_id: str, summary: str) -> None:
    client.put_job_success_result(jobId=job_id, executionDetails={"summary": summary[:2048]})


def fail(client: Any, job_id: str, message: str) -> None:
    client.put_job_failure_result(
        jobId=job_id, failureDetails={"type": "JobFailed", "message": message[:5000]}
    )
