"""Synthetic traffic in SageMaker's documented capture and ground-truth formats, drawn from one
fixed-seed distribution of mixed numeric and categorical features."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..lazy import Lazy

run = Lazy("mlgate.runtime.monitoring_job.run")

NUMERIC = ["f_num_1", "f_num_2", "f_num_3", "f_num_4"]
CATEGORICAL = ["f_cat_1", "f_cat_2"]
FEATURES = [*NUMERIC, *CATEGORICAL]
FEATURE_TYPES = ",".join(f"{c}:cat" for c in CATEGORICAL)
LEVELS = {"f_cat_1": ["a", "b", "c", "d"], "f_cat_2": ["x", "y", "z"]}
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def draw(rows: int, seed: int, shift: Sequence[str] = ()) -> pd.DataFrame:
    """Rows of the baseline's distribution; features in `shift` move away from it."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "f_num_1": rng.normal(50.0, 10.0, rows),
            "f_num_2": rng.exponential(2.0, rows),
            "f_num_3": rng.uniform(-1.0, 1.0, rows),
            "f_num_4": rng.normal(0.0, 1.0, rows),
            "f_cat_1": rng.choice(LEVELS["f_cat_1"], rows, p=[0.4, 0.3, 0.2, 0.1]),
            "f_cat_2": rng.choice(LEVELS["f_cat_2"], rows, p=[0.5, 0.3, 0.2]),
        }
    )
    if "f_num_1" in shift:
        frame["f_num_1"] += 8.0
    if "f_cat_1" in shift:
        frame["f_cat_1"] = rng.choice(LEVELS["f_cat_1"], rows, p=[0.1, 0.2, 0.3, 0.4])
    return frame


def payload(row: pd.Series) -> str:
    return ",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row)


def record(
    data: str,
    output: str,
    event_id: str,
    at: datetime,
    inference_id: str | None = None,
    base64_encoded: bool = False,
) -> str:
    """One capture line as SageMaker writes it (model-monitor-data-capture-endpoint)."""
    encode = (lambda s: base64.b64encode(s.encode()).decode()) if base64_encoded else str
    encoding = "BASE64" if base64_encoded else "CSV"
    meta = {"eventId": event_id, "inferenceTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": encode(data),
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "text/csv; charset=utf-8",
                    "mode": "OUTPUT",
                    "data": encode(output),
                    "encoding": encoding,
                },
            },
            "eventMetadata": meta,
            "eventVersion": "0",
        }
    )


def write_capture(
    folder: Path,
    frame: pd.DataFrame,
    end: datetime = NOW,
    span: timedelta = timedelta(minutes=50),
    scores: Sequence[float] | None = None,
    prefix: str = "evt",
) -> list[str]:
    """Capture files under folder/yyyy/mm/dd/hh/, rows spread evenly over `span` before end;
    every other record carries an inferenceId. Returns each row's id as labels must name it."""
    ids: list[str] = []
    lines: dict[Path, list[str]] = {}
    step = span / max(len(frame), 1)
    for i, (_, row) in enumerate(frame.iterrows()):
        at = end - span + step * i
        event_id = f"{prefix}-{i:07d}"
        inference_id = f"inf-{prefix}-{i:07d}" if i % 2 else None
        score = f"{scores[i]:.6f}" if scores is not None else "0.5"
        line = record(payload(row), score, event_id, at, inference_id, base64_encoded=i % 7 == 3)
        hour = folder / at.strftime("%Y/%m/%d/%H")
        lines.setdefault(hour / "capture.jsonl", []).append(line)
        ids.append(inference_id or event_id)
    for path, content in lines.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write("\n".join(content) + "\n")
    return ids


def write_ground_truth(folder: Path, labels: dict[str, str]) -> None:
    """Ground-truth records (model-monitor-model-quality-merge), one file."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "labels.jsonl").open("w") as handle:
        for event_id, label in labels.items():
            handle.write(
                json.dumps(
                    {
                        "groundTruthData": {"data": label, "encoding": "CSV"},
                        "eventMetadata": {"eventId": event_id},
                        "eventVersion": "0",
                    }
                )
                + "\n"
            )


def write_baseline(path: Path, rows: int = 5000, seed: int = 1) -> Path:
    draw(rows, seed).to_csv(path, index=False)
    return path


def job(tmp: Path, *extra: str, **kwargs: Any) -> dict[str, Any]:
    """The monitoring job on tmp's capture, baseline and report folders, at NOW."""
    argv = [
        "--capture-dir", str(tmp / "capture"),
        "--baseline", str(tmp / "baseline.csv"),
        "--features", ",".join(FEATURES),
        "--feature-types", FEATURE_TYPES,
        "--now", NOW.isoformat(),
        "--report-dir", str(tmp / "report"),
        *extra,
    ]  # fmt: skip
    return run.main(argv, **kwargs)  # type: ignore[no-any-return]


def batch_line(row_id: str, row: pd.Series, prediction: str) -> str:
    """One Batch Transform output line as a batch environment writes it (JoinSource Input,
    OutputFilter "$"): the prepared input line, id first, with the prediction joined last."""
    return f"{row_id},{payload(row)},{prediction}"


def write_batch(
    folder: Path,
    run_id: str,
    frame: pd.DataFrame,
    written: datetime,
    predictions: Sequence[str] | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """A scheduled run's output as the stage step stages it: folder/run=<run>/part-00000.csv.out
    (the predictions prefix's layout) and its LastModified, `written`, in folder/objects.json;
    `extra` lines are appended as they are. Returns each row's id."""
    ids = [f"{run_id}-{i:06d}" for i in range(len(frame))]
    answers = predictions if predictions is not None else ["0.5"] * len(frame)
    lines = [
        batch_line(row_id, row, answer)
        for row_id, (_, row), answer in zip(ids, frame.iterrows(), answers, strict=True)
    ]
    relative = f"run={run_id}/part-00000.csv.out"
    (folder / relative).parent.mkdir(parents=True, exist_ok=True)
    (folder / relative).write_text("\n".join([*lines, *extra]) + "\n")
    record = folder / "objects.json"
    times = json.loads(record.read_text()) if record.is_file() else {}
    times[relative] = written.isoformat()
    record.write_text(json.dumps(times))
    return ids
