"""The CloudWatch data of one product's rehearsal, as JSON for the dashboard previews:
`reports/rehearsal/<product>/metrics.json`, written at the end of each product's rehearsal.

Format (a contract with the preview; keep it):
  {"product": str, "generated": iso8601,
   "metrics": [{"namespace": str, "name": str, "dimensions": {str: str}, "unit": str | null,
                "points": [[iso8601, float], ...]}],
   "alarms": [{"name": str, "history": [[iso8601, "OK" | "ALARM" | "INSUFFICIENT_DATA",
                                         reason]]}],
   "moments": [{"time": iso8601, "kind": "release" | "canary" | "rollback" | "drift" | "retrain",
                "label": str, "environment": str}]}

Series, named as the synthesized dashboards and alarms name them:
- every PutMetricData of the run (the monitoring job's, in the product's monitoring namespace
  with Product/Environment, e.g. drifted_feature_share: one point per monitoring run);
- the endpoint's, from the requests the local endpoint answered (tools/local_endpoint.py):
  AWS/SageMaker ModelLatency (microseconds, one point per request, measured in-process),
  Invocations, Invocation4XXErrors, Invocation5XXErrors and InvocationModelErrors (counts per
  second), with EndpointName/VariantName. A container's non-2xx is a model error; its status
  decides 4XX or 5XX;
- the evaluation's model metrics: namespace mlgate/evaluation, the metric's name, dimension
  Product (one point, when training evaluated the version);
- business KPIs only where the product declares stand-ins for them (none of the examples
  does: KPIs come from the product's own systems).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

ENDPOINT_NAMESPACE = "AWS/SageMaker"
EVALUATION_NAMESPACE = "mlgate/evaluation"


def _iso(moment: Any) -> str:
    if isinstance(moment, datetime):
        stamp = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return stamp.isoformat(timespec="seconds")
    return datetime.fromtimestamp(float(moment), UTC).isoformat(timespec="seconds")


def published_series(calls: list[dict[str, Any]], fallback: str) -> list[dict[str, Any]]:
    """PutMetricData calls as series: one per namespace, name and dimensions."""
    series: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
    for call in calls:
        for datum in call.get("MetricData", []):
            dimensions = tuple(sorted((d["Name"], d["Value"]) for d in datum.get("Dimensions", [])))
            key = (call["Namespace"], datum["MetricName"], dimensions)
            entry = series.setdefault(key, {
                "namespace": key[0], "name": key[1], "dimensions": dict(dimensions),
                "unit": datum.get("Unit"), "points": [],
            })  # fmt: skip
            when = _iso(datum["Timestamp"]) if "Timestamp" in datum else fallback
            values = datum.get("Values") or [datum.get("Value")]
            entry["points"] += [[when, float(v)] for v in values if v is not None]
    return list(series.values())


def endpoint_series(invocations: list[Any]) -> list[dict[str, Any]]:
    """The endpoint's metrics from the local endpoint's requests."""
    out: list[dict[str, Any]] = []
    by_variant: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for i in invocations:
        by_variant[(i.endpoint, i.variant)].append(i)
    for (endpoint, variant), calls in by_variant.items():
        dimensions = {"EndpointName": endpoint, "VariantName": variant}

        def series(
            name: str, unit: str, points: list[list[Any]], dims: dict[str, str] = dimensions
        ) -> dict[str, Any]:
            return {"namespace": ENDPOINT_NAMESPACE, "name": name, "dimensions": dims,
                    "unit": unit, "points": points}  # fmt: skip

        out.append(
            series(
                "ModelLatency",
                "Microseconds",
                [[_iso(i.at), round(i.latency_us, 1)] for i in calls if i.status == 200],
            )
        )
        counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for i in calls:
            second = _iso(int(i.at))
            counts["Invocations"][second] += 1
            counts["InvocationModelErrors"][second] += i.status != 200
            counts["Invocation4XXErrors"][second] += 400 <= i.status < 500
            counts["Invocation5XXErrors"][second] += i.status >= 500
        for name, per_second in counts.items():
            out.append(series(name, "Count", [[t, v] for t, v in sorted(per_second.items())]))
    return out


def document(rehearsal: Any) -> dict[str, Any]:
    """The metrics.json of a Rehearsal (tools/rehearsal.py), whatever step it reached."""
    manifest = rehearsal.manifest
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    metrics = published_series(rehearsal.metrics.published, generated)
    metrics += endpoint_series(rehearsal.host.invocations)
    evaluated = getattr(rehearsal, "evaluated_at", generated)
    for name, value in rehearsal.evaluation.items():
        metrics.append({
            "namespace": EVALUATION_NAMESPACE, "name": name,
            "dimensions": {"Product": manifest.product.name}, "unit": None,
            "points": [[evaluated, float(value)]],
        })  # fmt: skip
    return {
        "product": manifest.product.name,
        "generated": generated,
        "metrics": metrics,
        "alarms": [{"name": n, "history": h} for n, h in rehearsal.alarms.items()],
        "moments": sorted(rehearsal.moments, key=lambda m: m["time"]),
    }
