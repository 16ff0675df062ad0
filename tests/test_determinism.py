"""Synthesis is deterministic: the same manifests give byte-identical templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from mlgate.app import build_app
from mlgate.manifest import load_manifests

from .conftest import ROOT


def test_two_synths_of_the_same_input_are_identical(synth: Any, tmp_path: Path) -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(tmp_path), context=context)
    build_app(app, load_manifests(ROOT / "examples"))
    app.synth()
    first = {p.name: p.read_text() for p in synth.template_files}
    second = {p.name: p.read_text() for p in sorted(tmp_path.glob("*.template.json"))}
    assert first.keys() == second.keys()
    different = [name for name in first if first[name] != second[name]]
    assert different == []
