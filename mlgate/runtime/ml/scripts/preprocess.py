"""mlgate's default preprocess (SageMaker Processing): curated rows -> train / validation / test
splits the model trains on, and the monitoring baseline.

The product is described by the training contract, a JSON file the pipeline hands over as the
`contract` input (`mlgate.infra.product_code.training_contract` writes it from the manifest):
problem_type, id_column, event_time_column, target_column, target_values, features (name, kind
numeric | categorical, values), payload_columns, metrics, report_section.

Inputs and outputs, under the processing base folder (/opt/ml/processing):

- input/: the curated table, parquet or CSV files, searched recursively; Hive-style `key=value`
  folders become columns when the files lack them (partition keys are never features).
- contract/contract.json (or the folder's only JSON file): the training contract.
- train/, validation/, test/: `<split>.csv`, the label first, then the payload columns, no
  header (the built-in XGBoost layout; evaluate reads test/ the same way).
- baseline/baseline.csv: the payload columns of the training split, with a header and no
  label: exactly what the endpoint receives, for Model Monitor's data-quality baseline.

The payload: each numeric feature as a float (missing values become 0, counted in the log),
each categorical feature one-hot over its declared values plus `<name>=other`.
Labels: 0/1 for binary classification (or the index of `target_values`), the class index for
multiclass (`target_values` order, else integers 0..K-1), a float for regression.
The split is by time when the contract names an event time column (oldest 70 % train, next
15 % validation, newest 15 % test, ties in id order), else by a stable hash of the id, so a
record stays in its split from one run to the next.

With --batch-input (a batch environment's prepare job: mlgate/runtime/hooks/batch_run) it
writes a batch run's input instead: output/input/part-00000.csv, the contract's id column then
the payload (--payload encoded: the layout above; raw: the --columns as they are, CSV-quoted),
no header, in id order (--limit N: the first N), and output/meta/rows.json {"rows": N}.

A product that brings its own preprocess keeps the same outputs: the three split folders in
this layout, and a baseline whose header is the product's sample request header.

Runs in SageMaker's XGBoost and scikit-learn containers (Python 3.8 or later, pandas, numpy,
pyarrow for parquet) and locally in the tests through `main(argv, base)`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd

log = logging.getLogger("preprocess")
BASE = Path("/opt/ml/processing")
SPLITS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # Spark's folder name for a null partition value


def read_contract(base: Path) -> dict[str, Any]:
    """contract/contract.json, or the folder's only JSON file (a processing input keeps the
    S3 object's name, which may be content-addressed)."""
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


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except ImportError as err:
        raise ImportError(
            f"cannot read {path}: pandas needs pyarrow or fastparquet for parquet and this "
            "container has neither; SageMaker's XGBoost and scikit-learn containers ship "
            "pyarrow, elsewhere add it to the product's requirements.txt"
        ) from err


def read_curated(folder: Path) -> pd.DataFrame:
    """Every parquet and CSV file under `folder` (Spark's _SUCCESS and .crc files skipped),
    with the `key=value` folders between `folder` and a file added as string columns."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".parquet", ".csv") and not p.name.startswith(("_", "."))
    )
    if not files:
        raise FileNotFoundError(f"no .parquet or .csv files under {folder}")
    frames = []
    for file in files:
        frame = _read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)
        for part in file.relative_to(folder).parent.parts:
            key, sep, value = part.partition("=")
            if sep and key not in frame.columns:
                frame[key] = None if value == HIVE_NULL else unquote(value)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def payload_layout(contract: dict[str, Any]) -> list[str]:
    """The payload columns the features make: numbers as they are, categories one-hot."""
    columns: list[str] = []
    for feature in contract["features"]:
        if feature["kind"] == "categorical":
            columns += [f"{feature['name']}={v}" for v in [*feature["values"], "other"]]
        else:
            columns.append(feature["name"])
    declared = list(contract["payload_columns"])
    if columns != declared:
        raise ValueError(
            f"the contract's payload_columns {declared} are not the default layout of its "
            f"features {columns}: a product whose sample request decides another layout "
            "brings its own preprocess (model.code.preprocess)"
        )
    return columns


def check_columns(frame: pd.DataFrame, contract: dict[str, Any]) -> None:
    needed = [f["name"] for f in contract["features"]] + [contract["target_column"]]
    for role in ("id_column", "event_time_column"):
        if contract.get(role):
            needed.append(contract[role])
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"curated data lacks {missing}, which the training contract of "
            f"'{contract.get('product', '?')}' names (features, target, id, event time); "
            f"the files have {list(frame.columns)}"
        )


def features(frame: pd.DataFrame, contract: dict[str, Any]) -> pd.DataFrame:
    """The payload: one float column per payload column, in order."""
    out = {}
    filled: dict[str, int] = {}
    for feature in contract["features"]:
        name = feature["name"]
        if feature["kind"] == "categorical":
            values = [str(v) for v in feature["values"]]
            seen = frame[name].astype("string")
            for value in values:
                out[f"{name}={value}"] = (seen == value).fillna(False).astype(float)
            out[f"{name}=other"] = (~seen.isin(values)).fillna(True).astype(float)
        else:
            numbers = pd.to_numeric(frame[name], errors="coerce").astype(float)
            missing = int(numbers.isna().sum())
            if missing:
                filled[name] = missing
            out[name] = numbers.fillna(0.0)
    if filled:
        log.info("filled missing or non-numeric values with 0: %s", filled)
    return pd.DataFrame(out, index=frame.index)[payload_layout(contract)]


def labels(frame: pd.DataFrame, contract: dict[str, Any]) -> pd.Series:
    """The label column encoded for the problem type; unusable labels raise, naming them."""
    target = contract["target_column"]
    raw = frame[target]
    if raw.isna().any():
        raise ValueError(f"{int(raw.isna().sum())} rows have no label '{target}'")
    if raw.dtype == bool:
        raw = raw.astype(int)
    problem = contract["problem_type"]
    if problem == "regression":
        numbers = pd.to_numeric(raw, errors="coerce")
        if numbers.isna().any():
            bad = raw[numbers.isna()].unique()[:5].tolist()
            raise ValueError(f"the regression label '{target}' has non-numbers: {bad}")
        return numbers.astype(float)
    declared = [str(v) for v in contract.get("target_values") or []]
    if declared:
        text = raw.astype(str)
        unknown = sorted(set(text) - set(declared))
        if unknown:
            raise ValueError(
                f"the label '{target}' has values {unknown[:5]} outside its declared "
                f"target_values {declared}"
            )
        encoded = text.map({v: i for i, v in enumerate(declared)}).astype(int)
    else:
        numbers = pd.to_numeric(raw, errors="coerce")
        if numbers.isna().any() or (numbers != numbers.round()).any():
            bad = raw[numbers.isna() | (numbers != numbers.round())].unique()[:5].tolist()
            raise ValueError(
                f"the {problem} label '{target}' has values {bad} that are not class "
                "indices; list the classes in the target column's `values`"
            )
        encoded = numbers.astype(int)
    allowed = 2 if problem == "binary_classification" else max(len(declared), 1)
    if problem == "binary_classification" or declared:
        outside = sorted(set(encoded) - set(range(allowed)))
    else:
        outside = sorted(v for v in set(encoded) if v < 0)
    if outside:
        what = "0 or 1" if problem == "binary_classification" else "class indices 0..K-1"
        raise ValueError(f"the {problem} label '{target}' must be {what}; found {outside[:5]}")
    return encoded


def stable_fraction(value: Any) -> float:
    """A number in [0, 1) fixed by the value's text: the same on every run and machine
    (Python's hash() is salted per process)."""
    digest = hashlib.sha256(str(value).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split(frame: pd.DataFrame, contract: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Label then payload columns, per split (by time, or by the id's hash)."""
    check_columns(frame, contract)
    id_column, time_column = contract["id_column"], contract.get("event_time_column")
    if time_column:
        times = pd.to_datetime(frame[time_column], utc=True, errors="coerce")
        if times.isna().any():
            raise ValueError(f"{int(times.isna().sum())} rows have no readable '{time_column}'")
        ordered = frame.assign(_time=times).sort_values(["_time", id_column], kind="stable")
        ordered = ordered.drop(columns="_time").reset_index(drop=True)
        bounds = np.cumsum([0] + [round(share * len(ordered)) for _, share in SPLITS])
        bounds[-1] = len(ordered)
        part = np.zeros(len(ordered), dtype=int)
        for i in range(len(SPLITS)):
            part[bounds[i] : bounds[i + 1]] = i
    else:
        ordered = frame.sort_values(id_column, kind="stable").reset_index(drop=True)
        cuts = np.cumsum([share for _, share in SPLITS])[:-1]
        fractions = ordered[id_column].map(stable_fraction).to_numpy(dtype=float)
        part = np.searchsorted(cuts, fractions, side="right")
    target = contract["target_column"]
    labelled = pd.concat(
        [labels(ordered, contract).rename(target), features(ordered, contract)], axis=1
    )
    splits = {name: labelled[part == i] for i, (name, _) in enumerate(SPLITS)}
    check_training_split(splits["train"], contract)
    return splits


def check_training_split(train: pd.DataFrame, contract: dict[str, Any]) -> None:
    """Refuse a training split a model would learn nothing from."""
    target = contract["target_column"]
    if train.empty:
        raise ValueError("the training split is empty: the curated input has too few rows")
    payload = train.drop(columns=[target])
    if (payload.nunique(dropna=False) <= 1).all():
        raise ValueError(
            f"every feature is constant over the {len(train)} training rows "
            f"({list(payload.columns)}): the model would train on nothing; check that the "
            "transform fills the features"
        )
    if contract["problem_type"] != "regression" and train[target].nunique() < 2:
        raise ValueError(
            f"the label '{target}' has a single class ({train[target].iloc[0]}) in the "
            f"{len(train)} training rows: a classifier needs at least two"
        )


def batch_input(
    frame: pd.DataFrame, contract: dict[str, Any], payload: str, columns: list[str],
    limit: int | None,
) -> pd.DataFrame:  # fmt: skip
    """A batch run's input: the id column, then the payload ("encoded": the features' layout,
    as the model was trained on; "raw": the request columns as they are), in id order, the
    first `limit` rows when given."""
    id_column = contract["id_column"]
    names = columns if payload == "raw" else [f["name"] for f in contract["features"]]
    missing = [c for c in dict.fromkeys([id_column, *names]) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"curated data lacks {missing}, which a batch run's {payload} payload needs (the "
            f"id column and the {'request columns' if payload == 'raw' else 'features'}); the "
            f"files have {list(frame.columns)}"
        )
    ordered = frame.sort_values(id_column, kind="stable").reset_index(drop=True)
    if limit is not None:
        ordered = ordered.head(limit)
    body = features(ordered, contract) if payload == "encoded" else ordered[columns]
    return pd.concat([ordered[[id_column]], body], axis=1)


def write_batch_input(args: argparse.Namespace, base: Path) -> dict[str, int]:
    """--batch-input: output/input/part-00000.csv (no header) and output/meta/rows.json. No
    curated file yet is an empty input, not an error: the run ends Empty."""
    contract = read_contract(base)
    columns = [c.strip() for c in (args.columns or "").split(",") if c.strip()]
    if args.payload == "raw" and not columns:
        raise ValueError("a raw payload needs --columns (the request columns, comma separated)")
    try:
        frame = read_curated(base / "input")
    except FileNotFoundError as err:
        log.warning("%s: the batch input is empty", err)
        rows = pd.DataFrame()
    else:
        rows = batch_input(frame, contract, args.payload, columns, args.limit)
    (base / "output" / "input").mkdir(parents=True, exist_ok=True)
    (base / "output" / "meta").mkdir(parents=True, exist_ok=True)
    rows.to_csv(base / "output" / "input" / "part-00000.csv", header=False, index=False)
    counts = {"rows": len(rows)}
    (base / "output" / "meta" / "rows.json").write_text(json.dumps(counts), encoding="utf-8")
    log.info("batch input rows: %s", counts["rows"])
    return counts


def main(argv: list[str] | None = None, base: Path = BASE) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--batch-input",
        action="store_true",
        help="write a batch run's input instead of the training splits",
    )
    parser.add_argument("--payload", choices=("encoded", "raw"), default="encoded")
    parser.add_argument("--columns", default="", help="raw payload: the request columns")
    parser.add_argument("--limit", type=int, default=None, help="the first N rows in id order")
    args = parser.parse_args(argv)
    if args.batch_input:
        return write_batch_input(args, base)
    contract = read_contract(base)
    splits = split(read_curated(base / "input"), contract)
    counts = {}
    for name, rows in splits.items():
        (base / name).mkdir(parents=True, exist_ok=True)
        rows.to_csv(base / name / f"{name}.csv", header=False, index=False)
        counts[name] = len(rows)
    (base / "baseline").mkdir(parents=True, exist_ok=True)
    splits["train"].drop(columns=[contract["target_column"]]).to_csv(
        base / "baseline" / "baseline.csv", header=True, index=False
    )
    log.info("rows per split: %s", counts)
    return counts


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
