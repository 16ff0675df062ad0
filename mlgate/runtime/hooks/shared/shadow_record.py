"""The shadow test's verdict in the audit trail: pk "shadow#<release pipeline>#<env>", sk the
pipeline execution. The deploy verifier writes it when it judges the test (a conditional put:
a retry writes it once); the deployer reads it once it has removed the shadow variant, and
fails the Shadow stage unless the test passed; the gate notifier shows it in the briefs that
follow."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from shared.audit import AuditTrail, now_iso
from shared.shadow import Verdict


@cache
def dynamodb() -> Any:
    import boto3

    return boto3.client("dynamodb")


def key(pipeline: str, env: str, execution: str) -> dict[str, Any]:
    return {"pk": {"S": f"shadow#{pipeline}#{env}"}, "sk": {"S": execution}}


def record_verdict(
    table: str, execution: str, env: str, version: str, verdict: Verdict, client: Any = None
) -> bool:
    """Write the verdict once; False when this execution's verdict was written before."""
    pipeline = os.environ["RELEASE_PIPELINE"]
    item = {
        **key(pipeline, env, execution),
        "event": {"S": "shadow-test"},
        "when": {"S": now_iso()},
        "environment": {"S": env},
        "model_version": {"S": version},
        "passed": {"S": "true" if verdict.passed else "false"},
        "summary": {"S": verdict.summary()[:2000]},
        "evidence": {"S": json.dumps(verdict.evidence, sort_keys=True)[:20000]},
    }
    return AuditTrail(client or dynamodb(), table).append(item)


def read_verdict(table: str, execution: str, env: str, client: Any = None) -> dict[str, str] | None:
    """This execution's verdict in `env` (passed "true"/"false", summary, evidence), or None."""
    if not table:
        return None
    pipeline = os.environ["RELEASE_PIPELINE"]
    item = (
        (client or dynamodb())
        .get_item(TableName=table, Key=key(pipeline, env, execution), ConsistentRead=True)
        .get("Item")
    )
    return {k: v["S"] for k, v in item.items() if "S" in v} if item else None
