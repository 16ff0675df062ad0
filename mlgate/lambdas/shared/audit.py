"""The audit trail: one DynamoDB table, an item per gate event, nothing ever overwritten.

Items:
- pk "gate#<pipeline>#<execution>", sk "<ISO time>#<event>#<gate>#<unique id>": every event of
  a release (a brief requested, a decision, a quality-gate verdict, a release), with the gate,
  who, when, the decision and the sha256 of the evidence shown. The unique id (a request id,
  a job id, a model package digest) keeps two events of the same second apart, and the put is
  conditional: an existing item is never replaced.
- pk "request#<request id>", sk "request": an open approval request: the gate, its approvers,
  the CodePipeline token (never sent to chat; buttons carry only the request id), and, once
  decided, the decision and who made it (a conditional claim: the first decision wins).

Each hook's role may write only the key prefixes it uses (dynamodb:LeadingKeys, delivery stack).
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
        key: str,
        when: str = "",
        decision: str = "",
        model_version: str = "",
        evidence_sha256: str = "",
        detail: str = "",
        now: float | None = None,
    ) -> dict[str, Any]:
        """Write one event; an event already recorded under the same key is left as it is.

        `when` is the event's own time where it has one, so a retry writes the same key."""
        when = when or now_iso(now)
        item = {
            "pk": {"S": f"gate#{pipeline}#{execution}"},
            "sk": {"S": f"{when}#{event}#{gate}#{key}"},
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
        self._put_once(item)
        return item

    def open_request(self, request_id: str, fields: dict[str, str]) -> bool:
        """Store an approval request once. True when it is stored now or was stored by an
        earlier try of the same brief (same token: a retry, whose item is kept as it is, since
        a click may have decided it); False when the id is taken by another request."""
        item = {"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}}
        item.update({k: {"S": v} for k, v in fields.items()})
        if self._put_once(item):
            return True
        return (self.request(request_id) or {}).get("token") == fields["token"]

    def _put_once(self, item: dict[str, Any]) -> bool:
        """Write an item that must never overwrite one: True when written now, False when an
        item with its key already exists."""
        try:
            self.client.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def request(self, request_id: str) -> dict[str, str] | None:
        got = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}}
        ).get("Item")
        return {k: v["S"] for k, v in got.items() if "S" in v} if got else None

    def decide(self, request_id: str, decision: str, who: str, now: float | None = None) -> bool:
        """Claim the decision: written once, False when the request was already decided."""
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

    def undo(self, request_id: str, who: str) -> None:
        """Give back a claim CodePipeline refused, only if it is still this person's."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}},
                UpdateExpression="REMOVE decision, decided_by, decided_at",
                ConditionExpression="decided_by = :w",
                ExpressionAttributeValues={":w": {"S": who}},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def events(self, pipeline: str, execution: str) -> list[dict[str, str]]:
        items = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"gate#{pipeline}#{execution}"}},
        )["Items"]
        return [{k: v["S"] for k, v in i.items() if "S" in v} for i in items]
