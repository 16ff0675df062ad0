"""Peak memory and time of the Evidently monitoring job on a batch environment's runs
(`--source batch`: Batch Transform output, `id,<payload...>,<prediction>` per line) as the
window grows, beside the same job on an endpoint's capture of the same rows.

The rows are bench/monitoring_job.py's draw (ten features, 50k-row baseline), one output object
per 100k rows (`run=s<n>/part-00000.csv.out`), each written in the window (objects.json: what
the stage step records of each object's LastModified). Each run is a fresh interpreter (peak RSS
from getrusage is per process), once.
Usage: .venv/bin/python bench/monitoring_batch.py [--records 100000 1000000 3000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import ROOT, table
from monitoring_job import CATEGORICAL, FEATURES, NOW, NUMERIC, PER_FILE, draw

MEASURE = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
start = time.perf_counter()
from mlgate.runtime.monitoring_job import run
summary = run.main({argv!r})
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": time.perf_counter() - start,
                  "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
                  "rows": summary["drift"]["overall"]["rows"],
                  "sample": summary["drift"]["sample"]["rows"]}}))
"""


def write(folder: Path, rows: int) -> dict[str, str]:
    """The baseline and `rows` rows of batch output under folder/capture; each object's time."""
    (folder / "capture").mkdir(parents=True)
    draw(50_000, seed=1).to_csv(folder / "baseline.csv", index=False)
    frame = draw(rows, seed=2)
    lines = (
        frame[NUMERIC].round(4).astype(str).agg(",".join, axis=1)
        + ","
        + frame[CATEGORICAL].agg(",".join, axis=1)
    )
    written = {}
    for start in range(0, rows, PER_FILE):
        name = f"run=s{start // PER_FILE:03d}/part-00000.csv.out"
        path = folder / "capture" / name
        path.parent.mkdir(parents=True)
        end = min(start + PER_FILE, rows)
        path.write_text("".join(f"id-{i},{lines.iat[i]},0.{i % 10}\n" for i in range(start, end)))
        written[name] = (NOW - timedelta(minutes=10)).isoformat()
    return written


def measure(folder: Path, baseline: Path) -> dict[str, Any]:
    argv = [
        "--source", "batch",
        "--capture-dir", str(folder / "capture"),
        "--baseline", str(baseline),
        "--features", ",".join(FEATURES),
        "--feature-types", ",".join(f"{c}:cat" for c in CATEGORICAL),
        "--now", NOW.isoformat(),
        "--report-dir", str(folder / "report"),
    ]  # fmt: skip
    code = MEASURE.format(root=str(ROOT), argv=argv)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000])
    parser.add_argument("--write-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_to:  # the rows are drawn in a child: Linux keeps a peak RSS across exec
        times = write(args.write_to, max(args.records))
        (args.write_to / "times.json").write_text(json.dumps(times))
        return
    if any(r % PER_FILE for r in args.records):
        parser.error(f"--records are multiples of {PER_FILE}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        whole = Path(tmp) / "whole"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--write-to",
                str(whole),
                "--records",
                str(max(args.records)),
            ],
            check=True,
        )
        times = json.loads((whole / "times.json").read_text())
        for records in args.records:
            folder = Path(tmp) / f"r{records}"
            keep = sorted(times)[: records // PER_FILE]
            for name in keep:
                (folder / "capture" / name).parent.mkdir(parents=True)
                (folder / "capture" / name).symlink_to(whole / "capture" / name)
            (folder / "capture" / "objects.json").write_text(
                json.dumps({k: times[k] for k in keep})
            )
            size = sum((whole / "capture" / n).stat().st_size for n in keep) / 2**20
            got = measure(folder, whole / "baseline.csv")
            if got["rows"] != records:
                raise SystemExit(f"the job read {got['rows']} rows of {records}")
            rows.append(
                [f"{records:,}", f"{size:.0f} MB", f"{got['seconds']:.1f}", f"{got['cpu']:.1f}",
                 f"{got['peak_mb']:.0f}", f"{got['sample']:,}"]
            )  # fmt: skip
            print(f"{records:,}: {got['seconds']:.1f} s", file=sys.stderr)
    print(table(["rows", "output", "wall s", "CPU s", "peak RSS MB", "Evidently rows"], rows))


if __name__ == "__main__":
    main()
