"""The training scripts are real programs. For every example product, its generator's raw data
goes through its transform on local Spark into partitioned Parquet (as the Glue job writes
it), then preprocess (the product's own or mlgate's default), a local training run (a booster
for the built-in XGBoost, the product's train.py for script mode) and evaluate: the report
holds every manifest metric, equal to scikit-learn's, and the example meets its thresholds."""

from __future__ import annotations

import json
import logging
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgate.manifest import load_manifest
from mlgate.runtime.ml.scripts import evaluate, preprocess
from tools.local_pipeline import Run, script

from ..lazy import Lazy
from ..spark_session import EXAMPLE_MANIFESTS, pipeline_run

# Loaded on the worker that runs these tests only (the one with local Spark).
joblib, xgb, skm = Lazy("joblib"), Lazy("xgboost"), Lazy("sklearn.metrics")

PRODUCTS = [pytest.param(p, id=p.parent.name) for p in EXAMPLE_MANIFESTS]
SCRIPT_MODE = [
    pytest.param(p, id=p.parent.name)
    for p in EXAMPLE_MANIFESTS
    if load_manifest(p).model.algorithm.script_mode
]

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def runs(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Run]:
    """Each product's raw data (one id blanked) -> its transform -> curated Parquet ->
    preprocess -> train -> evaluate, as tools/local_pipeline.py runs it (the rehearsal runs the
    same code); made once, on first use (tests/spark_session.py: pipeline_run, its rows and
    seed)."""
    return lambda path: pipeline_run(spark, load_manifest(path), tmp_path_factory)


def predictions(run: Run, rows: np.ndarray) -> np.ndarray:
    """The trained model's output, loaded independently of evaluate.py."""
    problem = run.manifest.model.problem_type.value
    if (run.model_dir / "xgboost-model").is_file():
        booster = xgb.Booster()
        booster.load_model(str(run.model_dir / "xgboost-model"))
        return np.asarray(booster.predict(xgb.DMatrix(rows)))
    model = joblib.load(run.model_dir / "model.joblib")
    if problem == "binary_classification":
        return np.asarray(model.predict_proba(rows))[:, 1]
    return np.asarray(model.predict(rows))


def assert_answers_as_trained(run: Run, answer: str, row: np.ndarray) -> None:
    """The served answer to one row is the trained model's: its score (binary, regression),
    or for multiclass its most probable class, by name (the target's values) or by index."""
    output = np.asarray(predictions(run, row))
    if run.manifest.model.problem_type.value != "multiclass":
        score = float(answer)
        assert score == pytest.approx(float(output.reshape(-1)[0]), abs=0.01)
        assert np.isfinite(score)
        return
    index = int(output.argmax(axis=1)[0]) if output.ndim == 2 else int(output[0])
    schema = run.manifest.data.curated
    names = schema.column(schema.target_column).values
    try:
        assert float(answer) == index
    except ValueError:
        assert names, (answer, index)
        assert answer.strip() == names[index], (answer, names, index)


def sklearn_metrics(problem: str, labels: np.ndarray, output: np.ndarray) -> dict[str, float]:
    if problem == "binary_classification":
        y, predicted = labels.astype(int), (output >= 0.5).astype(int)
        tn, fp, _, _ = skm.confusion_matrix(y, predicted, labels=[0, 1]).ravel()
        return {
            "precision": skm.precision_score(y, predicted, zero_division=0),
            "recall": skm.recall_score(y, predicted, zero_division=0),
            "f1": skm.f1_score(y, predicted, zero_division=0),
            "auc": skm.roc_auc_score(y, output),
            "accuracy": skm.accuracy_score(y, predicted),
            "false_positive_rate": fp / (fp + tn),
        }
    if problem == "multiclass":
        y = labels.astype(int)
        predicted = output.argmax(axis=1) if output.ndim == 2 else output.astype(int)
        return {
            "accuracy": skm.accuracy_score(y, predicted),
            **{
                name: score(y, predicted, average="macro", zero_division=0)
                for name, score in (
                    ("precision", skm.precision_score),
                    ("recall", skm.recall_score),
                    ("f1", skm.f1_score),
                )
            },
        }
    nonzero = labels != 0
    return {
        "rmse": skm.root_mean_squared_error(labels, output),
        "mae": skm.mean_absolute_error(labels, output),
        "r2": skm.r2_score(labels, output),
        "mape": skm.mean_absolute_percentage_error(labels[nonzero], output[nonzero]),
    }


# --- each example product, end to end ----------------------------------------------------


@pytest.mark.parametrize("path", PRODUCTS)
def test_splits_hold_every_curated_row_label_first(runs: Callable[[Path], Run], path: Path) -> None:
    run = runs(path)
    splits = {n: run.split(n) for n in ("train", "validation", "test")}
    assert sum(len(s) for s in splits.values()) == run.curated_rows
    for name, rows in splits.items():
        assert 0.10 < len(rows) / run.curated_rows < 0.75, name
        assert rows.shape[1] == 1 + len(run.manifest.payload_columns), name
    if run.manifest.model.problem_type.value != "regression":
        assert set(np.unique(splits["train"][:, 0])) <= set(range(10))


@pytest.mark.parametrize("path", PRODUCTS)
def test_baseline_is_what_the_endpoint_receives(runs: Callable[[Path], Run], path: Path) -> None:
    run = runs(path)
    baseline = pd.read_csv(run.base / "baseline" / "baseline.csv")
    # The default layout built from the schema, or the product's sample request header.
    assert tuple(baseline.columns) == run.manifest.payload_columns
    assert run.manifest.data.curated.target_column not in baseline.columns
    assert len(baseline) == len(run.split("train"))


@pytest.mark.parametrize("path", PRODUCTS)
def test_evaluation_reports_every_manifest_metric_equal_to_scikit_learn(
    runs: Callable[[Path], Run], path: Path
) -> None:
    run = runs(path)
    section = run.manifest.model.problem_type.report_section
    got = {name: value["value"] for name, value in run.report[section].items()}
    assert list(got) == [m.name.value for m in run.manifest.metrics.model_metrics]
    test = run.split("test")
    expected = sklearn_metrics(
        run.manifest.model.problem_type.value, test[:, 0], predictions(run, test[:, 1:])
    )
    for name, value in got.items():
        assert value == pytest.approx(expected[name], abs=1e-9), name


@pytest.mark.parametrize("path", PRODUCTS)
def test_the_example_meets_its_thresholds_on_its_synthetic_data(
    runs: Callable[[Path], Run], path: Path
) -> None:
    run = runs(path)
    values = run.report[run.manifest.model.problem_type.report_section]
    missed = {
        m.name.value: (values[m.name.value]["value"], m.direction.value, m.threshold)
        for m in run.manifest.metrics.model_metrics
        if not m.met_by(values[m.name.value]["value"])
    }
    assert missed == {}


@pytest.mark.parametrize("path", PRODUCTS)
def test_the_served_model_scores_the_sample_request(
    runs: Callable[[Path], Run], path: Path, tmp_path: Path
) -> None:
    """The model artifact, served as the framework's container serves it (the built-in
    algorithm's CSV, or the product's model_fn / input_fn / predict_fn / output_fn), answers
    the product's real sample request (its sample_request, or the record the deploy verifier
    sends) with the trained model's own score."""
    from mlgate.infra.ml.pipeline import script_mode
    from tools.local_endpoint import Container, ContainerError

    run = runs(path)
    manifest = run.manifest
    record = manifest.sample_record
    artifact = (run.base / "model" / "model.tar.gz").read_bytes()
    served = Container(artifact, tmp_path / "served", manifest.model.algorithm.value,
                       script_mode(manifest))  # fmt: skip
    body = served.invoke(record.encode()).decode()
    (answer,) = [v for v in body.replace(",", "\n").split("\n") if v.strip()]
    row = np.asarray([[float(v) for v in record.split(",")]])
    assert row.shape == (1, len(manifest.payload_columns))
    assert_answers_as_trained(run, answer, row)
    # The broken form: a record the model cannot take is the container's error, not a score.
    with pytest.raises(ContainerError):
        served.invoke(("word," + record).encode())


@pytest.mark.parametrize("path", SCRIPT_MODE)
def test_serving_functions_score_the_sample_request(
    runs: Callable[[Path], Run], path: Path
) -> None:
    run = runs(path)
    serving = script(run.manifest, "train")
    header, record = run.manifest.sample_request or ((), "")
    model = serving.model_fn(str(run.model_dir))
    rows = serving.input_fn(record.encode(), "text/csv")
    assert np.shape(rows) == (1, len(header))
    body = serving.output_fn(serving.predict_fn(rows, model), "text/csv")
    (answer,) = body.split("\n")
    assert_answers_as_trained(run, answer, np.asarray(rows))


# --- mlgate's default preprocess ---------------------------------------------------------


def contract(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "product": "toy",
        "problem_type": "binary_classification",
        "id_column": "id",
        "event_time_column": None,
        "target_column": "label",
        "target_values": [],
        "features": [
            {"name": "size", "kind": "numeric", "values": []},
            {"name": "colour", "kind": "categorical", "values": ["red", "blue"]},
        ],
        "payload_columns": ["size", "colour=red", "colour=blue", "colour=other"],
        "metrics": ["auc"],
        "report_section": "binary_classification_metrics",
    }
    return {**base, **changes}


def toy(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"r{i:04d}" for i in range(rows)],
            "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), "s"),
            "size": rng.normal(size=rows),
            "colour": rng.choice(["red", "blue", "green"], size=rows),
            "label": rng.integers(0, 2, size=rows),
        }
    )


def test_preprocess_names_missing_columns_and_the_contract() -> None:
    with pytest.raises(ValueError, match=r"lacks \['size', 'label'\].*'toy'"):
        preprocess.split(toy().drop(columns=["size", "label"]), contract())


def test_preprocess_refuses_constant_features() -> None:
    frame = toy().assign(size=1.0, colour="red")
    with pytest.raises(ValueError, match=r"every feature is constant .* train on nothing"):
        preprocess.split(frame, contract())


def test_preprocess_refuses_a_single_class_label() -> None:
    with pytest.raises(ValueError, match="single class"):
        preprocess.split(toy().assign(label=1), contract())


def test_preprocess_refuses_an_empty_training_split() -> None:
    with pytest.raises(ValueError, match="training split is empty"):
        preprocess.split(toy().iloc[:0], contract())


def test_preprocess_refuses_binary_labels_other_than_0_and_1() -> None:
    frame = toy()
    frame.loc[3, "label"] = 2
    with pytest.raises(ValueError, match=r"must be 0 or 1; found \[2\]"):
        preprocess.split(frame, contract())


def test_preprocess_one_hot_encodes_categories_and_fills_missing_numbers(caplog: Any) -> None:
    frame = toy(4).assign(colour=["red", "blue", "green", None], size=[1.0, None, "x", 2.0])
    with caplog.at_level(logging.INFO, logger="preprocess"):
        out = preprocess.features(frame, contract())
    assert out.to_numpy().tolist() == [
        [1.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
        [2.0, 0.0, 0.0, 1.0],
    ]
    assert "{'size': 2}" in caplog.text


def test_preprocess_splits_by_time_oldest_first_ties_by_id() -> None:
    frame = toy(1000).sample(frac=1.0, random_state=3)
    frame.loc[frame.index[:50], "when"] = pd.Timestamp("2026-01-01")  # ties at the start
    splits = preprocess.split(frame, contract(event_time_column="when"))
    assert [len(s) for s in splits.values()] == [700, 150, 150]
    ordered = frame.sort_values(["when", "id"])
    assert splits["train"]["size"].tolist() == ordered["size"].iloc[:700].tolist()
    assert splits["test"]["size"].tolist() == ordered["size"].iloc[850:].tolist()


def test_preprocess_splits_by_a_stable_hash_of_the_id_without_event_time() -> None:
    frame = toy(3000)
    first = preprocess.split(frame, contract())
    again = preprocess.split(frame.sample(frac=1.0, random_state=1), contract())
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
    shares = [len(s) / 3000 for s in first.values()]
    assert shares == pytest.approx([0.70, 0.15, 0.15], abs=0.03)
    # Fixed by the id's text alone: the same on every machine and Python process.
    assert preprocess.stable_fraction("r0001") == pytest.approx(0.742386, abs=1e-6)


def test_preprocess_encodes_multiclass_labels_in_target_values_order() -> None:
    frame = toy(300).assign(label=np.resize(["low", "mid", "high"], 300))
    multi = contract(problem_type="multiclass", target_values=["low", "mid", "high"])
    labels = preprocess.labels(frame, multi)
    assert labels.iloc[:3].tolist() == [0, 1, 2]
    frame.loc[0, "label"] = "extreme"
    with pytest.raises(ValueError, match=r"\['extreme'\] outside its declared target_values"):
        preprocess.labels(frame, multi)


def test_preprocess_reads_hive_partition_folders(tmp_path: Path) -> None:
    for day in ("2026-01-01", "2026-01-02"):
        folder = tmp_path / f"day={day}"
        folder.mkdir()
        toy(3).to_csv(folder / "part-0.csv", index=False)
    (tmp_path / "_SUCCESS").write_text("")
    frame = preprocess.read_curated(tmp_path)
    assert len(frame) == 6
    assert sorted(set(frame["day"])) == ["2026-01-01", "2026-01-02"]


def test_scripts_read_the_contract_under_the_name_its_s3_object_has(tmp_path: Path) -> None:
    (tmp_path / "contract").mkdir()
    (tmp_path / "contract" / "4e5f0a.json").write_text(json.dumps(contract()))
    assert preprocess.read_contract(tmp_path) == contract()
    assert evaluate.read_contract(tmp_path) == contract()
    (tmp_path / "contract" / "other.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no training contract"):
        preprocess.read_contract(tmp_path)


def test_preprocess_refuses_a_payload_that_is_not_its_layout() -> None:
    with pytest.raises(ValueError, match="brings its own preprocess"):
        preprocess.split(toy(), contract(payload_columns=["size", "colour"]))


# --- mlgate's default evaluate -----------------------------------------------------------


@pytest.mark.parametrize("problem", ["binary_classification", "multiclass", "regression"])
def test_evaluate_metrics_equal_scikit_learn_for_every_problem_type(problem: str) -> None:
    rng = np.random.default_rng(11)
    if problem == "binary_classification":
        labels = rng.integers(0, 2, 400).astype(float)
        output = np.clip(labels * 0.3 + rng.random(400) * 0.7, 0, 1)
    elif problem == "multiclass":
        labels = rng.integers(0, 4, 400).astype(float)
        output = rng.random((400, 4)) + np.eye(4)[labels.astype(int)] * 0.5
    else:
        labels = rng.normal(30, 8, 400)
        labels[:5] = 0.0  # mape skips zero targets
        output = labels + rng.normal(0, 3, 400)
    got = evaluate.compute(problem, labels, output)
    expected = sklearn_metrics(problem, labels, output)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


def test_auc_handles_ties_like_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = rng.integers(0, 5, 500) / 4  # many ties
    assert evaluate.roc_auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores))


def test_evaluate_refuses_a_metric_of_another_problem_type() -> None:
    with pytest.raises(ValueError, match=r"\['auc'\] are not regression metrics"):
        evaluate.check_metrics("regression", ["rmse", "auc"])


def test_evaluate_names_the_model_formats_it_loads(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_text("weights")
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "model.pt", arcname="model.pt")
    with pytest.raises(FileNotFoundError, match=r"`xgboost-model`.*`model.joblib`"):
        evaluate.load_predictor(tmp_path, "regression")


def deployed_definition(manifest: Any) -> dict[str, Any]:
    """The definition synth deploys: the product's cached one when its key says it was built
    from today's inputs (as `cached_definition` serves it; tests/ml/test_pipeline_definition.py
    holds the cache to what the SDK builds), else built with the SDK (seconds). Nothing is
    written."""
    from mlgate.infra.ml.pipeline import (
        CACHE_FILE,
        PipelineSettings,
        definition,
        definition_key,
    )

    from .conftest import pipeline_settings

    try:
        cached = json.loads(manifest.path(str(CACHE_FILE)).read_text())
        if cached["key"] == definition_key(manifest, PipelineSettings(**cached["settings"])):
            found: dict[str, Any] = cached["definition"]
            return found
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no cache, or one of another shape: built below
    return definition(manifest, pipeline_settings(manifest))


def json_gets(node: Any, property_file: str = "EvaluationReport") -> list[str]:
    """The paths read from evaluate's `property_file` (the tracked run's file is read by
    the register step: tests/ml/test_tracking.py)."""
    if isinstance(node, dict):
        get = node.get("Std:JsonGet")
        found = (
            [get["Path"]]
            if get and get["PropertyFile"]["Get"].endswith(f".PropertyFiles.{property_file}")
            else []
        )
        return found + [p for v in node.values() for p in json_gets(v, property_file)]
    if isinstance(node, list):
        return [p for v in node for p in json_gets(v, property_file)]
    return []


@pytest.mark.parametrize("path", PRODUCTS)
def test_every_path_the_pipeline_reads_exists_in_the_evaluation_report(
    runs: Callable[[Path], Run], path: Path
) -> None:
    """The pipeline's condition steps read what evaluate really writes, for each product."""
    from mlgate.infra.ml.pipeline import metric_json_path

    run = runs(path)
    manifest = run.manifest
    paths = set(json_gets(deployed_definition(manifest)))
    assert paths == {metric_json_path(manifest, m.name) for m in manifest.metrics.model_metrics}
    for json_path in paths:
        node: Any = run.report
        for key in json_path.split("."):
            node = node[key]
        assert isinstance(node, float), json_path
