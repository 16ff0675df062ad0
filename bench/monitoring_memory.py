"""Peak memory and time of the Evidently monitoring job as the window grows: the streamed job
(chunks, exact counts, a bounded sample for Evidently) beside the in-memory path it replaced.

The capture is bench/monitoring_job.py's (ten features, 50k-row baseline, one file per 100k
records, every record in the window), written once for the largest size; a smaller size reads
the first of its files. Each run is a fresh interpreter (peak RSS from getrusage is per
process), once. "streamed job" is run.main as deployed, without --publish; "in-memory job" is
the same run on the code before streaming, kept here as the baseline: the capture read whole
into one DataFrame (`in_memory_read`, a copy of the old capture.read_capture) and Evidently
given every row of the window.
Usage: .venv/bin/python bench/monitoring_memory.py [--records 100000 1000000 3000000]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from _common import ROOT, table
from monitoring_job import CATEGORICAL, FEATURES, NOW, PER_FILE

MEASURE = """
import json, resource, sys, time
from datetime import timedelta
from pathlib import Path
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
mode, folder = {mode!r}, Path({folder!r})
start = time.perf_counter()
from mlgate.runtime.monitoring_job import capture, drift, run
if mode == "streamed job":
    summary = run.main({argv!r})
    sample = summary["drift"]["sample"]
else:
    import monitoring_memory as bench
    got = bench.in_memory_read(capture.jsonl_files(folder / "capture"), {features!r}, {cats!r})
    reference = run._baseline(folder / "baseline.csv", {features!r}, {cats!r})
    now = run._time({now!r})
    current = got.features[run._within(got.events, now - timedelta(hours=1), now)]
    result = drift.analyse(reference, current, {cats!r}, 0.1)
    (folder / "report").mkdir(exist_ok=True)
    result.report.save_html(str(folder / "report" / "report.html"))
    sample = {{"rows": len(current), "cdf_error": 0.0}}
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024, "sample": sample}}))
"""


def in_memory_read(
    files: Iterable[Path], features: Sequence[str], categorical: Iterable[str]
) -> Any:
    """The capture reader before streaming (capture.read_capture at 2026-12-05), verbatim but
    for the helpers it imports: every row of every file in one list, then one DataFrame."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from mlgate.runtime.monitoring_job.capture import (
        _RECORD_ERRORS,
        Captured,
        _decoded,
        _first_field,
        _lines,
        _Skipped,
        _width,
        typed,
    )

    skipped = _Skipped("capture")
    records = 0
    rows: list[str] = []
    owners: list[int] = []
    predictions: list[str | None] = []
    single: list[bool] = []
    places: list[str] = []
    ids: list[str] = []
    times: list[str] = []
    for where, line in _lines(files):
        records += 1
        try:
            record = json.loads(line)
            capture = record["captureData"]
            meta = record["eventMetadata"]
            payload = [r for r in _decoded(capture["endpointInput"]).splitlines() if r.strip()]
            output = capture.get("endpointOutput")
            answers = [r for r in _decoded(output).splitlines() if r.strip()] if output else []
            identity = meta.get("inferenceId") or meta["eventId"]
            moment = meta["inferenceTime"]
            if not isinstance(identity, str) or not isinstance(moment, str):
                raise TypeError("eventId/inferenceTime are not strings")
        except _RECORD_ERRORS as err:
            skipped.add(where, f"{type(err).__name__}: {err}")
            continue
        if not payload:
            skipped.add(where, "empty endpointInput")
            continue
        owners.extend([len(ids)] * len(payload))
        ids.append(identity)
        times.append(moment)
        places.append(where)
        rows.extend(payload)
        single.extend([len(payload) == 1] * len(payload))
        if len(answers) == len(payload):
            predictions.extend(_first_field(a) for a in answers)
        else:
            predictions.extend([None] * len(payload))

    width = len(features)
    bad = {owner for owner, row in zip(owners, rows, strict=True) if _width(row) != width}
    for owner in sorted(bad):
        skipped.add(places[owner], f"a payload row does not have {width} fields")
    moments = pd.to_datetime(
        pd.Series(times, dtype=object), utc=True, errors="coerce", format="ISO8601"
    )
    for owner in map(int, moments.index[moments.isna()]):
        if owner not in bad:
            bad.add(owner)
            skipped.add(places[owner], f"inferenceTime {times[owner]!r} is not an ISO time")
    skipped.report()

    owner_of = np.asarray(owners, dtype=np.int64)
    keep = ~np.isin(owner_of, np.fromiter(bad, dtype=np.int64, count=len(bad)))
    kept = owner_of[keep]
    events = pd.DataFrame(
        {
            "inference_id": np.asarray(ids, dtype=object)[kept],
            "inference_time": moments.iloc[kept].reset_index(drop=True),
            "prediction": np.asarray(predictions, dtype=object)[keep],
            "single_row": np.asarray(single, dtype=bool)[keep],
        }
    )
    kept_rows = "\n".join(row for row, k in zip(rows, keep.tolist(), strict=True) if k)
    frame = pd.read_csv(
        io.StringIO(kept_rows),
        header=None,
        names=list(features),
        dtype=str,
        keep_default_na=False,
        skip_blank_lines=False,
    )
    return Captured(typed(frame, categorical), events, records, skipped.count)


def measure(mode: str, folder: Path) -> dict[str, Any]:
    argv = [
        "--capture-dir", str(folder / "capture"),
        "--baseline", str(folder / "baseline.csv"),
        "--features", ",".join(FEATURES),
        "--feature-types", ",".join(f"{c}:cat" for c in CATEGORICAL),
        "--now", NOW.isoformat(),
        "--report-dir", str(folder / "report"),
    ]  # fmt: skip
    code = MEASURE.format(
        root=str(ROOT), bench=str(Path(__file__).parent), mode=mode, folder=str(folder),
        argv=argv, features=FEATURES, cats=CATEGORICAL, now=NOW.isoformat(),
    )  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000])
    parser.add_argument(
        "--modes", nargs="+", default=["in-memory job", "streamed job"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if any(r % PER_FILE for r in args.records):
        parser.error(f"--records are multiples of {PER_FILE}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        whole = Path(tmp) / "whole"
        whole.mkdir()
        # In a child: Linux keeps a process's peak RSS across exec (bench/monitoring_job.py).
        subprocess.run(
            [sys.executable, str(Path(__file__).parent / "monitoring_job.py"),
             "--write-to", str(whole), "--records", str(max(args.records))],
            check=True,
        )  # fmt: skip
        parts = sorted((whole / "capture").iterdir())
        for records in args.records:
            folder = Path(tmp) / f"r{records}"
            (folder / "capture").mkdir(parents=True)
            (folder / "baseline.csv").symlink_to(whole / "baseline.csv")
            for part in parts[: records // PER_FILE]:
                (folder / "capture" / part.name).symlink_to(part)
            size = sum(p.stat().st_size for p in parts[: records // PER_FILE]) / 2**20
            for mode in args.modes:
                got = measure(mode, folder)
                report = (folder / "report" / "report.html").stat().st_size / 2**20
                sample = got["sample"]
                rows.append(
                    [
                        f"{records:,}",
                        f"{size:.0f} MB",
                        mode,
                        f"{got['seconds']:.1f}",
                        f"{got['cpu']:.1f}",
                        f"{got['peak_mb']:.0f}",
                        f"{sample['rows']:,}",
                        f"{sample['cdf_error']:.4f}",
                        f"{report:.1f} MB",
                    ]
                )
                print(f"{records:,} {mode}: {got['seconds']:.1f} s", file=sys.stderr)
    headers = ["records", "capture", "run", "wall s", "CPU s", "peak RSS MB", "Evidently rows",
               "CDF error", "report"]  # fmt: skip
    print(table(headers, rows))


if __name__ == "__main__":
    main()
