"""Live model quality: captured predictions joined to delayed ground truth by inference id.

What a prediction is, per problem type (the first CSV field of the endpoint's output row):
binary_classification, the positive class's probability (class 1 at or above the probability
threshold); multiclass, the predicted label; regression, the predicted value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
"""(labels, predictions, scores) -> value; scores are the binary probabilities, else unused."""


def _false_positive_rate(y: np.ndarray, predicted: np.ndarray, _: np.ndarray) -> float:
    negatives = y == 0
    return float(np.sum(predicted[negatives] == 1) / negatives.sum()) if negatives.any() else 0.0


def _mape(y: np.ndarray, p: np.ndarray, _: np.ndarray) -> float:
    """Mean absolute percentage error over the rows whose target is not 0, as mlgate's
    evaluation computes it at training (ml/scripts/evaluate.py); NaN when every target is 0."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    nonzero = y != 0
    if not nonzero.any():
        return float("nan")
    return float(np.mean(np.abs(p[nonzero] - y[nonzero]) / np.abs(y[nonzero])))


def _auc(y: np.ndarray, _: np.ndarray, scores: np.ndarray) -> float:
    # One class alone has no ranking to measure; NaN is left out of what is published.
    return float(skm.roc_auc_score(y, scores)) if len(np.unique(y)) == 2 else float("nan")


def _averaged(score: Callable[..., Any], average: str) -> Metric:
    return lambda y, p, _: float(score(y, p, average=average, zero_division=0))


METRICS: dict[str, dict[str, Metric]] = {
    "binary_classification": {
        "precision": lambda y, p, _: float(skm.precision_score(y, p, zero_division=0)),
        "recall": lambda y, p, _: float(skm.recall_score(y, p, zero_division=0)),
        "f1": lambda y, p, _: float(skm.f1_score(y, p, zero_division=0)),
        "accuracy": lambda y, p, _: float(skm.accuracy_score(y, p)),
        "auc": _auc,
        "false_positive_rate": _false_positive_rate,
    },
    "multiclass": {
        "accuracy": lambda y, p, _: float(skm.accuracy_score(y, p)),
        "precision": _averaged(skm.precision_score, "macro"),
        "recall": _averaged(skm.recall_score, "macro"),
        "f1": _averaged(skm.f1_score, "macro"),
        "weighted_precision": _averaged(skm.precision_score, "weighted"),
        "weighted_recall": _averaged(skm.recall_score, "weighted"),
        "weighted_f1": _averaged(skm.f1_score, "weighted"),
    },
    "regression": {
        "rmse": lambda y, p, _: float(np.sqrt(skm.mean_squared_error(y, p))),
        "mse": lambda y, p, _: float(skm.mean_squared_error(y, p)),
        "mae": lambda y, p, _: float(skm.mean_absolute_error(y, p)),
        "r2": lambda y, p, _: float(skm.r2_score(y, p)),
        "mape": _mape,
    },
}
PROBLEM_TYPES = tuple(METRICS)


def check_metrics(problem_type: str, names: Sequence[str]) -> None:
    """Raise ValueError naming what does not fit, before any data is read."""
    if problem_type not in METRICS:
        raise ValueError(f"problem type '{problem_type}' is not one of {', '.join(PROBLEM_TYPES)}")
    known = METRICS[problem_type]
    wrong = [n for n in names if n not in known]
    if wrong:
        raise ValueError(
            f"metric(s) {', '.join(wrong)} do not apply to {problem_type}; "
            f"it has {', '.join(known)}"
        )


def join(events: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Predictions that have a label: inference_id, prediction, label.

    Requests that held several rows share one inference id, and a label names one id, so only
    single-row requests are joined."""
    usable = events[events["single_row"] & events["prediction"].notna()]
    usable = usable.drop_duplicates("inference_id", keep="last")
    joined = usable.merge(
        labels.rename("label"), left_on="inference_id", right_index=True, how="inner"
    )
    return joined[["inference_id", "prediction", "label"]].reset_index(drop=True)


def compute(
    joined: pd.DataFrame,
    problem_type: str,
    names: Sequence[str],
    probability_threshold: float = 0.5,
) -> dict[str, float]:
    """The named metrics of joined predictions against their labels."""
    check_metrics(problem_type, names)
    if joined.empty:
        return {}
    if problem_type == "binary_classification":
        scores = pd.to_numeric(joined["prediction"], errors="raise").to_numpy(float)
        labels = pd.to_numeric(joined["label"], errors="raise").to_numpy(float).astype(int)
        predicted = (scores >= probability_threshold).astype(int)
    elif problem_type == "multiclass":
        labels = joined["label"].astype(str).to_numpy()
        predicted = joined["prediction"].astype(str).to_numpy()
        scores = np.empty(0)
    else:
        labels = pd.to_numeric(joined["label"], errors="raise").to_numpy(float)
        predicted = pd.to_numeric(joined["prediction"], errors="raise").to_numpy(float)
        scores = np.empty(0)
    return {name: METRICS[problem_type][name](labels, predicted, scores) for name in names}
