"""What the generated pages share: reading a cloud assembly, resolving intrinsics for
display, and one self-contained HTML page style (inline CSS, no external assets)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 24px;
       color: #16191f; background: #f2f3f3; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 18px; margin-top: 28px; }}
table {{ border-collapse: collapse; background: #fff; margin: 8px 0 16px; }}
td, th {{ border: 1px solid #d5dbdb; padding: 4px 8px; font-size: 13px; text-align: left;
          vertical-align: top; }}
th {{ background: #fafafa; }}
.bad {{ color: #b0251a; font-weight: 600; }} .ok {{ color: #1d8102; }}
.grid {{ display: grid; grid-template-columns: repeat(24, 1fr); grid-auto-rows: 28px;
         gap: 6px; }}
.widget {{ background: #fff; border: 1px solid #d5dbdb; border-radius: 2px; padding: 6px;
           overflow: hidden; font-size: 12px; }}
.widget h3 {{ margin: 0 0 4px; font-size: 13px; }}
.widget ul {{ margin: 0; padding-left: 16px; }}
.annotation {{ color: #b0251a; }}
.text {{ background: transparent; border: none; }}
</style></head><body>
{body}
</body></html>
"""


def page(title: str, body: str) -> str:
    return PAGE.format(title=html.escape(title), body=body)


def esc(value: Any) -> str:
    return html.escape(str(value))


def templates(outdir: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> template, for every stack of a synthesized cloud assembly."""
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(outdir.glob("*.template.json"))
    }


def stack_environments(outdir: Path) -> dict[str, tuple[str, str]]:
    """Stack name (as `templates` keys it) -> (account, region) it deploys to, from the cloud
    assembly's manifest; empty when the assembly has none."""
    path = outdir / "manifest.json"
    if not path.is_file():
        return {}
    found = {}
    for artifact in json.loads(path.read_text()).get("artifacts", {}).values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        stack = artifact["properties"]["templateFile"].removesuffix(".template.json")
        account, _, region = (
            str(artifact.get("environment", "")).removeprefix("aws://").partition("/")
        )
        found[stack] = (account, region)
    return found


def display(value: Any, resources: dict[str, Any]) -> str:
    """A CloudFormation value made readable: Refs and GetAtts become names, Joins are joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Ref" in value:
            target = resources.get(value["Ref"], {})
            props = target.get("Properties", {})
            for key in (
                "AlarmName",
                "FunctionName",
                "TopicName",
                "TableName",
                "BucketName",
                "Name",
            ):
                if isinstance(props.get(key), str):
                    return str(props[key])
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            named = display({"Ref": value["Fn::GetAtt"][0]}, resources)
            return named if not named.startswith("<") else f"<{'.'.join(value['Fn::GetAtt'])}>"
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return str(sep).join(display(p, resources) for p in parts)
        if "Fn::ImportValue" in value:
            return f"<import {display(value['Fn::ImportValue'], resources)}>"
        if "Fn::Sub" in value:
            return display(value["Fn::Sub"], resources)
    if isinstance(value, list):
        return ", ".join(display(v, resources) for v in value)
    return json.dumps(value)
