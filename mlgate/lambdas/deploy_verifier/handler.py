"""Deploy verifier hook: the endpoint really serves the version the pipeline just deployed.

A CodePipeline Lambda action after each deploy stage. It fails the stage when the endpoint is
not InService, or when it is InService on another model version (a blue/green rollback that
CloudFormation reported as a successful update: a silent rollback), or when one sample
invocation fails.

The endpoint config it names may be gone by the time it is read: CloudFormation deletes the
previous EndpointConfig (and Model) in the cleanup after a blue/green update. The verifier
then reads the endpoint again, a bounded number of times, and fails the stage saying so if it
still cannot tell which version serves.

Event: the CodePipeline job event (Powertools' CodePipelineJobEvent); UserParameters
{"environment", "endpoint", "role_arn" (optional: the verify role of an environment in another
account)}; input artifact: the release source. Environment: SAMPLE_PAYLOAD (one CSV record).
AWS calls: s3:GetObject (artifact), sts:AssumeRole (optional: only when role_arn is set),
codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult.
Under the assumed role when one is set: sagemaker:DescribeEndpoint,
sagemaker:DescribeEndpointConfig, sagemaker:DescribeModel, sagemaker:InvokeEndpoint.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from shared.accounts import session
from shared.jobs import (
    Job,
    JobError,
    fail,
    is_transient,
    job_id_of,
    parse_job,
    read_release,
    succeed,
)
from shared.settings import read

logger = Logger()
codepipeline = boto3.client("codepipeline")
# Reads of the endpoint while what it names is being replaced, and the pause before each
# re-read (seconds): the cleanup after a blue/green update takes seconds, not minutes.
READS = 4
PAUSE = 5.0
pause = time.sleep


@cache
def sample_payload() -> str:
    return read("deploy_verifier", ("SAMPLE_PAYLOAD",))["SAMPLE_PAYLOAD"]


def gone(err: ClientError) -> bool:
    """SageMaker's answer for a config or model that no longer exists: ValidationException
    "Could not find endpoint configuration ..." / "Could not find model ..."
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpointConfig.html
    lists no not-found error of its own; the service answers ValidationException)."""
    error = err.response.get("Error", {})
    return error.get("Code") == "ValidationException" and "Could not find" in str(
        error.get("Message", "")
    )


def served_version(sagemaker: Any, endpoint: str) -> tuple[str, str, str | None]:
    """(status, endpoint config, model package) the endpoint runs now; the package is None
    when what the endpoint names was deleted under every one of READS reads."""
    for read_number in range(1, READS + 1):
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
        status, config = str(described["EndpointStatus"]), str(described["EndpointConfigName"])
        try:
            variants = sagemaker.describe_endpoint_config(EndpointConfigName=config)
            model = sagemaker.describe_model(
                ModelName=variants["ProductionVariants"][0]["ModelName"]
            )
        except ClientError as err:
            if not gone(err):
                raise
            # The endpoint may already have moved on to the new config: read it again.
            logger.info(
                "endpoint config or model gone, reading the endpoint again",
                extra={"endpoint": endpoint, "config": config, "read": read_number},
            )
            if read_number < READS:
                pause(PAUSE)
            continue
        containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
        return status, config, str(containers[0].get("ModelPackageName", "no model package"))
    return status, config, None


def verify(job: Job, sagemaker: Any, runtime: Any, payload: str) -> str:
    expected = read_release(job)["model_package_arn"]
    env, endpoint = job.params["environment"], job.params["endpoint"]
    status, config, package = served_version(sagemaker, endpoint)
    if status != "InService":
        raise JobError(f"{env}: endpoint {endpoint} is {status}, not InService")
    if package is None:
        raise JobError(
            f"{env}: cannot tell which model version {endpoint} serves: it names endpoint "
            f"config {config}, which (or whose model) no longer exists, in {READS} reads; "
            "CloudFormation may still be replacing it: retry the stage once the Serving "
            "stack is stable"
        )
    if package != expected:
        raise JobError(
            f"{env}: silent rollback: {endpoint} is InService on {config} serving {package}, "
            f"but the pipeline deployed {expected}; the blue/green update was rolled back "
            "(see the endpoint's rollback alarms)"
        )
    answer = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=payload)
    score = answer["Body"].read().decode().strip()
    return f"{env}: {endpoint} serves {expected} on {config}; sample scored {score}"


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    try:
        job = parse_job(event, required=("environment", "endpoint"))
    except JobError as err:
        job_id = job_id_of(event)
        if job_id:
            fail(codepipeline, str(job_id), str(err))
        return {"result": "failed", "reason": str(err)}
    try:
        env = session(job.params.get("role_arn"), f"mlgate-verify-{job.params['environment']}")
        summary = verify(
            job,
            env.client("sagemaker"),
            env.client("sagemaker-runtime"),
            sample_payload(),
        )
    except (JobError, ClientError) as err:
        if isinstance(err, ClientError) and is_transient(err):
            raise
        reason = str(err)
        fail(codepipeline, job.id, reason)
        logger.warning("verification failed", extra={"reason": reason})
        return {"result": "failed", "reason": reason}
    succeed(codepipeline, job.id, summary)
    return {"result": "succeeded", "reason": summary}
