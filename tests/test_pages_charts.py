"""The dashboard preview draws each widget as a chart from the last rehearsal's metrics.json
(threshold lines, alarm bands, time in ALARM, rollback and drift moments), says "no data yet"
where there is none, and is the same bytes for the same data."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlgate.cli.commands import main
from mlgate.cli.observability.charts import Rehearsal, alarm_spans, widget_series
from mlgate.cli.observability.preview import alarm_specs, dashboards
from mlgate.infra.naming import Names

from .test_dashboard_preview import dom

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def latency_alarm(outdir: Path, manifest: Any) -> Any:
    """The prod alarm whose metric the fixture records: its p99 latency alarm, or a batch
    prod's failed-run alarm (it has no endpoint)."""
    what = "batch-run-failed" if manifest.is_batch("prod") else "latency-p99-ms"
    name = Names.of(manifest, "prod").alarm("system", what, "critical")
    (spec,) = [a for a in alarm_specs(outdir) if a.name == name]
    return spec


def watched_widget(manifest: Any) -> str:
    """The title of the prod widget that draws the fixture's metric."""
    return "Batch runs" if manifest.is_batch("prod") else "Model latency"


def fixture(outdir: Path, manifest: Any, target: Path) -> dict[str, Any]:
    """A metrics.json in the rehearsal's format: prod latency crossing its alarm's threshold,
    the alarm's state changes, a release, a rollback and a drift moment in prod, a release in
    staging; plus a metric of another endpoint that no widget names."""
    alarm = latency_alarm(outdir, manifest)
    dims = dict(alarm.dimensions)
    high = alarm.threshold * 1.5
    doc = {
        "product": manifest.product.name,
        "generated": at(90),
        "metrics": [
            {
                "namespace": alarm.namespace,
                "name": alarm.metric,
                "dimensions": dims,
                "unit": "Microseconds",
                "points": [
                    [at(m), high if 30 <= m < 50 else alarm.threshold / 3] for m in range(0, 90, 5)
                ],
            },
            {
                "namespace": alarm.namespace,
                "name": "Invocations",
                "dimensions": {**dims, "EndpointName": "some-other-endpoint"},
                "unit": None,
                "points": [[at(0), 5.0]],
            },
        ],
        "alarms": [
            {
                "name": alarm.name,
                "history": [
                    [at(0), "OK", "ok"],
                    [at(35), "ALARM", "threshold crossed"],
                    [at(50), "OK", "back to normal"],
                ],
            }
        ],
        "moments": [
            {"time": at(30), "kind": "release", "label": "version 2", "environment": "prod"},
            {"time": at(45), "kind": "rollback", "label": "auto rollback", "environment": "prod"},
            {"time": at(60), "kind": "drift", "label": "share 0.4", "environment": "prod"},
            {"time": at(5), "kind": "release", "label": "staging v2", "environment": "staging"},
        ],
    }
    folder = target / manifest.product.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(doc))
    return doc


def widget_block(shown: str, title: str) -> str:
    """The rendered widget whose heading starts with `title`."""
    start = shown.index(f"<h3>{title}")
    end = shown.find('<div class="widget', start)
    return shown[start : end if end > 0 else len(shown)]


def test_no_rehearsal_says_no_data_yet_and_how_to_get_it(
    synth: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "rehearsal"
    args = ["dashboards", "--outdir", str(synth.outdir), "--out", str(tmp_path / "o")]
    assert main([*args, "--rehearsal", str(empty)]) == 0
    capsys.readouterr()
    for product in synth.products:
        name = product.manifest.product.name
        alarm = latency_alarm(synth.outdir, product.manifest)
        for env in ("prod", "staging"):
            page = tmp_path / "o" / f"{Names(name, env).dashboard()}.html"
            shown = dom(page, tmp_path / f"profile-{name}-{env}")
            assert "No data yet: no rehearsal data for this product" in shown
            assert "<code>make rehearse</code>" in shown
            metric_widgets = shown.count('data-type="metric"')
            assert metric_widgets > 5
            assert shown.count('<p class="nodata">no data yet</p>') >= metric_widgets
            # Metric names are not listed in place of data; nor is any chart drawn.
            assert alarm.metric not in shown
            assert f"{alarm.namespace} " not in shown
            assert "<svg" not in shown


def test_rehearsal_data_draws_thresholds_alarm_band_and_moments(
    synth: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rehearsal = tmp_path / "rehearsal"
    for product in synth.products:
        fixture(synth.outdir, product.manifest, rehearsal)
    args = ["dashboards", "--outdir", str(synth.outdir), "--out", str(tmp_path / "o")]
    assert main([*args, "--rehearsal", str(rehearsal)]) == 0
    capsys.readouterr()
    for product in synth.products:
        m = product.manifest
        name = m.product.name
        alarm = latency_alarm(synth.outdir, m)
        what = alarm.name.split("/")[-2]
        prod = dom(tmp_path / "o" / f"{Names(name, 'prod').dashboard()}.html", tmp_path / "p1")
        assert "Charts from the rehearsal of " + at(90) in prod
        latency = widget_block(prod, watched_widget(m))
        assert "<svg" in latency
        if not m.is_batch("prod"):  # a batch product has no SLO, so no SLO line
            (slo,) = [s for s in m.metrics.slos if s.name.value == "latency_p99_ms"]
            assert f"threshold: SLO p99 {slo.threshold:g} ms" in latency
        assert f"alarm band: {what} above {alarm.threshold:g}" in latency
        assert f"in ALARM: {what}" in latency
        assert "rollback: auto rollback" in latency
        assert "drift: share 0.4" in latency
        assert "release: version 2" in latency
        assert "staging v2" not in prod  # a moment of another environment
        # The alarm widget draws the alarm's state history.
        alarms = widget_block(prod, "Every alarm")
        assert "<svg" in alarms
        assert "/".join(alarm.name.split("/")[-3:]) in alarms
        # A widget whose metrics the rehearsal did not record still says so.
        assert '<p class="nodata">no data yet</p>' in prod
        staging = dom(
            tmp_path / "o" / f"{Names(name, 'staging').dashboard()}.html", tmp_path / "p2"
        )
        assert "auto rollback" not in staging
        assert "<svg" not in widget_block(staging, watched_widget(m))  # prod's metric only


def test_series_match_namespace_name_and_dimensions(synth: Any, tmp_path: Path) -> None:
    """A metric of the right name but another dimension (another endpoint) is not drawn."""
    m = synth.products[0].manifest
    fixture(synth.outdir, m, tmp_path)
    data = Rehearsal.load(tmp_path / m.product.name / "metrics.json")
    body = dashboards(synth.outdir)[Names.of(m, "prod").dashboard()]
    by_title = {w["properties"].get("title", ""): w["properties"] for w in body["widgets"]}
    latency = next(p for t, p in by_title.items() if t.startswith("Model latency"))
    invocations = next(p for t, p in by_title.items() if t.startswith("Invocations"))
    assert [s.name for _, s in widget_series(latency, data)] == ["ModelLatency"]
    assert widget_series(invocations, data) == []  # only some-other-endpoint's was recorded
    history = data.alarms[latency_alarm(synth.outdir, m).name]
    assert alarm_spans(history, T0 + timedelta(minutes=90)) == [
        (T0 + timedelta(minutes=35), T0 + timedelta(minutes=50))
    ]


def test_metrics_insights_select_is_drawn_per_group(tmp_path: Path) -> None:
    ns = "mlgate/p"
    path = tmp_path / "metrics.json"
    path.write_text(
        json.dumps(
            {
                "product": "p",
                "generated": at(0),
                "metrics": [
                    {"namespace": ns, "name": "score",
                     "dimensions": {"Environment": env, "Feature": f, "Product": "p"},
                     "unit": None, "points": [[at(0), 0.1]]}
                    for env in ("prod", "staging")
                    for f in ("a", "b")
                ],
                "alarms": [],
                "moments": [],
            }
        )
    )  # fmt: skip
    data = Rehearsal.load(path)
    expression = (
        f'SELECT MAX(score) FROM SCHEMA("{ns}", Environment, Feature, Product) WHERE '
        "Product = 'p' AND Environment = 'prod' GROUP BY Feature ORDER BY MAX() DESC LIMIT 10"
    )
    found = widget_series({"metrics": [[{"expression": expression}]]}, data)
    assert sorted(label for label, _ in found) == ["a", "b"]
    assert all(dict(s.dimensions)["Environment"] == "prod" for _, s in found)


def test_charts_are_the_same_bytes_for_the_same_data(synth: Any, tmp_path: Path) -> None:
    rehearsal = tmp_path / "rehearsal"
    for product in synth.products:
        fixture(synth.outdir, product.manifest, rehearsal)
    pages = []
    for run in ("a", "b"):
        args = ["dashboards", "--outdir", str(synth.outdir), "--out", str(tmp_path / run)]
        assert main([*args, "--rehearsal", str(rehearsal)]) == 0
        pages.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).glob("*.html"))})
    assert pages[0] == pages[1]
    text = b"".join(pages[0].values()).decode()
    assert text.count("<svg") >= 2 * len(synth.products)
    assert "<dc:date>" not in text  # no render date in the SVG
    assert not re.search(r"<\?xml|<!DOCTYPE svg", text)  # inline SVG, no prolog


def test_a_chart_spans_its_own_data_and_tags_close_moments_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rehearsal plays a release's steps seconds apart on a page whose data spans hours: a
    widget whose data lasted seconds is drawn over its own minute, and moments that would
    overprint share one tag ("1-3"), each still listed in the legend with its kind and label."""
    from mlgate.cli.observability import charts

    page = (T0, T0 + timedelta(hours=2))
    data_times = [T0 + timedelta(minutes=30, seconds=s) for s in (0, 5, 10)]
    span = charts.widget_span(data_times, page)
    assert span[0] <= data_times[0]
    assert span[1] >= data_times[-1]
    assert timedelta(minutes=1) <= span[1] - span[0] < timedelta(minutes=2)
    assert charts.widget_span([], page) == page
    series = charts.Series("ns", "Latency", (), None,
                           tuple((t, float(i)) for i, t in enumerate(data_times)))  # fmt: skip
    moments = [
        charts.Moment(data_times[0] + timedelta(seconds=s), kind, label, "prod")
        for s, kind, label in ((1, "release", "v2"), (2, "canary", "half"), (3, "rollback", "r"))
    ]
    moments.append(charts.Moment(T0 + timedelta(minutes=90), "drift", "later", "prod"))

    def drawn() -> str:
        return charts.metric_chart(series=[("Latency", series)], thresholds=[], alarms=[],
                                   history={}, moments=moments, span=page, size=(8, 5),
                                   salt="t")  # fmt: skip

    svg = drawn()
    assert ">1-3<" in svg
    for entry in ("1 release: v2", "2 canary: half", "3 rollback: r"):
        assert entry in svg
    assert "drift: later" not in svg  # outside this chart's data
    monkeypatch.setattr(charts, "CLUSTER", 0.0)  # the broken form: each its own tag
    assert ">1-3<" not in drawn()
