"""Entry point of the monitoring job: `python run.py --capture-dir ... --baseline ...`.

Runs as a SageMaker Processing job in the prebuilt scikit-learn image, in script mode: this
folder is the job's source dir and its requirements.txt is installed when the job starts (see
the package docstring). `main(argv)` is the same job in-process, for tests and the rehearsal.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and not __package__:
    # Script mode runs `python run.py` inside the source dir, whatever that folder is called
    # (/opt/ml/processing/input/code): load the folder as a package under a name of our own so
    # the job's relative imports work there as they do in the tests, then run this module in it.
    import importlib.util
    import runpy
    from pathlib import Path

    _here = Path(__file__).resolve().parent
    _spec = importlib.util.spec_from_file_location(
        "monitoring_job", _here / "__init__.py", submodule_search_locations=[str(_here)]
    )
    if _spec is None or _spec.loader is None:
        raise ImportError(f"cannot load {_here} as a package")
    sys.modules["monitoring_job"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["monitoring_job"])
    runpy.run_module("monitoring_job.run", run_name="__main__", alter_sys=True)
    sys.exit(0)

import argparse
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from . import capture, cloudwatch, drift, quality, sources, window

log = logging.getLogger("monitoring_job")
NO_RELEASE_PAGE = (
    "<!doctype html><title>No model released</title>"
    "<p>The endpoint serves no released version yet: nothing to monitor."
)
NO_TRAFFIC_PAGE = (
    "<!doctype html><title>No {title}</title>"
    "<p>No {what} between {start} and {end}: nothing to compare with the baseline."
)
SOURCES = {
    "capture": ("captured traffic", "captured requests"),
    "batch": ("batch predictions", "batch run's predictions written"),
}
"""--source: an endpoint's data capture, or a batch environment's transform output (the empty
window's page title and words)."""
SAMPLE_NOTICE = (
    '<div style="padding:8px 16px;background:#fff4d6;font-family:sans-serif">'
    "Evidently compared a uniform sample of {rows:,} of the window's {window_rows:,} rows "
    "(seed {seed}). Sampling error at {confidence:.0%}: each feature's distribution in the "
    "sample is within {cdf_error:.4f} of the window's (largest CDF gap, DKW inequality); "
    "summary.json bounds each drift score's error (score_error) and holds the missing and "
    "out-of-range shares over all rows. The data checks below are the sample's.</div>"
)


def _pairs(text: str, sep: str, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, found, value = item.partition(sep)
        if not found or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"{what} '{item}' is not name{sep}value")
        pairs[key.strip()] = value.strip()
    return pairs


def _groups(text: str) -> dict[str, str]:
    """column=feature pairs; a one-hot column's own name holds '=' (`colour=red`), a feature's
    name never does, so each pair splits at its last '='."""
    groups: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        column, found, feature = item.rpartition("=")
        if not found or not column.strip() or not feature.strip():
            raise argparse.ArgumentTypeError(f"feature group '{item}' is not column=feature")
        groups[column.strip()] = feature.strip()
    return groups


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = p.add_argument_group("data")
    data.add_argument(
        "--capture-dir",
        type=Path,
        required=True,
        help="folder of capture .jsonl (--source capture) or batch output .out (--source batch)",
    )
    data.add_argument(
        "--source",
        choices=tuple(SOURCES),
        default="capture",
        help="what --capture-dir holds: an endpoint's data capture, or a batch environment's "
        "transform output (id,<features...>,<prediction> lines)",
    )
    data.add_argument("--baseline", type=Path, required=True, help="baseline CSV with header")
    data.add_argument("--features", type=_names, required=True, help="names in payload order")
    data.add_argument(
        "--feature-types",
        type=lambda t: _pairs(t, ":", "feature type"),
        default={},
        help="name:num|cat, comma-separated; unlisted features are numeric",
    )
    data.add_argument("--window-hours", type=float, default=1.0)
    data.add_argument("--now", type=_time, default=None, help="ISO time; default: now (UTC)")
    thresholds = p.add_argument_group("thresholds")
    thresholds.add_argument(
        "--drift-threshold",
        type=float,
        default=0.1,
        help="drift is declared when the share of drifted features is above this",
    )
    data.add_argument(
        "--feature-of",
        type=_groups,
        default={},
        help="column=feature, comma-separated: the feature a one-hot column carries (drift is "
        "shared over features); an unlisted column is a feature of its own",
    )
    thresholds.add_argument(
        "--feature-thresholds",
        type=lambda t: _pairs(t, "=", "feature threshold"),
        default={},
        help=f"name=score overrides of the feature threshold [{drift.DEFAULT_FEATURE_THRESHOLD}]",
    )
    volume = p.add_argument_group("volume")
    volume.add_argument(
        "--sample-rows",
        type=int,
        default=window.SAMPLE_ROWS,
        help="rows of the window Evidently compares (a uniform sample when the window has more; "
        "the shares are counted over all rows), and distinct ids model quality keeps",
    )
    volume.add_argument(
        "--chunk-records",
        type=int,
        default=capture.CHUNK_RECORDS,
        help="capture records read at a time",
    )
    volume.add_argument("--sample-seed", type=int, default=window.SEED)
    truth = p.add_argument_group("model quality (optional)")
    truth.add_argument("--ground-truth-dir", type=Path, default=None)
    truth.add_argument("--ground-truth-delay-hours", type=float, default=24.0)
    truth.add_argument("--problem-type", choices=quality.PROBLEM_TYPES, default=None)
    truth.add_argument("--metrics", type=_names, default=[])
    truth.add_argument("--probability-threshold", type=float, default=0.5)
    fetched = p.add_argument_group(
        "S3 sources (deployed: the job fetches its windows into --capture-dir, --baseline and "
        "--ground-truth-dir)"
    )
    fetched.add_argument("--capture-s3-uri", default=None, help="the endpoint variant's capture")
    fetched.add_argument(
        "--release-parameter", default=None, help="SSM parameter: the live model package ARN"
    )
    fetched.add_argument("--ground-truth-s3-uri", default=None)
    fetched.add_argument(
        "--release-file",
        type=Path,
        default=None,
        help="staged: stage.py's release.json (the live version and the windows' end), for a "
        "run whose inputs the stage step fetched",
    )
    out = p.add_argument_group("outputs")
    out.add_argument("--report-dir", type=Path, required=True)
    out.add_argument("--namespace", default=None, help="CloudWatch namespace (with --publish)")
    out.add_argument(
        "--dimensions", type=lambda t: _pairs(t, "=", "dimension"), default={}, help="Name=value"
    )
    out.add_argument("--publish", action="store_true", help="put the metrics to CloudWatch")
    return p


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    undeclared = sorted(set(args.feature_types) - set(args.features))
    wrong = {k: v for k, v in args.feature_types.items() if v not in ("num", "cat")}
    if undeclared:
        p.error(f"--feature-types names unknown features: {', '.join(undeclared)}")
    if wrong:
        p.error(f"--feature-types takes num or cat, not {wrong}")
    if args.ground_truth_dir is not None:
        if args.problem_type is None or not args.metrics:
            p.error("--ground-truth-dir needs --problem-type and --metrics")
        try:
            quality.check_metrics(args.problem_type, args.metrics)
        except ValueError as err:
            p.error(str(err))
    if bool(args.capture_s3_uri) != bool(args.release_parameter):
        p.error("--capture-s3-uri and --release-parameter go together")
    if args.release_file is not None and args.capture_s3_uri:
        p.error("--release-file is for inputs already staged: not with --capture-s3-uri")
    if args.ground_truth_s3_uri and args.ground_truth_dir is None:
        p.error("--ground-truth-s3-uri needs --ground-truth-dir, where it is fetched to")
    if args.publish and not args.namespace:
        p.error("--publish needs --namespace")
    if args.sample_rows < 1 or args.chunk_records < 1:
        p.error("--sample-rows and --chunk-records take a positive number")
    try:
        args.feature_thresholds = {k: float(v) for k, v in args.feature_thresholds.items()}
    except ValueError as err:
        p.error(f"--feature-thresholds: {err}")
    return args


def _baseline(path: Path, features: list[str], categorical: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=dict.fromkeys(categorical, str))
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(f"baseline {path} has no column(s) {', '.join(missing)}")
    return capture.typed(frame[features], categorical)


def _within(events: pd.DataFrame, start: datetime, end: datetime) -> pd.Series:
    """Rows whose inferenceTime is in (start, end]."""
    times = events["inference_time"]
    return (times > pd.Timestamp(start)) & (times <= pd.Timestamp(end))


def _state_sample(report: Path, sample: dict[str, Any]) -> None:
    """Say at the top of Evidently's page that it shows a sample, and its error."""
    html = report.read_text()
    at = html.find(">", html.lower().find("<body")) + 1
    report.write_text(html[:at] + SAMPLE_NOTICE.format(**sample) + html[at:])


def _fetch(args: argparse.Namespace, now: datetime, clients: dict[str, Any] | None) -> bool:
    """Fetch the S3 sources into the local paths; False when no version is released yet."""
    import boto3

    aws = clients or {name: boto3.client(name) for name in ("s3", "ssm", "sagemaker")}
    baseline = sources.live_baseline(aws["ssm"], aws["sagemaker"], args.release_parameter)
    if baseline is None:
        return False
    sources.fetch_baseline(aws["s3"], baseline, args.baseline)
    span = timedelta(hours=args.window_hours)
    delay = timedelta(hours=args.ground_truth_delay_hours)
    earliest = now - span - (delay if args.ground_truth_dir is not None else timedelta(0))
    if args.source == "batch":
        count = sources.fetch_written(
            aws["s3"], args.capture_s3_uri, earliest, now, args.capture_dir
        )
    else:
        count = sources.fetch_hours(aws["s3"], args.capture_s3_uri, earliest, now, args.capture_dir)
    log.info("fetched %d %s file(s) and the baseline %s", count, args.source, baseline)
    if args.ground_truth_s3_uri:
        # A label lands up to `delay` after its inference: the due window's labels were
        # uploaded between the window's start and now.
        sources.fetch_hours(
            aws["s3"], args.ground_truth_s3_uri, earliest, now, args.ground_truth_dir
        )
    return True


def _stream(
    args: argparse.Namespace, categorical: list[str]
) -> capture.CaptureStream | capture.BatchStream:
    """The chunked reader of --capture-dir for --source: both yield `capture.Captured`."""
    if args.source == "batch":
        return capture.BatchStream(
            capture.batch_outputs(args.capture_dir),
            args.features,
            categorical,
            args.chunk_records,
        )
    return capture.CaptureStream(
        capture.jsonl_files(args.capture_dir), args.features, categorical, args.chunk_records
    )


def main(
    argv: list[str] | None = None,
    cloudwatch_client: Any = None,
    clients: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the job; returns the summary it writes to report-dir/summary.json. `clients`
    (s3, ssm, sagemaker) fetch the S3 sources; default: boto3's."""
    args = _arguments(argv)
    staged = json.loads(args.release_file.read_text()) if args.release_file else None
    now = args.now or (_time(staged["now"]) if staged else datetime.now(UTC))
    span = timedelta(hours=args.window_hours)
    args.capture_dir.mkdir(parents=True, exist_ok=True)
    if args.ground_truth_dir is not None:
        args.ground_truth_dir.mkdir(parents=True, exist_ok=True)
    released = (
        staged["model_package"] is not None
        if staged
        else not args.capture_s3_uri or _fetch(args, now, clients)
    )
    if not released:
        log.warning("no model version is released: nothing to monitor")
        args.report_dir.mkdir(parents=True, exist_ok=True)
        (args.report_dir / "report.html").write_text(NO_RELEASE_PAGE)
        nothing: dict[str, Any] = {"window": None, "capture": None, "drift": None, "quality": None}
        (args.report_dir / "summary.json").write_text(json.dumps(nothing, indent=2))
        return nothing
    categorical = [f for f in args.features if args.feature_types.get(f) == "cat"]
    reference = _baseline(args.baseline, args.features, categorical)
    start, end = now - span, now
    delay = timedelta(hours=args.ground_truth_delay_hours)
    # One pass over the capture, a chunk at a time: the drift window's exact counts and a
    # bounded sample of its rows, and the due window's predictions (bounded too).
    stream = _stream(args, categorical)
    stats = window.Stats(window.Bounds.of(reference, categorical))
    sample = window.Reservoir(args.sample_rows, args.sample_seed)
    due = window.IdSample(args.sample_rows, args.sample_seed)
    for chunk in stream:
        current = chunk.features[_within(chunk.events, start, end)]
        stats.add(current)
        sample.add(current)
        if args.ground_truth_dir is not None:
            # Only captures old enough for their labels to have arrived are judged: a younger
            # one without a label yet is not a miss, and one with an early label is not yet due.
            due.add(chunk.events[_within(chunk.events, start - delay, end - delay)])
    args.report_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "capture": {"records": stream.records, "malformed": stream.malformed},
        "drift": None,
        "quality": None,
    }

    report_file = args.report_dir / "report.html"
    if not stats.rows:
        log.warning("no %s in %s .. %s", SOURCES[args.source][1], start, end)
        report_file.write_text(
            NO_TRAFFIC_PAGE.format(
                title=SOURCES[args.source][0], what=SOURCES[args.source][1], start=start, end=end
            )
        )
    else:
        result = drift.analyse(
            reference,
            sample.frame(args.features),
            categorical,
            args.drift_threshold,
            args.feature_thresholds,
            args.feature_of,
            window=stats,
            seed=args.sample_seed,
        )
        result.report.save_html(str(report_file))
        summary["drift"] = result.summary
        if result.summary["sample"]["sampled"]:
            _state_sample(report_file, result.summary["sample"])

    if args.ground_truth_dir is not None:
        labels = capture.read_ground_truth(capture.jsonl_files(args.ground_truth_dir), due.ids())
        joined = quality.join(due.events(), labels)
        # Hoeffding's bound (window.py) on a share of the joined rows; none when all are kept.
        share_error = window.dkw_error(len(joined)) if due.sampled and len(joined) else 0.0
        summary["quality"] = {
            "window": {"start": (start - delay).isoformat(), "end": (end - delay).isoformat()},
            "due": due.due,
            "rows": len(joined),
            "metrics": quality.compute(
                joined, args.problem_type, args.metrics, args.probability_threshold
            ),
            "sample": {
                "ids": len(due.ids()),
                "usable": due.usable,
                "sampled": due.sampled,
                "seed": args.sample_seed,
                "confidence": 1 - window.ALPHA,
                "share_error": share_error,
            },
        }

    (args.report_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if args.publish:
        import boto3

        client = cloudwatch_client or boto3.client("cloudwatch")
        data = cloudwatch.datums(summary, args.dimensions, now)
        calls = cloudwatch.publish(client, args.namespace, data)
        log.info("published %d metrics in %d call(s) to %s", len(data), calls, args.namespace)
    overall = (summary["drift"] or {}).get("overall", {})
    log.info(
        "rows %s, drifted share %s, drift %s, model metrics %s",
        overall.get("rows", 0),
        overall.get("drifted_share"),
        overall.get("drift_detected"),
        (summary["quality"] or {}).get("metrics"),
    )
    return summary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    main()
