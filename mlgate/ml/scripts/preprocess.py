"""Preprocess (SageMaker Processing): curated transactions -> train / validation / test splits
in the built-in XGBoost CSV layout (label first, no header), and the monitoring baseline.

The split is by time (oldest 70 % train, next 15 % validation, newest 15 % test), as fraud
models meet tomorrow's traffic, not a shuffled sample of yesterday's. The baseline dataset is
exactly what the endpoint receives: the feature columns, with a header, no label.

Runs in the XGBoost container (pandas, numpy, pyarrow) and locally in the tests.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("preprocess")
BASE = Path("/opt/ml/processing")
NUMERIC = {
    # column: value used when curated data lacks it (the customer's first transaction)
    "amount": 0.0,
    "card_present": 0.0,
    "amount_zscore": 0.0,
    "amount_to_customer_mean": 1.0,
    "seconds_since_previous": -1.0,
    "transactions_in_window": 1.0,
}
# Fixed vocabularies keep the feature layout, and so the endpoint's payload, stable.
CATEGORIES = {
    "channel": ["pos", "ecommerce", "contactless", "atm"],
    "merchant_category": [
        "grocery", "fuel", "restaurant", "travel", "electronics", "fashion", "online",
    ],
    "merchant_country": ["DE", "FR", "NL", "ES", "IT", "GB", "US", "BR", "NG", "RU"],
}  # fmt: skip
SPLITS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))


def feature_names() -> list[str]:
    names = list(NUMERIC)
    for column, values in CATEGORIES.items():
        names += [f"{column}={v}" for v in [*values, "other"]]
    return names


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns, in a fixed order; missing curated features get neutral
    values (and a warning), unseen categories fall into 'other'."""
    out = pd.DataFrame(index=frame.index)
    for column, default in NUMERIC.items():
        if column in frame:
            out[column] = pd.to_numeric(frame[column], errors="coerce").fillna(default)
        else:
            log.warning("curated data has no %s; using %s", column, default)
            out[column] = default
    for column, values in CATEGORIES.items():
        seen = frame[column].astype(str) if column in frame else pd.Series("", index=frame.index)
        for value in values:
            out[f"{column}={value}"] = (seen == value).astype(float)
        out[f"{column}=other"] = (~seen.isin(values)).astype(float)
    return out[feature_names()].astype(float)


def split(frame: pd.DataFrame, target: str) -> dict[str, pd.DataFrame]:
    """Time-ordered splits; each row is label then features."""
    if target not in frame:
        raise ValueError(f"curated data has no label column '{target}'")
    ordered = frame.sort_values(["event_time", "transaction_id"], kind="stable")
    labelled = pd.concat(
        [ordered[target].astype(int).rename(target), features(ordered)], axis=1
    ).reset_index(drop=True)
    bounds = np.cumsum([0] + [round(share * len(labelled)) for _, share in SPLITS])
    bounds[-1] = len(labelled)
    return {name: labelled.iloc[bounds[i] : bounds[i + 1]] for i, (name, _) in enumerate(SPLITS)}


def read_curated(folder: Path) -> pd.DataFrame:
    files = sorted([*folder.rglob("*.parquet"), *folder.rglob("*.csv")])
    if not files:
        raise FileNotFoundError(f"no .parquet or .csv files under {folder}")
    return pd.concat(
        [pd.read_parquet(f) if f.suffix == ".parquet" else pd.read_csv(f) for f in files],
        ignore_index=True,
    )


def main(argv: list[str] | None = None, base: Path = BASE) -> dict[str, int]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="is_fraud")
    args = parser.parse_args(argv)
    splits = split(read_curated(base / "input"), args.target)
    counts = {}
    for name, rows in splits.items():
        (base / name).mkdir(parents=True, exist_ok=True)
        rows.to_csv(base / name / f"{name}.csv", header=False, index=False)
        counts[name] = len(rows)
    (base / "baseline").mkdir(parents=True, exist_ok=True)
    splits["train"].drop(columns=[args.target]).to_csv(
        base / "baseline" / "baseline.csv", header=True, index=False
    )
    log.info("rows per split: %s", counts)
    return counts


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
