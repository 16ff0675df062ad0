"""Delivery time's own preprocess (SageMaker Processing, scikit-learn container): curated
orders -> train / validation / test CSV (delivery minutes first, then the payload, no header)
and the monitoring baseline (the payload with its header, no label).

Why not mlgate's default: the model does better on the log of the distance (the first km
costs more than the tenth: pick-up, parking, stairs) and on peak / weekend flags than on raw
hours and weekdays, and orders have no time order worth keeping in the split, so a stable
hash of the order id decides it (the same order lands in the same split on every run).

The payload is the header of ml/sample_request.csv; mlgate's training contract (the JSON
file of the `contract` input) names the target and id columns. Runs on the container's
Python 3.9.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("delivery-time-preprocess")
BASE = Path("/opt/ml/processing")
VEHICLES = ("bicycle", "scooter", "car")
CITIES = ("austin", "boston", "chicago", "denver")
PEAK_HOURS = (11, 12, 13, 18, 19, 20)
PAYLOAD = (
    "distance_km", "log_distance_km", "prep_minutes", "items", "hour_of_day", "peak_hour",
    "weekend", "courier_experience_months",
    *[f"vehicle_{v}" for v in VEHICLES], *[f"city_{c}" for c in CITIES],
)  # fmt: skip
SPLITS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))


def payload(orders: pd.DataFrame) -> pd.DataFrame:
    """The model's input, one float column per PAYLOAD name (an unknown vehicle or city is all
    zeros in its one-hot group)."""
    number = {
        c: pd.to_numeric(orders[c], errors="coerce").fillna(0.0).astype(float)
        for c in ("distance_km", "prep_minutes", "items", "hour_of_day", "weekday",
                  "courier_experience_months")
    }  # fmt: skip
    out = pd.DataFrame(
        {
            "distance_km": number["distance_km"],
            "log_distance_km": np.log1p(number["distance_km"].clip(lower=0.0)),
            "prep_minutes": number["prep_minutes"],
            "items": number["items"],
            "hour_of_day": number["hour_of_day"],
            "peak_hour": number["hour_of_day"].isin(PEAK_HOURS).astype(float),
            "weekend": (number["weekday"] >= 6).astype(float),
            "courier_experience_months": number["courier_experience_months"],
        },
        index=orders.index,
    )
    for vehicle in VEHICLES:
        out[f"vehicle_{vehicle}"] = (orders["vehicle"].astype(str) == vehicle).astype(float)
    for city in CITIES:
        out[f"city_{city}"] = (orders["city"].astype(str) == city).astype(float)
    return out[list(PAYLOAD)]


def split_of(order_id: str) -> str:
    """train, validation or test, fixed by a hash of the order id."""
    fraction = int(hashlib.sha256(order_id.encode("utf-8")).hexdigest()[:12], 16) / 16**12
    edge = 0.0
    for name, share in SPLITS:
        edge += share
        if fraction < edge:
            return name
    return SPLITS[-1][0]


def read_curated(folder: Path) -> pd.DataFrame:
    files = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith(("_", ".")))
    if not files:
        raise FileNotFoundError(f"no curated parquet files under {folder}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def read_contract(folder: Path) -> dict:
    """The one JSON file of the contract input (its name is the S3 object's)."""
    files = sorted(folder.glob("*.json"))
    if len(files) != 1:
        raise FileNotFoundError(f"expected one training contract in {folder}, found {files}")
    return json.loads(files[0].read_text(encoding="utf-8"))


def main(argv: list[str] | None = None, base: Path = BASE) -> dict[str, int]:
    argparse.ArgumentParser(description="Delivery time's preprocess").parse_args(argv)
    contract = read_contract(base / "contract")
    target, id_column = contract["target_column"], contract["id_column"]
    orders = read_curated(base / "input").sort_values(id_column, kind="stable")
    labelled = pd.concat(
        [orders[target].astype(float).rename(target), payload(orders)], axis=1
    ).reset_index(drop=True)
    parts = orders[id_column].astype(str).map(split_of).to_numpy()
    counts = {}
    for name, _ in SPLITS:
        rows = labelled[parts == name]
        if rows.empty:
            raise ValueError(f"the {name} split is empty: {len(orders)} curated orders")
        (base / name).mkdir(parents=True, exist_ok=True)
        rows.to_csv(base / name / f"{name}.csv", header=False, index=False)
        counts[name] = len(rows)
    (base / "baseline").mkdir(parents=True, exist_ok=True)
    labelled[parts == "train"].drop(columns=[target]).to_csv(
        base / "baseline" / "baseline.csv", header=True, index=False
    )
    log.info("orders per split: %s", counts)
    return counts


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
