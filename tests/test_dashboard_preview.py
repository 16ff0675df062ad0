"""The dashboard preview renders every synthesized dashboard, and a browser shows it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlgate.cli.commands import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def dom(page: Path, profile: Path) -> str:
    """The page as headless Chromium renders it (make test installs Chromium)."""
    assert CHROMIUM, "Chromium is missing: `make test` installs it (Debian package chromium)"
    run = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return run.stdout


def test_preview_renders_every_dashboard_and_chromium_shows_it(
    synth: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["dashboards", "--outdir", str(synth.outdir), "--out", str(tmp_path)]
    # No rehearsal data: each widget lists its threshold lines (tests/test_pages_charts.py
    # draws them from a rehearsal's metrics).
    assert main([*args, "--rehearsal", str(tmp_path / "no-rehearsal")]) == 0
    assert "wrote" in capsys.readouterr().out
    pages = sorted(tmp_path.glob("*.html"))
    assert [p.name for p in pages] == sorted(
        f"mlgate-{p.manifest.product.name}-{env}.html"
        for p in synth.products
        for env in ("prod", "staging")
    )
    for product in synth.products:
        manifest = product.manifest
        name = manifest.product.name
        shown = dom(tmp_path / f"mlgate-{name}-prod.html", tmp_path / f"profile-{name}")
        assert "Tier 1 — Business KPIs" in shown
        assert "Tier 3 — System health" in shown
        for kpi in manifest.metrics.business_kpis:
            owner = manifest.contact(kpi.owner).name
            assert f"{kpi.name} ({kpi.unit}) — owner: {owner}" in shown
        if manifest.is_batch("prod"):
            # No endpoint: the runs' panels, and the alarms of a failed, late or empty run.
            assert "Batch runs: succeeded / failed / empty / late per day" in shown
            for what in ("failed", "late", "empty"):
                assert f"mlgate/{name}/prod/system/batch-run-{what}/critical" in shown
            assert "Model latency" not in shown
        else:
            (latency,) = [s for s in manifest.metrics.slos if s.name.value == "latency_p99_ms"]
            # The latency widget plots microseconds; its threshold line says so, and in ms.
            micros = f"{latency.threshold * 1000:g} µs ({latency.threshold:g} ms)"
            assert f"line at {micros}: SLO p99 {latency.threshold:g} ms" in shown
        assert f"mlgate/{name}/prod/model/model-unhealthy/critical" in shown
        assert shown.count('class="widget') > 15


def test_preview_without_a_synth_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboards", "--outdir", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "run `make synth` first" in capsys.readouterr().err
