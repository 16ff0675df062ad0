"""The pipeline's scripts are real programs: preprocess and evaluate run here on generated data,
a small XGBoost model is trained locally, and evaluate's metrics match scikit-learn's."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn import metrics as skm

from mlgate.etl.synthetic import generate
from mlgate.ml.pipeline import definition, metric_json_path
from mlgate.ml.scripts import evaluate, preprocess


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A processing container's /opt/ml/processing, after preprocess, training and evaluate."""
    base = tmp_path_factory.mktemp("processing")
    (base / "input").mkdir()
    generate(30_000, seed=5).to_csv(base / "input" / "part-0.csv", index=False)
    preprocess.main(["--target", "is_fraud"], base=base)
    train = np.loadtxt(base / "train" / "train.csv", delimiter=",")
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "scale_pos_weight": 10},
        xgb.DMatrix(train[:, 1:], label=train[:, 0]),
        num_boost_round=40,
    )
    model_file = base / "xgboost-model"
    booster.save_model(str(model_file))
    (base / "model").mkdir()
    with tarfile.open(base / "model" / "model.tar.gz", "w:gz") as tar:
        tar.add(model_file, arcname="xgboost-model")
    evaluate.main(["--metrics", "precision,recall,f1,auc,accuracy,false_positive_rate"], base=base)
    return base


def test_preprocess_splits_by_time_in_the_xgboost_layout(workdir: Path) -> None:
    raw = pd.read_csv(workdir / "input" / "part-0.csv")
    sizes = {
        n: len(pd.read_csv(workdir / n / f"{n}.csv", header=None))
        for n in ("train", "validation", "test")
    }
    assert sizes == {"train": 21_000, "validation": 4_500, "test": 4_500}
    assert sum(sizes.values()) == len(raw)
    train = pd.read_csv(workdir / "train" / "train.csv", header=None)
    assert set(train[0].unique()) <= {0, 1}
    assert train.shape[1] == 1 + len(preprocess.feature_names())
    ordered = raw.sort_values(["event_time", "transaction_id"])
    assert list(train[1]) == list(ordered["amount"][: len(train)])


def test_baseline_is_what_the_endpoint_receives(workdir: Path) -> None:
    baseline = pd.read_csv(workdir / "baseline" / "baseline.csv")
    assert list(baseline.columns) == preprocess.feature_names()
    assert "is_fraud" not in baseline.columns


def test_preprocess_degrades_when_curated_features_are_missing(caplog: Any) -> None:
    frame = generate(50, seed=1)
    out = preprocess.features(frame)
    assert (out["amount_to_customer_mean"] == 1.0).all()
    assert (out["seconds_since_previous"] == -1.0).all()
    assert "has no amount_zscore" in caplog.text
    frame.loc[0, "channel"] = "telepathy"
    assert preprocess.features(frame).loc[0, "channel=other"] == 1.0


def test_preprocess_names_a_missing_label() -> None:
    with pytest.raises(ValueError, match="no label column 'label'"):
        preprocess.split(generate(10), "label")


def test_evaluate_metrics_equal_scikit_learn(workdir: Path) -> None:
    test = np.loadtxt(workdir / "test" / "test.csv", delimiter=",")
    booster = xgb.Booster()
    booster.load_model(str(workdir / "xgboost-model"))
    scores = booster.predict(xgb.DMatrix(test[:, 1:]))
    labels = test[:, 0].astype(int)
    predicted = (scores >= 0.5).astype(int)
    tn, fp, _, _ = skm.confusion_matrix(labels, predicted).ravel()
    expected = {
        "precision": skm.precision_score(labels, predicted),
        "recall": skm.recall_score(labels, predicted),
        "f1": skm.f1_score(labels, predicted),
        "auc": skm.roc_auc_score(labels, scores),
        "accuracy": skm.accuracy_score(labels, predicted),
        "false_positive_rate": fp / (fp + tn),
    }
    report = json.loads((workdir / "evaluation" / "evaluation.json").read_text())
    got = {k: v["value"] for k, v in report["binary_classification_metrics"].items()}
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name
    # The synthetic data is learnable: the local model clears the manifest's AUC floor.
    assert got["auc"] > 0.9


def test_auc_handles_ties_like_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = rng.integers(0, 5, 500) / 4  # many ties
    assert evaluate.roc_auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores))


def test_evaluate_refuses_a_metric_it_cannot_compute() -> None:
    with pytest.raises(ValueError, match="cannot compute \\['gini'\\]"):
        evaluate.report({"auc": 0.9}, ["auc", "gini"])


def json_gets(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["Std:JsonGet"]["Path"]] if "Std:JsonGet" in node else []
        return found + [p for v in node.values() for p in json_gets(v)]
    if isinstance(node, list):
        return [p for v in node for p in json_gets(v)]
    return []


def test_every_path_the_pipeline_reads_exists_in_the_evaluation_report(
    workdir: Path, manifest: Any, settings: Any
) -> None:
    report = json.loads((workdir / "evaluation" / "evaluation.json").read_text())
    paths = set(json_gets(definition(manifest, settings)))
    assert paths == {metric_json_path(m.name.value) for m in manifest.metrics.model_metrics}
    for path in paths:
        node: Any = report
        for key in path.split("."):
            node = node[key]
        assert isinstance(node, float), path
