"""CPU time of the monitoring job's drift step (drift.analyse: Evidently's report over the
window's sample) with the per-column widgets DataDriftPreset drops left undrawn, as the job
runs with the tested Evidently, against Evidently as it is (what runs with any other version),
interleaved in one process on the same frames.

Ten features (seven numeric, three categorical), the baseline and the window's sample at each
size in --rows (the job's sample is at most 100,000 rows: window.SAMPLE_ROWS); the window
moved on three features. Each size is run --repeats times per variant, alternating; the median
CPU seconds are printed.

Usage: .venv/bin/python bench/drift_report.py [--rows 10000 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import pandas as pd
from _common import ROOT, table

sys.path.insert(0, str(ROOT))
from mlgate.runtime.monitoring_job import drift

CATEGORICAL = ["c1", "c2", "c3"]


def frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {f"n{i}": rng.normal(shift if i < 3 else 0.0, 1.0, rows)
                               for i in range(7)}  # fmt: skip
    for name in CATEGORICAL:
        data[name] = rng.choice(["a", "b", "c", "d"], rows)
    return pd.DataFrame(data)


def cpu(reference: pd.DataFrame, current: pd.DataFrame, tested: str) -> float:
    drift.EVIDENTLY_TESTED = tested
    start = time.process_time()
    drift.analyse(reference, current, CATEGORICAL, 0.3)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tested = drift.EVIDENTLY_TESTED
    variants = {"widgets undrawn (the job)": tested, "Evidently as it is": "as-it-is"}
    rows = []
    for size in args.rows:
        reference, current = frame(size, 1), frame(size, 2, shift=0.5)
        cpu(reference, current, tested)  # warm: imports and Evidently's first-run caches
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, version in variants.items():
                samples[name].append(cpu(reference, current, version))
        for name, values in samples.items():
            rows.append([f"{size:,}", name, f"{statistics.median(values):.2f}"])
    drift.EVIDENTLY_TESTED = tested
    print(table(["rows", "variant", "CPU s (median)"], rows))


if __name__ == "__main__":
    main()
