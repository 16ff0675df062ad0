"""How an endpoint serves, and a request to an asynchronous one, as the job hooks need them.

The mode is in the endpoint config (DescribeEndpointConfig,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpointConfig.html): an
AsyncInferenceConfig makes it asynchronous, a variant's ServerlessConfig serverless, else it
is real-time. An asynchronous endpoint refuses InvokeEndpoint: a request is an object in S3
named by InvokeEndpointAsync's InputLocation, and SageMaker writes its result at the
OutputLocation or its error at the FailureLocation the call answers
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpointAsync.html,
https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-check-predictions.html).
Requests go under `async/<env>/input/` of the bucket of the config's S3OutputPath, the prefix
the endpoint's model role reads (mlgate/infra/constructs/endpoint.py: async_prefix).

A real-time config whose variant names no model hosts inference components: the model is the
component's (DescribeInferenceComponent), and InvokeEndpoint names the component.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

REAL_TIME, SERVERLESS, ASYNC = "real-time", "serverless", "async"
# A result or failure object is a model's answer to one request: read at most this much.
RESULT_BYTES = 64 * 1024
# S3's answers for an object not written yet (HeadObject answers a bare 404).
ABSENT = {"NoSuchKey", "404", "NotFound"}


class NotAsync(ValueError):
    """The endpoint config has no usable AsyncInferenceConfig output paths."""


def mode_of(config: dict[str, Any]) -> str:
    """real-time, serverless or async, as DescribeEndpointConfig answers for the config."""
    if config.get("AsyncInferenceConfig"):
        return ASYNC
    variants = config.get("ProductionVariants") or [{}]
    return SERVERLESS if variants[0].get("ServerlessConfig") else REAL_TIME


def hosts_components(config: dict[str, Any]) -> bool:
    """Whether the config's variant hosts inference components: it names instances and no
    model (https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints-deploy-models.html)."""
    variants = config.get("ProductionVariants") or [{}]
    variant = variants[0]
    return (
        not variant.get("ModelName")
        and not variant.get("ServerlessConfig")
        and bool(variant.get("InstanceType"))
    )


@dataclass(frozen=True)
class Component:
    """The inference component an endpoint hosts: its name, status and model."""

    name: str
    status: str
    model: str


class NoComponent(ValueError):
    """The endpoint hosts no inference component, or more than the one mlgate creates."""


def component_of(sagemaker: Any, endpoint: str) -> Component:
    """The one inference component on `endpoint` (the Serving stack creates one), described:
    ListInferenceComponents, then DescribeInferenceComponent
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeInferenceComponent.html)."""
    listed = sagemaker.list_inference_components(EndpointNameEquals=endpoint, MaxResults=10)
    names = [str(c["InferenceComponentName"]) for c in listed.get("InferenceComponents", [])]
    if len(names) != 1:
        found = ", ".join(sorted(names)) or "none"
        raise NoComponent(
            f"{endpoint} names no model in its variant, so it hosts inference components, and "
            f"mlgate creates one: found {found}"
        )
    described = sagemaker.describe_inference_component(InferenceComponentName=names[0])
    specification = described.get("Specification") or {}
    return Component(
        name=names[0],
        status=str(described.get("InferenceComponentStatus", "")),
        model=str(specification.get("ModelName") or ""),
    )


def split(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI."""
    parts = urlparse(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"{uri!r} is not an s3:// URI")
    return parts.netloc, parts.path.lstrip("/")


@dataclass(frozen=True)
class Queue:
    """Where an asynchronous endpoint's requests go (`bucket`, `inputs`: a key prefix) and
    where SageMaker writes their results and failures (the config's output paths)."""

    bucket: str
    inputs: str
    output: str
    failures: str

    @classmethod
    def of(cls, config: dict[str, Any], env: str) -> Queue:
        paths = (config.get("AsyncInferenceConfig") or {}).get("OutputConfig") or {}
        output = str(paths.get("S3OutputPath") or "")
        try:
            bucket, _ = split(output)
        except ValueError:
            raise NotAsync(f"endpoint config has no S3OutputPath ({output!r})") from None
        return cls(bucket, f"async/{env}/input/", output, str(paths.get("S3FailurePath") or ""))


@dataclass(frozen=True)
class Queued:
    """One request submitted: where its result or its failure will be."""

    output: str
    failure: str | None


def submit(s3: Any, runtime: Any, endpoint: str, queue: Queue, name: str, body: str) -> Queued:
    """Write `body` to `<inputs><name>.csv` and queue it (InvokeEndpointAsync, text/csv,
    InferenceId `name`): a second submission of the same name writes the same input object."""
    key = f"{queue.inputs}{name}.csv"
    s3.put_object(Bucket=queue.bucket, Key=key, Body=body.encode(), ContentType="text/csv")
    answer = runtime.invoke_endpoint_async(
        EndpointName=endpoint,
        ContentType="text/csv",
        InputLocation=f"s3://{queue.bucket}/{key}",
        InferenceId=name[:64],
    )
    return Queued(output=str(answer["OutputLocation"]), failure=answer.get("FailureLocation"))


def read_object(s3: Any, uri: str) -> str | None:
    """The object's text (its first RESULT_BYTES), or None when it does not exist yet."""
    bucket, key = split(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{RESULT_BYTES - 1}")
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ABSENT:
            return None
        raise
    return bytes(body["Body"].read()).decode("utf-8", errors="replace").strip()


def completed_at(s3: Any, uri: str) -> float | None:
    """When the object was written (S3's LastModified, epoch seconds), None if absent."""
    bucket, key = split(uri)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ABSENT:
            return None
        raise
    return float(head["LastModified"].timestamp())


def result(s3: Any, queued: Queued) -> tuple[str, str] | None:
    """("failed", the failure's text) or ("answered", the result), or None while pending.
    The failure is read first: a request has one or the other."""
    if queued.failure:
        text = read_object(s3, queued.failure)
        if text is not None:
            return "failed", text
    text = read_object(s3, queued.output)
    return ("answered", text) if text is not None else None
