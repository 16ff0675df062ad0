"""Quality gate hook: the automated gate between staging and the people's gates.

Compares the evidence with the manifest: the version's registered metrics against the model
metric thresholds, and staging's p99 model latency, 5xx rate and model error rate over the
last window against the SLOs. Passes or fails the CodePipeline action with a readable summary
and records the verdict in the audit trail.

Idempotent with Powertools, keyed on the CodePipeline job id (validated: its parameters): the
verdict is judged and recorded once per job; a retry after a failed report to CodePipeline
reports the stored verdict without judging or recording again.

Event: the CodePipeline job event (Powertools' CodePipelineJobEvent); UserParameters
{"endpoint", "window_minutes"}; input artifact: the release source. Environment:
MLGATE_THRESHOLDS (JSON: model_metrics [{name, threshold, direction}], slos [{name,
threshold}]), AUDIT_TABLE, RELEASE_PIPELINE, IDEMPOTENCY_TABLE.
AWS calls: s3:GetObject (artifact), cloudwatch:GetMetricData, dynamodb:PutItem (audit trail
and idempotency records), dynamodb:GetItem, dynamodb:UpdateItem, dynamodb:DeleteItem
(idempotency records), codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from shared import idempotency
from shared.audit import AuditTrail, digest
from shared.jobs import Job, JobError, fail, job_id_of, parse_job, read_release, succeed
from shared.settings import read

logger = Logger()
codepipeline = boto3.client("codepipeline")
cloudwatch = boto3.client("cloudwatch")
dynamodb = boto3.client("dynamodb")


@dataclass(frozen=True)
class Settings:
    thresholds: dict[str, Any]
    table: str
    pipeline: str


@cache
def settings() -> Settings:
    env = read("quality_gate", ("MLGATE_THRESHOLDS", "AUDIT_TABLE", "RELEASE_PIPELINE"))
    return Settings(
        thresholds=json.loads(env["MLGATE_THRESHOLDS"]),
        table=env["AUDIT_TABLE"],
        pipeline=env["RELEASE_PIPELINE"],
    )


def _met(value: float, threshold: float, direction: str) -> bool:
    return value >= threshold if direction == "at_least" else value <= threshold


def staging_figures(
    cloudwatch: Any, endpoint: str, minutes: int, now: datetime
) -> dict[str, float | None]:
    dims = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]

    def metric(id_: str, name: str, stat: str) -> dict[str, Any]:
        return {
            "Id": id_,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": dims},
                "Period": minutes * 60,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            metric("latency", "ModelLatency", "p99"),
            metric("invocations", "Invocations", "Sum"),
            metric("errors5xx", "Invocation5XXErrors", "Sum"),
            metric("modelerrors", "InvocationModelErrors", "Sum"),
        ],
        StartTime=now - timedelta(minutes=minutes),
        EndTime=now,
    )["MetricDataResults"]
    values = {r["Id"]: (r["Values"][0] if r["Values"] else None) for r in result}
    invocations = values.get("invocations") or 0.0
    latency = values.get("latency")
    return {
        "latency_p99_ms": latency / 1000 if latency is not None else None,
        "error_rate_5xx": (values.get("errors5xx") or 0.0) / invocations if invocations else None,
        "invocation_error_rate": (values.get("modelerrors") or 0.0) / invocations
        if invocations
        else None,
    }


def judge(
    release: dict[str, Any], thresholds: dict[str, Any], figures: dict[str, float | None]
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
    for slo in thresholds["slos"]:
        value = figures.get(slo["name"])
        if value is None:
            ok = False
            lines.append(f"FAIL {slo['name']}: no staging traffic in the window to judge it")
            continue
        passed = value <= float(slo["threshold"])
        ok &= passed
        verdict = "PASS" if passed else "FAIL"
        lines.append(f"{verdict} staging {slo['name']} {value:.4g} (SLO <= {slo['threshold']})")
    return ok, lines


CONFIG = idempotency.config("id", "params", hours=24)


@idempotency.once(data="job", config=CONFIG, prefix="quality_gate")
def verdict(*, job: dict[str, Any], now: str) -> dict[str, Any]:
    """Judge the release and record the verdict, once per job."""
    config = settings()
    current = Job(**job)
    release = read_release(current)
    minutes = int(current.params.get("window_minutes", 60))
    figures = staging_figures(
        cloudwatch, current.params["endpoint"], minutes, datetime.fromisoformat(now)
    )
    ok, lines = judge(release, config.thresholds, figures)
    summary = ("Quality gate passed: " if ok else "Quality gate failed: ") + "; ".join(lines)
    AuditTrail(dynamodb, config.table).record(
        pipeline=config.pipeline,
        execution=current.params.get("execution", current.id),
        event="quality-gate",
        gate="quality-gate",
        key=current.id,
        who="mlgate quality gate",
        decision="Passed" if ok else "Failed",
        model_version=str(release.get("model_version", "")),
        evidence_sha256=digest({"release": release, "figures": figures}),
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
