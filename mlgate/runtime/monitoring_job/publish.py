"""Publish step of the deployed monitor: `python publish.py --summary .../summary.json ...`.

The Evidently step runs with network isolation and cannot reach CloudWatch; this step, after
it, puts its summary's figures as metrics (cloudwatch.py). It reads the summary only (figures,
no records), needs the network, and so runs no third-party code but boto3, installed from the
job's wheelhouse by hash.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and not __package__:
    # script.py, beside this file (sys.path[0] when Processing runs it).
    __import__("script").run_as_package("publish")
    sys.exit(0)

import argparse
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from . import cloudwatch

log = logging.getLogger("monitoring_job")


def _pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, found, value = item.partition("=")
        if not found or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"dimension '{item}' is not name=value")
        pairs[key.strip()] = value.strip()
    return pairs


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--summary", type=Path, required=True, help="the Evidently step's summary")
    p.add_argument("--namespace", required=True)
    p.add_argument("--dimensions", type=_pairs, default={}, help="Name=value,...")
    return p


def main(argv: list[str] | None = None, client: Any = None) -> int:
    """Put the summary's metrics, timestamped at the end of its window; returns how many.
    A run with no released version has no window and publishes nothing."""
    args = parser().parse_args(argv)
    summary = json.loads(args.summary.read_text())
    window = summary.get("window")
    if not window:
        log.warning("the run judged nothing (no released version): no metrics")
        return 0
    if client is None:
        import boto3

        client = boto3.client("cloudwatch")
    data = cloudwatch.datums(summary, args.dimensions, datetime.fromisoformat(window["end"]))
    calls = cloudwatch.publish(client, args.namespace, data)
    log.info("published %d metrics in %d call(s) to %s", len(data), calls, args.namespace)
    return len(data)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    main()
