"""Gate callback hook: the Approve / Reject buttons of a gate's brief, from chat.

An HTTPS endpoint (Lambda function URL) for Slack's interaction requests. A decision counts
only when: the request carries a valid Slack signature made in the last five minutes (older
is a replay), the approval request exists and is still open, and the person who clicked is an
approver of that very gate. Then it calls CodePipeline's PutApprovalResult with the gate's
token (kept in the audit table, never in chat) and records the decision; the first decision
wins, a second click changes nothing. Every refusal answers why and writes nothing.

Event: Lambda function URL (payload format 2.0), body `payload=<JSON>` form-encoded.
Environment: SLACK_SIGNING_SECRET_ARN, AUDIT_TABLE.
AWS calls: secretsmanager:GetSecretValue, dynamodb:GetItem, dynamodb:UpdateItem,
dynamodb:PutItem, codepipeline:PutApprovalResult.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from shared import slack
from shared.audit import AuditTrail

logger = Logger()
DECISIONS = {"approve": "Approved", "reject": "Rejected"}


class Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Click:
    user: str
    user_name: str
    decision: str
    request_id: str


def raw_body(event: dict[str, Any]) -> str:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return str(body)


def parse_click(body: str) -> Click:
    try:
        payload = json.loads(parse_qs(body, strict_parsing=True)["payload"][0])
        action = payload["actions"][0]
        user = payload["user"]
        return Click(
            user=str(user["id"]),
            user_name=str(user.get("name") or user.get("username") or user["id"]),
            decision=DECISIONS[action["action_id"]],
            request_id=str(action["value"]),
        )
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise Refusal(400, f"not a gate button click: missing or bad {err}") from None


def epoch(text: str) -> float:
    """CodePipeline writes expiry as e.g. 2016-07-07T20:22Z."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def decide(click: Click, audit: AuditTrail, codepipeline: Any, now: float) -> str:
    request = audit.request(click.request_id)
    if request is None:
        raise Refusal(404, f"unknown approval request {click.request_id}: nothing to decide")
    if request.get("decision"):
        raise Refusal(409, f"gate {request['gate']} was already {request['decision'].lower()} "
                           f"by {request['decided_by']}; this click changes nothing")  # fmt: skip
    if click.user not in request["approvers"].split(","):
        names = request["approver_names"]
        raise Refusal(403, f"<@{click.user}> is not an approver of gate {request['gate']} "
                           f"(approvers: {names}); nothing was recorded")  # fmt: skip
    if now > epoch(request["expires"]):
        raise Refusal(410, f"the {request['gate']} approval expired at {request['expires']}; "
                           "CodePipeline no longer accepts a decision")  # fmt: skip
    try:
        codepipeline.put_approval_result(
            pipelineName=request["pipeline"],
            stageName=request["stage"],
            actionName=request["action"],
            result={
                "summary": f"{click.decision} from chat by {click.user_name} ({click.user})",
                "status": click.decision,
            },
            token=request["token"],
        )
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if code in ("InvalidApprovalTokenException", "ApprovalAlreadyCompletedException"):
            raise Refusal(410, f"CodePipeline refused the decision ({code}): the approval is "
                               "no longer open; nothing was recorded") from None  # fmt: skip
        raise
    if not audit.decide(click.request_id, click.decision, f"{click.user_name} ({click.user})", now):
        raise Refusal(409, f"gate {request['gate']} was decided by someone else a moment ago")
    audit.record(
        pipeline=request["pipeline"],
        execution=request["execution"],
        event="decided",
        gate=request["gate"],
        who=f"{click.user_name} ({click.user})",
        decision=click.decision,
        model_version=request.get("model_version", ""),
        evidence_sha256=request.get("evidence_sha256", ""),
        detail=f"decided from chat on request {click.request_id}",
        now=now,
    )
    return f"{click.decision}: gate {request['gate']} by <@{click.user}>, recorded."


def respond(status: int, text: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"response_type": "ephemeral", "replace_original": False, "text": text}),
    }


def handler(event: dict[str, Any], context: Any, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    try:
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        body = raw_body(event)
        secret = boto3.client("secretsmanager").get_secret_value(
            SecretId=os.environ["SLACK_SIGNING_SECRET_ARN"]
        )["SecretString"]
        try:
            slack.verify(secret, headers.get("x-slack-request-timestamp"),
                         headers.get("x-slack-signature"), body, now)  # fmt: skip
        except slack.SignatureError as err:
            raise Refusal(401, str(err)) from None
        click = parse_click(body)
        audit = AuditTrail(boto3.client("dynamodb"), os.environ["AUDIT_TABLE"])
        message = decide(click, audit, boto3.client("codepipeline"), now)
    except Refusal as refusal:
        logger.warning(
            "decision refused", extra={"status": refusal.status, "reason": refusal.reason}
        )
        return respond(refusal.status, refusal.reason)
    logger.info("decision recorded", extra={"outcome": message})
    return respond(200, message)
