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

A batch staging (UserParameters' `batch` instead of `endpoint`: quality_gate/batch.py) has no
endpoint: the gate judges the registered metrics and the deploy verifier's sample run of this
execution (failure rate, prediction shift and run time against prod's version on the same
rows), with no smoke load; it reads batch/staging/runs/<run>/ of staging's artifact bucket
(s3:GetObject, s3:ListBucket).

A staging endpoint hosting its model as an inference component (its config's variant names
no model, shared/serving.py): the component must be InService on the same model before and
after the load (a rolling update changes the component's model, not the config), and each
request names it (InvokeEndpoint's InferenceComponentName).

An asynchronous staging endpoint (its endpoint config has an AsyncInferenceConfig,
shared/serving.py) refuses InvokeEndpoint: each row is written to
async/staging/input/smoke-<job id>-<n>.csv and queued with InvokeEndpointAsync (a step of its
own, once per job: its record holds where each result will land), then the gate looks for the
result and failure objects. A request is answered when its result object exists, failed when
its failure object does; its latency is from its submission to its result object's
LastModified: queue plus processing time (S3 keeps whole seconds), as the verdict says. When
the results are not all in within the invocation (an endpoint scaled to zero wakes in
minutes), the gate answers with a continuation token (SmokeToken) and looks again on the next
job, without queueing again; DEADLINE_SECONDS after the submission it judges what has answered
(fewer answers than requests fail the gate).

Nothing is refused after the load has run. Before it, in this order: the job id, the only
thing the gate takes from its event; the job as CodePipeline's GetJobDetails answers for it (a
job of the product's release pipeline only), its UserParameters and the gate's settings
(MLGATE_THRESHOLDS, SMOKE_REQUESTS) read whole (shared/models.py: JobDetailsAnswer,
GateParameters, Thresholds); then release.json at the execution's source revision (Release),
its version checked in the registry (this product's group, Approved now), the test split
beside its evaluation report, then the endpoint's state; then the gate writes a
"quality-gate-started" event to the audit trail, the same table, key and encryption key as the
verdict, so a trail the gate may not write to fails the job before a request is sent. After
the load the verdict is computed from validated inputs only, written to the trail (a throttle
fails the invocation: Lambda's retry reuses the stored measurement, so the load is not sent
again), then reported. A verdict the trail refuses outright fails the job with the verdict in
its message: the load's result is shown, never lost.

Idempotent with Powertools, keyed on the CodePipeline job id (validated: its parameters): the
load runs once per job (a step of its own: a retry after the audit write failed reuses its
measurement and time, so the verdict keeps one audit key) and the verdict is recorded once per
job; a retry after a failed report to CodePipeline reports the stored verdict without loading
the endpoint or recording again.

Event: the CodePipeline job event, of which only the job id is read; UserParameters
{"endpoint", "execution"} (execution, when given, must be the job's own). Environment:
MLGATE_THRESHOLDS (JSON: model_metrics [{name, threshold, direction}], slos [{name,
threshold}]), SMOKE_REQUESTS, AUDIT_TABLE, RELEASE_PIPELINE, RELEASE_BUCKET,
MODEL_PACKAGE_GROUP, ARTIFACT_BUCKET, RELEASED_PREFIX, IDEMPOTENCY_TABLE; RELEASE_KEY (default
release.json); POWERTOOLS_METRICS_NAMESPACE (EMF: one count per invocation, JobsSucceeded,
JobsFailed or JobsRefused, and per smoke load SmokeLatencyP99, SmokeErrorRate5xx and
SmokeInvocationErrorRate).
AWS calls: codepipeline:GetJobDetails, codepipeline:GetPipelineExecution,
s3:GetObjectVersion (release.json at the execution's source revision),
sagemaker:DescribeModelPackage, s3:GetObject (the version's test split),
sagemaker:DescribeEndpoint, sagemaker:DescribeEndpointConfig, sagemaker:InvokeEndpoint,
sagemaker:ListInferenceComponents (optional: inference components only),
sagemaker:DescribeInferenceComponent (optional: inference components only),
sagemaker:InvokeEndpointAsync (optional: an async staging endpoint), s3:PutObject (optional:
its queued rows), dynamodb:PutItem (audit trail and
idempotency records), dynamodb:GetItem, dynamodb:UpdateItem, dynamodb:DeleteItem (idempotency
records), codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult.
In a batch staging (no endpoint, none of the sagemaker endpoint calls): s3:GetObject and
s3:ListBucket (batch/staging/runs/ of staging's artifact bucket: the sample run's record and
both sides' outputs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError
from botocore.config import Config
from botocore.exceptions import ClientError

from shared import idempotency
from shared.audit import AuditTrail, digest, now_iso
from shared.coldstart import settle
from shared.jobs import (
    CORRELATION_ID,
    OUTCOMES,
    Job,
    JobError,
    Refused,
    answer,
    check_approved,
    fail,
    is_transient,
    read_release,
    refused_by_aws,
    succeed,
)
from shared.models import GateParameters, Refusal, Release, SmokeToken, Thresholds, read
from shared.serving import (
    ASYNC,
    NoComponent,
    NotAsync,
    Queue,
    completed_at,
    component_of,
    hosts_components,
    mode_of,
    read_object,
    submit,
)
from shared.settings import SettingsError
from shared.settings import read as read_settings

logger = Logger()
metrics = Metrics()
codepipeline = boto3.client("codepipeline")
dynamodb = boto3.client("dynamodb")
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")
# The registry (the same service and account): the version is checked before the load.
registry = sagemaker
HOOK = "quality_gate"
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
# An asynchronous load: looks for its results up to POLLS times, POLL_SECONDS apart, within
# the budget, then continues; judged DEADLINE_SECONDS after its submission at the latest.
POLLS = 6
POLL_SECONDS = 10.0
DEADLINE_SECONDS = 30 * 60
wall: Callable[[], float] = time.time


class Throttled(RuntimeError):
    """SageMaker kept throttling past the bounded backoff: the invocation fails, Lambda retries."""


# The manifest's bounds of serving.smoke_requests.
MOST_REQUESTS = 500


@dataclass(frozen=True)
class Settings:
    thresholds: Thresholds
    requests: int
    table: str
    pipeline: str


@cache
def settings() -> Settings:
    """The gate's settings, read whole: SettingsError or Refusal naming what is wrong."""
    env = read_settings(
        "quality_gate", ("MLGATE_THRESHOLDS", "SMOKE_REQUESTS", "AUDIT_TABLE", "RELEASE_PIPELINE")
    )
    requests = env["SMOKE_REQUESTS"]
    if not (requests.isascii() and requests.isdigit() and 1 <= int(requests) <= MOST_REQUESTS):
        raise Refusal(f"SMOKE_REQUESTS: {requests[:20]!r} is not a number from 1 to 500")
    return Settings(
        thresholds=read(env["MLGATE_THRESHOLDS"], Thresholds, "MLGATE_THRESHOLDS"),
        requests=int(requests),
        table=env["AUDIT_TABLE"],
        pipeline=env["RELEASE_PIPELINE"],
    )


def _met(value: float, threshold: float, direction: str) -> bool:
    return value >= threshold if direction == "at_least" else value <= threshold


def sample_uri(release: Release) -> str:
    """Where the version's test split is: the training run's `test/test.csv`, beside the
    `evaluation/` folder of the evaluation report registered with the version."""
    report = release.evaluation_report_uri
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
    try:
        lines = body.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise JobError(f"the test split at {uri} is not UTF-8 text") from None
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


def invoke(endpoint: str, payload: str, load: Load, component: str | None = None) -> None:
    """One smoke request, retried on throttling with exponential backoff (0.2 s, 0.4 s, 0.8 s);
    naming the inference component when the endpoint hosts one."""
    named = {"InferenceComponentName": component} if component else {}
    for attempt in range(ATTEMPTS):
        started = clock()
        try:
            runtime.invoke_endpoint(
                EndpointName=endpoint,
                ContentType="text/csv",
                Accept="text/csv",
                Body=payload,
                **named,
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


def endpoint_config(endpoint: str) -> dict[str, Any]:
    """DescribeEndpointConfig of the config the endpoint names now: its mode and queue."""
    name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    return dict(sagemaker.describe_endpoint_config(EndpointConfigName=name))


def serving_config(endpoint: str) -> str:
    """What serves now: the endpoint config, and with an inference component the component
    and its model (a rolling update changes the model, not the config)."""
    return serving_state(endpoint)[0]


def serving_state(endpoint: str) -> tuple[str, str | None]:
    """(what serves now, as serving_config says it; the inference component's name or None)."""
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    status = described.get("EndpointStatus")
    if status != "InService":
        raise JobError(
            f"staging endpoint {endpoint} is {status}: the smoke load needs the new version's "
            "fleet alone, after its deployment finished"
        )
    config = str(described["EndpointConfigName"])
    if not hosts_components(sagemaker.describe_endpoint_config(EndpointConfigName=config)):
        return config, None
    try:
        component = component_of(sagemaker, endpoint)
    except NoComponent as err:
        raise JobError(f"staging endpoint {err}") from None
    if component.status != "InService":
        raise JobError(
            f"staging inference component {component.name} is {component.status}: the smoke "
            "load needs the new version's copies alone, after its rolling update finished"
        )
    return f"{config}, inference component {component.name} on {component.model}", component.name


def smoke_load(
    endpoint: str, payloads: list[str], requests: int, component: str | None = None
) -> Load:
    """`requests` requests cycling over the payloads, within the time budget."""
    load, began = Load(), clock()
    for i in range(requests):
        if clock() - began > BUDGET_SECONDS:
            break
        invoke(endpoint, payloads[i % len(payloads)], load, component)
    return load


def judge(
    release: Release,
    thresholds: Thresholds,
    figures: dict[str, float | None],
    load: Load,
    requests: int,
    queued: bool = False,
) -> tuple[bool, list[str]]:
    """The verdict, from validated inputs only: it cannot fail after the load has run.
    `queued`: an asynchronous endpoint's load, whose latency is queue plus processing time
    (S3's whole seconds, minutes when it wakes from zero): shown, not held to the latency
    SLOs, which are a real-time fleet's (the oldest-request alarm watches an async queue)."""
    lines, ok = [], True
    for m in thresholds.model_metrics:
        value = release.metrics.get(m.name)
        word = ">=" if m.direction == "at_least" else "<="
        if value is None:
            ok = False
            lines.append(
                f"FAIL {m.name}: not registered with the version (needs {word} {m.threshold})"
            )
            continue
        passed = _met(value, m.threshold, m.direction)
        ok &= passed
        verdict = "PASS" if passed else "FAIL"
        lines.append(f"{verdict} {m.name} {value:.4f} (needs {word} {m.threshold})")
    if load.sent < requests:
        ok = False
        lines.append(
            f"FAIL smoke load: {load.sent} of {requests} requests answered within "
            f"{BUDGET_SECONDS:.0f} s"
        )
    for slo in thresholds.slos:
        value = figures.get(slo.name)
        if value is None:
            ok = False
            lines.append(f"FAIL smoke {slo.name}: no request of the smoke load was answered")
            continue
        if queued and slo.name.startswith("latency"):
            lines.append(
                f"INFO smoke {slo.name} {value:.4g} over {load.sent} queued requests (queue "
                f"plus processing; the real-time SLO <= {slo.threshold} is not applied)"
            )
            continue
        passed = value <= slo.threshold
        ok &= passed
        verdict = "PASS" if passed else "FAIL"
        lines.append(
            f"{verdict} smoke {slo.name} {value:.4g} over {load.sent} requests "
            f"(SLO <= {slo.threshold})"
        )
    if load.first_error:
        lines.append(f"first error: {load.first_error}")
    return ok, lines


CONFIG = idempotency.config("id", "params", hours=24)


def started(job: dict[str, Any], execution: str, now: str, detail: str) -> None:
    """The verdict's table, key prefix and key, written before the first request: a trail the
    gate may not write to fails the job here, not after the load."""
    AuditTrail(dynamodb, settings().table).record(
        pipeline=settings().pipeline,
        execution=execution,
        event="quality-gate-started",
        gate="quality-gate",
        key=job["id"],
        when=now_iso(datetime.fromisoformat(now).timestamp()),
        who="mlgate quality gate",
        detail=detail,
    )


@idempotency.once(data="job", config=CONFIG, prefix="quality_gate.load")
def measure(
    *, job: dict[str, Any], endpoint: str, execution: str, sample: str, now: str
) -> dict[str, Any]:
    """The smoke load of `sample` on the new fleet, once per job: a retry after a later step
    failed reuses this measurement and its time, so the verdict keeps one audit key."""
    config = settings()
    payloads = read_sample(s3, sample)
    before, component = serving_state(endpoint)
    started(job, execution, now, f"smoke load of {config.requests} requests of {sample} on "
            f"{endpoint} ({before})")  # fmt: skip
    load = smoke_load(endpoint, payloads, config.requests, component)
    after = serving_config(endpoint)
    if after != before:
        raise JobError(
            f"staging endpoint {endpoint} moved from {before} to {after} during the smoke load: "
            "its requests cannot be credited to one version"
        )
    return {"at": now, "sample": sample, "endpoint_config": before, "load": asdict(load)}


@idempotency.once(data="job", config=CONFIG, prefix="quality_gate.queue")
def queue_load(
    *, job: dict[str, Any], endpoint: str, execution: str, sample: str, now: str, queue: Queue
) -> dict[str, Any]:
    """The smoke load queued on an asynchronous endpoint, once per job: a continuation (or a
    retry after a later step failed) gets this record back, and queues nothing."""
    config = settings()
    payloads = read_sample(s3, sample)
    before = serving_config(endpoint)
    started(job, execution, now, f"asynchronous smoke load of {config.requests} requests of "
            f"{sample} on {endpoint} ({before})")  # fmt: skip
    queued = []
    for i in range(config.requests):
        sent = wall()
        name = f"smoke-{job['id']}-{i}"
        where = submit(s3, runtime, endpoint, queue, name, payloads[i % len(payloads)])
        queued.append({"output": where.output, "failure": where.failure, "sent": sent})
    return {
        "at": now,
        "sample": sample,
        "endpoint_config": before,
        "deadline": wall() + DEADLINE_SECONDS,
        "queued": queued,
    }


def collect(endpoint: str, queued: dict[str, Any]) -> dict[str, Any] | None:
    """The queued load's measurement once every request has a result or a failure object (or
    the deadline passed), in `measure`'s shape; None while results are pending."""
    load, pending = Load(), 0
    for each in queued["queued"]:
        failure = read_object(s3, each["failure"]) if each.get("failure") else None
        if failure is not None:
            load.sent += 1
            load.failed += 1
            load.first_error = load.first_error or f"async failure: {failure[:200]}"
            continue
        done = completed_at(s3, each["output"])
        if done is None:
            pending += 1
            continue
        load.sent += 1
        load.latencies_ms.append(max(0.0, done - float(each["sent"])) * 1000)
    if pending and wall() <= float(queued["deadline"]):
        return None
    after = serving_config(endpoint)
    if after != queued["endpoint_config"]:
        raise JobError(
            f"staging endpoint {endpoint} moved from {queued['endpoint_config']} to {after} "
            "during the smoke load: its requests cannot be credited to one version"
        )
    return {
        "at": queued["at"],
        "sample": queued["sample"],
        "endpoint_config": queued["endpoint_config"],
        "load": asdict(load),
        "mode": ASYNC,
    }


@idempotency.once(data="job", config=CONFIG, prefix="quality_gate")
def verdict(
    *,
    job: dict[str, Any],
    release: Release,
    endpoint: str,
    execution: str,
    sample: str,
    now: str,
    measured: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Judge the release on its measurement (the asynchronous load's, when given) and record
    the verdict, once per job."""
    config = settings()
    if measured is None:
        measured = measure(job=job, endpoint=endpoint, execution=execution, sample=sample, now=now)
    load = Load(**measured["load"])
    figures = load.figures()
    queued = measured.get("mode") == ASYNC
    ok, lines = judge(release, config.thresholds, figures, load, config.requests, queued)
    if queued:
        lines.append(
            "asynchronous endpoint: latency is queue plus processing time, from each "
            "request's submission to its result object"
        )
    summary = ("Quality gate passed: " if ok else "Quality gate failed: ") + "; ".join(lines)
    evidence = {
        "release": release.document(),
        "sample": measured["sample"],
        "endpoint_config": measured["endpoint_config"],
        "load": measured["load"],
        "figures": figures,
    }
    logger.info("smoke load judged", extra={"ok": ok, **evidence})
    try:
        AuditTrail(dynamodb, config.table).record(
            pipeline=config.pipeline,
            execution=execution,
            event="quality-gate",
            gate="quality-gate",
            key=job["id"],
            # The measurement's own time: every try of this job writes the same audit key.
            when=now_iso(datetime.fromisoformat(measured["at"]).timestamp()),
            who="mlgate quality gate",
            decision="Passed" if ok else "Failed",
            model_version=str(release.model_version),
            evidence_sha256=digest(evidence),
            detail=summary,
        )
    except ClientError as err:
        if is_transient(err):
            raise  # Lambda's retry writes it, on the stored measurement
        raise JobError(
            f"{summary}. The verdict could not be recorded ({refused_by_aws(err)}); a verdict "
            "that is not on record does not pass the gate"
        ) from None
    for name, value in figures.items():
        if value is not None:
            unit = MetricUnit.Milliseconds if name.endswith("_ms") else MetricUnit.NoUnit
            metrics.add_metric(name=SMOKE_METRICS[name], unit=unit, value=value)
    return {"ok": ok, "summary": summary}


SMOKE_METRICS = {
    "latency_p99_ms": "SmokeLatencyP99",
    "error_rate_5xx": "SmokeErrorRate5xx",
    "invocation_error_rate": "SmokeInvocationErrorRate",
}


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID)
def handler(event: dict[str, Any], context: Any, now: datetime | None = None) -> dict[str, str]:
    def act(job: Job[GateParameters]) -> dict[str, str]:
        return judge_job(job, context, now or datetime.now(UTC))

    outcome = answer(event, GateParameters, act, client=codepipeline, logger=logger, hook=HOOK)
    metrics.add_metric(name=OUTCOMES[outcome["result"]], unit=MetricUnit.Count, value=1)
    return outcome


def judge_job(job: Job[GateParameters], context: Any, now: datetime) -> dict[str, str]:
    """Read everything the verdict rests on (every refusal before the first AWS call), then
    measure, record and report."""
    if job.continuation is not None:
        token = job.token(SmokeToken)
        if token.endpoint != job.params.endpoint:
            raise Refused(
                job.id,
                f"continuationToken.endpoint: names {token.endpoint}, not this job's "
                f"{job.params.endpoint or 'batch environment (no endpoint, no token)'} (not a "
                "token this action wrote)",
            )
    try:
        settings()
    except (SettingsError, Refusal) as err:
        raise Refused(job.id, f"the quality gate's settings: {err}") from None
    if job.params.execution not in (None, job.execution):
        raise Refused(
            job.id,
            f"UserParameters.execution: names execution {job.params.execution}, not this "
            f"job's {job.execution}",
        )
    release = read_release(job, codepipeline, s3)
    check_approved(job, release, registry)
    if job.params.batch is not None:
        from quality_gate import batch

        # The registered metrics, judged as below; no smoke load, so no SLO lines.
        metric_lines = judge(release, settings().thresholds.model_copy(update={"slos": []}),
                             {}, Load(), 0)  # fmt: skip
        trail = AuditTrail(dynamodb, settings().table)
        return batch.step(job, release, metric_lines, codepipeline=codepipeline, s3=s3,
                          trail=trail, pipeline=settings().pipeline)  # fmt: skip
    sample = sample_uri(release)
    CONFIG.register_lambda_context(context)
    endpoint = job.params.endpoint_name
    key = {"id": job.id, "params": job.params.model_dump(mode="json", exclude_none=True)}
    measured = None
    try:
        described = endpoint_config(endpoint)
        if job.continuation is not None or mode_of(described) == ASYNC:
            measured = queued_measurement(job, key, sample, described, now)
            if measured is None:
                token = SmokeToken(endpoint=endpoint, deadline=int(wall()) + DEADLINE_SECONDS)
                succeed(codepipeline, job.id, continuation=token.model_dump_json())
                reason = f"waiting for the asynchronous smoke load's results on {endpoint}"
                return {"result": "in_progress", "reason": reason}
        judged = verdict(
            job=key,
            release=release,
            endpoint=endpoint,
            execution=job.execution,
            sample=sample,
            now=now.isoformat(),
            measured=measured,
        )
    except IdempotencyValidationError:
        raise Refused(
            job.id, "UserParameters: this job was judged already, with other parameters"
        ) from None
    ok, summary = bool(judged["ok"]), str(judged["summary"])
    (succeed if ok else fail)(codepipeline, job.id, summary)
    return {"result": "succeeded" if ok else "failed", "reason": summary}


def queued_measurement(
    job: Job[GateParameters],
    key: dict[str, Any],
    sample: str,
    described: dict[str, Any],
    now: datetime,
) -> dict[str, Any] | None:
    """Queue the load once (a continuation gets the stored record back), then look for its
    results a bounded number of times: the measurement, or None to continue."""
    endpoint = job.params.endpoint_name
    try:
        queue = Queue.of(described, "staging")
    except NotAsync as err:
        state = "is no longer" if job.continuation is not None else "is"
        raise JobError(f"staging endpoint {endpoint} {state} asynchronous: its {err}") from None
    queued = queue_load(
        job=key,
        endpoint=endpoint,
        execution=job.execution,
        sample=sample,
        now=now.isoformat(),
        queue=queue,
    )
    began = clock()
    for poll in range(POLLS):
        measured = collect(endpoint, queued)
        if measured is not None or clock() - began > BUDGET_SECONDS:
            return measured
        if poll + 1 < POLLS:
            pause(POLL_SECONDS)
    return None


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
