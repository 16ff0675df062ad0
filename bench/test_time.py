"""Wall time of the full `make test` (lint, types, every test), set-up already done.

Usage: .venv/bin/python bench/test_time.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from _common import ROOT, table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    samples = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run(["make", "test"], cwd=ROOT, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    print(f"`make test` wall time (set-up done), median of {args.repeats}")
    print(table(["command", "seconds"], [["make test", f"{statistics.median(samples):.0f}"]]))


if __name__ == "__main__":
    main()
