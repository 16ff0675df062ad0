"""The audit trail: one DynamoDB table, an item per gate event, decisions written once.

Items:
- pk "gate#<pipeline>#<execution>", sk "<ISO time>#<event>": every event of a release (a brief
  requested, a decision, a refusal, a quality-gate verdict, a release), with the gate, who,
  when, the decision and the sha256 of the evidence shown.
- pk "request#<request id>", sk "request": an open approval request: the gate, its approvers,
  the CodePipeline token (never sent to chat; buttons carry only the request id), and, once
  decided, the decision and who made it (conditional write: the first decision wins).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


def digest(evidence: Any) -> str:
    """sha256 of the evidence as shown, in a stable JSON form."""
    return hashlib.sha256(json.dumps(evidence, sort_keys=True, default=str).encode()).hexdigest()


def now_iso(now: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))


@dataclass(frozen=True)
class AuditTrail:
    client: Any
    table: str

    def record(
        self,
        *,
        pipeline: str,
        execution: str,
        event: str,
        gate: str,
        who: str,
        decision: str = "",
        model_version: str = "",
        evidence_sha256: str = "",
        detail: str = "",
        now: float | None = None,
    ) -> dict[str, Any]:
        when = now_iso(now)
        item = {
            "pk": {"S": f"gate#{pipeline}#{execution}"},
            "sk": {"S": f"{when}#{event}#{gate}"},
            "event": {"S": event},
            "gate": {"S": gate},
            "pipeline": {"S": pipeline},
            "execution": {"S": execution},
            "who": {"S": who},
            "when": {"S": when},
            "decision": {"S": decision},
            "model_version": {"S": model_version},
            "evidence_sha256": {"S": evidence_sha256},
            "detail": {"S": detail[:2000]},
        }
        self.client.put_item(TableName=self.table, Item=item)
        return item

    def open_request(self, request_id: str, fields: dict[str, str]) -> bool:
        """Store an approval request once; False when it already exists (a retried brief)."""
        item = {"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}}
        item.update({k: {"S": v} for k, v in fields.items()})
        try:
            self.client.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def request(self, request_id: str) -> dict[str, str] | None:
        got = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}}
        ).get("Item")
        return {k: v["S"] for k, v in got.items() if "S" in v} if got else None

    def decide(self, request_id: str, decision: str, who: str, now: float | None = None) -> bool:
        """Write the decision once; False when the request was already decided."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}},
                UpdateExpression="SET decision = :d, decided_by = :w, decided_at = :t",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(decision)",
                ExpressionAttributeValues={
                    ":d": {"S": decision},
                    ":w": {"S": who},
                    ":t": {"S": now_iso(now)},
                },
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def events(self, pipeline: str, execution: str) -> list[dict[str, str]]:
        items = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"gate#{pipeline}#{execution}"}},
        )["Items"]
        return [{k: v["S"] for k, v in i.items() if "S" in v} for i in items]
