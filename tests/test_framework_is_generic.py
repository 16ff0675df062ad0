"""The framework knows no product: nothing under mlgate/ names an example product's columns,
sources, metrics or words. What the framework needs from a product, the manifest declares or
the product's folder supplies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlgate.manifest import Manifest, load_manifests

from .conftest import EXAMPLES, ROOT

PACKAGE = ROOT / "mlgate"
SCANNED = {".py", ".yaml", ".yml", ".json", ".md", ".txt", ".html"}


def product_words(manifest: Manifest) -> set[str]:
    """Names that belong to the product alone: its name, its sources, its columns and its
    KPIs' metric names."""
    words = {manifest.product.name, manifest.product.display_name}
    words |= {s.name for s in manifest.data.sources}
    words |= set(manifest.data.curated.names)
    words |= {k.metric_name for k in manifest.metrics.business_kpis}
    words |= {k.name for k in manifest.metrics.business_kpis}
    return words


def patterns(word: str) -> re.Pattern[str]:
    """An identifier-like word (with `_` or `-`) anywhere as a whole word; a plain English word
    (`amount`) only where code would use it: quoted, as a string literal."""
    if re.search(r"[_\- ]", word):
        return re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])")
    return re.compile(rf"[\"']{re.escape(word)}[\"']")


def framework_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*") if p.suffix in SCANNED and p.is_file())


@pytest.mark.parametrize("manifest", load_manifests(EXAMPLES), ids=lambda m: m.product.name)
def test_the_framework_names_nothing_of_an_example_product(manifest: Manifest) -> None:
    found = []
    words = product_words(manifest)
    for path in framework_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for word in sorted(words):
            for match in patterns(word).finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {word}")
    assert found == [], "the framework names the product's words:\n" + "\n".join(found)


def test_the_scan_finds_a_planted_column(tmp_path: Path) -> None:
    """The check can fail: a framework line with a product's column is found."""
    manifest = load_manifests(EXAMPLES)[0]
    column = next(c for c in manifest.data.curated.names if "_" in c)
    planted = f'FEATURES = ("{column}",)\n'
    assert patterns(column).search(planted)
    assert not patterns(column).search(f"FEATURES = ('{column}x',)\n")
