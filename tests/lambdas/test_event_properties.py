"""Property-based: every hook's event parsing turns any input into a parsed event or its own
clear error, never another exception (so a malformed event writes nothing)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import event

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30)
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=15), inner, max_size=5)
    ),
    max_leaves=25,
)


def mutations(base: Any) -> st.SearchStrategy[Any]:
    """The documented sample event with one field replaced by anything, or dropped."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(base, ())

    @st.composite
    def mutate(draw: Any) -> Any:
        path = draw(st.sampled_from(paths[1:]))
        doc = copy.deepcopy(base)
        node = doc
        for part in path[:-1]:
            node = node[part]
        if draw(st.booleans()) and isinstance(node, dict):
            del node[path[-1]]
        else:
            node[path[-1]] = draw(anything)
        return doc

    return mutate()


def parsers() -> list[tuple[str, Callable[[Any], Any], type[Exception], Any]]:
    from deployer import handler as deployer
    from drift_responder import handler as drift
    from gate_callback import handler as callback
    from gate_notifier import handler as notifier
    from pipeline_starter import handler as starter
    from release import handler as release

    from shared import jobs

    approval = {
        "Records": [
            {"Sns": {"Message": json.dumps(event("codepipeline_approval_notification.json"))}}
        ]
    }
    return [
        (
            "release",
            lambda e: release.parse(e, "versionedmp-p-idy6c3e1fiqj"),
            release.EventError,
            event("model_package_state_change.json"),
        ),
        ("drift_responder", drift.parse, drift.EventError, event("monitoring_violations.json")),
        (
            "pipeline_starter",
            starter.describe,
            starter.EventError,
            event("glue_job_succeeded.json"),
        ),
        ("codepipeline jobs", jobs.parse_job, jobs.JobError, event("codepipeline_job.json")),
        (
            "deployer",
            lambda e: jobs.parse_job(e, ("environment", "stack")),
            deployer.JobError,
            event("codepipeline_job.json"),
        ),
        (
            "gate_notifier",
            lambda e: notifier.parse(e, {"MyApprovalStage": {}}),
            notifier.EventError,
            approval,
        ),
        (
            "gate_callback",
            callback.parse_click,
            callback.Refusal,
            "payload="
            + json.dumps(
                {"user": {"id": "U1"}, "actions": [{"action_id": "approve", "value": "r"}]}
            ),
        ),
    ]


PARSERS = parsers()


@pytest.mark.parametrize(("name", "parse", "error", "sample"), PARSERS, ids=[p[0] for p in PARSERS])
def test_the_documented_sample_parses(
    name: str, parse: Any, error: type[Exception], sample: Any
) -> None:
    if name in ("codepipeline jobs", "deployer"):
        # AWS's sample job carries a non-JSON UserParameters: refused, naming it.
        with pytest.raises(error):
            parse(sample)
    else:
        assert parse(sample) is not None


@pytest.mark.parametrize(("name", "parse", "error", "sample"), PARSERS, ids=[p[0] for p in PARSERS])
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_any_input_gives_a_result_or_the_hook_s_own_error(
    name: str, parse: Any, error: type[Exception], sample: Any, data: st.DataObject
) -> None:
    candidate = data.draw(
        st.one_of(anything, mutations(sample)) if not isinstance(sample, str) else st.text()
    )
    message = "parsed"
    try:
        parse(candidate)
    except error as err:
        message = str(err)
    assert message, f"{name}: an empty error message"
