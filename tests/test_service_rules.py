"""Every template of every example product, and of a product `python -m mlgate new` makes,
keeps every rule AWS documents for the properties mlgate sets (mlgate/service_rules.py), and
every rule fails on its own broken example."""

from __future__ import annotations

import pytest

from mlgate.service_rules import REVIEWED, TABLE, App, ServiceRule, violations

from .conftest import APPS, Synth

@pytest.mark.usefixtures("synth")  # on the synthesis' worker (conftest.GROUPS)
@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.id)
def test_every_template_keeps_the_rule(
    request: pytest.FixtureRequest, app: str, row: ServiceRule
) -> None:
    assert violations(row, request.getfixturevalue(app)) == []


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.id)
def test_the_rule_fails_on_its_broken_example(row: ServiceRule) -> None:
    assert violations(row, App.of(row.broken)), f"{row.id} holds on its broken example"


@pytest.mark.parametrize("app", APPS)
def test_every_resource_type_mlgate_emits_is_reviewed(
    request: pytest.FixtureRequest, synth: Synth, app: str
) -> None:
    emitted = {r.type for r in request.getfixturevalue(app).resources()}
    read = {row.type for row in TABLE}
    assert emitted - read - set(REVIEWED) == set()
    assert not set(REVIEWED) & read
    if app == "examples":
        assert read - {"*"} <= emitted, "a row reads a type no example emits"


def test_every_row_cites_its_documentation() -> None:
    assert len({row.id for row in TABLE}) == len(TABLE)
    for row in TABLE:
        assert row.doc.startswith("https://docs.aws.amazon.com/"), row.id
