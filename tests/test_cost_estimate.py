"""The monthly estimate's arithmetic on a hand-computed case, schedule counting, the cost
section's rules, and spot training in the pipeline definition (issue 33)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mlgate.cli import estimate as E
from mlgate.manifest import Cost, Manifest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PRICES: dict[str, Any] = {
    "source": "test",
    "as_of": "2026-01-01",
    "spot_saving": 0.6,
    "regions": {
        "eu-west-1": {
            "glue_dpu_hour": 0.5,
            "hosting": {"ml.m5.large": 0.1, "ml.c5.xlarge": 0.2},
            "training": {"ml.m5.xlarge": 0.3},
            "processing": {"ml.m5.large": 0.1},
        }
    },
}


def manifest(**cost: Any) -> Manifest:
    """fraud-detection with both environments real-time (1 x ml.m5.large staging, 2 x
    ml.c5.xlarge prod), its schedules pinned, and `cost`."""
    return Manifest.model_validate(raw_manifest(**cost))


def raw_manifest(**cost: Any) -> dict[str, Any]:
    """manifest()'s document, before validation."""
    raw = yaml.safe_load((EXAMPLES / "fraud-detection" / "manifest.yaml").read_text())
    raw = copy.deepcopy(raw)
    for env, (kind, count) in {"staging": ("ml.m5.large", 1), "prod": ("ml.c5.xlarge", 2)}.items():
        serving = raw["serving"][env]
        for key in ("mode", "serverless", "async", "shadow"):  # shadow: priced on its own
            serving.pop(key, None)
        serving.update(instance_type=kind, instance_count=count)
    raw["data"]["schedule"] = "cron(0 2 * * ? *)"  # daily
    raw["data"]["etl_max_workers"] = 10
    raw["model"]["retrain_schedule"] = "cron(0 4 ? * MON *)"  # weekly
    raw["model"]["training_instance_type"] = "ml.m5.xlarge"
    raw["model"]["training_instance_count"] = 1
    raw["model"]["processing_instance_type"] = "ml.m5.large"
    raw["monitoring"]["schedule"] = "cron(0 * ? * * *)"  # hourly
    raw["monitoring"].pop("engine", None)  # Evidently: 3 jobs a run
    raw["cost"] = cost
    raw.pop("tracking", None)  # test_a_tracking_server_mlgate_creates_is_billed_every_hour
    return dict(raw)


def test_the_estimate_adds_up_as_computed_by_hand() -> None:
    m = manifest(
        etl_hours_per_run=0.5, training_hours_per_run=1, processing_hours_per_job=0.25,
        monitoring_hours_per_run=0.1, drift_retrains_per_month=1, use_spot=True, max_wait_hours=2,
    )  # fmt: skip
    e = E.estimate(m, PRICES)
    by = {line.item: line.monthly for line in e.lines}
    # A month is 730 h: daily = 730/24 = 30.41667 runs, weekly = 730/24/7 = 4.34524.
    # endpoints: 1 x 730 x 0.1 = 73.00; 2 x 730 x 0.2 = 292.00
    assert by["endpoint staging"] == 73.00
    assert by["endpoint prod"] == 292.00
    # Glue: 30.41667 runs x (10 + 2) DPU x 0.5 h = 182.5 DPU-h x 0.5 = 91.25
    assert by["Glue ETL"] == 91.25
    # training: (30.41667 + 4.34524 + 1) = 35.76190 runs x 1 h x 0.3 = 10.72857 on demand;
    # spot saves 60 %: 6.44, leaves 4.29
    assert e.spot_saving == 6.44
    assert by["training (spot)"] == 4.29
    # processing: 35.76190 runs x 3 jobs x 0.25 h x 0.1 = 2.68
    assert by["training processing"] == 2.68
    # monitoring: 730 hourly runs x 3 jobs x 0.1 h x 0.1 = 21.90 per environment
    assert by["monitoring staging"] == by["monitoring prod"] == 21.90
    assert not [item for item in by if item.startswith("batch")]  # no batch environment
    assert e.total == 73.00 + 292.00 + 91.25 + 4.29 + 2.68 + 21.90 + 21.90  # 507.02
    assert e.total == 507.02
    assert e.unpriced == []
    # On demand, the same training costs 10.73 and nothing is saved.
    plain = E.estimate(manifest(etl_hours_per_run=0.5, monitoring_hours_per_run=0.1,
                                drift_retrains_per_month=1), PRICES)  # fmt: skip
    assert {x.item: x.monthly for x in plain.lines}["training"] == 10.73
    assert plain.spot_saving == 0.0


def test_a_batch_environment_costs_its_runs_only() -> None:
    """Prod scoring weekly in batch: each run's transform on 2 x ml.c5.xlarge and its prepare
    job on the processing instance, batch_hours_per_run each, nothing between runs; staging
    runs after each daily ETL run."""
    raw = raw_manifest(batch_hours_per_run=0.5)
    for env, trigger in (
        ("staging", {"after_etl": True}),
        ("prod", {"schedule": "cron(0 6 ? * MON *)"}),
    ):
        kind, count = raw["serving"][env]["instance_type"], raw["serving"][env]["instance_count"]
        raw["serving"][env] = {"mode": "batch", "instance_type": kind, "instance_count": count,
                               "batch": trigger}  # fmt: skip
    raw["metrics"]["slos"] = []
    m = Manifest.model_validate(raw)
    by = {line.item: line.monthly for line in E.estimate(m, PRICES).lines}
    assert not [item for item in by if item.startswith("endpoint")]
    # prod: 4.34524 runs x 2 x 0.5 h x 0.2 = 0.87; its prepare 4.34524 x 1 x 0.5 x 0.1 = 0.22
    assert by["batch prod transform"] == 0.87
    assert by["batch prod prepare"] == 0.22
    # staging, after each daily ETL run: 30.41667 x 1 x 0.5 x 0.1 = 1.52, twice
    assert by["batch staging transform"] == by["batch staging prepare"] == 1.52


def test_a_price_the_file_lacks_is_named_never_guessed() -> None:
    prices = copy.deepcopy(PRICES)
    del prices["regions"]["eu-west-1"]["hosting"]["ml.c5.xlarge"]
    e = E.estimate(manifest(), prices)
    (line,) = e.unpriced
    assert line.item == "endpoint prod"
    assert "ml.c5.xlarge" in line.basis
    assert "prices.json" in line.basis
    assert e.total == round(E.estimate(manifest(), PRICES).total - 292.0, 2)


@pytest.mark.parametrize(
    ("expression", "runs"),
    [
        ("cron(0 2 * * ? *)", 730 / 24),
        ("cron(0 4 ? * MON *)", 730 / 24 / 7),
        ("cron(0 0/6 ? * MON-FRI *)", 4 * 5 * 730 / 24 / 7),
        ("cron(15,45 * * * ? *)", 2 * 24 * 730 / 24),
        ("cron(0 9 1 * ? *)", 1),
        ("cron(0 9 * JAN,JUL ? *)", 730 / 24 * 2 / 12),
        ("rate(6 hours)", 730 / 6),
        ("rate(1 day)", 730 / 24),
        ("rate(30 minutes)", 730 * 2),
    ],
)
def test_runs_per_month_counts_each_schedule(expression: str, runs: float) -> None:
    assert E.runs_per_month(expression) == pytest.approx(runs)


def test_the_examples_estimate_in_full_from_the_shipped_prices() -> None:
    for name in ("fraud-detection", "delivery-time"):
        from mlgate.manifest import load_manifest

        m = load_manifest(EXAMPLES / name / "manifest.yaml")
        e = E.estimate(m)
        priced = [x for x in e.lines if x.monthly is not None]
        assert priced, name
        # Only what bills per use is left unpriced; every instance type has its price. The one
        # exception: no MLflow tracking server price is shipped (it is named, never guessed).
        assert all("prices.json" not in x.basis for x in e.lines
                   if x.item != "experiment tracking"), e.lines  # fmt: skip
        text = "\n".join(E.summary_lines(e))
        assert "total" in text
        assert "as of" in text
        assert m.environments.staging.region in text


def test_spot_needs_a_wait_at_least_the_run() -> None:
    assert Cost(use_spot=True, max_wait_hours=2, training_hours_per_run=2).use_spot
    with pytest.raises(ValidationError, match="max_wait_hours"):
        Cost(use_spot=True, max_wait_hours=1, training_hours_per_run=2)
    with pytest.raises(ValidationError):
        Cost(currency="EUR")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Cost(idle_endpoint_hours=200)  # an alarm looks back 7 days at most


def test_spot_training_in_the_pipeline_definition() -> None:
    """The training step of a use_spot product asks for managed spot, waits at most
    max_wait_hours and checkpoints under its own execution; without it, none of the three."""
    import json

    from mlgate.infra.ml.pipeline import CACHE_FILE, PipelineSettings, definition

    def training(m: Manifest) -> dict[str, Any]:
        cached = json.loads((EXAMPLES / "fraud-detection" / CACHE_FILE).read_text())
        built = definition(m, PipelineSettings(**cached["settings"]))
        (step,) = [s for s in built["Steps"] if s["Type"] == "Training"]
        return step["Arguments"]  # type: ignore[no-any-return]

    base = yaml.safe_load((EXAMPLES / "fraud-detection" / "manifest.yaml").read_text())
    spot = {**base, "cost": {"use_spot": True, "max_wait_hours": 3, "training_hours_per_run": 1.5}}
    m = Manifest.model_validate(spot)
    m._folder = EXAMPLES / "fraud-detection"
    args = training(m)
    assert args["EnableManagedSpotTraining"] is True
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 5400, "MaxWaitTimeInSeconds": 10800}
    uri = json.dumps(args["CheckpointConfig"]["S3Uri"])
    assert "Execution.PipelineExecutionId" in uri
    assert "checkpoints" in uri
    # The broken form: on-demand training carries no spot, wait or checkpoints.
    plain = Manifest.model_validate({**base, "cost": {"training_hours_per_run": 1.5}})
    plain._folder = m.folder
    args = training(plain)
    assert "EnableManagedSpotTraining" not in args or not args["EnableManagedSpotTraining"]
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 5400}
    assert not args.get("CheckpointConfig")


def test_a_tracking_server_mlgate_creates_is_billed_every_hour() -> None:
    raw = yaml.safe_load((EXAMPLES / "fraud-detection" / "manifest.yaml").read_text())
    raw["tracking"] = {"create": True, "size": "Medium"}
    created = Manifest.model_validate(raw)
    (line,) = [x for x in E.estimate(created, PRICES).lines if x.item == "experiment tracking"]
    assert line.monthly is None
    assert "MLflow tracking server Medium" in line.basis
    assert "prices.json" in line.basis
    prices = copy.deepcopy(PRICES)
    prices["regions"]["eu-west-1"]["mlflow"] = {"Medium": 1.5}
    (line,) = [x for x in E.estimate(created, prices).lines if x.item == "experiment tracking"]
    assert line.monthly == 730 * 1.5
    raw["tracking"] = {"uri": "https://mlflow.example.com"}
    elsewhere = Manifest.model_validate(raw)
    assert "experiment tracking" not in {x.item for x in E.estimate(elsewhere, prices).lines}


def test_a_shadow_test_is_priced_per_release_at_most_one_per_training_run() -> None:
    """Its fleet for its minutes, once per release, a release at most per training run; an
    inference component scaling to zero is billed per use (not estimated as a fleet)."""
    base = manifest(training_hours_per_run=1, drift_retrains_per_month=1)
    from mlgate.manifest import ShadowTest

    prod = base.serving.prod.model_copy(update={"shadow": ShadowTest(minutes=90, instance_count=2)})
    shadowed = base.model_copy(update={"serving": base.serving.model_copy(update={"prod": prod})})
    e = E.estimate(shadowed, PRICES)
    (line,) = [x for x in e.lines if x.item == "shadow test prod"]
    runs = E.runs_per_month("cron(0 2 * * ? *)") + E.runs_per_month("cron(0 4 ? * MON *)") + 1
    assert line.monthly == round(runs * 2 * 1.5 * 0.2, 2)
    assert "x 2 x ml.c5.xlarge x 1.5 h of shadow test" in line.basis
    assert not [x for x in E.estimate(base, PRICES).lines if x.item.startswith("shadow")]
