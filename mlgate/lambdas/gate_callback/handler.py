"""Gate callback hook: the Approve / Reject buttons of a gate's brief, from chat.

An HTTPS endpoint (Lambda function URL, routed by Powertools' LambdaFunctionUrlResolver) for
Slack's interaction requests. A decision counts only when: the request carries a valid Slack
signature made in the last five minutes (older is a replay), it comes from the Slack workspace
and app this product trusts, the approval request exists and is still open, and the person who
clicked is an approver of that very gate. Every malformed request is answered 400 or 401
before anything is read or written; the signing secret is fetched (and cached) only for a
request that could be valid.

A decision is a small state machine on the request item (shared/audit.py): open -> claimed
(the first click wins, conditionally; a second click is told who holds it) -> recorded. Only a
claimed decision is sent to CodePipeline (PutApprovalResult with the gate's token, kept in the
audit table, never in chat), and CodePipeline, not the claim, says what happened:
- It answers OK: the decision is applied.
- It answers ApprovalAlreadyCompleted or InvalidApprovalToken: the approval is closed, by this
  very claim (an earlier try applied it and its answer was lost: a 500 or a timeout, then
  botocore's retry or the approver's second click), by someone in the console, or by its
  timeout. The callback reads the stage's state (GetPipelineState: the action's latest
  execution, its status, summary and lastUpdatedBy) and records what it shows.
- It refuses the first try outright (a 4xx other than throttling): nothing was applied, the
  claim is given back and the gate is open again.
- Anything else (throttled, 5xx or no answer on every try botocore made): the decision may or
  may not be applied. The claim is kept; its approver's next click of the same button retries
  the call (harmless: an applied decision answers "already completed" and is read back), and
  anyone else is told that a decision by that approver is being applied.
What happened is written as the audit event first (under the request id and the claim's time,
conditionally: a retry writes the same event once), and only then is the item marked recorded;
a click that finds its own claim not yet recorded completes the missing steps. Every answer
says what is true: applied and recorded, applied but not yet recorded (click again), not
confirmed (click again), or not applied. One limit: when another execution's approval is at
the stage by the time the state is read, this one's outcome is not in it; the click is told
so and nothing is recorded (the execution history has it).

An expired gate: CodePipeline reports an approval that timed out and one that was rejected
alike (an Approval action FAILED, "CodePipeline Action Execution State Change", routed here by
EventBridge). The callback tells them apart from the audit trail: it finds the approval
request of that execution and stage (the execution's "requested" events name the request ids)
and, when no decision is recorded on it and its `expires` has passed, publishes one data point
GateExpired (namespace mlgate/gates, dimension Pipeline) that the gate-waiting-too-long alarm
watches. A rejection (a decision recorded, or refused before `expires`) publishes nothing; a
claim CodePipeline never confirmed is no recorded decision. An event of another pipeline, or
one that is malformed, is refused with a reason, never raised.

Events: Lambda function URL (payload format 2.0), body `payload=<JSON>` form-encoded; or the
EventBridge event above (told apart by its `detail-type`).
Environment: SLACK_SIGNING_SECRET_ARN (a JSON secret: signing_secret, team_id, app_id),
AUDIT_TABLE, RELEASE_PIPELINE.
AWS calls: secretsmanager:GetSecretValue, dynamodb:GetItem, dynamodb:UpdateItem,
dynamodb:PutItem, dynamodb:Query, codepipeline:PutApprovalResult,
codepipeline:GetPipelineState, cloudwatch:PutMetricData.
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
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError

from shared import slack
from shared.audit import CLAIMED, DECISIONS, OPEN, AuditTrail, claim_state, now_iso
from shared.settings import read

logger = Logger()
app = LambdaFunctionUrlResolver()
dynamodb = boto3.client("dynamodb")
codepipeline = boto3.client("codepipeline")
cloudwatch = boto3.client("cloudwatch")
BUTTONS = {"approve": "Approved", "reject": "Rejected"}
REQUEST_ID = re.compile(r"[0-9a-f]{24}")
# Slack lets an app regenerate its signing secret: cached for five minutes, not fetched per
# click (https://docs.powertools.aws.dev/lambda/python/latest/utilities/parameters/).
SECRET_MAX_AGE = 300
# The request item's fields the callback relies on; an item without them is no open request.
REQUEST_FIELDS = ("gate", "pipeline", "stage", "action", "token", "expires", "approvers")
# CodePipeline's answers that mean the approval is no longer open: "The approval action has
# already been approved or rejected" / "The approval request already received a response or
# has expired" (https://docs.aws.amazon.com/codepipeline/latest/APIReference/
# API_PutApprovalResult.html#API_PutApprovalResult_Errors).
CLOSED = ("InvalidApprovalTokenException", "ApprovalAlreadyCompletedException")
# Throttling: a 4xx that botocore retries like a 5xx or a timeout (standard mode, three tries:
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html), so an earlier
# try may have been applied: never taken for a refusal.
THROTTLED = ("ThrottlingException", "Throttling", "TooManyRequestsException",
             "RequestLimitExceeded")  # fmt: skip
# GetPipelineState's actionStates[].latestExecution.status of a closed approval
# (https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_ActionExecution.html:
# InProgress | Abandoned | Succeeded | Failed).
STATUS = {"Approved": "Succeeded", "Rejected": "Failed"}
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
            "decision": BUTTONS[action["action_id"]],
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


def verb(decision: str) -> str:
    return {"Approved": "approval", "Rejected": "rejection"}.get(decision, decision.lower())


def button(decision: str) -> str:
    return {"Approved": "Approve", "Rejected": "Reject"}.get(decision, decision)


def summary_of(decision: str, who: str) -> str:
    """The summary the callback sends with a decision: how it recognises its own decision in
    the stage's state when the answer to it was lost."""
    return f"{decision} from chat by {who}"


def code_of(err: Exception) -> str:
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Code") or "an error")
    return type(err).__name__


@dataclass(frozen=True)
class Outcome:
    """What CodePipeline applied to an approval, as the audit trail records it."""

    decision: str  # Approved | Rejected | Expired | Abandoned
    who: str
    ours: bool  # the claim's own call is what CodePipeline applied
    detail: str
    read_back: bool = False  # known from the stage's state, not from the call's answer


def decide(click: Click, audit: AuditTrail, client: Any, now: float) -> str:
    request = open_request(audit, click.request_id)
    gate = request["gate"]
    # Who decided is the approvers' business: anyone else learns nothing about the request.
    if click.user not in request["approvers"].split(","):
        names = request.get("approver_names", "")
        raise Refusal(403, f"<@{click.user}> is not an approver of gate {gate} (approvers: "
                           f"{names}); nothing was recorded")  # fmt: skip
    state = claim_state(request)
    if state == OPEN:
        request = claim(click, audit, request, now)
    else:
        check_claim(click, request, state)
    return apply(click, audit, client, request, now)


def check_claim(click: Click, request: dict[str, str], state: str, race: bool = False) -> None:
    """A click on a request that is not open: a retry of the clicker's own pending claim
    passes; anything else is refused with what is true."""
    gate, decision, by = request["gate"], request["decision"], request.get("decided_by", "")
    if state != CLAIMED:
        if decision not in DECISIONS:
            raise Refusal(410, f"the {gate} approval closed in CodePipeline undecided "
                               f"({decision.lower()}); this click changes nothing")  # fmt: skip
        when = f"{decision.lower()} by {by} a moment ago" if race else (
            f"already {decision.lower()} by {by}")  # fmt: skip
        raise Refusal(409, f"gate {gate} was {when}; this click changes nothing")
    if request.get("claimed_user") != click.user:
        raise Refusal(409, f"a decision on gate {gate} by {by} ({verb(decision)}) is being "
                           "applied to CodePipeline; this click changes nothing (if it does "
                           f"not complete, {by} can click {button(decision)} again, or anyone "
                           "can decide in the CodePipeline console)")  # fmt: skip
    if decision != click.decision:
        raise Refusal(409, f"your {verb(decision)} of gate {gate} is not confirmed by "
                           f"CodePipeline yet: click {button(decision)} again to finish it; "
                           "this click changes nothing")  # fmt: skip


def claim(click: Click, audit: AuditTrail, request: dict[str, str], now: float) -> dict[str, str]:
    """open -> claimed, for an open approval that has not expired; the claimed request."""
    gate = request["gate"]
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
    try:
        won = audit.claim(click.request_id, click.decision, who, click.user, now)
    except (ClientError, BotoCoreError) as err:
        raise Refusal(503, f"the decision could not be claimed ({code_of(err)}): nothing was "
                           f"sent to CodePipeline; click {button(click.decision)} again in a "
                           "moment") from None  # fmt: skip
    if won:
        return {**request, "decision": click.decision, "decided_by": who,
                "decided_at": now_iso(now), "claim_state": CLAIMED,
                "claimed_user": click.user}  # fmt: skip
    # Another click won; or this one did and the answer to its write was lost (botocore's
    # retry of the conditional write then fails its condition): then it is this claim.
    claimed = audit.request(click.request_id) or {}
    if not claimed.get("decision"):
        raise Refusal(409, f"gate {gate} changed while this click was taken; click again")
    check_claim(click, claimed, claim_state(claimed), race=True)
    return claimed


def apply(click: Click, audit: AuditTrail, client: Any, request: dict[str, str], now: float) -> str:
    """Sends the claimed decision to CodePipeline, then records what CodePipeline applied."""
    gate, decision, who = request["gate"], request["decision"], request["decided_by"]
    try:
        client.put_approval_result(
            pipelineName=request["pipeline"],
            stageName=request["stage"],
            actionName=request["action"],
            result={"summary": summary_of(decision, who), "status": decision},
            token=request["token"],
        )
        outcome = Outcome(decision, who, ours=True,
                          detail=f"decided from chat on request {click.request_id}")  # fmt: skip
    except ClientError as err:
        code = code_of(err)
        if code in CLOSED:
            outcome = closed(client, request, code, now)
        elif refused_outright(err):
            message = str(err.response.get("Error", {}).get("Message", ""))[:200]
            try:
                audit.give_back(click.request_id, click.user)
                still = "the gate is open"
            except (ClientError, BotoCoreError):
                still = f"click {button(decision)} again to release your claim on the gate"
            raise Refusal(502, f"CodePipeline refused the {verb(decision)} of gate {gate} "
                               f"({code}: {message}): it was not applied and nothing was "
                               f"recorded; {still}") from None  # fmt: skip
        else:
            raise unconfirmed(request, err) from None
    except BotoCoreError as err:
        raise unconfirmed(request, err) from None
    return record(click, audit, request, outcome)


def refused_outright(err: ClientError) -> bool:
    """CodePipeline answered the first and only try with a refusal: nothing was applied. After
    retries (a 5xx, a timeout first) an earlier try may have been."""
    meta = err.response.get("ResponseMetadata", {})
    status = int(meta.get("HTTPStatusCode") or 0)
    return (
        400 <= status < 500
        and not meta.get("RetryAttempts")
        and code_of(err) not in (*THROTTLED, *CLOSED)
    )


def unconfirmed(request: dict[str, str], err: Exception) -> Refusal:
    decision, gate = request["decision"], request["gate"]
    return Refusal(503, f"CodePipeline did not confirm your {verb(decision)} of gate {gate} "
                        f"({code_of(err)}): it may or may not have been applied. It is kept "
                        f"for you: click {button(decision)} again to finish it (nobody else "
                        "can decide from chat meanwhile)")  # fmt: skip


def closed(client: Any, request: dict[str, str], code: str, now: float) -> Outcome:
    """What CodePipeline applied to an approval it reports closed, from the stage's state:
    stageStates[].latestExecution.pipelineExecutionId and actionStates[].latestExecution
    {status, summary, lastUpdatedBy, lastStatusChange, token}
    (https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_GetPipelineState.html,
    API_ActionExecution.html)."""
    gate, decision, who = request["gate"], request["decision"], request["decided_by"]
    try:
        state = client.get_pipeline_state(name=request["pipeline"])
    except (ClientError, BotoCoreError) as err:
        raise Refusal(503, f"CodePipeline reports the {gate} approval closed ({code}), but "
                           f"its state could not be read ({code_of(err)}); nothing was "
                           f"recorded yet: click {button(decision)} again in a moment"
                      ) from None  # fmt: skip
    stages = state.get("stageStates") or []
    stage: dict[str, Any] = next((s for s in stages if s.get("stageName") == request["stage"]), {})
    actions = stage.get("actionStates") or []
    action: dict[str, Any] = next(
        (a for a in actions if a.get("actionName") == request["action"]), {}
    )
    latest = action.get("latestExecution") or {}
    execution = (stage.get("latestExecution") or {}).get("pipelineExecutionId", "")
    ours = request.get("execution", "unknown")
    token = latest.get("token")
    if (ours != "unknown" and execution != ours) or (token and token != request["token"]):
        # Another execution's approval is at the stage now: this one's outcome is not there.
        raise Refusal(409, f"CodePipeline reports the {gate} approval closed ({code}) and its "
                           f"stage now shows execution {execution[:60] or 'none'}, not {ours}: "
                           "what was decided cannot be read from it; nothing was recorded "
                           "(see the pipeline's execution history)")  # fmt: skip
    status, summary = latest.get("status", ""), str(latest.get("summary") or "")
    changed = latest.get("lastStatusChange")
    at = changed.timestamp() if isinstance(changed, datetime) else now
    by = str(latest.get("lastUpdatedBy") or "")
    said = f"CodePipeline answered {code}; its state shows {status or 'no status'}"
    said += (
        f" at {now_iso(at)}" + (f" by {by}" if by else "") + (f": {summary!r}" if summary else "")
    )
    if status == STATUS[decision] and summary == summary_of(decision, who):
        # This claim's own call was applied, and the answer to it was lost.
        return Outcome(decision, who, True, f"{said} (this claim's own call)", read_back=True)
    if status == "Succeeded":
        return Outcome("Approved", by or "someone outside chat", ours=False, detail=said)
    if status == "Failed":
        # CodePipeline fails an approval that was rejected and one that timed out alike; as
        # for the FAILED event below, the expiry tells them apart.
        try:
            expired = at + EXPIRY_SLACK >= epoch(request["expires"])
        except (ValueError, OverflowError):
            expired = False
        if expired and not by:
            return Outcome("Expired", "CodePipeline (timeout)", ours=False, detail=said)
        return Outcome("Rejected", by or "someone outside chat", ours=False, detail=said)
    if status == "Abandoned":
        return Outcome("Abandoned", "CodePipeline", ours=False, detail=said)
    raise Refusal(503, f"{said}: not a closed approval; nothing was recorded yet, click "
                       f"{button(decision)} again in a moment")  # fmt: skip


def record(click: Click, audit: AuditTrail, request: dict[str, str], outcome: Outcome) -> str:
    """The audit event of what CodePipeline applied, then claimed -> recorded; the answer."""
    gate = request["gate"]
    decided = outcome.decision.lower()
    if outcome.ours:
        fact = f"CodePipeline has {decided} gate {gate} (your {verb(outcome.decision)})"
    elif outcome.decision in DECISIONS:
        fact = f"gate {gate} was already {decided} in CodePipeline by {outcome.who}"
    else:
        fact = f"the {gate} approval closed in CodePipeline undecided ({decided})"
    again = f"click {button(request['decision'])} again"
    try:
        audit.record(
            pipeline=request["pipeline"],
            execution=request.get("execution", "unknown"),
            event="decided" if outcome.decision in DECISIONS else "closed",
            gate=gate,
            key=click.request_id,
            # The claim's time, the same on every try of this claim: one event, written once.
            when=request["decided_at"],
            who=outcome.who,
            decision=outcome.decision,
            model_version=request.get("model_version", ""),
            evidence_sha256=request.get("evidence_sha256", ""),
            detail=outcome.detail,
        )
    except (ClientError, BotoCoreError) as err:
        logger.exception("decision event not written", extra={"request": click.request_id})
        raise Refusal(503, f"{fact}, but writing it to the audit trail did not complete "
                           f"({code_of(err)}): {again} to record it") from None  # fmt: skip
    try:
        audit.settle(click.request_id, request["claimed_user"], outcome.decision, outcome.who)
    except (ClientError, BotoCoreError) as err:
        logger.exception("request not marked recorded", extra={"request": click.request_id})
        raise Refusal(503, f"{fact}, and its audit event is written; marking the request "
                           f"recorded did not complete ({code_of(err)}): {again} to finish"
                      ) from None  # fmt: skip
    if outcome.ours:
        how = " (read back from CodePipeline, which had applied it already)"
        return f"{outcome.decision}: gate {gate} by <@{click.user}>, recorded" + (
            f"{how}." if outcome.read_back else "."
        )
    status = 409 if outcome.decision in DECISIONS else 410
    raise Refusal(status, f"{fact}; recorded. Your {verb(click.decision)} was not applied.")


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


def unavailable(err: Exception) -> Response[str]:
    """An AWS call the steps above do not answer for failed: the signing secret, the request,
    a claim just lost; each is made before anything is sent to CodePipeline."""
    logger.exception("AWS call failed", extra={"error": code_of(err)})
    return respond(503, f"AWS did not answer ({code_of(err)}) while this click was checked: "
                        "nothing was sent to CodePipeline; click again in a moment")  # fmt: skip


app.exception_handler([ClientError, BotoCoreError, GetParameterError])(unavailable)


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
    # Only a decision CodePipeline applied counts: a claim whose call was never confirmed
    # is no decision, and neither is an approval recorded as expired.
    if claim_state(request) != CLAIMED and request.get("decision") in DECISIONS:
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
