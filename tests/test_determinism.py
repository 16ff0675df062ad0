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


def _app_py(outdir: Path, **env: str) -> Path:
    """Every example synthesized by app.py as the CDK CLI runs it, into `outdir`."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["manifest"] = str(ROOT / "examples")
    run = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={
            **os.environ,
            "CDK_OUTDIR": str(outdir),
            "CDK_CONTEXT_JSON": json.dumps(context),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (outdir / "manifest.json").is_file()
    return outdir


def _written(outdir: Path) -> tuple[dict[str, str], set[str]]:
    """The templates (name -> text) and the assets (names carry their content hashes)."""
    templates = {p.name: p.read_text() for p in sorted(outdir.glob("*.template.json"))}
    return templates, {p.name for p in outdir.glob("asset.*")}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _app_py(tmp_path_factory.mktemp("tuned.out"))


def test_app_py_as_cdk_runs_it_writes_the_same_templates(synth: Any, tuned: Path) -> None:
    templates, assets = _written(tuned)
    first = {p.name: p.read_text() for p in synth.template_files}
    assert first.keys() == templates.keys()
    assert [name for name in first if first[name] != templates[name]] == []
    assert {p.name for p in synth.outdir.glob("asset.*")} == assets


def test_synth_tuning_changes_no_byte_of_templates_or_assets(
    synth: Any, tuned: Path, tmp_path: Path
) -> None:
    """mlgate/synth_tuning: MLGATE_FAST_SYNTH=off runs stock CDK, to the same output."""
    stock = _written(_app_py(tmp_path, MLGATE_FAST_SYNTH="off"))
    templates, assets = _written(tuned)
    assert stock[0].keys() == templates.keys()
    assert [name for name in templates if templates[name] != stock[0][name]] == []
    assert stock[1] == assets


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
    hash (and so the templates) would change with whatever ran before `cdk synth`. The wheel
    sets are not from the checkout: tools/wheels.py builds them, the layer with the bytecode
    it ships on purpose (tests/test_layer_bytecode.py), under a key of their locks."""
    from mlgate.infra.wheelsets import SETS

    built = {f"asset.{s.asset_hash}.zip" for s in SETS.values()}
    if not any((ROOT / "mlgate" / "runtime" / "hooks").rglob("__pycache__")):
        pytest.skip("no bytecode was written (PYTHONDONTWRITEBYTECODE): there is none to leak")
    found = []
    for asset in synth.outdir.glob("asset.*"):
        if asset.name in built:
            continue
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
