"""Charts of the last rehearsal's metrics for the dashboard preview, drawn with matplotlib
as inline SVG.

Why matplotlib to SVG rather than plotly or Vega-Lite (altair): a static SVG needs no
JavaScript, so a page opens offline and prints as it looks, and its text is text (searchable,
checked by the tests in the DOM). plotly (installed, Evidently's dependency) or Vega-Lite
would embed their JavaScript in every page to work offline (plotly.js alone is about 3.5 MB)
for hover and zoom a review page does not need. matplotlib's SVG is deterministic once its
id salt is fixed and its date left out (`svg.hashsalt`, `metadata={"Date": None}`): the same
rehearsal gives the same bytes.

The rehearsal writes `reports/rehearsal/<product>/metrics.json` (tools/rehearsal.py):
metrics (namespace, name, dimensions, points), alarms (state history) and moments (release,
canary, rollback, drift, retrain). A widget's series are the metrics whose namespace, name
and dimensions its dashboard body names.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

Dims = tuple[tuple[str, str], ...]
"""Dimensions as sorted (name, value) pairs: a metric's identity with its namespace and name."""

MOMENT_COLORS = {
    "release": "#1d8102",
    "canary": "#0073bb",
    "rollback": "#b0251a",
    "drift": "#d45b07",
    "retrain": "#6b40b5",
}
ALARM_RED = "#d13212"
_PALETTE = ("#0073bb", "#ec7211", "#2ca02c", "#8c564b", "#9467bd", "#17becf", "#7f7f7f",
            "#bcbd22", "#e377c2", "#1f3b73")  # fmt: skip


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _dims(pairs: Any) -> Dims:
    return tuple(sorted((str(k), str(v)) for k, v in dict(pairs or {}).items()))


@dataclass(frozen=True)
class Series:
    namespace: str
    name: str
    dimensions: Dims
    unit: str | None
    points: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True)
class Moment:
    time: datetime
    kind: str
    label: str
    environment: str


@dataclass
class Rehearsal:
    """One product's metrics.json."""

    product: str
    generated: str
    series: dict[tuple[str, str, Dims], Series] = field(default_factory=dict)
    alarms: dict[str, list[tuple[datetime, str, str]]] = field(default_factory=dict)
    moments: list[Moment] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Rehearsal:
        raw = json.loads(path.read_text())
        data = cls(str(raw["product"]), str(raw.get("generated", "")))
        for m in raw.get("metrics", []):
            s = Series(
                str(m["namespace"]),
                str(m["name"]),
                _dims(m.get("dimensions")),
                m.get("unit"),
                tuple(sorted((_time(t), float(v)) for t, v in m.get("points", []))),
            )
            data.series[(s.namespace, s.name, s.dimensions)] = s
        for a in raw.get("alarms", []):
            data.alarms[str(a["name"])] = sorted(
                (_time(t), str(state), str(reason)) for t, state, reason in a.get("history", [])
            )
        data.moments = sorted(
            (
                Moment(_time(x["time"]), str(x["kind"]), str(x["label"]), str(x["environment"]))
                for x in raw.get("moments", [])
            ),
            key=lambda x: (x.time, x.kind, x.label),
        )
        return data

    def span(self) -> tuple[datetime, datetime] | None:
        """The first and last time of anything recorded, for an axis every chart shares."""
        times = [t for s in self.series.values() for t, _ in s.points]
        times += [t for h in self.alarms.values() for t, _, _ in h]
        times += [x.time for x in self.moments]
        return (min(times), max(times)) if times else None


def rehearsals(directory: Path) -> dict[str, Rehearsal]:
    """Product name -> its last rehearsal's data, from <directory>/<product>/metrics.json."""
    found = {}
    for path in sorted(directory.glob("*/metrics.json")):
        data = Rehearsal.load(path)
        found[data.product] = data
    return found


# --- what a widget plots ----------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmSpec:
    """A single-metric alarm of the templates: the metric it watches and where it fires."""

    name: str
    namespace: str
    metric: str
    dimensions: Dims
    threshold: float
    comparison: str

    @property
    def above(self) -> bool:
        return self.comparison.startswith("GreaterThan")


_SELECT = re.compile(
    r"SELECT\s+\w+\((?P<metric>\w+)\)\s+FROM\s+SCHEMA\(\"(?P<ns>[^\"]+)\"(?P<keys>[^)]*)\)"
    r"(?:\s+WHERE\s+(?P<where>.*?))?(?:\s+GROUP BY\s+(?P<group>\w+))?"
    r"(?:\s+ORDER BY.*?)?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def widget_series(props: dict[str, Any], data: Rehearsal) -> list[tuple[str, Series]]:
    """(label, series) of each metric the widget names that the rehearsal recorded: a metric
    array by namespace, name and dimensions; a Metrics Insights SELECT by its schema and
    WHERE clause, one series per group."""
    found: dict[tuple[str, str, Dims], str] = {}
    for metric in props.get("metrics", []):
        parts = [m for m in metric if not isinstance(m, dict)]
        options = next((m for m in metric if isinstance(m, dict)), {})
        select = _SELECT.match(str(options.get("expression", "")))
        if select:
            where = dict(re.findall(r"(\w+)\s*=\s*'([^']*)'", select["where"] or ""))
            keys = {k.strip() for k in (select["keys"] or "").split(",") if k.strip()}
            hits = [
                s
                for key, s in sorted(data.series.items())
                if s.namespace == select["ns"]
                and s.name == select["metric"]
                and {k for k, _ in s.dimensions} == keys
                and all(dict(s.dimensions).get(k) == v for k, v in where.items())
            ]
            limit = int(select["limit"] or 10)
            hits = sorted(hits, key=lambda s: -max(v for _, v in s.points or [(0, 0.0)]))[:limit]
            for s in hits:
                group = dict(s.dimensions).get(select["group"] or "", s.name)
                found.setdefault((s.namespace, s.name, s.dimensions), group)
        elif len(parts) >= 2:
            dims = _dims({parts[i]: parts[i + 1] for i in range(2, len(parts) - 1, 2)})
            key = (str(parts[0]), str(parts[1]), dims)
            if key in data.series:
                found.setdefault(key, str(options.get("label") or parts[1]))
    return [(label, data.series[key]) for key, label in found.items()]


def widget_alarms(series: list[tuple[str, Series]], alarms: list[AlarmSpec]) -> list[AlarmSpec]:
    """The single-metric alarms that watch one of the plotted series."""
    keys = {(s.namespace, s.name, s.dimensions) for _, s in series}
    return [a for a in alarms if (a.namespace, a.metric, a.dimensions) in keys]


def alarm_spans(
    history: list[tuple[datetime, str, str]], end: datetime
) -> list[tuple[datetime, datetime]]:
    """The intervals an alarm spent in ALARM, from its state changes."""
    spans = []
    for i, (start, state, _) in enumerate(history):
        if state == "ALARM":
            stop = history[i + 1][0] if i + 1 < len(history) else end
            spans.append((start, max(stop, start)))
    return spans


# --- drawing ------------------------------------------------------------------------------------


def _svg(fig: Any, salt: str) -> str:
    import matplotlib

    out = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        fig.savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = out.getvalue()
    return text[text.index("<svg") :]  # inline: no XML prolog, no DOCTYPE


def _figure(width: int, height: int) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(max(3.0, width * 0.42), max(1.8, height * 0.36)), dpi=72)


def _days(t: datetime) -> float:
    """A time as matplotlib's date number (days since its epoch, 1970-01-01)."""
    from matplotlib import dates

    return float(dates.date2num(t))  # type: ignore[no-untyped-call]


CLUSTER = 0.04
"""Moments closer than this share of a chart's width are tagged together ("2-5"): the
rehearsal plays a release's steps seconds apart on an axis of an hour or more."""
LABEL_CHARS = 70


def widget_span(
    times: list[datetime], fallback: tuple[datetime, datetime]
) -> tuple[datetime, datetime]:
    """A chart's time axis: its own data's first to last time with a margin (so points at the
    ends stay visible), or the page's span when it has none. A widget whose data lasted a minute
    is drawn over that minute, not over the rehearsal's hours."""
    if not times:
        return fallback
    first, last = min(times), max(times)
    margin = max(last - first, timedelta(minutes=1)) * 0.05
    short = max(timedelta(0), timedelta(minutes=1) - (last - first)) / 2  # centred in a minute
    return first - margin - short, last + margin + short


def _clusters(moments: list[Moment], span: tuple[datetime, datetime]) -> list[list[int]]:
    """The indexes of `moments` (sorted by time) grouped where they would overprint."""
    gap = (span[1] - span[0]) * CLUSTER
    groups: list[list[int]] = []
    for i, x in enumerate(moments):
        if groups and x.time - moments[groups[-1][-1]].time <= gap:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _moments(ax: Any, moments: list[Moment], span: tuple[datetime, datetime]) -> None:
    """The moments inside the chart's span: a dotted line each, a number tag at the top (one
    tag for moments close together: "2-5"), and a legend entry per number with its kind and
    label."""
    from matplotlib.lines import Line2D

    shown = [x for x in moments if span[0] <= x.time <= span[1]]
    for group in _clusters(shown, span):
        for i in group:
            color = MOMENT_COLORS.get(shown[i].kind, "#545b64")
            ax.axvline(shown[i].time, color=color, linewidth=1.0, linestyle=":")
        first = shown[group[0]]
        tag = str(group[0] + 1) if len(group) == 1 else f"{group[0] + 1}-{group[-1] + 1}"
        ax.annotate(tag, xy=(first.time, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(1, -1), textcoords="offset points", fontsize=6, va="top",
                    ha="left", color=MOMENT_COLORS.get(first.kind, "#545b64"))  # fmt: skip
    for i, x in enumerate(shown):
        label = f"{x.kind}: {x.label}"
        if len(label) > LABEL_CHARS:  # its start and its end (a version is at the end)
            keep = (LABEL_CHARS - 1) // 2
            label = label[:keep] + "\u2026" + label[-keep:]
        color = MOMENT_COLORS.get(x.kind, "#545b64")
        # A legend entry of its own (a line of the moment's colour and style, no data).
        ax.add_line(Line2D([], [], color=color, linewidth=1.0, linestyle=":",
                           label=f"{i + 1} {label} ({x.time:%H:%M:%S})"))  # fmt: skip


def _legend(ax: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique:  # beneath the plot, so it never hides a point
        ax.legend(list(unique.values()), list(unique), fontsize=6, loc="upper left",
                  bbox_to_anchor=(0.0, -0.22), ncol=1, frameon=False)  # fmt: skip


def _time_axis(ax: Any, span: tuple[datetime, datetime]) -> None:
    from matplotlib import dates

    ax.set_xlim(span[0], max(span[1], span[0] + timedelta(minutes=1)))
    locator = dates.AutoDateLocator(maxticks=5)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = dates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.tick_params(labelsize=7)
    ax.xaxis.get_offset_text().set_fontsize(7)
    ax.grid(True, linewidth=0.3, color="#d5dbdb")


def metric_chart(
    *,
    series: list[tuple[str, Series]],
    thresholds: list[dict[str, Any]],
    alarms: list[AlarmSpec],
    history: dict[str, list[tuple[datetime, str, str]]],
    moments: list[Moment],
    span: tuple[datetime, datetime],
    size: tuple[int, int],
    salt: str,
) -> str:
    """A time-series widget as SVG: its series, its threshold lines, each alarm's band (the
    values where it fires) and the times it was in ALARM, and the rehearsal's moments."""
    fig = _figure(*size)
    ax = fig.add_subplot()
    for i, (label, s) in enumerate(series):
        xs = [t for t, _ in s.points]
        ys = [v for _, v in s.points]
        ax.plot(xs, ys, color=_PALETTE[i % len(_PALETTE)], linewidth=1.3, marker=".",
                markersize=3, label=label)  # fmt: skip
    span = widget_span(
        [t for _, s in series for t, _ in s.points]
        + [t for a in alarms for t, _, _ in history.get(a.name, [])],
        span,
    )
    values = [v for _, s in series for _, v in s.points]
    for line in thresholds:
        if isinstance(line.get("value"), (int, float)):
            ax.axhline(line["value"], color=ALARM_RED, linewidth=1, linestyle="--",
                       label=f"threshold: {line.get('label', line['value'])}")  # fmt: skip
            values.append(float(line["value"]))
    values += [a.threshold for a in alarms]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.12 or abs(high) * 0.12 or 1.0
    low, high = low - pad, high + pad
    ax.set_ylim(low, high)
    for a in alarms:
        band = (a.threshold, high) if a.above else (low, a.threshold)
        short = a.name.rsplit("/", 2)[-2] if a.name.count("/") >= 2 else a.name
        ax.axhspan(*band, color=ALARM_RED, alpha=0.08, linewidth=0,
                   label=f"alarm band: {short} {'above' if a.above else 'below'} "
                         f"{a.threshold:g}")  # fmt: skip
        for start, stop in alarm_spans(history.get(a.name, []), span[1]):
            ax.axvspan(start, stop, color=ALARM_RED, alpha=0.18, linewidth=0,
                       label=f"in ALARM: {short}")  # fmt: skip
    _moments(ax, moments, span)
    _time_axis(ax, span)
    _legend(ax)
    return _svg(fig, salt)


def alarm_chart(
    *,
    names: list[str],
    history: dict[str, list[tuple[datetime, str, str]]],
    moments: list[Moment],
    span: tuple[datetime, datetime],
    size: tuple[int, int],
    salt: str,
) -> str:
    """An alarm widget as SVG: one row per alarm with a state history, red while in ALARM."""
    shown = [n for n in names if history.get(n)]
    span = widget_span([t for n in shown for t, _, _ in history[n]], span)
    fig = _figure(size[0], max(size[1], 2 + len(shown) // 2))
    ax = fig.add_subplot()
    colors = {"ALARM": ALARM_RED, "OK": "#1d8102", "INSUFFICIENT_DATA": "#aab7b8"}
    for row, name in enumerate(shown):
        changes = history[name]
        for i, (start, state, _) in enumerate(changes):
            stop = changes[i + 1][0] if i + 1 < len(changes) else span[1]
            x0, x1 = _days(start), _days(max(stop, start))
            ax.broken_barh([(x0, x1 - x0)], (row - 0.35, 0.7), color=colors.get(state, "#aab7b8"))
    # An alarm by the end of its name (tier/what/severity): its product and environment
    # are the dashboard's.
    ax.set_yticks(range(len(shown)), ["/".join(n.split("/")[-3:]) for n in shown])
    ax.set_ylim(-0.6, max(len(shown), 1) - 0.4)
    ax.invert_yaxis()
    _moments(ax, moments, span)
    _time_axis(ax, span)
    _legend(ax)
    return _svg(fig, salt)
