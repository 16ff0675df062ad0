"""Every execution role can do what AWS services do with it on the product's behalf
(mlgate/infra/service_permissions.py), for every example product, in the home account and in a prod
account of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlgate.infra.naming import Names
from mlgate.infra.service_permissions import TABLE, ServiceUse
from mlgate.manifest import ENV_NAMES, Manifest

from .conftest import Synth


def roles(outdir: Path) -> dict[str, list[dict[str, Any]]]:
    """Role name -> the statements its policies grant, from every template."""
    templates = [json.loads(p.read_text()) for p in sorted(outdir.glob("*.template.json"))]
    found: dict[str, list[dict[str, Any]]] = {}
    for template in templates:
        resources = template["Resources"]
        names = {
            logical: r["Properties"].get("RoleName")
            for logical, r in resources.items()
            if r["Type"] == "AWS::IAM::Role"
        }
        for r in resources.values():
            if r["Type"] != "AWS::IAM::Policy":
                continue
            for ref in r["Properties"].get("Roles", []):
                name = names.get(ref.get("Ref")) if isinstance(ref, dict) else None
                if name:
                    found.setdefault(name, []).extend(
                        r["Properties"]["PolicyDocument"]["Statement"]
                    )
    return found


def role_of(manifest: Manifest, use: ServiceUse, env: str) -> str:
    if use.role == "training":
        return f"mlgate-{manifest.product.name}-training"
    if use.role == "model":
        return Names.of(manifest).model_role(env)  # type: ignore[arg-type]
    return Names.of(manifest).monitor_role(env)  # type: ignore[arg-type]


def allows(statements: list[dict[str, Any]], action: str, marker: str) -> bool:
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if (
            statement["Effect"] == "Allow"
            and action in actions
            and marker in json.dumps(statement["Resource"])
        ):
            return True
    return False


@pytest.mark.parametrize("use", TABLE, ids=lambda u: f"{u.role}:{u.actions[0]}")
def test_every_role_allows_what_services_do_with_it(synth: Synth, use: ServiceUse) -> None:
    granted = roles(synth.outdir)
    missing = []
    checked = 0
    for product in synth.products:
        manifest = product.manifest
        for env in ENV_NAMES if use.role != "training" else ("staging",):
            name = role_of(manifest, use, env)
            capture = f"datacapture/{env}/"
            marker = use.marker.format(product=manifest.product.name, env=env, capture=capture)
            for action in use.actions:
                checked += 1
                if not allows(granted.get(name, []), action, marker):
                    missing.append(f"{name} lacks {action} on {use.resource} ({use.doc})")
    assert checked
    assert missing == []


def test_every_row_cites_its_documentation() -> None:
    for use in TABLE:
        assert use.doc.startswith("https://docs.aws.amazon.com/"), use


def test_the_check_fails_on_a_role_without_the_grant() -> None:
    statements = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]
    assert not allows(statements, "cloudwatch:DescribeAlarms", "alarm:mlgate/p/prod/")
    statements.append(
        {"Effect": "Allow", "Action": "cloudwatch:DescribeAlarms",
         "Resource": "arn:aws:cloudwatch:r:1:alarm:mlgate/p/prod/*"}
    )  # fmt: skip
    assert allows(statements, "cloudwatch:DescribeAlarms", "alarm:mlgate/p/prod/")
