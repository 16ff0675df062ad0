"""A real-time environment hosting its model as an inference component (issue 32, part 4): the
manifest's option, its refusals (each naming the field and the reason), the rolling update the
rollout maps to, as the synth summary says it."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgate.manifest import Manifest, ManifestError
from mlgate.manifest.loading import parse_manifest

from .conftest import EXAMPLES

BASE = EXAMPLES / "fraud-detection" / "manifest.yaml"
COMPONENT = {"copies": 2, "min_copies": 1, "max_copies": 6, "cpus": 1, "memory_mb": 2048}


@functools.cache
def _read(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def prod_with(**settings: Any) -> dict[str, Any]:
    """fraud-detection's manifest with prod's serving updated by `settings`."""
    doc = copy.deepcopy(_read(BASE))
    prod = doc["serving"]["prod"]
    # A component's copies scale on invocations per copy: the variant's target goes.
    prod.get("autoscaling", {}).pop("target_invocations_per_instance", None)
    # A shadow variant needs a model in the endpoint config, which a component's has not.
    prod.pop("shadow", None)
    for key, value in settings.items():
        if value is None:
            prod.pop(key, None)
        else:
            prod[key] = value
    return doc


def load(doc: dict[str, Any]) -> Manifest:
    return parse_manifest(doc, BASE)


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc, BASE)
    return [line.removeprefix(f"{BASE}: ") for line in caught.value.lines]


def test_a_real_time_environment_takes_a_component() -> None:
    serving = load(prod_with(inference_component=COMPONENT)).serving.prod
    component = serving.inference_component
    assert component is not None
    assert (component.copies, component.min_copies, component.max_copies) == (2, 1, 6)
    assert serving.component_capacity_summary() is not None
    # Without one, nothing changes.
    assert load(prod_with()).serving.prod.inference_component is None
    assert load(prod_with()).serving.prod.component_rollout_summary() is None


@pytest.mark.parametrize("mode", ["serverless", "async"])
def test_only_a_real_time_endpoint_hosts_a_component(mode: str) -> None:
    extra: dict[str, Any] = {"serverless": {"memory_mb": 2048, "max_concurrency": 5}}
    doc = prod_with(
        mode=mode,
        inference_component=COMPONENT,
        instance_type=None if mode == "serverless" else "ml.m5.large",
        instance_count=None if mode == "serverless" else 2,
        autoscaling=None,
        rollout={"policy": "all_at_once", "allow_all_at_once": True},
        **(extra if mode == "serverless" else {}),
    )
    found = problems(doc)
    assert any(
        line.startswith("serving.prod.inference_component: only a real-time endpoint hosts")
        and f"({mode} does not)" in line
        for line in found
    ), found


def test_copies_outside_their_bounds_are_refused() -> None:
    found = problems(prod_with(inference_component={**COMPONENT, "copies": 7}))
    assert any("copies 7 is not within min_copies 1 and max_copies 6" in p for p in found), found


def test_a_canary_below_the_smallest_rolling_batch_is_refused() -> None:
    rollout = {**_read(BASE)["serving"]["prod"]["rollout"], "policy": "canary",
               "canary_percent": 4}  # fmt: skip
    found = problems(prod_with(inference_component=COMPONENT, rollout=rollout))
    assert any(
        p.startswith("serving.prod.rollout.canary_percent: 4 % is below the smallest batch")
        for p in found
    ), found
    rollout["canary_percent"] = 5
    assert load(prod_with(inference_component=COMPONENT, rollout=rollout))


def test_scale_to_zero_needs_autoscaling() -> None:
    zero = {**COMPONENT, "min_copies": 0}
    scaling = {**_read(BASE)["serving"]["prod"].get("autoscaling", {}), "enabled": False}
    found = problems(prod_with(inference_component=zero, autoscaling=scaling))
    assert any(
        p.startswith("serving.prod.inference_component.min_copies: scaling to zero") for p in found
    ), found
    assert load(prod_with(inference_component=zero)).serving.prod.inference_component


def test_settings_a_component_makes_meaningless_are_refused() -> None:
    scaling = {**_read(BASE)["serving"]["prod"].get("autoscaling", {}),
               "target_invocations_per_instance": 300}  # fmt: skip
    found = problems(prod_with(inference_component=COMPONENT, autoscaling=scaling))
    assert any(
        p.startswith(
            "serving.prod.autoscaling.target_invocations_per_instance: with an inference component"
        )
        for p in found
    ), found
    doc = prod_with(inference_component=COMPONENT)
    doc["serving"]["staging"]["inference_component"] = COMPONENT
    doc["serving"]["staging"]["off_hours"] = {
        "start": "08:00", "end": "19:00", "timezone": "Europe/Paris"
    }  # fmt: skip
    found = problems(doc)
    assert any(p.startswith("serving.staging.off_hours: the off-hours schedule") for p in found), (
        found
    )


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        ({"policy": "canary", "canary_percent": 10}, "batches of 10 % = 1 of 4 copies (4 batches)"),
        ({"policy": "linear", "linear_step_percent": 25}, "batches of 25 % = 1 of 4 copies"),
        (
            {"policy": "all_at_once", "allow_all_at_once": True},
            "(50 %, the largest batch a rolling update takes): batches of 50 % = 2 of 4 copies "
            "(2 batches)",
        ),
    ],
)
def test_the_rollout_maps_to_the_rolling_update_the_summary_names(
    rollout: dict[str, Any], expected: str
) -> None:
    full = {**_read(BASE)["serving"]["prod"]["rollout"], **rollout}
    serving = load(
        prod_with(inference_component={**COMPONENT, "copies": 4}, rollout=full)
    ).serving.prod
    summary = serving.component_rollout_summary()
    assert summary is not None
    assert expected in summary, summary
    assert f"each bakes {full['bake_minutes']} min" in summary
    component = serving.inference_component
    assert component is not None
    assert component.batch_percent(serving.rollout) == {
        "canary": full.get("canary_percent"), "linear": full.get("linear_step_percent"),
        "all_at_once": 50,
    }[full["policy"]]  # fmt: skip


def test_the_synth_summary_says_the_rolling_update() -> None:
    manifest = load(prod_with(inference_component={**COMPONENT, "copies": 4}))
    summary = manifest.rollout_summary("prod")
    assert summary.startswith("real-time inference component 1..6 copies"), summary
    assert "rolling update of the inference component's copies" in summary, summary


def test_a_shadow_test_beside_a_component_is_refused() -> None:
    found = problems(prod_with(inference_component=COMPONENT, shadow={"minutes": 30}))
    assert any(
        p.startswith("serving.prod.shadow: a shadow variant holds a model in the endpoint config")
        for p in found
    ), found


def test_the_quality_gate_may_load_a_staging_component_and_only_then() -> None:
    """A staging endpoint of an inference component takes the smoke load naming its component
    (the quality gate describes it and invokes it by name); without one, no such grant."""
    from mlgate.infra.accounts import staging_queue_access

    doc = copy.deepcopy(_read(BASE))
    staging = doc["serving"]["staging"]
    for key in ("mode", "async", "off_hours"):
        staging.pop(key, None)
    staging["autoscaling"] = {"min_instances": 1, "max_instances": 2}
    staging["rollout"] = {"policy": "all_at_once", "termination_wait_minutes": 0}
    staging["inference_component"] = COMPONENT
    hosted = load(doc)
    statements, findings = staging_queue_access(hosted)
    actions: set[str] = set()
    for statement in statements:
        found = statement.to_json()["Action"]
        actions.update([found] if isinstance(found, str) else found)
    assert {"sagemaker:DescribeInferenceComponent", "sagemaker:InvokeEndpoint",
            "sagemaker:ListInferenceComponents"} <= actions  # fmt: skip
    assert "AwsSolutions-IAM5[Resource::*]" in findings
    plain, _ = staging_queue_access(load(prod_with()))
    assert not any("InferenceComponent" in str(s.to_json()) for s in plain)
