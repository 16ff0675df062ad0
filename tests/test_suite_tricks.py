"""The suite's own speed tricks (tests/conftest.py SUITE_TRICKS) patch private parts of
botocore, moto, pytest and xdist: each was measured with one version, stands down on another,
and this test fails, naming what is at risk, when a pin moves and the table was not revisited."""

from __future__ import annotations

import pytest

from .conftest import SUITE_TRICKS, pinned_versions


def _pins() -> dict[str, str]:
    return pinned_versions("requirements-dev.txt", "requirements-sagemaker.txt")


@pytest.mark.parametrize("package", sorted(SUITE_TRICKS))
def test_each_trick_was_revisited_for_its_pinned_version(package: str) -> None:
    wanted, trick = SUITE_TRICKS[package]
    assert _pins().get(package) == wanted, (
        f"{package} is pinned at {_pins().get(package)}; the suite's trick ({trick}) was "
        f"measured with {wanted}: measure it again (bench/test_time.py) and revisit SUITE_TRICKS"
    )
