"""The shadow test, measured: what each variant of the endpoint did while the new version ran
as its shadow (shared/shadow.py judges it).

- CloudWatch: each variant's Invocations, Invocation4XXErrors, Invocation5XXErrors (Sum) and
  ModelLatency (Average, microseconds) over the test's window, namespace AWS/SageMaker,
  dimensions EndpointName and VariantName; SageMaker publishes them for a shadow variant as for
  a production one (https://docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-view-monitor-edit.html,
  https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html). One period spans
  the whole window, so each statistic is one data point.
- The endpoint's data capture: each variant's captured answers under
  <capture uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/ (the layout of
  https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html),
  the first CSV field of each answer row, at most PREDICTIONS_PER_VARIANT of them (the hours
  are read newest first). Capture samples each variant's requests alike
  (data_capture_sampling_percent), so the two samples are comparable as distributions.
A malformed capture line is skipped and counted, never fatal.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.shadow import Thresholds, Variant, Verdict, judge

NAMESPACE = "AWS/SageMaker"
PREDICTIONS_PER_VARIANT = 5000
SUMS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors")


@dataclass(frozen=True)
class ShadowPlan:
    """What the Shadow stage's verifier action is given (its UserParameters' `shadow`)."""

    variant: str
    production_variant: str
    minutes: int
    sampling_percent: int
    """The share of production's requests the manifest asks SageMaker to copy."""
    capture_uri: str
    thresholds: Thresholds

    @classmethod
    def of(cls, given: dict[str, Any]) -> ShadowPlan:
        limits = given["thresholds"]
        return cls(
            variant=str(given["variant"]),
            production_variant=str(given["production_variant"]),
            minutes=int(given["minutes"]),
            sampling_percent=int(given["sampling_percent"]),
            capture_uri=str(given["capture_uri"]),
            thresholds=Thresholds(
                min_requests=int(limits["min_requests"]),
                max_latency_ratio=float(limits["max_latency_ratio"]),
                max_error_rate=float(limits["max_error_rate"]),
                max_prediction_shift=float(limits["max_prediction_shift"]),
            ),
        )


def _period(start: datetime, end: datetime) -> int:
    """One period over the window: whole minutes (CloudWatch periods are multiples of 60 s)."""
    seconds = max(60, int((end - start).total_seconds()))
    return -(-seconds // 60) * 60


def measure(
    cloudwatch: Any, endpoint: str, variant: str, start: datetime, end: datetime
) -> Variant:
    """The variant's invocations, errors and average model latency over [start, end]."""
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": variant},
    ]
    period = _period(start, end)
    queries = [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dimensions},
                "Period": period,
                "Stat": "Average" if name == "ModelLatency" else "Sum",
            },
            "ReturnData": True,
        }
        for i, name in enumerate((*SUMS, "ModelLatency"))
    ]
    found: dict[str, list[float]] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start,
                                  "EndTime": end + timedelta(seconds=period)}  # fmt: skip
        if token:
            kwargs["NextToken"] = token
        answer = cloudwatch.get_metric_data(**kwargs)
        for result in answer.get("MetricDataResults", []):
            found.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
        token = answer.get("NextToken")
        if not token:
            break
    sums = [sum(found.get(f"m{i}", [])) for i in range(len(SUMS))]
    latencies = found.get(f"m{len(SUMS)}", [])
    return Variant(
        invocations=sums[0],
        errors=sums[1] + sums[2],
        latency_us=sum(latencies) / len(latencies) if latencies else None,
    )


def _hours(start: datetime, end: datetime) -> list[str]:
    hour = start.replace(minute=0, second=0, microsecond=0)
    folders = []
    while hour <= end:
        folders.append(hour.strftime("%Y/%m/%d/%H/"))
        hour += timedelta(hours=1)
    return folders


def _answers(line: str) -> list[str]:
    """The first CSV field of each row of a capture record's answer."""
    record = json.loads(line)
    output = record["captureData"]["endpointOutput"]
    data = output["data"]
    if str(output.get("encoding", "CSV")).upper() == "BASE64":
        data = base64.b64decode(data).decode("utf-8")
    return [row.split(",", 1)[0].strip() for row in str(data).splitlines() if row.strip()]


def predictions(
    s3: Any, capture_uri: str, endpoint: str, variant: str, start: datetime, end: datetime
) -> tuple[list[str], int]:
    """(the variant's captured predictions in the window, malformed lines skipped)."""
    bucket, _, prefix = capture_uri.removeprefix("s3://").partition("/")
    prefix = f"{prefix.strip('/')}/{endpoint}/{variant}/".lstrip("/")
    found: list[str] = []
    skipped = 0
    for folder in reversed(_hours(start, end)):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + folder)
        for page in pages:
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                for line in body.decode("utf-8", errors="replace").splitlines():
                    if not line.strip():
                        continue
                    try:
                        found.extend(_answers(line))
                    except (ValueError, KeyError, TypeError):
                        skipped += 1
                    if len(found) >= PREDICTIONS_PER_VARIANT:
                        return found[:PREDICTIONS_PER_VARIANT], skipped
    return found, skipped


def copied_share(verdict: Verdict, production: Variant, shadow: Variant, asked: int) -> str:
    """The share of production's requests SageMaker copied to the shadow over the window,
    beside the share asked. It judges nothing: the variant weight that sets the share is
    mlgate's reading of AWS's pages, which state no rule for it
    (https://docs.aws.amazon.com/sagemaker/latest/dg/model-shadow-deployment.html), so each
    verdict shows what SageMaker actually did."""
    if not production.invocations:
        verdict.evidence["copied_share"] = {"asked_percent": asked, "measured_percent": None}
        return f"copied share not measured: production answered no requests (asked {asked} %)"
    measured = 100 * shadow.invocations / production.invocations
    verdict.evidence["copied_share"] = {
        "asked_percent": asked,
        "measured_percent": round(measured, 2),
    }
    return f"copied {measured:.1f} % of production's requests (asked {asked} %)"


def judge_window(
    cloudwatch: Any, s3: Any, endpoint: str, plan: ShadowPlan, start: datetime, end: datetime
) -> Verdict:
    """Both variants measured over [start, end] and judged against the manifest's thresholds."""
    production = measure(cloudwatch, endpoint, plan.production_variant, start, end)
    shadow = measure(cloudwatch, endpoint, plan.variant, start, end)
    ours, bad_ours = predictions(s3, plan.capture_uri, endpoint, plan.production_variant,
                                 start, end)  # fmt: skip
    theirs, bad_theirs = predictions(s3, plan.capture_uri, endpoint, plan.variant, start, end)
    verdict = judge(production, shadow, ours, theirs, plan.thresholds)
    verdict.reasons.append(copied_share(verdict, production, shadow, plan.sampling_percent))
    verdict.evidence["window"] = {"start": start.isoformat(), "end": end.isoformat()}
    verdict.evidence["malformed_capture_lines"] = bad_ours + bad_theirs
    return verdict


# --- the Shadow stage's job -------------------------------------------------------------------


def step(
    job: Any,
    *,
    codepipeline: Any,
    s3_home: Any,
    registry: Any,
    env: Any,
    now: float,
    token: Any | None,
) -> dict[str, str]:
    """The verifier's job in a Shadow stage. First invocation: the release is checked (this
    execution's, an approved version), and the shadow variant is confirmed on the endpoint;
    the wait starts (a continuation token with `since`). Each continuation: until `minutes`
    have passed, it answers in progress; then it measures both variants over the window,
    records the verdict once (shared/shadow_record.py) and succeeds whatever the verdict: the
    deployer's next action removes the shadow variant and fails the stage unless it passed."""
    import json
    import os
    from datetime import UTC, datetime

    from shared.jobs import JobError, check_approved, read_release, succeed
    from shared.models import ShadowToken
    from shared.shadow_record import read_verdict, record_verdict

    params = job.params
    plan = ShadowPlan.of(params.shadow.model_dump())
    endpoint = params.endpoint
    if token is None:
        release = read_release(job, codepipeline, s3_home)
        check_approved(job, release, registry)
        described = env.client("sagemaker").describe_endpoint(EndpointName=endpoint)
        variants = [v.get("VariantName") for v in described.get("ShadowProductionVariants", [])]
        if described.get("EndpointStatus") != "InService" or plan.variant not in variants:
            raise JobError(
                f"{params.environment}: {endpoint} is {described.get('EndpointStatus')} with "
                f"shadow variants {variants or 'none'}, not InService with {plan.variant}: the "
                "Shadow stage's first action did not add it"
            )
        waiting = ShadowToken(endpoint=endpoint, since=int(now))
        succeed(codepipeline, job.id, continuation=waiting.model_dump_json())
        return {"result": "in_progress", "reason": f"{endpoint}: shadow test started"}
    if token.endpoint != endpoint:
        from shared.jobs import Refused

        raise Refused(job.id, f"continuationToken.endpoint: names {token.endpoint}, not this "
                      f"job's {endpoint} (not a token this action wrote)")  # fmt: skip
    ends = token.since + plan.minutes * 60
    if now < ends:
        succeed(codepipeline, job.id, continuation=job.continuation)
        left = int((ends - now) // 60) + 1
        return {"result": "in_progress", "reason": f"{endpoint}: shadow test, {left} min left"}
    table = os.environ.get("AUDIT_TABLE", "")
    known = read_verdict(table, job.execution, params.environment)
    if known is None:
        start = datetime.fromtimestamp(token.since, UTC)
        verdict = judge_window(env.client("cloudwatch"), env.client("s3"), endpoint, plan, start,
                               datetime.fromtimestamp(now, UTC))  # fmt: skip
        release = read_release(job, codepipeline, s3_home)
        version = release.model_package_arn.rsplit("/", 1)[-1]
        if table:
            record_verdict(table, job.execution, params.environment, version, verdict)
        summary, passed = verdict.summary(), verdict.passed
        evidence = json.dumps(verdict.evidence, sort_keys=True)
    else:  # a retry after the verdict was recorded: the same verdict, judged once
        summary, passed, evidence = known["summary"], known["passed"] == "true", known["evidence"]
    succeed(codepipeline, job.id, summary[:2000])
    return {"result": "succeeded", "reason": summary, "passed": str(passed).lower(),
            "evidence": evidence}  # fmt: skip
