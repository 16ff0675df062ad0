"""Blue/green safety invariants, checked before synthesis, each with its message."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlgate.manifest import ManifestError, parse_manifest

from .conftest import DEFAULT_MANIFEST

BASE: dict[str, Any] = yaml.safe_load(DEFAULT_MANIFEST.read_text())


def problems(change: Any) -> list[str]:
    doc = copy.deepcopy(BASE)
    change(doc)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc, DEFAULT_MANIFEST)
    return [line.removeprefix(f"{DEFAULT_MANIFEST}: ") for line in caught.value.lines]


def test_canary_must_bake_at_least_the_alarm_detection_window() -> None:
    def short_bake(doc: dict[str, Any]) -> None:
        doc["serving"]["prod"]["rollout"]["bake_minutes"] = 4

    # The slowest SLO alarm: 60 s x 5 evaluation periods (invocation_error_rate).
    assert problems(short_bake) == [
        "serving.prod.rollout.bake_minutes: 4 min bake is shorter than the rollback alarms' "
        "detection window (5 min: period x evaluation periods of the slowest SLO alarm), so a "
        "bad release could pass before its alarm fires; bake at least 5 min"
    ]


def test_a_split_needs_more_than_one_instance() -> None:
    def one_instance(doc: dict[str, Any]) -> None:
        doc["serving"]["prod"]["instance_count"] = 1
        doc["serving"]["prod"]["autoscaling"]["min_instances"] = 1

    assert problems(one_instance) == [
        "serving.prod.instance_count: canary shifts 10 % of 1 instance(s), which is the whole "
        "fleet: traffic moves in whole instances, so a split needs at least 2"
    ]


def test_linear_steps_are_checked_too() -> None:
    def linear(doc: dict[str, Any]) -> None:
        # A real-time staging of one instance (the example's is async, scaled to zero).
        staging = doc["serving"]["staging"]
        staging.pop("async", None)
        staging.pop("off_hours", None)
        staging.update(mode="real-time", instance_count=1)
        staging["rollout"] = {"policy": "linear", "bake_minutes": 2}

    assert problems(linear) == [
        "serving.staging.rollout.bake_minutes: 2 min bake is shorter than the rollback alarms' "
        "detection window (5 min: period x evaluation periods of the slowest SLO alarm), so a "
        "bad release could pass before its alarm fires; bake at least 5 min",
        "serving.staging.instance_count: linear shifts 25 % of 1 instance(s), which is the "
        "whole fleet: traffic moves in whole instances, so a split needs at least 2",
    ]


def test_prod_refuses_all_at_once_unless_the_manifest_says_so() -> None:
    def all_at_once(doc: dict[str, Any]) -> None:
        doc["serving"]["prod"]["rollout"] = {"policy": "all_at_once"}

    assert problems(all_at_once) == [
        "serving.prod.rollout.policy: prod never shifts all traffic at once unless the manifest "
        "says so: use canary or linear, or set allow_all_at_once: true"
    ]
    doc = copy.deepcopy(BASE)
    doc["serving"]["prod"]["rollout"] = {"policy": "all_at_once", "allow_all_at_once": True}
    assert parse_manifest(doc, DEFAULT_MANIFEST).serving.prod.rollout.allow_all_at_once is True


def test_all_at_once_bakes_its_alarm_window_too() -> None:
    """Only during a bake can SageMaker roll back: all at once without one never does."""

    def no_bake(doc: dict[str, Any]) -> None:
        doc["serving"]["staging"]["rollout"] = {"policy": "all_at_once", "bake_minutes": 0}

    assert problems(no_bake) == [
        "serving.staging.rollout.bake_minutes: 0 min bake is shorter than the rollback alarms' "
        "detection window (5 min: period x evaluation periods of the slowest SLO alarm), so a "
        "bad release could pass before its alarm fires; bake at least 5 min"
    ]


def test_a_first_step_above_its_limit_is_refused_with_its_real_share() -> None:
    """A 10 % canary of 2 instances is 1 instance: half the traffic."""

    def strict(doc: dict[str, Any]) -> None:
        doc["serving"]["prod"]["rollout"]["max_first_step_percent"] = 25

    assert problems(strict) == [
        "serving.prod.rollout.max_first_step_percent: a 10 % canary step of 2 instances is 1 "
        "instance(s), 50 % of the traffic, above the 25 % this rollout allows; add instances, "
        "or raise max_first_step_percent knowingly"
    ]
