"""Quality gate hook: the automated gate between staging and the people's gates.

Judges the released version, and only it: its registered metrics against the manifest's model
metric thresholds, and a smoke load of its own held-out test split sent to the staging
endpoint against the system SLOs. Staging's CloudWatch metrics would mostly show the previous
version (or nothing on a first release); the gate's own requests show the new fleet.

The smoke load: the first rows of the version's test split (the training pipeline's
`<run>/<execution>/test/test.csv`, beside the registered evaluation report, label first then
the payload columns; one byte-range read), SMOKE_REQUESTS requests one after the other, each
row's payload as text/csv. The endpoint must be InService on the same endpoint config before
and after the load: every request was served by the fleet the deploy verifier checked runs
this version, never by a blue/green deployment in flight. Measured per request: the latency
as the gate sees it (an upper bound of SageMaker's ModelLatency), a 5xx answer (SageMaker's or
the model container's), and a failed answer (the container's non-2xx, or a refused row), as
SageMaker counts Invocation5XXErrors and InvocationModelErrors. Throttling is retried with
bounded backoff and is not an error of the version; throttling that outlasts it fails the
invocation, and Lambda's retry runs the load again. Passes or fails the CodePipeline action
naming each threshold and SLO, and records the verdict and its evidence in the audit trail.

Idempotent with Powertools, keyed on the CodePipeline job id (validated: its parameters): the
load runs once per job (a step of its own: a retry after the audit write failed
reuses its measurement and time, so the verdict keeps one audit key) and the verdict is
recorded once per job; a retry after a failed report to
CodePipeline reports the stored verdict without loading the endpoint or recording again.

Event: the CodePipeline job event (Powertools' CodePipelineJobEvent); UserParameters
{"endpoint", "execution"}; input artifact: the release source. Environment: MLGATE_THRESHOLDS
(JSON: model_metrics [{name, threshold, direction}], slos [{name, threshold}]),
SMOKE_REQUESTS, AUDIT_TABLE, RELEASE_PIPELINE, IDEMPOTENCY_TABLE.
AWS calls: s3:GetObject (artifact), s3:GetObject (the version's test split),
sagemaker:DescribeEndpoint, sagemaker:InvokeEndpoint, dynamodb:PutItem (audit trail and
idempotency records), dynamodb:GetItem, dynamodb:UpdateItem, dynamodb:DeleteItem (idempotency
records), codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import ClientError

from shared import idempotency
from shared.audit import AuditTrail, digest, now_iso
from shared.jobs import Job, JobError, fail, job_id_of, parse_job, read_release, succeed
from shared.settings import read

logger = Logger()
codepipeline = boto3.client("codepipeline")
dynamodb = boto3.client("dynamodb")
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")
# The gate retries throttling itself, so every attempt is counted and the backoff is bounded;
# a request that hangs is cut short (it counts as an error, not as a latency).
runtime = boto3.client(
    "sagemaker-runtime",
    config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5),
)

# First bytes of the test split read (a GetObject Range, https://docs.aws.amazon.com/AmazonS3/
# latest/API/API_GetObject.html#API_GetObject_RequestSyntax): enough rows for the largest smoke
# load (500) of any reasonable payload, without reading a split that may be gigabytes.
SAMPLE_BYTES = 1 << 20
# InvokeEndpoint's errors (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
# API_runtime_InvokeEndpoint.html#API_runtime_InvokeEndpoint_Errors): ModelError (424) is the
# container's non-2xx answer, ServiceUnavailable (503) and InternalFailure (500) are SageMaker's.
# Throttling and a model still loading say "not now", not "this version fails".
THROTTLED = {
    "ThrottlingException", "Throttling", "TooManyRequestsException", "ModelNotReadyException",
}  # fmt: skip
ATTEMPTS = 4
# The load stops here even if requests remain (the function's timeout is two minutes).
BUDGET_SECONDS = 90.0
clock: Callable[[], float] = time.perf_counter
pause: Callable[[float], None] = time.sleep


class Throttled(RuntimeError):
    """SageMaker kept throttling past the bounded backoff: the invocation fails, Lambda retries."""


@dataclass(frozen=True)
class Settings:
    thresholds: dict[str, Any]
    requests: int
    table: str
    pipeline: str


@cache
def settings() -> Settings:
    env = read(
        "quality_gate", ("MLGATE_THRESHOLDS", "SMOKE_REQUESTS", "AUDIT_TABLE", "RELEASE_PIPELINE")
    )
    return Settings(
        thresholds=json.loads(env["MLGATE_THRESHOLDS"]),
        requests=int(env["SMOKE_REQUESTS"]),
        table=env["AUDIT_TABLE"],
        pipeline=env["RELEASE_PIPELINE"],
    )


def _met(value: float, threshold: float, direction: str) -> bool:
    return value >= threshold if direction == "at_least" else value <= threshold


def sample_uri(release: dict[str, Any]) -> str:
    """Where the version's test split is: the training run's `test/test.csv`, beside the
    `evaluation/` folder of the evaluation report registered with the version."""
    report = release.get("evaluation_report_uri")
    parts = urlparse(report or "")
    folders = parts.path.lstrip("/").split("/")
    if parts.scheme != "s3" or len(folders) < 3 or folders[-2] != "evaluation":
        raise JobError(
            f"the release has no evaluation report of a training run ({report!r}): the smoke "
            "load reads the test split beside it, <run>/<execution>/test/test.csv"
        )
    return f"s3://{parts.netloc}/{'/'.join([*folders[:-2], 'test', 'test.csv'])}"


def read_sample(client: Any, uri: str) -> list[str]:
    """The payloads (label dropped) of the first rows of the test split, one byte range."""
    parts = urlparse(uri)
    try:
        body = client.get_object(
            Bucket=parts.netloc, Key=parts.path.lstrip("/"), Range=f"bytes=0-{SAMPLE_BYTES - 1}"
        )["Body"].read()
    except ClientError as err:
        if err.response["Error"].get("Code") not in {"NoSuchKey", "404"}:
            raise
        raise JobError(f"no test split at {uri}: the training run wrote none") from None
    lines = body.decode("utf-8").splitlines()
    if len(body) >= SAMPLE_BYTES:
        lines = lines[:-1]  # the range may end inside a row
    payloads = [line.split(",", 1)[1] for line in lines if "," in line]
    if not payloads:
        raise JobError(f"the test split at {uri} has no rows to send")
    return payloads


@dataclass
class Load:
    """What the gate's own requests saw."""

    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors_5xx: int = 0
    failed: int = 0
    throttled: int = 0
    first_error: str = ""

    def figures(self) -> dict[str, float | None]:
        ordered = sorted(self.latencies_ms)
        # Nearest-rank p99 of the answered requests.
        p99 = ordered[math.ceil(0.99 * len(ordered)) - 1] if ordered else None
        return {
            "latency_p99_ms": p99,
            "error_rate_5xx": self.errors_5xx / self.sent if self.sent else None,
            "invocation_error_rate": self.failed / self.sent if self.sent else None,
        }


def status_of(err: ClientError) -> int:
    """The HTTP status that counts: for ModelError (always 424) the model container's own,
    OriginalStatusCode, as SageMaker counts it in Invocation5XXErrors."""
    if err.response["Error"].get("Code") == "ModelError":
        return int(err.response.get("OriginalStatusCode") or 0)
    return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def invoke(endpoint: str, payload: str, load: Load) -> None:
    """One smoke request, retried on throttling with exponential backoff (0.2 s, 0.4 s, 0.8 s)."""
    for attempt in range(ATTEMPTS):
        started = clock()
        try:
            runtime.invoke_endpoint(
                EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=payload
            )["Body"].read()
        except ClientError as err:
            code = err.response["Error"].get("Code", "")
            if code in THROTTLED:
                load.throttled += 1
                if attempt + 1 < ATTEMPTS:
                    pause(0.2 * 2**attempt)
                    continue
                raise Throttled(f"{endpoint} still throttles after {ATTEMPTS} attempts") from err
            load.sent += 1
            load.failed += code == "ModelError" or status_of(err) < 500
            load.errors_5xx += status_of(err) >= 500
            load.first_error = load.first_error or f"{code}: {err.response['Error'].get('Message')}"
            return
        load.sent += 1
        load.latencies_ms.append((clock() - started) * 1000)
        return


def serving_config(endpoint: str) -> str:
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    status = described.get("EndpointStatus")
    if status != "InService":
        raise JobError(
            f"staging endpoint {endpoint} is {status}: the smoke load needs the new version's "
            "fleet alone, after its deployment finished"
        )
    return str(described["EndpointConfigName"])


def smoke_load(endpoint: str, payloads: list[str], requests: int) -> tuple[Load, str]:
    """`requests` requests cycling over the payloads, on one endpoint config throughout."""
    config = serving_config(endpoint)
    load, began = Load(), clock()
    for i in range(requests):
        if clock() - began > BUDGET_SECONDS:
            break
        invoke(endpoint, payloads[i % len(payloads)], load)
    after = serving_config(endpoint)
    if after != config:
        raise JobError(
            f"staging endpoint {endpoint} moved from {config} to {after} during the smoke load: "
            "its requests cannot be credited to one version"
        )
    return load, config


def judge(
    release: dict[str, Any],
    thresholds: dict[str, Any],
    figures: dict[str, float | None],
    load: Load,
    requests: int,
) -> tuple[bool, list[str]]:
    lines, ok = [], True
    metrics = release.get("metrics", {})
    for m in thresholds["model_metrics"]:
        value = metrics.get(m["name"])
        word = ">=" if m["direction"] == "at_least" else "<="
        if value is None:
            ok = False
            lines.append(
                f"FAIL {m['name']}: not registered with the version (needs {word} {m['threshold']})"
            )
            continue
        passed = _met(float(value), float(m["threshold"]), m["direction"])
        ok &= passed
        verdict = "PASS" if passed else "FAIL"
        lines.append(f"{verdict} {m['name']} {value:.4f} (needs {word} {m['threshold']})")
    if load.sent < requests:
        ok = False
        lines.append(
            f"FAIL smoke load: {load.sent} of {requests} requests answered within "
            f"{BUDGET_SECONDS:.0f} s"
        )
    for slo in thresholds["slos"]:
        value = figures.get(slo["name"])
        if value is None:
            ok = False
            lines.append(f"FAIL smoke {slo['name']}: no request of the smoke load was answered")
            continue
        passed = value <= float(slo["threshold"])
        ok &= passed
        verdict = "PASS" if passed else "FAIL"
        lines.append(
            f"{verdict} smoke {slo['name']} {value:.4g} over {load.sent} requests "
            f"(SLO <= {slo['threshold']})"
        )
    if load.first_error:
        lines.append(f"first error: {load.first_error}")
    return ok, lines


CONFIG = idempotency.config("id", "params", hours=24)


@idempotency.once(data="job", config=CONFIG, prefix="quality_gate.load")
def measure(*, job: dict[str, Any], sample: str, now: str) -> dict[str, Any]:
    """The smoke load of `sample` on the new fleet, once per job: a retry after a later step
    failed reuses this measurement and its time, so the verdict keeps one audit key."""
    current = Job(**job)
    load, endpoint_config = smoke_load(
        current.params["endpoint"], read_sample(s3, sample), settings().requests
    )
    return {"at": now, "sample": sample, "endpoint_config": endpoint_config, "load": asdict(load)}


@idempotency.once(data="job", config=CONFIG, prefix="quality_gate")
def verdict(*, job: dict[str, Any], now: str) -> dict[str, Any]:
    """Judge the release on its measurement and record the verdict, once per job."""
    config = settings()
    current = Job(**job)
    release = read_release(current)
    measured = measure(job=job, sample=sample_uri(release), now=now)
    load = Load(**measured["load"])
    figures = load.figures()
    ok, lines = judge(release, config.thresholds, figures, load, config.requests)
    summary = ("Quality gate passed: " if ok else "Quality gate failed: ") + "; ".join(lines)
    evidence = {
        "release": release,
        "sample": measured["sample"],
        "endpoint_config": measured["endpoint_config"],
        "load": measured["load"],
        "figures": figures,
    }
    logger.info("smoke load judged", extra={"ok": ok, **evidence})
    AuditTrail(dynamodb, config.table).record(
        pipeline=config.pipeline,
        execution=current.params.get("execution", current.id),
        event="quality-gate",
        gate="quality-gate",
        key=current.id,
        # The measurement's own time: every try of this job writes the same audit key.
        when=now_iso(datetime.fromisoformat(measured["at"]).timestamp()),
        who="mlgate quality gate",
        decision="Passed" if ok else "Failed",
        model_version=str(release.get("model_version", "")),
        evidence_sha256=digest(evidence),
        detail=summary,
    )
    return {"ok": ok, "summary": summary}


def handler(event: dict[str, Any], context: Any, now: datetime | None = None) -> dict[str, str]:
    try:
        job = parse_job(event, required=("endpoint",))
        settings()
        CONFIG.register_lambda_context(context)
        judged = verdict(job=asdict(job), now=(now or datetime.now(UTC)).isoformat())
    except (JobError, KeyError, json.JSONDecodeError) as err:
        reason = f"quality gate cannot run: {err}"
        job_id = job_id_of(event)
        if job_id:
            fail(codepipeline, job_id, reason)
        return {"result": "failed", "reason": reason}
    ok, summary = bool(judged["ok"]), str(judged["summary"])
    (succeed if ok else fail)(codepipeline, job.id, summary)
    return {"result": "succeeded" if ok else "failed", "reason": summary}
