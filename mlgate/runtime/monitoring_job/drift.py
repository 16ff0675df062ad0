"""Drift and data checks of a capture window against the training baseline, with Evidently.

Tests, set explicitly rather than left to Evidently's size-dependent defaults, so that a
feature's score means the same thing every hour whatever the traffic: numeric columns use the
normed Wasserstein distance (Wasserstein distance divided by the baseline's standard
deviation), categorical columns the Jensen-Shannon distance. Both are distances (0 = same
distribution, higher = further apart) and a feature drifts when its score is at or above its
threshold (Evidently's rule for distances; default 0.1 for both, overridable per feature).
p-value tests (K-S, chi-square) were left out: on the 10^5-10^6 rows of a busy hour they call
the slightest, harmless shift significant.
https://docs.evidentlyai.com/metrics/customize_data_drift

Data checks, also Evidently metrics so they appear in the same report: the share of missing
values per feature, and the share of out-of-range values among the present ones: outside the
baseline's [min, max] for a numeric feature, a category the baseline never had for a
categorical one.

Volume: run.py hands `analyse` a bounded uniform sample of a large window together with the
exact counts over all of it (window.py): the shares and the row count are the window's, the
drift scores the sample's, each with its stated sampling error. The report's own data checks
are the sample's; run.py says so at the top of the report when it sampled.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import MissingValueCount, OutListValueCount, OutRangeValueCount
from evidently.presets import DataDriftPreset

from .window import ALPHA, Bounds, Stats, dkw_error

NUMERIC_TEST = "wasserstein"
CATEGORICAL_TEST = "jensenshannon"
DEFAULT_FEATURE_THRESHOLD = 0.1
"""Evidently's default threshold for both distances."""


@dataclass(frozen=True)
class DriftResult:
    summary: dict[str, Any]
    """{"features": {column: {feature, drift_score, drifted, test, threshold, missing_share,
    out_of_range_share}}, "overall": {drifted_share, drifted_features, features,
    drifted_columns, columns, drift_detected, drift_threshold, rows}}."""
    report: Any
    """Evidently's run result (a Snapshot): `save_html(path)` writes the HTML report."""


def _report(
    reference: pd.DataFrame,
    comparable: Sequence[str],
    categorical: Sequence[str],
    thresholds: Mapping[str, float],
    drift_threshold: float,
) -> Report:
    bounds = Bounds.of(reference, categorical)
    checks: list[Any] = []
    for column in reference.columns:
        checks.append(MissingValueCount(column=column))
        if column not in comparable:
            continue
        if column in categorical:
            checks.append(OutListValueCount(column=column, values=bounds.categories[column]))
        else:
            low, high = bounds.ranges[column]
            checks.append(OutRangeValueCount(column=column, left=low, right=high))
    if not comparable:
        return Report(checks, include_tests=False)
    preset = DataDriftPreset(
        columns=list(comparable),
        num_method=NUMERIC_TEST,
        cat_method=CATEGORICAL_TEST,
        per_column_threshold={c: t for c, t in thresholds.items() if c in comparable} or None,
        drift_share=drift_threshold,
    )
    return Report([preset, *checks], include_tests=False)


EVIDENTLY_TESTED = "0.7.23"
"""The Evidently version whose per-column drift widgets `_table_widgets_only` leaves undrawn."""


@contextlib.contextmanager
def _table_widgets_only() -> Iterator[None]:
    """Each column's ValueDrift metric of DataDriftPreset draws a widget of its own as it
    computes the score (plotly figures: a quarter of `analyse`'s CPU), and the preset's render
    then shows its drift table instead and drops them. With the Evidently version this was
    tested with, those widgets are not drawn; the scores, the summary and the HTML report are
    the same (tests/monitoring/test_monitoring_job.py compares the pages). With any other
    version, Evidently runs as it is."""
    from importlib.metadata import version

    from evidently.metrics import column_statistics

    calculation: Any = getattr(column_statistics, "ValueDriftCalculation", None)
    if version("evidently") != EVIDENTLY_TESTED or not callable(
        getattr(calculation, "_render", None)
    ):
        yield
        return
    draw = calculation._render
    calculation._render = lambda self, *args, **kwargs: []
    try:
        yield
    finally:
        calculation._render = draw


def _share(value: Any) -> float:
    share = float(value["share"])
    # Evidently divides by the present values; a column with none has no share to speak of.
    return 0.0 if math.isnan(share) else share


def analyse(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: Sequence[str],
    drift_threshold: float,
    feature_thresholds: Mapping[str, float] | None = None,
    feature_of: Mapping[str, str] | None = None,
    window: Stats | None = None,
    seed: int | None = None,
) -> DriftResult:
    """Compare current with reference (same columns); drift_detected when the share of drifted
    features is above drift_threshold.

    Each column is scored on its own, but the share counts the product's features, not the
    payload's columns: `feature_of` names the feature a column carries (the one-hot columns of a
    categorical feature carry that feature; a column it leaves out is a feature of its own), and
    a feature drifted when any of its columns did. Five of ten features moved is a share of 0.5,
    however many one-hot columns the other five have.

    With `window` (the exact counts over every row of the window) `current` may be a uniform
    sample of it (window.Reservoir, drawn with `seed`): the missing and out-of-range shares and
    `rows` are then the window's, and each feature's `score_error` bounds, at 95 %, how far
    its drift score on the sample may be from the whole window's (window.py says how); 0.0
    when the sample is the window. `sample` records {rows, window_rows, sampled, seed, confidence,
    cdf_error}: cdf_error is the DKW bound at `rows` values (0.0 when not sampled)."""
    thresholds = dict(feature_thresholds or {})
    owner = {c: (feature_of or {}).get(c, c) for c in reference.columns}
    stray = sorted(set(feature_of or {}) - set(reference.columns))
    if stray:
        raise ValueError(f"feature groups name unknown columns: {', '.join(stray)}")
    unknown = sorted(set(thresholds) - set(reference.columns))
    if unknown:
        raise ValueError(f"feature thresholds name unknown features: {', '.join(unknown)}")
    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c not in categorical],
        categorical_columns=[c for c in reference.columns if c in categorical],
    )
    # Evidently cannot compare a column with no values; a feature that went entirely missing
    # is reported as drifted without a score: its distribution is gone.
    comparable = [c for c in reference.columns if current[c].notna().any()]
    with _table_widgets_only():
        run = _report(reference, comparable, categorical, thresholds, drift_threshold).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
    features: dict[str, dict[str, Any]] = {
        c: {
            "test": CATEGORICAL_TEST if c in categorical else NUMERIC_TEST,
            "drift_score": None,
            "threshold": thresholds.get(c, DEFAULT_FEATURE_THRESHOLD),
            "drifted": c not in comparable,
            "out_of_range_share": 0.0,
        }
        for c in reference.columns
    }
    for metric in run.dict()["metrics"]:
        config, value = metric["config"], metric["value"]
        kind = config["type"].rsplit(":", 1)[-1]
        column = config.get("column")
        if kind == "ValueDrift":
            threshold = float(config.get("threshold") or DEFAULT_FEATURE_THRESHOLD)
            score = float(value)
            features[column].update(
                drift_score=score, threshold=threshold, drifted=bool(score >= threshold)
            )
        elif kind == "MissingValueCount":
            features[column]["missing_share"] = _share(value)
        elif kind in ("OutRangeValueCount", "OutListValueCount"):
            features[column]["out_of_range_share"] = _share(value)
    rows = len(current) if window is None else window.rows
    sampled = rows > len(current)
    if window is not None:
        for column, feature in features.items():
            feature["missing_share"] = window.missing_share(column)
            feature["out_of_range_share"] = window.out_of_range_share(column)
            feature["score_error"] = (
                _score_error(column, reference, current, categorical, window) if sampled else 0.0
            )
    for column, feature in features.items():
        feature["feature"] = owner[column]
    moved = {owner[c] for c, f in features.items() if f["drifted"]}
    total = len(set(owner.values()))
    share = len(moved) / total
    overall = {
        "drifted_share": share,
        "drifted_features": len(moved),
        "features": total,
        "drifted_columns": sum(f["drifted"] for f in features.values()),
        "columns": len(features),
        "drift_detected": share > drift_threshold,
        "drift_threshold": drift_threshold,
        "rows": rows,
    }
    summary: dict[str, Any] = {"features": features, "overall": overall}
    if window is not None:
        summary["sample"] = {
            "rows": len(current),
            "window_rows": rows,
            "sampled": sampled,
            "seed": seed,
            "confidence": 1 - ALPHA,
            "cdf_error": dkw_error(len(current)) if sampled else 0.0,
        }
    return DriftResult(summary=summary, report=run)


def _score_error(
    column: str,
    reference: pd.DataFrame,
    sample: pd.DataFrame,
    categorical: Sequence[str],
    window: Stats,
) -> float | None:
    """Bound at 95 % on |score(sample) - score(window)| for one column (window.py); None when
    the sample has no value of it or the window's range is not finite."""
    figures = window.columns[column]
    if column in categorical:
        present = int(sample[column].notna().sum())
        if not present:
            return None
        return math.sqrt(math.log(2) * min(1.0, len(figures.seen) * dkw_error(present)))
    # Evidently scores the finite values (NaN and infinities dropped) and norms by the
    # baseline's standard deviation, at least 0.001.
    values = sample[column].to_numpy(dtype=float)
    present = int(np.isfinite(values).sum())
    spread = figures.high - figures.low
    if not present or not math.isfinite(spread):
        return None
    base = reference[column].to_numpy(dtype=float)
    norm = max(float(np.std(base[np.isfinite(base)])), 0.001)
    return dkw_error(present) * spread / norm
