"""Evaluate (SageMaker Processing): score the trained XGBoost model on the test split and write
every manifest model metric to evaluation.json, in SageMaker's model-quality layout:
{"binary_classification_metrics": {"precision": {"value": 0.97, ...}, ...}}.

The pipeline's condition steps read `binary_classification_metrics.<metric>.value`
(mlgate.ml.pipeline.metric_json_path). Metrics use numpy only, so the script needs nothing
beyond the XGBoost container; the tests check them against scikit-learn.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import tempfile
from pathlib import Path

import numpy as np

BASE = Path("/opt/ml/processing")
THRESHOLD = 0.5
SECTION = "binary_classification_metrics"


def metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float = THRESHOLD
) -> dict[str, float]:
    """Binary-classification metrics of fraud scores against labels (1 = fraud)."""
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
        "accuracy": (tp + tn) / len(y) if len(y) else 0.0,
        "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
        "auc": roc_auc(y, scores),
    }


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random fraud scores above a random legitimate
    transaction (Mann-Whitney U, ties counted half, average ranks)."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
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


def load_booster(model_dir: Path):  # type: ignore[no-untyped-def]
    import xgboost as xgb

    archive = model_dir / "model.tar.gz"
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        booster = xgb.Booster()
        booster.load_model(str(Path(tmp) / "xgboost-model"))
        return booster


def report(values: dict[str, float], wanted: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    missing = [m for m in wanted if m not in values]
    if missing:
        raise ValueError(f"evaluate cannot compute {missing}; it knows {sorted(values)}")
    return {SECTION: {name: {"value": values[name]} for name in wanted}}


def main(
    argv: list[str] | None = None, base: Path = BASE
) -> dict[str, dict[str, dict[str, float]]]:
    import xgboost as xgb

    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics", default="precision,recall,auc")
    args = parser.parse_args(argv)
    test = np.loadtxt(next((base / "test").glob("*.csv")), delimiter=",", ndmin=2)
    labels, rows = test[:, 0], test[:, 1:]
    scores = load_booster(base / "model").predict(xgb.DMatrix(rows))
    result = report(metrics(labels, scores), args.metrics.split(","))
    (base / "evaluation").mkdir(parents=True, exist_ok=True)
    (base / "evaluation" / "evaluation.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
