"""A batch environment (issue 32, part 1): the manifest's `mode: batch` and its `batch:`
block, its refusals (each naming the field and the reason), and what the synth summary says of
its capacity and its release."""

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

BASE = EXAMPLES / "delivery-time" / "manifest.yaml"
BATCH = {"schedule": "cron(0 6 ? * MON *)", "sample_rows": 300}


@functools.cache
def _read(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def batch_in(env: str, **settings: Any) -> dict[str, Any]:
    """delivery-time's manifest with `env` scoring in batch (`settings` over the defaults),
    prod moved into staging's account so that a batch prod is allowed."""
    doc = copy.deepcopy(_read(BASE))
    doc["environments"]["prod"]["account"] = doc["environments"]["staging"]["account"]
    doc["serving"][env] = {
        "mode": "batch",
        "instance_type": "ml.m5.xlarge",
        "instance_count": 1,
        "batch": dict(BATCH),
    }
    for key, value in settings.items():
        if value is None:
            doc["serving"][env].pop(key, None)
        else:
            doc["serving"][env][key] = value
    return doc


def load(doc: dict[str, Any]) -> Manifest:
    return parse_manifest(doc, BASE)


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc, BASE)
    return [line.removeprefix(f"{BASE}: ") for line in caught.value.lines]


def test_a_batch_environment_names_its_runs_and_says_so() -> None:
    manifest = load(batch_in("staging"))
    serving = manifest.serving.staging
    assert manifest.is_batch("staging")
    assert not manifest.is_batch("prod")
    assert serving.batch_settings.schedule == "cron(0 6 ? * MON *)"
    assert serving.batch_settings.sample_rows == 300
    assert manifest.monitored("staging")  # its runs' inputs and predictions are watched
    assert manifest.capacity_summary("staging") == (
        "batch 1 x ml.m5.xlarge while a run scores, on cron(0 6 ? * MON *) (UTC): 0 between runs"
    )
    release = manifest.rollout_summary("staging")
    assert "a sample run of 300 rows" in release
    assert "compared with prod's version's on the same rows" in release
    assert "compared" not in load(batch_in("prod")).rollout_summary("prod")


def test_a_product_that_only_scores_in_batch_needs_no_slo() -> None:
    doc = batch_in("staging")
    doc["serving"]["prod"] = batch_in("prod")["serving"]["prod"]
    doc["metrics"]["slos"] = []
    assert load(doc).metrics.slos == ()
    endpoint = batch_in("staging")
    endpoint["metrics"]["slos"] = []
    assert any(p.startswith("metrics.slos: prod serves an endpoint") for p in problems(endpoint))


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"batch": None}, "serving.staging.batch", "batch.schedule (a cron or rate"),
        ({"batch": {"sample_rows": 50}}, "serving.staging.batch.schedule", "give schedule"),
        (
            {"batch": {**BATCH, "after_etl": True}},
            "serving.staging.batch.schedule",
            "not both",
        ),
        ({"batch": {"schedule": "cron(0 6 * * MON *)"}}, "serving.staging.batch.schedule", "?"),
        ({"rollout": {"policy": "all_at_once"}}, "serving.staging.rollout", "shifts no traffic"),
        ({"autoscaling": {"min_instances": 1}}, "serving.staging.autoscaling", "no endpoint"),
        (
            {"off_hours": {"start": "08:00", "end": "18:00", "timezone": "UTC"}},
            "serving.staging.off_hours",
            "no endpoint",
        ),
        ({"serverless": {"memory_mb": 2048}}, "serving.staging.serverless", "only a serverless"),
        ({"batch": {**BATCH, "max_failure_rate": 2}}, "serving.staging.batch.max_failure_rate", ""),
        ({"batch": {**BATCH, "input_prefix": "/abs"}}, "serving.staging.batch.input_prefix", ""),
    ],
)
def test_a_batch_environment_refuses_what_it_cannot_do(
    settings: dict[str, Any], field: str, words: str
) -> None:
    found = problems(batch_in("staging", **settings))
    assert any(p.startswith(f"{field}:") and words in p for p in found), found


def test_a_batch_block_belongs_to_a_batch_environment() -> None:
    doc = copy.deepcopy(_read(BASE))
    doc["serving"]["prod"]["batch"] = dict(BATCH)
    assert any(p.startswith("serving.prod.batch: only a batch environment") for p in problems(doc))


def test_a_batch_environment_lives_with_the_data() -> None:
    """Runs read the curated table in staging's account and region, with its key."""
    elsewhere = batch_in("prod")
    elsewhere["environments"]["prod"]["account"] = "222222222222"
    found = problems(elsewhere)
    assert any(p.startswith("environments.prod: a batch environment scores") for p in found)
    other_region = batch_in("prod")
    other_region["environments"]["prod"]["region"] = "eu-west-1"
    assert any("environments.prod" in p for p in problems(other_region))
    assert load(batch_in("prod")).is_batch("prod")  # same account and region: fine


def test_model_monitor_does_not_watch_batch_runs() -> None:
    doc = batch_in("staging")
    doc["monitoring"]["engine"] = "model-monitor"
    assert any(p.startswith("monitoring.engine: staging scores in batch") for p in problems(doc))
