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
  second), with EndpointName/VariantName (the dashboards' series: every request of the variant,
  both fleets during a rollout). A container's non-2xx is a model error; its status decides
  4XX or 5XX. During a blue/green rollout each fleet's requests are also a series of their own
  with EndpointConfigName added, the fleet's endpoint config, as the deployment guardrails'
  alarms on one fleet select it
  (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html);
- an asynchronous endpoint publishes no Invocations nor InvocationModelErrors
  (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html): its
  requests are InvocationsProcessed and its failures InvocationFailures (EndpointName/
  VariantName), and its queue, from the requests the rehearsal queued, is
  ApproximateBacklogSize and ApproximateAgeOfOldestRequest (seconds) with EndpointName only,
  a point at each request queued or processed;
- a serverless endpoint's cold starts: ModelSetupTime (microseconds, EndpointName/
  VariantName), one point per first request after a release, the container's load measured
  in-process
  (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-monitoring.html);
- the evaluation's model metrics: namespace mlgate/evaluation, the metric's name, dimension
  Product (one point, when training evaluated the version);
- business KPIs where the product declares a stand-in for them (metrics.business_kpis
  stand_in): the KPI's namespace and metric_name with Product/Environment, as the dashboard's
  KPI widget reads them, one point per scored batch (offline, from the held-out split).
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


def endpoint_series(
    invocations: list[Any],
    modes: dict[str, str] | None = None,
    components: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The endpoint's metrics from the local endpoint's requests; `modes`: each endpoint's
    serving mode (an async endpoint's requests count as InvocationsProcessed); `components`:
    the inference component an endpoint hosts, whose invocation metrics SageMaker publishes by
    InferenceComponentName (https://docs.aws.amazon.com/sagemaker/latest/dg/
    monitoring-cloudwatch.html#cloudwatch-metrics-inference-component)."""
    modes, components = modes or {}, components or {}
    out: list[dict[str, Any]] = []
    by_variant: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for i in invocations:
        by_variant[(i.endpoint, i.variant, "")].append(i)
        if getattr(i, "fleet", ""):
            by_variant[(i.endpoint, i.variant, i.fleet)].append(i)
    for (endpoint, variant, fleet), calls in by_variant.items():
        # A fleet's series (the rollout's blue and green, tools/rehearsal_canary.py) stay per
        # endpoint and variant; a component's requests in all are per component.
        dimensions = (
            {"InferenceComponentName": components[endpoint]}
            if endpoint in components and not fleet
            else {"EndpointName": endpoint, "VariantName": variant}
        )
        if fleet:
            dimensions["EndpointConfigName"] = fleet

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
        queued = modes.get(endpoint) == "async"
        requests, failures = (
            ("InvocationsProcessed", "InvocationFailures")
            if queued
            else ("Invocations", "InvocationModelErrors")
        )
        for i in calls:
            second = _iso(int(i.at))
            counts[requests][second] += 1
            counts[failures][second] += i.status != 200
            counts["Invocation4XXErrors"][second] += 400 <= i.status < 500
            counts["Invocation5XXErrors"][second] += i.status >= 500
        for name, per_second in counts.items():
            out.append(series(name, "Count", [[t, v] for t, v in sorted(per_second.items())]))
    return out


def queue_series(queued: list[Any]) -> list[dict[str, Any]]:
    """An asynchronous endpoint's queue, per endpoint (no VariantName): at each moment a
    request was queued or processed, the requests waiting and the oldest one's age."""
    out: list[dict[str, Any]] = []
    by_endpoint: dict[str, list[Any]] = defaultdict(list)
    for q in queued:
        by_endpoint[q.endpoint].append(q)
    for endpoint, requests in by_endpoint.items():
        moments = sorted({q.queued_at for q in requests} | {q.done_at for q in requests
                                                            if q.done_at is not None})  # fmt: skip
        backlog, age = [], []
        for t in moments:
            waiting = [q.queued_at for q in requests
                       if q.queued_at <= t and (q.done_at is None or q.done_at > t)]  # fmt: skip
            backlog.append([_iso_precise(t), float(len(waiting))])
            age.append([_iso_precise(t), round(t - min(waiting), 3) if waiting else 0.0])
        for name, unit, points in (
            ("ApproximateBacklogSize", "Count", backlog),
            ("ApproximateAgeOfOldestRequest", "Seconds", age),
        ):
            out.append({"namespace": ENDPOINT_NAMESPACE, "name": name,
                        "dimensions": {"EndpointName": endpoint}, "unit": unit,
                        "points": points})  # fmt: skip
    return out


def cold_start_series(cold_starts: list[Any], variant: str) -> list[dict[str, Any]]:
    """A serverless endpoint's ModelSetupTime: one point per cold start."""
    by_endpoint: dict[str, list[Any]] = defaultdict(list)
    for c in cold_starts:
        by_endpoint[c.endpoint].append(c)
    return [
        {"namespace": ENDPOINT_NAMESPACE, "name": "ModelSetupTime",
         "dimensions": {"EndpointName": endpoint, "VariantName": variant},
         "unit": "Microseconds", "points": [[_iso(c.at), round(c.setup_us, 1)] for c in starts]}
        for endpoint, starts in by_endpoint.items()
    ]  # fmt: skip


def _iso_precise(moment: float) -> str:
    """A moment to the millisecond: a queue fills and drains within a second here."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def document(rehearsal: Any) -> dict[str, Any]:
    """The metrics.json of a Rehearsal (tools/rehearsal.py), whatever step it reached."""
    manifest = rehearsal.manifest
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    metrics = published_series(rehearsal.metrics.published, generated)
    metrics += published_series(getattr(rehearsal, "kpi_points", []), generated)
    endpoint = getattr(rehearsal, "endpoint", None)
    modes = {name: endpoint.mode(name) for name in endpoint.modes} if endpoint else {}
    metrics += endpoint_series(rehearsal.host.invocations, modes, rehearsal.endpoint.components)
    if endpoint is not None:
        metrics += queue_series(endpoint.queue)
        metrics += cold_start_series(endpoint.cold_starts, "AllTraffic")
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
