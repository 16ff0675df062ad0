"""The job's figures as CloudWatch metrics, in the product's namespace.

Each metric carries the run's dimensions (e.g. Product, Environment); per-feature metrics add
a Feature dimension. Missing, NaN and infinite values are left out: CloudWatch rejects NaN
and infinity.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

MAX_METRICS_PER_CALL = 1000
"""PutMetricData takes at most 1000 metrics in one request (API reference above)."""


def datums(
    summary: Mapping[str, Any], dimensions: Mapping[str, str], timestamp: datetime
) -> list[dict[str, Any]]:
    """MetricData entries for a run summary (the shape run.py writes to summary.json)."""
    base = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    out: list[dict[str, Any]] = []

    def add(
        name: str, value: float | None, unit: str, extra: Sequence[dict[str, str]] = ()
    ) -> None:
        if value is not None and math.isfinite(value):
            out.append(
                {
                    "MetricName": name,
                    "Dimensions": [*base, *extra],
                    "Timestamp": timestamp,
                    "Value": float(value),
                    "Unit": unit,
                }
            )

    drift = summary.get("drift")
    if drift:
        overall = drift["overall"]
        add("drifted_feature_share", overall["drifted_share"], "None")
        add("drift_detected", 1.0 if overall["drift_detected"] else 0.0, "None")
        add("captured_rows", overall["rows"], "Count")
        for feature, figures in drift["features"].items():
            tag = [{"Name": "Feature", "Value": feature}]
            add("feature_drift_score", figures["drift_score"], "None", tag)
            add("missing_value_share", figures["missing_share"], "None", tag)
            add("out_of_range_share", figures["out_of_range_share"], "None", tag)
    quality = summary.get("quality")
    if quality:
        add("labelled_rows", quality["rows"], "Count")
        for metric, value in quality["metrics"].items():
            add(f"model_{metric}", value, "None")
    add("malformed_records", summary["capture"]["malformed"], "Count")
    return out


def batches(data: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(data), MAX_METRICS_PER_CALL):
        yield data[start : start + MAX_METRICS_PER_CALL]


def publish(client: Any, namespace: str, data: Sequence[dict[str, Any]]) -> int:
    """PutMetricData in batches the API accepts; returns the number of calls made."""
    calls = 0
    for batch in batches(data):
        client.put_metric_data(Namespace=namespace, MetricData=list(batch))
        calls += 1
    return calls
