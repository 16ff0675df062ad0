"""Every execution role can do what AWS services do with it on the product's behalf
(mlgate/infra/service_permissions.py), for every example product, in the home account and in a prod
account of its own; where the serving mode captures no traffic (serverless), the capture grant
and the monitor role are absent; a batch environment's model role has what its prepare and
transform jobs need instead of an endpoint's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlgate.infra.naming import Names
from mlgate.infra.service_permissions import (
    ANY,
    BATCH,
    CAPTURED,
    MONITORED,
    TABLE,
    ServiceUse,
    applies,
    captures,
)
from mlgate.manifest import ENV_NAMES, Manifest
from mlgate.manifest.serving import ServingMode

from .conftest import Synth


def role_names(outdir: Path) -> set[str]:
    """Every role name the templates create."""
    return {
        r["Properties"].get("RoleName")
        for p in sorted(outdir.glob("*.template.json"))
        for r in json.loads(p.read_text())["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
    }


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


def check(
    manifest: Manifest,
    use: ServiceUse,
    granted: dict[str, list[dict[str, Any]]],
    created: set[str],
    modes: dict[str, ServingMode] | None = None,
) -> tuple[int, list[str]]:
    """(grants checked, problems) of one product for one use: missing where SageMaker makes
    the use in the environment's serving mode; where it does not, a capture grant kept or a
    monitor role created for nothing. `modes` overrides the manifest's serving modes."""
    problems = []
    checked = 0
    for env in ENV_NAMES if use.role != "training" else ("staging",):
        mode = (modes or {}).get(env) or manifest.env_serving(env).mode  # type: ignore[arg-type]
        name = role_of(manifest, use, env)
        capture = f"datacapture/{env}/"
        marker = use.marker.format(product=manifest.product.name, env=env, capture=capture)
        if not applies(use, mode):
            checked += 1
            if use.role == "monitor" and name in created:
                problems.append(f"{name} exists, yet a {mode} environment is not monitored")
            if use.role == "model" and use.marker == "{capture}":
                problems += [
                    f"{name} keeps {action} on {use.resource}, yet a {mode} endpoint "
                    "captures nothing"
                    for action in use.actions
                    if allows(granted.get(name, []), action, marker)
                ]
            continue
        for action in use.actions:
            checked += 1
            if not allows(granted.get(name, []), action, marker):
                problems.append(f"{name} lacks {action} on {use.resource} ({use.doc})")
    return checked, problems


@pytest.mark.parametrize("use", TABLE, ids=lambda u: f"{u.role}:{u.actions[0]}")
def test_every_role_allows_what_services_do_with_it(synth: Synth, use: ServiceUse) -> None:
    granted = roles(synth.outdir)
    created = role_names(synth.outdir)
    problems = []
    checked = 0
    for product in synth.products:
        n, found = check(product.manifest, use, granted, created)
        checked += n
        problems += found
    assert checked
    assert problems == []


def test_the_table_follows_the_serving_mode(synth: Synth) -> None:
    """A check that ignored the mode fails on a serverless environment, and one that ignored
    the grants fails on a role that kept the capture write or a monitor role left behind."""
    manifest = synth.product().manifest
    serverless = dict.fromkeys(ENV_NAMES, ServingMode.SERVERLESS)
    granted = roles(synth.outdir)
    created = role_names(synth.outdir)
    by_role = {(u.role, u.actions[0], u.where): u for u in TABLE}
    capture = by_role[("model", "s3:PutObject", CAPTURED)]
    monitor = by_role[("monitor", "s3:PutObject", MONITORED)]
    # The real product's roles, judged as if serverless: wherever the synthesized env captured
    # traffic, its capture grant and monitor role are there and reported as kept.
    captured = [e for e in ENV_NAMES if captures(manifest.env_serving(e).mode)]
    assert captured
    _, kept = check(manifest, capture, granted, created, serverless)
    assert len(kept) == len(captured), kept
    assert all("captures nothing" in k for k in kept), kept
    _, left = check(manifest, monitor, granted, created, serverless)
    assert len(left) == len(captured), left
    assert all("not monitored" in x for x in left), left
    # And a table row that ignored the mode asks a serverless env for what it cannot have.
    ignoring = ServiceUse(**{**capture.__dict__, "where": ANY})
    judged = 0
    for product in synth.products:
        served = product.manifest
        if any(served.env_serving(e).mode is ServingMode.SERVERLESS for e in ENV_NAMES):
            judged += 1
            _, missing = check(served, ignoring, granted, created)
            assert any("lacks s3:PutObject" in m for m in missing), missing
    assert judged, "no example product serves an environment serverless"


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


def test_a_batch_environment_s_model_role_runs_its_jobs_and_hosts_no_endpoint(synth: Synth) -> None:
    """The batch rows hold where an environment scores in batch, and only there: an endpoint's
    model role judged as a batch one lacks them (the check can fail); a batch model role
    judged as a real-time endpoint's lacks the guardrails' alarms it has no use for."""
    granted = roles(synth.outdir)
    created = role_names(synth.outdir)
    batch_rows = [u for u in TABLE if u.where == BATCH]
    assert {a for u in batch_rows for a in u.actions} >= {
        "s3:GetObject", "s3:ListBucket", "s3:PutObject", "kms:CreateGrant", "logs:PutLogEvents",
    }  # fmt: skip
    scored = [p.manifest for p in synth.products if any(p.manifest.is_batch(e) for e in ENV_NAMES)]
    served = [
        p.manifest for p in synth.products if not any(p.manifest.is_batch(e) for e in ENV_NAMES)
    ]
    assert scored, "an example scores in batch"
    assert served, "an example serves endpoints only"
    as_batch = dict.fromkeys(ENV_NAMES, ServingMode.BATCH)
    as_real_time = dict.fromkeys(ENV_NAMES, ServingMode.REAL_TIME)
    guardrails = next(u for u in TABLE if u.actions == ("cloudwatch:DescribeAlarms",))
    for manifest in scored:
        for use in batch_rows:
            assert check(manifest, use, granted, created) == (len(use.actions) * len(ENV_NAMES), [])
        _, missing = check(manifest, guardrails, granted, created, as_real_time)
        assert any("lacks cloudwatch:DescribeAlarms" in m for m in missing), missing
    for manifest in served:
        missing = [
            m for use in batch_rows for m in check(manifest, use, granted, created, as_batch)[1]
        ]
        for lack in (
            "lacks s3:PutObject on the environment's batch prefix",
            "lacks s3:GetObject on the curated data's bucket and objects",
            "lacks logs:PutLogEvents on the log group SageMaker names for transform jobs",
        ):
            assert any(lack in m for m in missing), (manifest.product.name, lack, missing)
