"""Quality gate hook: the automated gate between staging and the people's gates.

Compares the evidence with the manifest: the version's registered metrics against the model
metric thresholds, and staging's p99 model latency, 5xx rate and model error rate over the
last window against the SLOs. Passes or fails the CodePipeline action with a readable summary
and records the verdict in the audit trail.

Event: the CodePipeline job event; UserParameters {"endpoint", "window_minutes"}; input
artifact: the release source. Environment: MLGATE_THRESHOLDS (JSON: model_metrics [{name,
threshold, direction}], slos [{name, threshold}]), AUDIT_TABLE, RELEASE_PIPELINE.
AWS calls: s3:GetObject (artifact), cloudwatch:GetMetricData, dynamodb:PutItem,
codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from shared.audit import AuditTrail, digest
from shared.jobs import JobError, fail, parse_job, read_release, succeed

logger = Logger()
codepipeline = boto3.client("codepipeline")


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


def handler(event: dict[str, Any], context: Any, now: datetime | None = None) -> dict[str, str]:
    try:
        job = parse_job(event, required=("endpoint",))
        release = read_release(job)
        thresholds = json.loads(os.environ["MLGATE_THRESHOLDS"])
    except (JobError, KeyError, json.JSONDecodeError) as err:
        reason = f"quality gate cannot run: {err}"
        job_id = event.get("CodePipeline.job", {}).get("id") if isinstance(event, dict) else None
        if job_id:
            fail(codepipeline, str(job_id), reason)
        return {"result": "failed", "reason": reason}
    minutes = int(job.params.get("window_minutes", 60))
    figures = staging_figures(
        boto3.client("cloudwatch"), job.params["endpoint"], minutes, now or datetime.now(UTC)
    )
    ok, lines = judge(release, thresholds, figures)
    summary = ("Quality gate passed: " if ok else "Quality gate failed: ") + "; ".join(lines)
    AuditTrail(boto3.client("dynamodb"), os.environ.get("AUDIT_TABLE", "")).record(
        pipeline=os.environ.get("RELEASE_PIPELINE", ""),
        execution=job.params.get("execution", job.id),
        event="quality-gate",
        gate="quality-gate",
        who="mlgate quality gate",
        decision="Passed" if ok else "Failed",
        model_version=str(release.get("model_version", "")),
        evidence_sha256=digest({"release": release, "figures": figures}),
        detail=summary,
    )
    (succeed if ok else fail)(codepipeline, job.id, summary)
    return {"result": "succeeded" if ok else "failed", "reason": summary}
