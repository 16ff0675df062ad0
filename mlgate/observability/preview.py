"""A local preview of every synthesized dashboard: the real 24-column grid, widget titles,
metrics and threshold lines, so a change to the dashboards can be reviewed by looking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlgate.reporting import display, esc, page, templates


def dashboards(outdir: Path) -> dict[str, dict[str, Any]]:
    """Dashboard name -> its body, resolved from every template of the cloud assembly."""
    found = {}
    for template in templates(outdir).values():
        resources = template.get("Resources", {})
        for resource in resources.values():
            if resource["Type"] == "AWS::CloudWatch::Dashboard":
                props = resource["Properties"]
                body = json.loads(display(props["DashboardBody"], resources))
                found[display(props.get("DashboardName", "dashboard"), resources)] = body
    return found


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


def widget_html(widget: dict[str, Any]) -> str:
    props = widget.get("properties", {})
    style = (
        f"grid-column: {widget['x'] + 1} / span {widget['width']}; "
        f"grid-row: {widget['y'] + 1} / span {widget['height']};"
    )
    if widget["type"] == "text":
        lines = [esc(line) for line in props.get("markdown", "").split("\n")]
        inner = "<br>".join(
            f"<strong>{line.lstrip('#').strip()}</strong>" if line.startswith("#") else line
            for line in lines
        )
        return f'<div class="widget text" style="{style}" data-type="text">{inner}</div>'
    items = [f"<li>{esc(_metric_label(m))}</li>" for m in props.get("metrics", [])]
    for axis in ("left", "right"):
        for a in props.get("annotations", {}).get("horizontal", []):
            if axis == "left" and a.get("yAxis", "left") in ("left", axis):
                items.append(
                    f'<li class="annotation">line at {esc(a.get("value"))}: '
                    f"{esc(a.get('label', ''))}</li>"
                )
    if widget["type"] == "alarm":
        items = [f"<li>{esc(a.rsplit(':', 1)[-1])}</li>" for a in props.get("alarms", [])]
    title = esc(props.get("title", widget["type"]))
    return (
        f'<div class="widget" style="{style}" data-type="{esc(widget["type"])}">'
        f"<h3>{title}</h3><ul>{''.join(items)}</ul></div>"
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
