"""`python -m mlgate new NAME` makes a product that works at once: it validates, synthesizes
with cdk-nag passing, and its transform, generator and mlgate's default scripts run locally."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlgate.cli.commands import main
from mlgate.manifest import load_manifest

from .conftest import ROOT


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parent = tmp_path_factory.mktemp("products")
    assert main(["new", "churn-risk", "--dir", str(parent)]) == 0
    return parent / "churn-risk"


def test_the_scaffold_validates_and_documents_every_field(scaffolded: Path) -> None:
    assert main(["validate", str(scaffolded)]) == 0
    text = (scaffolded / "manifest.yaml").read_text()
    manifest = load_manifest(scaffolded / "manifest.yaml")
    assert manifest.product.name == "churn-risk"
    for field in ("schedule:", "quality_rules:", "problem_type:", "drift_threshold:"):
        assert field in text
    # The KPI's offline stand-in, beside the manifest and defining its function.
    assert "stand_in: kpis.py:decisions_accepted" in text
    assert manifest.metrics.stand_in_problems(manifest.folder) == []
    assert text.count("\n#") + text.count("  # ") > 80  # a comment above each field


def test_the_scaffold_writes_each_data_class_s_retention_with_its_reason(
    scaffolded: Path,
) -> None:
    """The retention section, every class at its default, each under the comment saying why."""
    import yaml

    from mlgate.manifest import Retention

    text = (scaffolded / "manifest.yaml").read_text()
    written = yaml.safe_load(text)["retention"]
    assert written == Retention().model_dump()
    assert load_manifest(scaffolded / "manifest.yaml").retention == Retention()
    lines = text.splitlines()
    for data_class in Retention.model_fields:
        at = lines.index(f"  {data_class}: {written[data_class]}")
        assert lines[at - 1].startswith("  # "), data_class


def test_the_scaffold_synthesizes_with_cdk_nag_passing(scaffolded: Path, tmp_path: Path) -> None:
    import aws_cdk as cdk

    from mlgate.infra.app import build_app

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(tmp_path), context=context)
    build_app(app, [load_manifest(scaffolded / "manifest.yaml")])
    app.synth()  # cdk-nag findings would raise here
    # foundation, data, training, delivery, advisor (Trusted Advisor's events forwarded from
    # us-east-1: the product lives in eu-west-1); serving, monitoring, observability per
    # environment
    assert len(list(tmp_path.glob("mlgate-churn-risk-*.template.json"))) == 11


@pytest.mark.spark
def test_the_scaffold_s_code_runs(scaffolded: Path, spark: Any, tmp_path: Path) -> None:
    from tools.local_pipeline import curate_locally, train_locally

    manifest = load_manifest(scaffolded / "manifest.yaml")
    curated = curate_locally(spark, manifest, tmp_path / "input", rows=4_000, seed=3)
    assert curated.curated > 3_000
    run = train_locally(manifest, tmp_path)
    metrics = run.report[manifest.model.problem_type.report_section]
    for metric in manifest.metrics.model_metrics:
        assert metric.met_by(metrics[metric.name.value]["value"]), metric.name
    # The template's KPI stand-in on the run's held-out split, scored by the trained model: the
    # share of decisions the label confirms, as the rehearsal computes it.
    import numpy as np

    from mlgate.runtime.ml.scripts.evaluate import load_predictor
    from tools.rehearsal_kpis import StandIns, scored_batch

    (kpi,) = manifest.metrics.business_kpis
    assert kpi.stand_in == "kpis.py:decisions_accepted"
    test = run.split("test")
    scores = np.asarray(load_predictor(tmp_path / "model", "binary_classification")(test[:, 1:]))
    ((_, value),) = StandIns(manifest).values(*scored_batch(manifest, test, list(scores)))
    assert value == ((scores >= 0.5) == test[:, 0]).mean()
    assert 0.5 < value <= 1.0
    assert main(["new", "churn-risk", "--dir", str(scaffolded.parent)]) == 1  # never overwrites


def test_a_bad_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "Churn Risk", "--dir", str(tmp_path)]) == 1
    assert "is not a product name" in capsys.readouterr().err
