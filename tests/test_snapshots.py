"""One snapshot per stack of every example product, asset hashes stripped: a change to any
template shows up in review as a diff of tests/snapshots/. Refresh them after an intended
change with `UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_snapshots.py`.

The fine-grained tests say what must hold; the snapshots say what else changed."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import Synth

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
HASH = re.compile(r"[0-9a-f]{64}")


def stripped(template: dict[str, Any]) -> str:
    """The template with content hashes (assets, code) replaced, so unchanged infrastructure
    with changed code compares equal."""
    text = json.dumps(template, indent=1, sort_keys=True)
    return HASH.sub("<hash>", text) + "\n"


def test_every_stack_matches_its_snapshot(synth: Synth) -> None:
    update = os.environ.get("UPDATE_SNAPSHOTS") == "1"
    SNAPSHOTS.mkdir(exist_ok=True)
    names = set()
    changed = []
    for path in synth.template_files:
        names.add(path.name)
        current = stripped(json.loads(path.read_text()))
        snapshot = SNAPSHOTS / path.name
        if update:
            snapshot.write_text(current)
        elif not snapshot.is_file() or snapshot.read_text() != current:
            changed.append(path.name)
    stale = sorted(p.name for p in SNAPSHOTS.glob("*.template.json") if p.name not in names)
    if update:
        for name in stale:
            (SNAPSHOTS / name).unlink()
        return
    assert changed == [], (
        f"templates differ from their snapshots: {changed}; review the diff, then refresh with "
        "UPDATE_SNAPSHOTS=1"
    )
    assert stale == [], f"snapshots of stacks no longer synthesized: {stale}"


def test_stripping_keeps_structure_and_hides_only_hashes() -> None:
    template = {"Resources": {"F": {"Properties": {"Key": "a" * 64 + ".zip", "Name": "n"}}}}
    text = stripped(template)
    assert '"Key": "<hash>.zip"' in text
    assert '"Name": "n"' in text
    with pytest.raises(AssertionError):
        assert stripped({"A": 1}) == stripped({"A": 2})
