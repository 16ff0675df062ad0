"""The Evidently monitoring job's command line (docs/monitoring.md), computed from the manifest.

Free of CDK, so the rehearsal and the tests build the job's arguments as the Monitoring stack
does without starting jsii's Node runtime (about 1.5 s a process)."""

from __future__ import annotations

from mlgate.manifest import NUMERIC_TYPES, EnvName, Manifest
from mlgate.ml.pipeline import PROCESSING
from mlgate.naming import Names
from mlgate.schedules import schedule_interval_hours

REPORT_DIR = f"{PROCESSING}/report"


def payload_feature(manifest: Manifest, column: str) -> str | None:
    """The schema feature a payload column carries: itself, or the string feature it is a
    one-hot column of (`name=value`, or `name_value` in a product's own layout), the longest
    such name when several match."""
    if column in manifest.features:
        return column
    owners = [f for f in manifest.features if column.startswith((f"{f}=", f"{f}_"))]
    return max(owners, key=len) if owners else None


def job_arguments(manifest: Manifest, env: EnvName, *, capture_uri: str) -> list[str]:
    """The job's command line (docs/monitoring.md), from the manifest: the payload's columns in
    order, the categorical ones typed, the drift thresholds, the window of one schedule
    interval, and, with ground truth, the model metrics to compute."""
    names = Names.of(manifest, env)
    monitoring = manifest.monitoring
    columns = list(manifest.payload_columns)
    categorical = [
        c
        for c in columns
        if c in manifest.features and manifest.data.curated.column(c).type not in NUMERIC_TYPES
    ]
    thresholds = {
        c: monitoring.feature_drift_thresholds[feature]
        for c in columns
        if (feature := payload_feature(manifest, c)) in monitoring.feature_drift_thresholds
    }
    args = [
        "--capture-dir", f"{PROCESSING}/capture",
        "--baseline", f"{PROCESSING}/baseline/baseline.csv",
        "--features", ",".join(columns),
        "--window-hours", str(schedule_interval_hours(monitoring.schedule)),
        "--drift-threshold", str(monitoring.drift_threshold),
        "--report-dir", REPORT_DIR,
        "--capture-s3-uri", capture_uri,
        "--release-parameter", names.live_release_parameter("model-package"),
        "--namespace", names.monitoring_namespace(),
        "--dimensions", f"Product={manifest.product.name},Environment={env}",
        "--publish",
    ]  # fmt: skip
    if categorical:
        args += ["--feature-types", ",".join(f"{c}:cat" for c in categorical)]
    if thresholds:
        args += ["--feature-thresholds", ",".join(f"{c}={v}" for c, v in thresholds.items())]
    if monitoring.ground_truth_s3_uri:
        args += [
            "--ground-truth-dir", f"{PROCESSING}/ground-truth",
            "--ground-truth-s3-uri", monitoring.ground_truth_s3_uri,
            "--ground-truth-delay-hours", str(monitoring.ground_truth_delay_hours),
            "--problem-type", manifest.model.problem_type.value,
            "--metrics", ",".join(m.name.value for m in manifest.metrics.model_metrics),
        ]  # fmt: skip
    return args
