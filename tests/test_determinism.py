"""Synthesis is deterministic: the same manifests give byte-identical templates, in-process
and through app.py as the CDK CLI runs it (which exits without the interpreter's teardown once
the assembly is written: nothing it writes may be lost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
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


def test_no_asset_carries_bytecode_caches(synth: Any) -> None:
    """Python writes __pycache__ beside every module it imports, and the tests import the hooks
    and the products' code before the app is synthesized: no asset may carry a cache, or its
    hash (and so the templates) would change with whatever ran before `cdk synth`."""
    if not any((ROOT / "mlgate" / "lambdas").rglob("__pycache__")):
        pytest.skip("no bytecode was written (PYTHONDONTWRITEBYTECODE): there is none to leak")
    found = []
    for asset in synth.outdir.glob("asset.*"):
        if asset.is_dir():
            names = [str(p.relative_to(asset)) for p in asset.rglob("*")]
        elif asset.suffix == ".zip":
            with zipfile.ZipFile(asset) as archive:
                names = archive.namelist()
        elif asset.name.endswith(".tar.gz"):
            with tarfile.open(asset) as tar:
                names = tar.getnames()
        else:
            continue
        found += [f"{asset.name}/{n}" for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert found == []
