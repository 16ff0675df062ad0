"""Delivery time's training script, run by SageMaker's scikit-learn container in script mode,
which also serves the model with this file's model_fn / input_fn / predict_fn / output_fn.

The container's contract (https://sagemaker.readthedocs.io/en/stable/frameworks/sklearn/
using_sklearn.html, "Prepare a Scikit-learn Training Script" and "Deploy a Scikit-learn
model"): hyper-parameters arrive as command-line arguments, the channels' files under
SM_CHANNEL_<NAME>, the model is saved under SM_MODEL_DIR; serving imports this module (so
training runs only under `__main__`) and calls the four functions below.

mlgate's contract on top (docs-bring-your-own.md): the channels hold CSV files with the label
first and no header (what ml/preprocess.py writes); the model is `model.joblib`, a plain
scikit-learn estimator that mlgate's evaluate loads with joblib alone.
Runs on Python 3.9 and scikit-learn 1.2 (the 1.2-1 container).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

MODEL_FILE = "model.joblib"


def read_channel(folder: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, rows) of every CSV file in a channel folder."""
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no CSV files in channel folder {folder}")
    data = np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 0], data[:, 1:]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the delivery-time regressor.")
    parser.add_argument("--max-iter", type=int, default=150)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--max-leaf-nodes", type=int, default=31)
    parser.add_argument("--min-samples-leaf", type=int, default=20)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    if not args.train:
        raise ValueError("no training data: set SM_CHANNEL_TRAIN or pass --train")
    labels, rows = read_channel(args.train)
    model = HistGradientBoostingRegressor(
        max_iter=args.max_iter,
        learning_rate=args.learning_rate,
        max_leaf_nodes=args.max_leaf_nodes,
        min_samples_leaf=args.min_samples_leaf,
        early_stopping=False,
        random_state=args.random_state,
    )
    model.fit(rows, labels)
    scores = {"train:rmse": _rmse(labels, model.predict(rows))}
    if args.validation:
        valid_labels, valid_rows = read_channel(args.validation)
        scores["validation:rmse"] = _rmse(valid_labels, model.predict(valid_rows))
    # One `name=value;` line: the training job's metric definitions scrape it from the logs.
    print(" ".join(f"{name}={value:.4f};" for name, value in scores.items()))
    Path(args.model_dir).mkdir(parents=True, exist_ok=True)
    joblib.dump(model, Path(args.model_dir) / MODEL_FILE)
    return scores


def _rmse(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((labels - predicted) ** 2)))


# --- serving: the scikit-learn container's inference handlers ----------------------------


def model_fn(model_dir: str) -> Any:
    return joblib.load(os.path.join(model_dir, MODEL_FILE))


def input_fn(request_body: str | bytes, request_content_type: str) -> np.ndarray:
    """text/csv records, one per line, in the payload order of ml/sample_request.csv."""
    if request_content_type.split(";")[0].strip() != "text/csv":
        raise ValueError(f"unsupported content type {request_content_type}; send text/csv")
    text = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return np.array([[float(v) for v in line.split(",")] for line in lines], dtype=float)


def predict_fn(input_data: np.ndarray, model: Any) -> np.ndarray:
    return np.asarray(model.predict(input_data), dtype=float)


def output_fn(prediction: np.ndarray, accept: str) -> str:
    """Minutes per record: one per line (text/csv, the default) or a JSON list."""
    if accept.split(";")[0].strip() == "application/json":
        return json.dumps([round(float(p), 2) for p in prediction])
    return "\n".join(f"{float(p):.2f}" for p in prediction)


if __name__ == "__main__":
    main()
