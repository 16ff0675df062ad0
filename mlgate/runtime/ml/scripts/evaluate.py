"""mlgate's default evaluate (SageMaker Processing): score the trained model on the test split
and write the manifest's model metrics to evaluation.json in SageMaker's model-quality layout,
`{report_section: {metric: {"value": v}}}`, e.g.
{"regression_metrics": {"rmse": {"value": 4.2}}}; the pipeline's condition steps read
`<report_section>.<metric>.value`.

Inputs, under the processing base folder (/opt/ml/processing):

- contract/contract.json (or the folder's only JSON file): the training contract
  (problem_type, metrics, report_section, target_values; see preprocess.py).
- model/model.tar.gz: the training job's artifact, holding either
  - `xgboost-model`: an XGBoost booster (the built-in algorithm, or a script that saves one);
    binary models predict the positive class's probability, multiclass models the class
    probabilities (multi:softprob) or the class index (multi:softmax); or
  - `model.joblib`: the script-mode contract for a product's train.py: `joblib.dump` of an
    object with scikit-learn's `predict` (and `predict_proba` for classifiers, with
    `classes_` holding the class indices), that unpickles with the container's libraries
    alone (scikit-learn estimators and pipelines: no class defined in train.py).
- test/*.csv: the label first, then the payload columns, no header (preprocess's layout).

Metrics, computed with numpy only (the tests check them against scikit-learn):
binary classification: precision, recall, f1, accuracy, false_positive_rate at a 0.5 score
threshold, and auc (Mann-Whitney, ties counted half); multiclass: accuracy and the macro
averages of precision, recall and f1 over the classes in the labels or the predictions;
regression: rmse, mae, r2 and mape (over the rows whose target is not 0).

A product that brings its own evaluate writes the same file, with the same section and names.
"""

from __future__ import annotations

import argparse
import json
import math
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # aliases for the checker only: Python 3.8 cannot subscript them at run time
    from collections.abc import Callable

    from numpy.typing import NDArray

    Array = NDArray[Any]
    Predictor = Callable[[Array], Array]

BASE = Path("/opt/ml/processing")
THRESHOLD = 0.5
METRICS_BY_PROBLEM = {
    "binary_classification": (
        "precision", "recall", "f1", "auc", "accuracy", "false_positive_rate",
    ),
    "multiclass": ("accuracy", "precision", "recall", "f1"),
    "regression": ("rmse", "mae", "r2", "mape"),
}  # fmt: skip


def binary_metrics(labels: Array, scores: Array, threshold: float = THRESHOLD) -> dict[str, float]:
    """Binary-classification metrics of positive-class scores against 0/1 labels."""
    y = labels.astype(int)
    predicted = (scores >= threshold).astype(int)
    tp = int(np.sum((predicted == 1) & (y == 1)))
    fp = int(np.sum((predicted == 1) & (y == 0)))
    fn = int(np.sum((predicted == 0) & (y == 1)))
    tn = int(np.sum((predicted == 0) & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / len(y),
        "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
        "auc": roc_auc(y, scores),
    }


def roc_auc(labels: Array, scores: Array) -> float:
    """Area under the ROC curve: the chance a random positive scores above a random negative
    (Mann-Whitney U, ties counted half, average ranks)."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError(
            f"auc needs both classes in the test split; it has {positives} positive and "
            f"{negatives} negative rows"
        )
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=float)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = ranks[labels == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def multiclass_metrics(labels: Array, predictions: Array) -> dict[str, float]:
    """Accuracy and macro precision / recall / f1; `predictions` are class probabilities
    (n, K) or class indices (n,)."""
    y = labels.astype(int)
    predicted = predictions.argmax(axis=1) if predictions.ndim == 2 else predictions.astype(int)
    precisions, recalls, f1s = [], [], []
    for k in np.union1d(y, predicted):
        tp = int(np.sum((predicted == k) & (y == k)))
        fp = int(np.sum((predicted == k) & (y != k)))
        fn = int(np.sum((predicted != k) & (y == k)))
        precisions.append(tp / (tp + fp) if tp + fp else 0.0)
        recalls.append(tp / (tp + fn) if tp + fn else 0.0)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {
        "accuracy": float(np.mean(predicted == y)),
        "precision": float(np.mean(precisions)),
        "recall": float(np.mean(recalls)),
        "f1": float(np.mean(f1s)),
    }


def regression_metrics(labels: Array, predictions: Array) -> dict[str, float]:
    y = labels.astype(float)
    error = predictions.astype(float).reshape(-1) - y
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum(error**2))
    # A constant target has no variance to explain: perfect, or no better than its mean.
    r2 = 1 - residual / total if total else float(residual == 0)
    nonzero = y != 0
    if not nonzero.any():
        raise ValueError("mape is undefined: every target in the test split is 0")
    return {
        "rmse": math.sqrt(residual / len(y)),
        "mae": float(np.mean(np.abs(error))),
        "r2": r2,
        "mape": float(np.mean(np.abs(error[nonzero]) / np.abs(y[nonzero]))),
    }


def compute(problem: str, labels: Array, predictions: Array) -> dict[str, float]:
    if len(labels) == 0:
        raise ValueError("the test split is empty: nothing to evaluate")
    if problem == "binary_classification":
        return binary_metrics(labels, predictions.reshape(-1))
    if problem == "multiclass":
        return multiclass_metrics(labels, predictions)
    if problem == "regression":
        return regression_metrics(labels, predictions)
    raise ValueError(f"unknown problem_type '{problem}'; known: {sorted(METRICS_BY_PROBLEM)}")


def check_metrics(problem: str, wanted: list[str]) -> None:
    known = METRICS_BY_PROBLEM.get(problem)
    if known is None:
        raise ValueError(f"unknown problem_type '{problem}'; known: {sorted(METRICS_BY_PROBLEM)}")
    foreign = [m for m in wanted if m not in known]
    if foreign:
        raise ValueError(
            f"{foreign} are not {problem} metrics; evaluate computes {list(known)} for "
            "this problem type"
        )


def report(
    values: dict[str, float], wanted: list[str], section: str
) -> dict[str, dict[str, dict[str, float]]]:
    missing = [m for m in wanted if m not in values]
    if missing:
        raise ValueError(f"evaluate cannot compute {missing}; it knows {sorted(values)}")
    return {section: {name: {"value": float(values[name])} for name in wanted}}


def _xgboost_predictor(path: Path) -> Predictor:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(str(path))

    def predict(rows: Array) -> Array:
        return np.asarray(booster.predict(xgb.DMatrix(rows)))

    return predict


def _joblib_predictor(path: Path, problem: str) -> Predictor:
    import joblib  # type: ignore[import-untyped]

    model = joblib.load(path)
    if problem == "regression" or not hasattr(model, "predict_proba"):
        return lambda rows: np.asarray(model.predict(rows))
    classes = np.asarray(model.classes_).astype(int)
    if problem == "binary_classification":
        if 1 not in classes:
            raise ValueError(f"the model's classes {classes.tolist()} lack the positive class 1")
        positive = int(np.flatnonzero(classes == 1)[0])
        return lambda rows: np.asarray(model.predict_proba(rows))[:, positive]
    return lambda rows: classes[np.asarray(model.predict_proba(rows)).argmax(axis=1)]


def load_predictor(model_dir: Path, problem: str) -> Predictor:
    """The model in model_dir/model.tar.gz, as a function of the payload rows."""
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(model_dir / "model.tar.gz") as tar:
            # The data filter refuses links and paths outside tmp; Pythons before 3.9.17
            # (older containers) lack it, and the archive is the pipeline's own artifact.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)
        folder = Path(tmp)
        if (folder / "xgboost-model").is_file():
            return _xgboost_predictor(folder / "xgboost-model")
        if (folder / "model.joblib").is_file():
            return _joblib_predictor(folder / "model.joblib", problem)
        found = sorted(p.name for p in folder.iterdir())
        raise FileNotFoundError(
            f"model.tar.gz holds {found}: evaluate loads `xgboost-model` (an XGBoost booster) "
            "or `model.joblib` (script mode); a product with another format brings its own "
            "evaluate (model.code.evaluate)"
        )


def read_test(folder: Path) -> tuple[Array, Array]:
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no test split (*.csv) under {folder}")
    test = np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return test[:, 0], test[:, 1:]


def read_contract(base: Path) -> dict[str, Any]:
    """contract/contract.json, or the folder's only JSON file (as preprocess reads it)."""
    folder = base / "contract"
    found = sorted(folder.glob("*.json"))
    path = folder / "contract.json" if (folder / "contract.json").is_file() else None
    if path is None and len(found) == 1:
        path = found[0]
    if path is None:
        raise FileNotFoundError(
            f"no training contract in {folder} (found {[p.name for p in found]}): the "
            "pipeline provides contract.json as the `contract` input"
        )
    contract: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return contract


def main(
    argv: list[str] | None = None, base: Path = BASE
) -> dict[str, dict[str, dict[str, float]]]:
    parser = argparse.ArgumentParser(description="Score the model on the test split.")
    parser.parse_args(argv)
    contract = read_contract(base)
    problem, wanted = contract["problem_type"], list(contract["metrics"])
    check_metrics(problem, wanted)
    labels, rows = read_test(base / "test")
    predictions = load_predictor(base / "model", problem)(rows)
    result = report(compute(problem, labels, predictions), wanted, contract["report_section"])
    (base / "evaluation").mkdir(parents=True, exist_ok=True)
    (base / "evaluation" / "evaluation.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
