"""A local preview of every synthesized dashboard: the real 24-column grid and widget titles,
each widget drawn as a chart from the last rehearsal's metrics (mlgate/cli/observability/
charts.py: why matplotlib SVG) with its threshold lines, alarm bands and the rehearsal's
moments; a widget without data says "no data yet" and the page says how to get some."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlgate.cli.observability.charts import (
    AlarmSpec,
    Moment,
    Rehearsal,
    alarm_chart,
    metric_chart,
    rehearsals,
    widget_alarms,
    widget_series,
)
from mlgate.cli.reporting import Assembly, esc, page, quantity
from mlgate.infra.naming import Names
from mlgate.manifest import ENV_NAMES

NO_DATA = "no data yet"
REHEARSAL_DIR = Path("reports/rehearsal")


def dashboards(outdir: Path) -> dict[str, dict[str, Any]]:
    """Dashboard name -> its body, resolved from every template of the cloud assembly."""
    found = {}
    assembly = Assembly.read(outdir)
    for stack in assembly.templates:
        reader = assembly.reader(stack)
        for resource in reader.resources.values():
            if resource["Type"] == "AWS::CloudWatch::Dashboard":
                props = resource["Properties"]
                body = props["DashboardBody"]
                if isinstance(body, dict) and "Fn::Join" in body:
                    # Each token sits inside a JSON string of the body: its text is escaped
                    # so that a quote in what it names cannot break the JSON.
                    sep, parts = body["Fn::Join"]
                    body = str(sep).join(
                        p if isinstance(p, str) else json.dumps(reader.display(p))[1:-1]
                        for p in parts
                    )
                name = reader.display(props.get("DashboardName", "dashboard"))
                found[name] = json.loads(reader.display(body))
    return found


def alarm_specs(outdir: Path) -> list[AlarmSpec]:
    """Every single-metric alarm of the assembly: what it watches and where it fires (an
    alarm on metric math is in another unit than its widget's series, so it draws no band)."""
    found = []
    assembly = Assembly.read(outdir)
    for stack in assembly.templates:
        reader = assembly.reader(stack)
        for logical, r in reader.resources.items():
            p = r.get("Properties", {})
            if r["Type"] != "AWS::CloudWatch::Alarm" or "MetricName" not in p:
                continue
            found.append(
                AlarmSpec(
                    name=reader.display(p.get("AlarmName", logical)),
                    namespace=reader.display(p.get("Namespace", "")),
                    metric=reader.display(p["MetricName"]),
                    dimensions=tuple(
                        sorted(
                            (reader.display(d["Name"]), reader.display(d["Value"]))
                            for d in p.get("Dimensions", [])
                        )
                    ),
                    threshold=float(p.get("Threshold", 0)),
                    comparison=str(p.get("ComparisonOperator", "GreaterThanThreshold")),
                )
            )
    return found


@dataclass
class Data:
    """What one dashboard's charts draw from: its product's rehearsal, that environment's
    moments, the alarms of the templates, one time axis for every chart."""

    rehearsal: Rehearsal
    moments: list[Moment]
    alarms: list[AlarmSpec]
    span: tuple[datetime, datetime]


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
# Links a text widget may carry: a scheme that can run code (javascript:, data:) is dropped.
_SAFE_URL = re.compile(r"^(https?://|mailto:|#|/)", re.IGNORECASE)


def _inline(text: str) -> str:
    """One line of Markdown as HTML: escaped first, so only the markup below is ever HTML."""
    out = esc(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        if not _SAFE_URL.match(html.unescape(url)):
            return label
        return f'<a href="{url}">{label}</a>'

    out = _LINK.sub(link, out)
    out = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: f"<strong>{m[1] or m[2]}</strong>", out)
    return re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", out)


def markdown_html(text: str) -> str:
    """The Markdown a CloudWatch text widget shows (headings, paragraphs, lists, bold,
    italics, code, links) as HTML; everything else in it is shown as text."""
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    list_tag = ""

    def flush() -> None:
        nonlocal list_tag
        if paragraph:
            blocks.append(f"<p>{' '.join(_inline(line) for line in paragraph)}</p>")
            paragraph.clear()
        if items:
            blocks.append(f"<{list_tag}>{''.join(f'<li>{i}</li>' for i in items)}</{list_tag}>")
            items.clear()
            list_tag = ""

    for line in text.split("\n"):
        heading, bullet, numbered = _HEADING.match(line), _BULLET.match(line), _NUMBERED.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif bullet or numbered:
            tag = "ul" if bullet else "ol"
            if paragraph or (items and list_tag != tag):
                flush()
            list_tag = tag
            items.append(_inline((bullet or numbered).group(1)))  # type: ignore[union-attr]
        elif not line.strip():
            flush()
        else:
            if items:
                flush()
            paragraph.append(line.strip())
    flush()
    return "".join(blocks)


def _line(value: Any, title: str) -> str:
    """A threshold line's value in the unit its widget's title names, "(µs)" or "(fraction)"."""
    units = re.findall(r"\(([^()]+)\)", title)
    if not isinstance(value, (int, float)) or not units:
        return str(value)
    unit = units[-1].strip()
    if any(c.isupper() for c in unit):  # a source, "(Model Monitor)", not a unit
        return f"{value:g}"
    if unit == "µs":
        return f"{value:g} µs ({value / 1000:g} ms)"
    return quantity(float(value), unit)


def widget_html(widget: dict[str, Any], data: Data | None = None, index: int = 0) -> str:
    """A widget: text as Markdown; a metric or alarm widget as a chart of the rehearsal's data,
    or "no data yet" with its threshold lines (never its metrics' names)."""
    props = widget.get("properties", {})
    style = (
        f"grid-column: {widget['x'] + 1} / span {widget['width']}; "
        f"grid-row: {widget['y'] + 1} / span {widget['height']};"
    )
    if widget["type"] == "text":
        inner = markdown_html(str(props.get("markdown", "")))
        return f'<div class="widget text" style="{style}" data-type="text">{inner}</div>'
    title = str(props.get("title", widget["type"]))
    thresholds = [
        a
        for a in props.get("annotations", {}).get("horizontal", [])
        if a.get("yAxis", "left") == "left"
    ]
    items = [
        f'<li class="annotation">line at {esc(_line(a.get("value"), title))}: '
        f"{esc(a.get('label', ''))}</li>"
        for a in thresholds
    ]
    size = (int(widget["width"]), int(widget["height"]))
    chart = ""
    if widget["type"] == "alarm":
        names = [str(a).rsplit(":", 1)[-1] for a in props.get("alarms", [])]
        items = [f"<li>{esc(n)}</li>" for n in names]
        history = data.rehearsal.alarms if data else {}
        if data and any(history.get(n) for n in names):
            chart = alarm_chart(names=names, history=history, moments=data.moments,
                                span=data.span, size=size, salt=f"mlgate-{index}")  # fmt: skip
    elif data and (series := widget_series(props, data.rehearsal)):
        chart = metric_chart(
            series=series,
            thresholds=thresholds,
            alarms=widget_alarms(series, data.alarms),
            history=data.rehearsal.alarms,
            moments=data.moments,
            span=data.span,
            size=size,
            salt=f"mlgate-{index}",
        )
    inner = (
        f'<div class="chart">{chart}</div>'
        if chart
        else f'<p class="nodata">{NO_DATA}</p><ul>{"".join(items)}</ul>'
    )
    return (
        f'<div class="widget" style="{style}" data-type="{esc(widget["type"])}">'
        f"<h3>{esc(title)}</h3>{inner}</div>"
    )


_STYLE = (
    "<style>.chart svg { width: 100%; height: auto; } "
    ".nodata { color: #687078; font-style: italic; margin: 0 0 4px; }</style>"
)


def render(name: str, body: dict[str, Any], data: Data | None = None) -> str:
    widgets = "".join(widget_html(w, data, i) for i, w in enumerate(body.get("widgets", [])))
    if data:
        note = (
            f"Charts from the rehearsal of {esc(data.rehearsal.generated)} "
            "(<code>make rehearse</code>: the release played offline under moto, not "
            "production traffic). Each chart spans its own data's time. Dotted lines mark "
            "the rehearsal's moments (release, canary, rollback, drift, retrain), numbered as "
            'in the chart\'s legend (moments seconds apart share one tag, "2-5"); dashed '
            "red lines are thresholds, a light red band the values where an alarm fires, a "
            "darker one the time it was in ALARM."
        )
    else:
        note = (
            f"{NO_DATA.capitalize()}: no rehearsal data for this product. Run "
            "<code>make rehearse</code> (it writes reports/rehearsal/&lt;product&gt;/"
            "metrics.json), then <code>make dashboards</code> again."
        )
    return page(
        f"Dashboard {name}",
        f'{_STYLE}<h1>{esc(name)}</h1><p class="source">{note}</p><div class="grid">{widgets}'
        "</div>",
    )


def _data_for(name: str, found: dict[str, Rehearsal], alarms: list[AlarmSpec]) -> Data | None:
    """The rehearsal of the product whose dashboard this is, with that environment's moments."""
    for product, rehearsal in found.items():
        for env in ENV_NAMES:
            if Names(product, env).dashboard() == name:
                span = rehearsal.span()
                if span is None:
                    return None
                moments = [m for m in rehearsal.moments if m.environment == env]
                return Data(rehearsal, moments, alarms, span)
    return None


def write_previews(outdir: Path, target: Path, rehearsal: Path = REHEARSAL_DIR) -> list[Path]:
    """Every dashboard of the assembly as a page; charts from <rehearsal>/<product>/metrics.json
    where the rehearsal wrote one."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    found = rehearsals(rehearsal) if rehearsal.is_dir() else {}
    alarms = alarm_specs(outdir) if found else []
    for name, body in sorted(dashboards(outdir).items()):
        path = target / f"{name}.html"
        path.write_text(render(name, body, _data_for(name, found, alarms)))
        written.append(path)
    if not written:
        raise FileNotFoundError(f"no CloudWatch dashboard in {outdir}: run `make synth` first")
    return written
