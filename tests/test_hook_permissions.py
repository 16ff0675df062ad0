"""Every hook's role allows exactly the AWS calls its handler documents, in the synthesized
templates: nothing it calls is missing, nothing it never calls is granted."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from .conftest import ROOT

LAMBDAS = ROOT / "mlgate" / "lambdas"
# Granted by the platform around every hook, not called by the handler's code.
AMBIENT = re.compile(r"^(logs|kms|xray):")


def documented_calls(hook: str) -> tuple[set[str], set[str]]:
    """(calls the hook's role must allow, calls it makes with other credentials or optionally)."""
    doc = ast.get_docstring(ast.parse((LAMBDAS / hook / "handler.py").read_text())) or ""
    section = doc.split("AWS calls:", 1)[1]
    required, exempt = set(), set()
    for match in re.finditer(r"([a-z0-9-]+:[A-Za-z]+)(\s*\(([^)]*)\))?", section):
        action, note = match.group(1), match.group(3) or ""
        (exempt if ("artifact" in note or "optional" in note) else required).add(action)
    return required, exempt


def functions(outdir: Path) -> list[tuple[str, str, set[str]]]:
    """(template, hook, actions allowed to its role) for every mlgate hook."""
    found = []
    for path in sorted(outdir.glob("*.template.json")):
        resources: dict[str, Any] = json.loads(path.read_text())["Resources"]
        for fn in resources.values():
            if fn["Type"] != "AWS::Lambda::Function":
                continue
            handler = fn["Properties"].get("Handler", "")
            if not handler.endswith(".handler.handler"):
                continue
            role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
            allowed: set[str] = set()
            for policy in resources.values():
                if (
                    policy["Type"] == "AWS::IAM::Policy"
                    and {"Ref": role} in policy["Properties"]["Roles"]
                ):
                    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                        actions = statement["Action"]
                        allowed.update([actions] if isinstance(actions, str) else actions)
            found.append((path.name, handler.split(".")[0], allowed))
    return found


def test_every_hook_role_allows_exactly_what_the_hook_calls(synth: Any) -> None:
    hooks = functions(synth.outdir)
    assert {h for _, h, _ in hooks} >= {
        "release", "deployer", "deploy_verifier", "quality_gate", "gate_notifier",
        "gate_callback", "pipeline_starter", "drift_responder",
    }  # fmt: skip
    problems = [p for template, hook, allowed in hooks for p in compare(template, hook, allowed)]
    assert problems == []


def compare(template: str, hook: str, allowed: set[str]) -> list[str]:
    required, exempt = documented_calls(hook)
    granted = {a for a in allowed if not AMBIENT.match(a)}
    problems = []
    if missing := required - granted:
        problems.append(f"{template} {hook}: calls {sorted(missing)} but may not")
    if extra := granted - required - exempt:
        problems.append(f"{template} {hook}: may {sorted(extra)} but never calls it")
    if wild := sorted(a for a in granted if a.endswith("*")):
        problems.append(f"{template} {hook}: wildcard actions {wild}")
    return problems


def test_the_check_notices_a_missing_an_extra_and_a_wildcard_grant() -> None:
    required, _ = documented_calls("gate_callback")
    assert compare("t", "gate_callback", required) == []
    assert compare("t", "gate_callback", required - {"codepipeline:PutApprovalResult"}) == [
        "t gate_callback: calls ['codepipeline:PutApprovalResult'] but may not"
    ]
    assert compare("t", "gate_callback", required | {"s3:*"}) == [
        "t gate_callback: may ['s3:*'] but never calls it",
        "t gate_callback: wildcard actions ['s3:*']",
    ]
