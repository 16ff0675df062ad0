"""Helpers the benchmarks share: timing with medians, a table printer, generated manifests."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PRODUCT = ROOT / "examples" / "fraud-detection"
DEFAULT_MANIFEST = DEFAULT_PRODUCT / "manifest.yaml"


def median_seconds(run: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples


def python_seconds(code: str, repeats: int, cwd: Path = ROOT) -> tuple[float, list[float]]:
    """Median wall time of a fresh interpreter running `code` (what a CLI user waits for)."""

    def run() -> None:
        subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True, capture_output=True)

    return median_seconds(run, repeats)


def generated_manifests(folder: Path, count: int) -> Path:
    """`count` copies of the default product folder under distinct names, in folder."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    for i in range(count):
        product = folder / f"product-{i:02d}"
        shutil.copytree(DEFAULT_PRODUCT, product, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".mlgate", "__pycache__"))  # fmt: skip
        doc = dict(base)
        doc["product"] = {**base["product"], "name": f"product-{i:02d}"}
        (product / "manifest.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in row] for row in [list(headers), *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
