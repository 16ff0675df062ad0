"""Lead scoring's training script, run by SageMaker's XGBoost framework container (1.7-1) in
script mode, which also serves the model with this file's model_fn / input_fn / predict_fn /
output_fn, in Batch Transform as at an endpoint.

The container's contract (https://sagemaker.readthedocs.io/en/stable/frameworks/xgboost/
using_xgboost.html, "Train a Model with Open Source XGBoost" and "SageMaker XGBoost Model
Server"): hyper-parameters arrive as command-line arguments, the channels' files under
SM_CHANNEL_<NAME>, the model is saved under SM_MODEL_DIR; serving imports this module (so
training runs only under `__main__`) and calls the four functions below.

mlgate's contract on top (docs/bring-your-own-product.md): the channels hold what mlgate's
default preprocess writes (CSV, the tier's index in target_values order first, then the
payload, no header); the model is `xgboost-model`, a booster mlgate's evaluate loads with
xgboost alone (multi:softprob: one probability per tier). Serving answers one tier name per
record, one per line. The payload's columns are the header of sample_request.csv, which ships
beside this file (model.code.dependencies).

xgboost's native API as the 1.7 container has it (xgb.train, DMatrix, Booster); runs on the
container's Python 3.8 (no match, no str.removeprefix).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

MODEL_FILE = "xgboost-model"
TIERS_FILE = "tiers.json"
SAMPLE_REQUEST = Path(__file__).resolve().parent / "sample_request.csv"
CSV, JSON = "text/csv", "application/json"


def read_channel(folder: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, rows) of every CSV file in a channel folder."""
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no CSV files in channel folder {folder}")
    data = np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 0], data[:, 1:]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the lead-tier classifier.")
    parser.add_argument(
        "--tiers",
        default="cold,warm,hot",
        help="the tier names in label order (the manifest's target_values)",
    )
    parser.add_argument("--num-round", type=int, default=150)
    parser.add_argument("--max-depth", type=int, default=4)
    parser.add_argument("--eta", type=float, default=0.1)
    parser.add_argument("--subsample", type=float, default=0.9)
    parser.add_argument("--min-child-weight", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    return parser.parse_args(argv)  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    if not args.train:
        raise ValueError("no training data: set SM_CHANNEL_TRAIN or pass --train")
    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
    labels, rows = read_channel(args.train)
    found = sorted({int(v) for v in labels})
    if found[0] < 0 or found[-1] >= len(tiers):
        raise ValueError(f"labels {found} do not index the {len(tiers)} tiers {tiers}")
    params = {
        "objective": "multi:softprob",
        "num_class": len(tiers),
        "eval_metric": "mlogloss",
        "max_depth": args.max_depth,
        "eta": args.eta,
        "subsample": args.subsample,
        "min_child_weight": args.min_child_weight,
        "seed": args.seed,
    }
    train = xgb.DMatrix(rows, label=labels)
    watch = [(train, "train")]
    if args.validation:
        valid_labels, valid_rows = read_channel(args.validation)
        watch.append((xgb.DMatrix(valid_rows, label=valid_labels), "validation"))
    history: dict[str, Any] = {}
    booster = xgb.train(
        params, train, num_boost_round=args.num_round, evals=watch, evals_result=history,
        verbose_eval=False,
    )  # fmt: skip
    scores = {f"{name}:mlogloss": float(history[name]["mlogloss"][-1]) for _, name in watch}
    scores["train:accuracy"] = _accuracy(booster, train, labels)
    if args.validation:
        scores["validation:accuracy"] = _accuracy(booster, watch[1][0], valid_labels)
    # One `name=value;` line: the training job's metric definitions scrape it from the logs.
    print(" ".join(f"{name}={value:.4f};" for name, value in scores.items()))
    Path(args.model_dir).mkdir(parents=True, exist_ok=True)
    booster.save_model(str(Path(args.model_dir) / MODEL_FILE))
    (Path(args.model_dir) / TIERS_FILE).write_text(json.dumps(tiers))
    return scores


def _accuracy(booster: Any, data: Any, labels: np.ndarray) -> float:
    return float(np.mean(booster.predict(data).argmax(axis=1) == labels.astype(int)))


# --- serving: the XGBoost container's inference handlers ----------------------------------


def request_columns() -> list[str]:
    """The payload's columns, in order: the sample request's header."""
    header = SAMPLE_REQUEST.read_text(encoding="utf-8").splitlines()[0]
    return [c.strip() for c in header.split(",")]


def model_fn(model_dir: str) -> dict[str, Any]:
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, MODEL_FILE))
    tiers = json.loads(Path(model_dir, TIERS_FILE).read_text(encoding="utf-8"))
    return {"booster": booster, "tiers": list(tiers), "columns": request_columns()}


def input_fn(request_body: str | bytes, request_content_type: str) -> np.ndarray:
    """text/csv records, one per line, in the sample request's column order. A first line
    equal to that header is skipped (the sample request as a file); Batch Transform's
    mini-batches come without it."""
    if request_content_type.split(";")[0].strip().lower() != CSV:
        raise ValueError(f"unsupported content type {request_content_type}; send {CSV}")
    text = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    columns = request_columns()
    if lines and [v.strip() for v in lines[0].split(",")] == columns:
        lines = lines[1:]
    if not lines:
        raise ValueError("the request holds no record")
    rows = []
    for number, line in enumerate(lines, start=1):
        values = line.split(",")
        if len(values) != len(columns):
            raise ValueError(
                f"record {number} has {len(values)} values; the payload has {len(columns)} "
                f"columns ({columns[0]} ... {columns[-1]})"
            )
        try:
            rows.append([float(v) for v in values])
        except ValueError:
            raise ValueError(f"record {number} holds a value that is not a number") from None
    return np.asarray(rows, dtype=float)


def predict_fn(input_data: np.ndarray, model: dict[str, Any]) -> np.ndarray:
    """The most probable tier of each record, by name."""
    probabilities = np.asarray(model["booster"].predict(xgb.DMatrix(input_data)))
    tiers = np.asarray(model["tiers"], dtype=object)
    return np.asarray(tiers[probabilities.argmax(axis=1)], dtype=object)


def output_fn(prediction: np.ndarray, accept: str) -> str:
    """One tier per record: one per line (text/csv, the default) or a JSON list."""
    if accept.split(";")[0].strip().lower() == JSON:
        return json.dumps([str(p) for p in prediction])
    return "\n".join(str(p) for p in prediction)


if __name__ == "__main__":
    main()
