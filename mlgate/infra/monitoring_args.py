"""The Evidently monitoring job's command lines (docs/monitoring.md), computed from the manifest.

`job_arguments`: the whole job in one process (run.py fetches, judges and publishes), as the
rehearsal runs it. `step_arguments`: the same run as the deployed pipeline's three steps, stage
(network, no third-party code), monitor (Evidently, network isolation) and publish.

Free of CDK, so the rehearsal and the tests build the job's arguments as the Monitoring stack
does without starting jsii's Node runtime (about 1.5 s a process).

A batch environment (Manifest.is_batch) has no capture: its job reads the runs' transform output
(`--source batch`, `--capture-s3-uri` = `batch_predictions_uri`)."""

from __future__ import annotations

from mlgate.infra.ml.pipeline import PROCESSING
from mlgate.infra.naming import Names
from mlgate.manifest import NUMERIC_TYPES, EnvName, Manifest
from mlgate.manifest.schedules import schedule_interval_hours

REPORT_DIR = f"{PROCESSING}/report"
STAGED_DIR = f"{PROCESSING}/staged"
"""Where the stage step writes the run's inputs and the monitor step reads them (the same
path in both containers: Processing uploads the one and downloads it into the other)."""
STAGED_ONLY = ("--capture-s3-uri", "--release-parameter", "--ground-truth-s3-uri")
"""What the stage step fetches with, and the isolated monitor step never sees."""
PUBLISH_ONLY = ("--namespace", "--dimensions")


def predictions_prefix(env: EnvName) -> str:
    """Where a batch environment's scheduled runs write their predictions in its artifact
    bucket: the batch_run hook's layout (mlgate/runtime/hooks/shared/batch.py predictions_prefix,
    which infra cannot import as the Lambda asset does; a test holds the two equal)."""
    return f"batch/{env}/predictions/"


def batch_predictions_uri(artifacts_bucket: str, env: EnvName) -> str:
    """What a batch environment's monitor reads instead of capture."""
    return f"s3://{artifacts_bucket}/{predictions_prefix(env)}"


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
    interval, and, with ground truth, the model metrics to compute. For a batch environment
    `capture_uri` is its predictions prefix (batch_predictions_uri) and the job reads it as
    `--source batch`."""
    names = Names.of(manifest, env)
    batch = manifest.is_batch(env)
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
    if batch:
        args += ["--source", "batch"]
    if categorical:
        args += ["--feature-types", ",".join(f"{c}:cat" for c in categorical)]
    groups = {
        c: feature
        for c in columns
        if (feature := payload_feature(manifest, c)) is not None and feature != c
    }
    if groups:
        args += ["--feature-of", ",".join(f"{c}={f}" for c, f in groups.items())]
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


def _without(args: list[str], options: tuple[str, ...], flags: tuple[str, ...] = ()) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif arg not in flags:
            out.append(arg)
    return out


def _value(args: list[str], option: str) -> str | None:
    return args[args.index(option) + 1] if option in args else None


def step_arguments(
    manifest: Manifest, env: EnvName, *, capture_uri: str, released_uri: str
) -> dict[str, list[str]]:
    """The deployed pipeline's steps' command lines: `stage` (stage.py), `monitor` (run.py on
    what stage staged, under network isolation) and `publish` (publish.py). `released_uri` is
    s3://<home artifacts bucket>/<Names.released_prefix()>, where the live version's baseline
    dataset was copied when it was released."""
    whole = job_arguments(manifest, env, capture_uri=capture_uri)
    stage = [
        "--capture-s3-uri", capture_uri,
        "--release-parameter", str(_value(whole, "--release-parameter")),
        "--released-uri", released_uri,
        "--window-hours", str(_value(whole, "--window-hours")),
        "--out-dir", STAGED_DIR,
    ]  # fmt: skip
    if manifest.is_batch(env):
        stage += ["--source", "batch"]
    monitor = _without(whole, STAGED_ONLY + PUBLISH_ONLY, flags=("--publish",))
    local = {
        "--capture-dir": f"{STAGED_DIR}/capture",
        "--baseline": f"{STAGED_DIR}/baseline/baseline.csv",
        "--ground-truth-dir": f"{STAGED_DIR}/ground-truth",
    }
    monitor = [local.get(monitor[i - 1], a) if i else a for i, a in enumerate(monitor)]
    monitor += ["--release-file", f"{STAGED_DIR}/release.json"]
    if manifest.monitoring.ground_truth_s3_uri:
        stage += [
            "--ground-truth-s3-uri", manifest.monitoring.ground_truth_s3_uri,
            "--ground-truth-delay-hours", str(manifest.monitoring.ground_truth_delay_hours),
        ]  # fmt: skip
    publish = [
        "--summary", f"{REPORT_DIR}/summary.json",
        "--namespace", str(_value(whole, "--namespace")),
        "--dimensions", str(_value(whole, "--dimensions")),
    ]  # fmt: skip
    return {"stage": stage, "monitor": monitor, "publish": publish}
