"""Synthesis is deterministic: the same manifests give byte-identical templates, in-process
and through app.py as the CDK CLI runs it (which exits without the interpreter's teardown once
the assembly is written: nothing it writes may be lost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT


def test_app_py_as_cdk_runs_it_writes_the_same_templates(synth: Any, tmp_path: Path) -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["manifest"] = str(ROOT / "examples")
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_CONTEXT_JSON": json.dumps(context),
    }
    run = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    first = {p.name: p.read_text() for p in synth.template_files}
    second = {p.name: p.read_text() for p in sorted(tmp_path.glob("*.template.json"))}
    assert first.keys() == second.keys()
    different = [name for name in first if first[name] != second[name]]
    assert different == []
    assets = {p.name for p in synth.outdir.glob("asset.*")}
    assert assets == {p.name for p in tmp_path.glob("asset.*")}
    assert (tmp_path / "manifest.json").is_file()


def test_tests_that_synthesize_share_one_worker(synth: Any, request: Any) -> None:
    """Under `make test` (two xdist workers, --dist loadgroup) this test carries the synth
    group in its id, as every test that takes the synthesized app does: one synthesis."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        pytest.skip("not running under pytest-xdist")
    assert request.node.nodeid.endswith("@synth"), request.node.nodeid
