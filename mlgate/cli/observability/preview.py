"""A local preview of every synthesized dashboard: the real 24-column grid, widget titles,
metrics and threshold lines, so a change to the dashboards can be reviewed by looking."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from mlgate.cli.reporting import Assembly, esc, page, quantity


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


def _metric_label(metric: list[Any]) -> str:
    """A metric array [namespace, name, dim, value, ..., {options}] as one line."""
    parts = [m for m in metric if not isinstance(m, dict)]
    options = next((m for m in metric if isinstance(m, dict)), {})
    if options.get("expression"):
        return f"{options.get('label', 'expression')}: {options['expression']}"
    if len(parts) < 2:
        return str(options.get("label", "…"))
    namespace, name, dims = parts[0], parts[1], parts[2:]
    pairs = ", ".join(f"{dims[i]}={dims[i + 1]}" for i in range(0, len(dims) - 1, 2))
    stat = options.get("stat", "")
    return f"{namespace} {name} {stat} ({pairs})".replace(" ()", "")


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


def widget_html(widget: dict[str, Any]) -> str:
    props = widget.get("properties", {})
    style = (
        f"grid-column: {widget['x'] + 1} / span {widget['width']}; "
        f"grid-row: {widget['y'] + 1} / span {widget['height']};"
    )
    if widget["type"] == "text":
        inner = markdown_html(str(props.get("markdown", "")))
        return f'<div class="widget text" style="{style}" data-type="text">{inner}</div>'
    title = str(props.get("title", widget["type"]))
    items = [f"<li>{esc(_metric_label(m))}</li>" for m in props.get("metrics", [])]
    for axis in ("left", "right"):
        for a in props.get("annotations", {}).get("horizontal", []):
            if axis == "left" and a.get("yAxis", "left") in ("left", axis):
                items.append(
                    f'<li class="annotation">line at {esc(_line(a.get("value"), title))}: '
                    f"{esc(a.get('label', ''))}</li>"
                )
    if widget["type"] == "alarm":
        items = [f"<li>{esc(a.rsplit(':', 1)[-1])}</li>" for a in props.get("alarms", [])]
    return (
        f'<div class="widget" style="{style}" data-type="{esc(widget["type"])}">'
        f"<h3>{esc(title)}</h3><ul>{''.join(items)}</ul></div>"
    )


def render(name: str, body: dict[str, Any]) -> str:
    widgets = "".join(widget_html(w) for w in body.get("widgets", []))
    return page(f"Dashboard {name}", f'<h1>{esc(name)}</h1><div class="grid">{widgets}</div>')


def write_previews(outdir: Path, target: Path) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in sorted(dashboards(outdir).items()):
        path = target / f"{name}.html"
        path.write_text(render(name, body))
        written.append(path)
    if not written:
        raise FileNotFoundError(f"no CloudWatch dashboard in {outdir}: run `make synth` first")
    return written
