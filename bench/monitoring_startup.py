"""The Evidently job's start-up before and after it shipped its wheels: installing its
requirement set from PyPI (what the job did when it started) against installing it from the
shipped wheelhouse, unpacked first, with no index and every hash checked (what it does now).

Both installs run here, one after the other in the same run, with this machine's pip, for the
job's image (CPython 3.12, manylinux x86_64: `--target` with pip's platform flags, so this
machine's Python need not be 3.12), into empty folders; the PyPI one without pip's cache and
without this machine's pip configuration (no local mirror), as a fresh job container. Not
counted on either side: pulling the image, and, after, Processing's download of the
wheelhouse from S3 in the job's region before the container starts.
Needs `make wheels`, and PyPI for the "before" figure (skipped, and said so, without it).

Usage: .venv/bin/python bench/monitoring_startup.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _common import ROOT, table

sys.path.insert(0, str(ROOT))
from mlgate.infra.wheelsets import MONITORING
from tools.wheels import target_flags

PIP = [sys.executable, "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "-q"]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def from_pypi(work: Path) -> float:
    return timed(
        [*PIP, "--no-cache-dir", *target_flags(MONITORING), "--target", str(work / "site"),
         "-r", str(ROOT / "requirements-monitoring.txt")]
    )  # fmt: skip


def from_wheelhouse(work: Path) -> tuple[float, float]:
    """(unpacking the wheelhouse, installing from it)."""
    start = time.perf_counter()
    with zipfile.ZipFile(MONITORING.built()) as archive:
        archive.extractall(work / "wheelhouse")
    unpack = time.perf_counter() - start
    install = timed(
        [*PIP, "--no-index", "--find-links", str(work / "wheelhouse"), "--require-hashes",
         *target_flags(MONITORING), "--target", str(work / "site"), "-r", str(MONITORING.lock)]
    )  # fmt: skip
    return unpack, install


def pypi_reachable() -> bool:
    probe = [*PIP, "--dry-run", "--no-deps", "--no-cache-dir", *target_flags(MONITORING),
             "--target", tempfile.mkdtemp(), "six==1.17.0"]  # fmt: skip
    return subprocess.run(probe, capture_output=True, timeout=120).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    online = pypi_reachable()
    before: list[float] = []
    unpacks: list[float] = []
    installs: list[float] = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            unpack, install = from_wheelhouse(Path(tmp))
            unpacks.append(unpack)
            installs.append(install)
        if online:
            with tempfile.TemporaryDirectory() as tmp:
                before.append(from_pypi(Path(tmp)))
    size = MONITORING.built().stat().st_size / 1e6
    median = statistics.median
    rows = [
        ["before: pip install -r requirements.txt from PyPI",
         f"{median(before):.1f}" if before else "skipped: PyPI unreachable"],
        [f"after: unpack the wheelhouse ({size:.0f} MB, {len(MONITORING.wheels)} wheels)",
         f"{median(unpacks):.1f}"],
        ["after: pip install --no-index --require-hashes from it", f"{median(installs):.1f}"],
        ["after: total", f"{median(unpacks) + median(installs):.1f}"],
    ]  # fmt: skip
    print(f"Monitoring job start-up, {args.repeats} run(s) each, median seconds")
    print(table(["step", "seconds"], rows))


if __name__ == "__main__":
    main()
