"""The audit trail: one DynamoDB table, an item per gate event, nothing ever overwritten.

Items:
- pk "gate#<pipeline>#<execution>", sk "<ISO time>#<event>#<gate>#<unique id>": every event of
  a release (a brief requested, a decision, a quality-gate verdict, a release), with the gate,
  who, when, the decision and the sha256 of the evidence shown. The unique id (a request id,
  a job id, a model package digest) keeps two events of the same second apart, and the put is
  conditional: an existing item is never replaced.
- pk "request#<request id>", sk "request": an approval request: the gate, its approvers, the
  CodePipeline token (never sent to chat; buttons carry only the request id), and the state of
  its decision, a small state machine written only by conditional updates:
    open      no `decision`;
              A gate that needs every approver (`requires` "all") collects `approved_by`, a
              string set of the approvers who approved, while it is open; the approval that
              completes it claims the decision for all of them.
    claimed   `claim_state` "claimed": `decision`, `decided_by`, `decided_at`, `claimed_user`
              (one chat click won the claim; CodePipeline may or may not have applied it yet);
    recorded  `claim_state` "recorded": `decision` and `decided_by` are what CodePipeline
              applied (Approved, Rejected, or Expired / Abandoned when nothing was decided),
              and its audit event is written.
  open -> claimed (the first click), claimed -> open (given back: CodePipeline refused the
  call outright, so it was not applied), claimed -> recorded (written after the event, never
  before it). An item with a `decision` and no `claim_state` predates the states: recorded.

Each hook's role may write only the key prefixes it uses, and no role may update or delete an
event item (dynamodb:LeadingKeys, mlgate/infra/constructs/hooks.py). Every item carries `expires_at`
(the table's TTL attribute): written + AUDIT_RETENTION_DAYS, the manifest's retention.audit,
set by the delivery stack; without it an item is kept until deleted by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

# The states of a request's decision (module docstring).
OPEN, CLAIMED, RECORDED = "open", "claimed", "recorded"
# What CodePipeline can apply to an approval: a decision, or none (it timed out, or its
# execution was superseded or stopped).
DECISIONS = ("Approved", "Rejected")
UNDECIDED = ("Expired", "Abandoned")
# A side effect tried this often without its result being recorded is not tried again.
MAX_ATTEMPTS = 10
DAY = 86_400


def retention_days() -> int | None:
    """How long an audit item is kept (AUDIT_RETENTION_DAYS), None when the hook has no
    retention set."""
    days = os.environ.get("AUDIT_RETENTION_DAYS", "")
    return int(days) if days.isdigit() and int(days) > 0 else None


def digest(evidence: Any) -> str:
    """sha256 of the evidence as shown, in a stable JSON form."""
    return hashlib.sha256(json.dumps(evidence, sort_keys=True, default=str).encode()).hexdigest()


def now_iso(now: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))


def claim_state(request: dict[str, str]) -> str:
    """open, claimed or recorded (an item decided before the states existed: recorded)."""
    if not request.get("decision"):
        return OPEN
    return CLAIMED if request.get("claim_state") == CLAIMED else RECORDED


@dataclass(frozen=True)
class AuditTrail:
    client: Any
    table: str
    keep_days: int | None = field(default_factory=retention_days, kw_only=True)

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
        item = self._event(pipeline=pipeline, execution=execution, event=event, gate=gate,
                           who=who, key=key, when=when or now_iso(now), decision=decision,
                           model_version=model_version, evidence_sha256=evidence_sha256,
                           detail=detail)  # fmt: skip
        self._put_once(item)
        return item

    def attempt(
        self, *, pipeline: str, execution: str, step: str, gate: str, key: str, when: str,
        detail: str = "",
    ) -> int:  # fmt: skip
        """Record that a side effect without an idempotency token of its own (a chat post, a
        mail) is about to be tried, before trying it: event "<step>-attempt" under keys
        `key`-1, `key`-2, ... Returns this try's number: 1 for the first, more when an earlier
        try may already have had the effect (its result was never recorded)."""
        for number in range(1, MAX_ATTEMPTS + 1):
            item = self._event(pipeline=pipeline, execution=execution,
                               event=f"{step}-attempt", gate=gate, who="mlgate",
                               key=f"{key}-{number}", when=when,
                               detail=f"{step} try {number}: {detail}")  # fmt: skip
            if self._put_once(item):
                return number
        raise RuntimeError(f"{step} of {key} was tried {MAX_ATTEMPTS} times: not trying again")

    @staticmethod
    def _event(
        *, pipeline: str, execution: str, event: str, gate: str, who: str, key: str, when: str,
        decision: str = "", model_version: str = "", evidence_sha256: str = "", detail: str = "",
    ) -> dict[str, Any]:  # fmt: skip
        return {
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

    def open_request(self, request_id: str, fields: dict[str, str]) -> bool:
        """Store an approval request once. True when it is stored now or was stored by an
        earlier try of the same brief (same token: a retry, whose item is kept as it is, since
        a click may have decided it); False when the id is taken by another request."""
        item = {"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}}
        item.update({k: {"S": v} for k, v in fields.items()})
        if self._put_once(item):
            return True
        return (self.request(request_id) or {}).get("token") == fields["token"]

    def append(self, item: dict[str, Any]) -> bool:
        """Write an item of another kind (a served record, a rollback event: shared/served.py,
        mlgate/cli/rollback.py) that must never overwrite one: `_put_once`."""
        return self._put_once(item)

    def _put_once(self, item: dict[str, Any]) -> bool:
        """Write an item that must never overwrite one: True when written now, False when an
        item with its key already exists. It expires (TTL) `keep_days` from now."""
        if self.keep_days is not None:
            expires = int(time.time()) + self.keep_days * DAY
            item = {**item, "expires_at": {"N": str(expires)}}
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
        if not got:
            return None
        # approved_by, a string set (`second`), reads as its members, sorted, comma-joined.
        return {k: v["S"] if "S" in v else ",".join(sorted(v["SS"]))
                for k, v in got.items() if "S" in v or "SS" in v}  # fmt: skip

    def claim(
        self, request_id: str, decision: str, who: str, user: str, now: float | None = None
    ) -> bool:
        """open -> claimed: False when the request is not open (claimed or recorded)."""
        return self._transition(
            request_id,
            "SET decision = :d, decided_by = :w, decided_at = :t, claim_state = :c, "
            "claimed_user = :u",
            "attribute_exists(pk) AND attribute_not_exists(decision)",
            {":d": decision, ":w": who, ":t": now_iso(now), ":c": CLAIMED, ":u": user},
        )

    def second(self, request_id: str, user: str) -> set[str]:
        """One approval toward a gate that needs every approver (`requires: all`): `user` is
        added to the request's `approved_by` set while no decision is claimed. Returns the
        approvers who have approved, this one included; an empty set when a decision was
        claimed first (the gate is no longer open to approvals)."""
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}},
                UpdateExpression="ADD approved_by :u",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(decision)",
                ExpressionAttributeValues={":u": {"SS": [user]}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return set()
            raise
        return set(answer["Attributes"].get("approved_by", {}).get("SS", []))

    def give_back(self, request_id: str, user: str) -> bool:
        """claimed -> open, only if the claim is still this person's: for a call CodePipeline
        refused outright (it was not applied)."""
        return self._transition(
            request_id,
            "REMOVE decision, decided_by, decided_at, claim_state, claimed_user",
            "claim_state = :c AND claimed_user = :u",
            {":c": CLAIMED, ":u": user},
        )

    def settle(self, request_id: str, user: str, decision: str, who: str) -> bool:
        """claimed -> recorded: `decision` and `who` are what CodePipeline applied, which may
        differ from the claim (someone decided in the console first). Call it only once the
        audit event is written. False when the claim is no longer this person's claim (a
        concurrent try of the same claim recorded it)."""
        return self._transition(
            request_id,
            "SET claim_state = :r, decision = :d, decided_by = :w",
            "claim_state = :c AND claimed_user = :u",
            {":r": RECORDED, ":d": decision, ":w": who, ":c": CLAIMED, ":u": user},
        )

    def _transition(
        self, request_id: str, update: str, condition: str, values: dict[str, str]
    ) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues={k: {"S": v} for k, v in values.items()},
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
