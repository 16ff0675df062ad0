"""Stage step of the deployed monitor: `python stage.py --capture-s3-uri ... --out-dir ...`.

The Evidently step runs with network isolation (no call leaves its container, AWS APIs
included), so it reads only what Processing downloads for it. This step, before it, finds the
live version (the Serving stack's SSM parameter, then DescribeModelPackage) and copies what the
run judges into --out-dir, which Processing uploads and hands to the Evidently step: the
baseline dataset of the live version's release, the capture hours of the windows and, with
ground truth, the labels of those hours. release.json records the version and the moment
the windows end, so the two steps judge the same windows. For a batch environment
(`--source batch`) the windows' data is its runs' transform output instead of capture: the
output objects written in the windows (their LastModified), with that moment recorded for each
(sources.fetch_written).

It needs the network, and so runs no third-party code: the standard library, this folder's
sources.py, and boto3 with its dependencies installed from the job's wheelhouse by hash.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and not __package__:
    # script.py, beside this file (sys.path[0] when Processing runs it).
    __import__("script").run_as_package("stage")
    sys.exit(0)

import argparse
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import sources

log = logging.getLogger("monitoring_job")
RELEASE_FILE = "release.json"
BASELINE_FILE = "baseline/baseline.csv"
CAPTURE_DIR = "capture"
GROUND_TRUTH_DIR = "ground-truth"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--capture-s3-uri",
        required=True,
        help="the endpoint variant's capture, or a batch environment's predictions prefix",
    )
    p.add_argument("--source", choices=("capture", "batch"), default="capture")
    p.add_argument("--release-parameter", required=True, help="SSM: live model package ARN")
    p.add_argument("--released-uri", required=True, help="s3://<home artifacts>/released/<product>")
    p.add_argument("--window-hours", type=float, default=1.0)
    p.add_argument("--ground-truth-s3-uri", default=None)
    p.add_argument("--ground-truth-delay-hours", type=float, default=24.0)
    p.add_argument("--now", default=None, help="ISO time the windows end; default now (UTC)")
    p.add_argument("--out-dir", type=Path, required=True)
    return p


def main(argv: list[str] | None = None, clients: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stage the run's inputs into --out-dir; returns what release.json records. `clients`
    (s3, ssm, sagemaker): default boto3's."""
    args = parser().parse_args(argv)
    now = datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now else datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if clients is None:
        import boto3

        clients = {name: boto3.client(name) for name in ("s3", "ssm", "sagemaker")}
    out: Path = args.out_dir
    (out / CAPTURE_DIR).mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"now": now.isoformat(), "model_package": None, "baseline": None}
    live = sources.live_release(
        clients["ssm"], clients["sagemaker"], args.release_parameter, args.released_uri
    )
    if live is None:
        log.warning("no model version is released: nothing to stage")
    else:
        record["model_package"], record["baseline"] = live
        sources.fetch_baseline(clients["s3"], live[1], out / BASELINE_FILE)
        window = timedelta(hours=args.window_hours)
        delay = timedelta(hours=args.ground_truth_delay_hours)
        earliest = now - window - (delay if args.ground_truth_s3_uri else timedelta(0))
        fetch = sources.fetch_written if args.source == "batch" else sources.fetch_hours
        record["source"] = args.source
        record["capture_files"] = fetch(
            clients["s3"], args.capture_s3_uri, earliest, now, out / CAPTURE_DIR
        )
        if args.ground_truth_s3_uri:
            # A label lands up to `delay` after its inference: the due window's labels were
            # uploaded between the window's start and now.
            (out / GROUND_TRUTH_DIR).mkdir(parents=True, exist_ok=True)
            record["ground_truth_files"] = sources.fetch_hours(
                clients["s3"], args.ground_truth_s3_uri, earliest, now, out / GROUND_TRUTH_DIR
            )
        log.info("staged %s", record)
    (out / RELEASE_FILE).write_text(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    main()
