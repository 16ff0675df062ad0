"""CDK's CloudFormation validation engine, built on a thread while Python imports mlgate
(mlgate/synth_tuning/validation_engine.py): it validates as CDK's own does, nothing
interleaves on jsii's pipe, and mlgate makes no call to node at import (or the imports would
wait for the engine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from jsii._kernel import Kernel

from mlgate.synth_tuning.jsii_node import LAUNCHER
from mlgate.synth_tuning.validation_engine import start_validation_engine

from .conftest import ROOT

# What validateAgainstDefaultRules (cdk.json) makes of these: two errors, so synth fails.
BROKEN = {"Bogus": 1, "MessageRetentionPeriod": "not a number"}


def broken_app(outdir: Path) -> cdk.App:
    app = cdk.App(outdir=str(outdir), context={"@aws-cdk/core:validateAgainstDefaultRules": True})
    stack = cdk.Stack(app, "Broken")
    cdk.CfnResource(stack, "Queue", type="AWS::SQS::Queue", properties=BROKEN)
    return app


def report(app: cdk.App, outdir: Path) -> list[Any]:
    """The validation report CDK writes when a synth fails: each plugin, its verdict, its rules."""
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    found = json.loads((outdir / "validation-report.json").read_text())
    return [
        (r["pluginName"], r["conclusion"], sorted(v["ruleName"] for v in r["violations"]))
        for r in found["pluginReports"]
    ]


def test_the_engine_built_on_a_thread_finds_what_cdks_own_finds(tmp_path: Path) -> None:
    engine = start_validation_engine()
    assert engine.in_background
    # A call to node from this thread meanwhile waits for the engine, then gets its answer.
    assert cdk.Duration.minutes(5).to_seconds() == 300
    ours = broken_app(tmp_path / "ours")
    engine.register(ours)
    assert "send" not in vars(Kernel().provider._process), "jsii's pipe was not put back"
    found = report(ours, tmp_path / "ours")
    default = report(broken_app(tmp_path / "default"), tmp_path / "default")
    assert found == default
    assert found == [("CloudFormation Validate", "failure", ["F3002", "F3012"])]


def test_cdk_validation_false_builds_no_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDK_VALIDATION", "false")
    engine = start_validation_engine()
    assert not engine.in_background
    app = broken_app(tmp_path)
    engine.register(app)
    # Nothing was registered. (This test's node started without the switch, so CDK validates
    # with its own engine, once; under `cdk synth` the switch reaches node too.)
    assert report(app, tmp_path) == [("CloudFormation Validate", "failure", ["F3002", "F3012"])]


def test_mlgate_calls_node_at_no_import() -> None:
    """A module-level call (a Schema or Runtime constant, a Duration) would wait at the gate
    for the engine and undo the overlap: importing mlgate and reading every example's manifest
    makes no jsii request. Fresh interpreter: this one has imported mlgate already."""
    code = """
import aws_cdk, cdk_nag
from jsii._kernel import Kernel
process = Kernel().provider._process
send = process.send
calls = []
process.send = lambda request, kind: calls.append(type(request).__name__) or send(request, kind)
import mlgate.infra.app, mlgate.manifest
mlgate.manifest.load_manifests("examples")
print(calls)
"""
    env = {**os.environ, "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1"}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]", run.stdout


def test_jsii_runs_node_without_v8_helper_threads() -> None:
    """conftest.py sets up jsii's node as app.py does (mlgate/synth_tuning/jsii_node.py): the
    node process this worker talks to is the real node (the launcher exec'd it), run with the
    flag."""
    if os.name != "posix" or os.environ.get("MLGATE_NODE_TUNING") == "off":
        pytest.skip("no tuned node here")
    assert os.environ["JSII_NODE"] == str(LAUNCHER)
    pid = Kernel().provider._process._process.pid
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert Path(os.fsdecode(argv[0])).resolve() == Path(os.environ["MLGATE_JSII_NODE"]).resolve()
    assert b"--single-threaded" in argv
