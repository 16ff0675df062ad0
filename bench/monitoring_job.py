"""Time and peak memory of the Evidently monitoring job on 100k and 1M captured records.

Ten features (seven numeric, three categorical) against a 50k-row baseline; capture files in
SageMaker's JSON Lines layout, one file per 100k records, every record in the window. Each
measurement runs in a fresh interpreter (peak RSS from getrusage is per process), once, and is
printed (wall time, and CPU time of the process, which a busy shared machine inflates less)
beside three references on the same files: the job's start-up alone (importing it, Evidently
and pandas), reading and parsing the capture, and a plain pandas/scipy drift computation (the
same distances, no Evidently, no report). Each figure includes its own imports.
Usage: .venv/bin/python bench/monitoring_job.py [--records 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import ROOT, table

NUMERIC = [f"f_num_{i}" for i in range(1, 8)]
CATEGORICAL = [f"f_cat_{i}" for i in range(1, 4)]
FEATURES = [*NUMERIC, *CATEGORICAL]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PER_FILE = 100_000

MEASURE = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
mode, folder = {mode!r}, Path({folder!r})
start = time.perf_counter()
if mode == "job":
    from mlgate.runtime.monitoring_job import run
    run.main({argv!r})
elif mode == "start-up":
    from mlgate.runtime.monitoring_job import run
else:
    import numpy as np, pandas as pd
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance
    from mlgate.runtime.monitoring_job import capture
    got = capture.read_capture(capture.jsonl_files(folder / "capture"), {features!r}, {cats!r})
    if mode == "pandas drift":
        ref = capture.typed(pd.read_csv(folder / "baseline.csv", dtype=str), {cats!r})
        for c in got.features.columns:
            cur, base = got.features[c].dropna(), ref[c].dropna()
            if c in {cats!r}:
                p = pd.concat([base.value_counts(normalize=True),
                               cur.value_counts(normalize=True)], axis=1).fillna(0)
                jensenshannon(p.iloc[:, 0], p.iloc[:, 1])
            else:
                wasserstein_distance(base, cur) / np.std(base)
            cur.isna().mean()
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024}}))
"""


def draw(rows: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(i * 10.0, 1.0 + i, rows) for i, c in enumerate(NUMERIC)})
    for i, c in enumerate(CATEGORICAL):
        frame[c] = rng.choice([f"v{j}" for j in range(3 + 4 * i)], rows)
    return frame


def write(folder: Path, records: int) -> None:
    draw(50_000, seed=1).to_csv(folder / "baseline.csv", index=False)
    frame = draw(records, seed=2)
    payloads = frame[NUMERIC].round(4).astype(str).agg(",".join, axis=1)
    payloads = payloads + "," + frame[CATEGORICAL].agg(",".join, axis=1)
    step = timedelta(minutes=50) / records
    (folder / "capture").mkdir()
    for start in range(0, records, PER_FILE):
        lines = []
        for i in range(start, min(start + PER_FILE, records)):
            at = (NOW - timedelta(minutes=50) + step * i).strftime("%Y-%m-%dT%H:%M:%SZ")
            lines.append(
                '{"captureData":{"endpointInput":{"observedContentType":"text/csv",'
                f'"mode":"INPUT","data":{json.dumps(payloads.iat[i])},"encoding":"CSV"}},'
                '"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT",'
                '"data":"0.1","encoding":"CSV"}},'
                f'"eventMetadata":{{"eventId":"e-{i}","inferenceTime":"{at}"}},'
                '"eventVersion":"0"}'
            )
        (folder / "capture" / f"part-{start // PER_FILE:03d}.jsonl").write_text(
            "\n".join(lines) + "\n"
        )


def measure(mode: str, folder: Path) -> dict[str, float]:
    argv = [
        "--capture-dir", str(folder / "capture"),
        "--baseline", str(folder / "baseline.csv"),
        "--features", ",".join(FEATURES),
        "--feature-types", ",".join(f"{c}:cat" for c in CATEGORICAL),
        "--now", NOW.isoformat(),
        "--report-dir", str(folder / "report"),
    ]  # fmt: skip
    code = MEASURE.format(
        root=str(ROOT), mode=mode, folder=str(folder), argv=argv, features=FEATURES,
        cats=CATEGORICAL,
    )  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--write-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_to:
        write(args.write_to, args.records[0])
        return
    rows = []
    for records in args.records:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            # Linux keeps a process's peak RSS across exec, so a child forked from a parent that
            # held the generated records would report the parent's peak: generate in a child too.
            subprocess.run(
                [sys.executable, __file__, "--write-to", tmp, "--records", str(records)],
                check=True,
            )
            size = sum(f.stat().st_size for f in (folder / "capture").iterdir()) / 2**20
            for mode in ("start-up", "parse only", "pandas drift", "job"):
                got = measure(mode, folder)
                report = folder / "report" / "report.html"
                extra = f"report {report.stat().st_size / 2**20:.1f} MB" if mode == "job" else ""
                rows.append(
                    [
                        f"{records:,}",
                        f"{size:.0f} MB",
                        mode,
                        f"{got['seconds']:.1f}",
                        f"{got['cpu']:.1f}",
                        f"{got['peak_mb']:.0f}",
                        "" if mode == "start-up" else f"{records / got['seconds']:,.0f}",
                        extra,
                    ]
                )
                print(f"{records:,} {mode}: {got['seconds']:.1f} s", file=sys.stderr)
    print(
        table(
            ["records", "capture", "run", "wall s", "CPU s", "peak RSS MB", "records/s", "note"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
