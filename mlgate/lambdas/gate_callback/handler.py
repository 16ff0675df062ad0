"""Gate callback hook: the Approve / Reject buttons of a gate's brief, from chat.

An HTTPS endpoint (Lambda function URL, routed by Powertools' LambdaFunctionUrlResolver) for
Slack's interaction requests. A decision counts only when: the request carries a valid Slack
signature made in the last five minutes (older is a replay), it comes from the Slack workspace
and app this product trusts, the approval request exists and is still open, and the person who
clicked is an approver of that very gate. Every malformed request is answered 400 or 401
before anything is read or written; the signing secret is fetched (and cached) only for a
request that could be valid.

The decision is claimed first, conditionally on the request item (the first click wins, a
second one is told who decided); then CodePipeline's PutApprovalResult is called with the
gate's token (kept in the audit table, never in chat). Only when CodePipeline refuses is the
claim given back. The decision event is added to the audit trail under a key of its own.

An expired gate: CodePipeline reports an approval that timed out and one that was rejected
alike (an Approval action FAILED, "CodePipeline Action Execution State Change", routed here by
EventBridge). The callback tells them apart from the audit trail: it finds the approval
request of that execution and stage (the execution's "requested" events name the request ids)
and, when no decision is recorded on it and its `expires` has passed, publishes one data point
GateExpired (namespace mlgate/gates, dimension Pipeline) that the gate-waiting-too-long alarm
watches. A rejection (a decision recorded, or refused before `expires`) publishes nothing; an
event of another pipeline, or one that is malformed, is refused with a reason, never raised.

Events: Lambda function URL (payload format 2.0), body `payload=<JSON>` form-encoded; or the
EventBridge event above (told apart by its `detail-type`).
Environment: SLACK_SIGNING_SECRET_ARN (a JSON secret: signing_secret, team_id, app_id),
AUDIT_TABLE, RELEASE_PIPELINE.
AWS calls: secretsmanager:GetSecretValue, dynamodb:GetItem, dynamodb:UpdateItem,
dynamodb:PutItem, dynamodb:Query, codepipeline:PutApprovalResult, cloudwatch:PutMetricData.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import parse_qs

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError

from shared import slack
from shared.audit import AuditTrail, now_iso
from shared.settings import read

logger = Logger()
app = LambdaFunctionUrlResolver()
dynamodb = boto3.client("dynamodb")
codepipeline = boto3.client("codepipeline")
cloudwatch = boto3.client("cloudwatch")
DECISIONS = {"approve": "Approved", "reject": "Rejected"}
REQUEST_ID = re.compile(r"[0-9a-f]{24}")
# Slack lets an app regenerate its signing secret: cached for five minutes, not fetched per
# click (https://docs.powertools.aws.dev/lambda/python/latest/utilities/parameters/).
SECRET_MAX_AGE = 300
# The request item's fields the callback relies on; an item without them is no open request.
REQUEST_FIELDS = ("gate", "pipeline", "stage", "action", "token", "expires", "approvers")
# CodePipeline's answers that mean the approval is no longer open.
CLOSED = ("InvalidApprovalTokenException", "ApprovalAlreadyCompletedException")
ACTION_EVENT = "CodePipeline Action Execution State Change"
NAMESPACE = "mlgate/gates"
# CodePipeline writes `expires` to the minute; the FAILED event of a timed-out approval may
# arrive within that minute.
EXPIRY_SLACK = 60


@dataclass(frozen=True)
class Settings:
    secret_arn: str
    table: str
    pipeline: str


@cache
def settings() -> Settings:
    env = read("gate_callback", ("SLACK_SIGNING_SECRET_ARN", "AUDIT_TABLE", "RELEASE_PIPELINE"))
    return Settings(
        secret_arn=env["SLACK_SIGNING_SECRET_ARN"],
        table=env["AUDIT_TABLE"],
        pipeline=env["RELEASE_PIPELINE"],
    )


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
    team: str = ""
    app: str = ""


def raw_body(body: Any, encoded: Any) -> str:
    """The body as Slack signed it; a body that does not decode is refused (400)."""
    if body is None:
        return ""
    try:
        if not isinstance(body, str):
            raise TypeError("the body is not text")
        if encoded:
            return base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, TypeError) as err:
        raise Refusal(400, f"the request body does not decode: {err}") from None
    return body


def parse_click(body: str) -> Click:
    try:
        payload = json.loads(parse_qs(body, strict_parsing=True)["payload"][0])
        action = payload["actions"][0]
        user = payload["user"]
        team = payload.get("team") or {}
        values = {
            "user": user["id"],
            "user_name": user.get("name") or user.get("username") or user["id"],
            "decision": DECISIONS[action["action_id"]],
            "request_id": action["value"],
            "team": team.get("id", "") if isinstance(team, dict) else team,
            "app": payload.get("api_app_id") or "",
        }
        if not all(isinstance(v, str) for v in values.values()):
            raise TypeError("a field that should be text is not")
        return Click(**values)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        raise Refusal(400, f"not a gate button click: missing or bad {err}") from None


def epoch(text: str) -> float:
    """CodePipeline writes expiry as e.g. 2016-07-07T20:22Z."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def open_request(audit: AuditTrail, request_id: str) -> dict[str, str]:
    request = audit.request(request_id)
    if request is None or any(not request.get(f) for f in REQUEST_FIELDS):
        raise Refusal(404, f"unknown approval request {request_id}: nothing to decide")
    return request


def decide(click: Click, audit: AuditTrail, client: Any, now: float) -> str:
    request = open_request(audit, click.request_id)
    gate = request["gate"]
    # Who decided is the approvers' business: anyone else learns nothing about the request.
    if click.user not in request["approvers"].split(","):
        names = request.get("approver_names", "")
        raise Refusal(403, f"<@{click.user}> is not an approver of gate {gate} (approvers: "
                           f"{names}); nothing was recorded")  # fmt: skip
    if request.get("decision"):
        decided, by = request["decision"].lower(), request.get("decided_by")
        raise Refusal(409, f"gate {gate} was already {decided} by {by}; this click changes "
                           "nothing")  # fmt: skip
    try:
        expires = epoch(request["expires"])
    except (ValueError, OverflowError):
        stored = request["expires"][:40]
        raise Refusal(409, f"the {gate} approval's stored expiry {stored!r} is unreadable; "
                           "decide in the CodePipeline console") from None  # fmt: skip
    if now > expires:
        raise Refusal(410, f"the {gate} approval expired at {request['expires']}; "
                           "CodePipeline no longer accepts a decision")  # fmt: skip
    who = f"{click.user_name} ({click.user})"
    if not audit.decide(click.request_id, click.decision, who, now):
        winner = audit.request(click.request_id) or {}
        raise Refusal(409, f"gate {gate} was {winner.get('decision', 'decided').lower()} by "
                           f"{winner.get('decided_by', 'someone else')} a moment ago; this "
                           "click changes nothing")  # fmt: skip
    try:
        client.put_approval_result(
            pipelineName=request["pipeline"],
            stageName=request["stage"],
            actionName=request["action"],
            result={"summary": f"{click.decision} from chat by {who}", "status": click.decision},
            token=request["token"],
        )
    except ClientError as err:
        # CodePipeline answered no: the decision did not happen, so the claim goes back. A
        # call that got no answer (a timeout) keeps the claim: it may have been applied.
        audit.undo(click.request_id, who)
        code = err.response["Error"]["Code"]
        if code in CLOSED:
            raise Refusal(410, f"CodePipeline refused the decision ({code}): the approval is "
                               "no longer open; nothing was recorded") from None  # fmt: skip
        raise Refusal(503, f"CodePipeline did not take the decision ({code}); nothing was "
                           "recorded, click again in a moment") from None  # fmt: skip
    try:
        audit.record(
            pipeline=request["pipeline"],
            execution=request.get("execution", "unknown"),
            event="decided",
            gate=gate,
            key=click.request_id,
            when=now_iso(now),
            who=who,
            decision=click.decision,
            model_version=request.get("model_version", ""),
            evidence_sha256=request.get("evidence_sha256", ""),
            detail=f"decided from chat on request {click.request_id}",
        )
    except ClientError:
        # The decision is already on the request item (the claim); only the event copy is
        # missing, and the pipeline has moved on: say so, do not fail the approver's click.
        logger.exception("decision event not written", extra={"request": click.request_id})
    return f"{click.decision}: gate {gate} by <@{click.user}>, recorded."


def respond(status: int, text: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps({"response_type": "ephemeral", "replace_original": False, "text": text}),
    )


def header(name: str) -> str | None:
    value = app.current_event.headers.get(name)
    return value if isinstance(value, str) else None


def signing_secret() -> dict[str, str]:
    secret = parameters.get_secret(settings().secret_arn, transform="json", max_age=SECRET_MAX_AGE)
    if not isinstance(secret, dict) or not isinstance(secret.get("signing_secret"), str):
        raise ValueError("the signing secret must be JSON with signing_secret, team_id, app_id")
    return {k: str(v) for k, v in secret.items()}


def take(now: float) -> str:
    event = app.current_event
    timestamp, signature = header("x-slack-request-timestamp"), header("x-slack-signature")
    try:
        slack.check_fresh(timestamp, signature, now)
    except slack.SignatureError as err:
        raise Refusal(401, str(err)) from None
    body = raw_body(event.get("body"), event.get("isBase64Encoded"))
    trusted = signing_secret()
    try:
        slack.verify(trusted["signing_secret"], timestamp, signature, body, now)
    except slack.SignatureError as err:
        raise Refusal(401, str(err)) from None
    click = parse_click(body)
    if (click.team, click.app) != (trusted.get("team_id"), trusted.get("app_id")):
        raise Refusal(403, f"the click comes from Slack workspace {click.team[:20]!r}, app "
                           f"{click.app[:20]!r}: not the app this gate trusts")  # fmt: skip
    if not REQUEST_ID.fullmatch(click.request_id):
        raise Refusal(400, f"{click.request_id[:40]!r} is not a request id")
    return decide(click, AuditTrail(dynamodb, settings().table), codepipeline, now)


def refused(refusal: Refusal) -> Response[str]:
    logger.warning("decision refused", extra={"status": refusal.status, "reason": refusal.reason})
    return respond(refusal.status, refusal.reason)


app.exception_handler(Refusal)(refused)


@app.post("/")
def click() -> Response[str]:
    now = app.context.get("now") or time.time()
    message = take(float(now))
    logger.info("decision recorded", extra={"outcome": message})
    return respond(200, message)


def failed_approval(event: dict[str, Any]) -> tuple[str, str, str]:
    """(pipeline, execution, stage) of a FAILED Approval action event; Refusal otherwise."""
    try:
        detail = event["detail"]
        fields = (detail["pipeline"], detail["execution-id"], detail["stage"])
        category, state = detail["type"]["category"], detail["state"]
        if not all(isinstance(f, str) and f for f in fields):
            raise TypeError("pipeline, execution-id and stage must be text")
    except (KeyError, TypeError) as err:
        raise Refusal(400, f"not a CodePipeline action event: missing or bad {err}") from None
    if (category, state) != ("Approval", "FAILED"):
        raise Refusal(400, f"a {str(category)[:20]} action {str(state)[:20]}: not a failed "
                           "approval")  # fmt: skip
    return fields


def approval_request(audit: AuditTrail, pipeline: str, execution: str, stage: str) -> Any:
    """The latest approval request of this execution and stage (None when none was stored)."""
    requested = [e for e in audit.events(pipeline, execution) if e.get("event") == "requested"]
    for item in sorted(requested, key=lambda e: e.get("sk", ""), reverse=True):
        request_id = item.get("sk", "").rsplit("#", 1)[-1]
        request = audit.request(request_id) if REQUEST_ID.fullmatch(request_id) else None
        if request is not None and request.get("stage") == stage:
            return request
    return None


def expiry(event: dict[str, Any], audit: AuditTrail, metrics: Any, now: float) -> dict[str, str]:
    """Publishes GateExpired once when the failed approval expired undecided."""
    pipeline, execution, stage = failed_approval(event)
    expected = settings().pipeline
    if pipeline != expected:
        raise Refusal(403, f"the event is of pipeline {pipeline[:100]!r}, not of this product's "
                           f"release pipeline {expected!r}; nothing was published")  # fmt: skip
    request = approval_request(audit, pipeline, execution, stage)
    where = f"gate {stage} of execution {execution[:60]}"
    if request is None:
        return {"expired": "unknown", "reason": f"no approval request stored for {where}: "
                "expiry cannot be told from a rejection; nothing was published"}  # fmt: skip
    if request.get("decision"):
        return {"expired": "false", "reason": f"{where} was {request['decision'].lower()} by "
                f"{request.get('decided_by', 'someone')}; nothing was published"}  # fmt: skip
    try:
        expires = epoch(request.get("expires", ""))
    except (ValueError, OverflowError):
        raise Refusal(409, f"the stored expiry {request.get('expires', '')[:40]!r} of {where} is "
                           "unreadable; nothing was published") from None  # fmt: skip
    if now + EXPIRY_SLACK < expires:
        return {"expired": "false", "reason": f"{where} failed before it expired at "
                f"{request['expires']} (a rejection); nothing was published"}  # fmt: skip
    metrics.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": "GateExpired",
                "Dimensions": [{"Name": "Pipeline", "Value": pipeline}],
                "Value": 1.0,
                "Unit": "Count",
            }
        ],
    )
    return {"expired": "true", "reason": f"{where} expired at {request['expires']} undecided"}


def handler(event: dict[str, Any], context: Any, now: float | None = None) -> dict[str, Any]:
    if isinstance(event, dict) and "detail-type" in event and "requestContext" not in event:
        if event["detail-type"] != ACTION_EVENT:
            outcome = {"expired": "refused", "reason": f"unexpected event "
                       f"{str(event['detail-type'])[:60]!r}"}  # fmt: skip
        else:
            try:
                audit = AuditTrail(dynamodb, settings().table)
                outcome = expiry(event, audit, cloudwatch, now or time.time())
            except Refusal as refusal:
                outcome = {"expired": "refused", "reason": refusal.reason}
        logger.info("failed approval", extra=outcome)
        return outcome
    app.context.update(now=now)
    return app.resolve(event, context)
