"""Gate callback hook: the Approve / Reject buttons of a gate's brief, from chat.

An HTTPS endpoint (a Lambda function URL: POST / only, routed here) for Slack's interaction
requests. A decision counts only when: the request carries a valid Slack signature made in the
last five minutes (older is a replay), it comes from the Slack workspace and app this product
trusts, the approval request exists and is still open, and the person who clicked is an
approver of that very gate. Every malformed request is answered 400 or 401 before anything is
read or written; the signing secret is fetched (and cached for five minutes) only for a
request that could be valid.

The URL is public (Slack cannot sign AWS requests), so its answers say nothing to whoever is
not an approver of the gate: a request refused before the clicker is known as one (malformed,
unsigned, stale, another workspace, an unknown request, not an approver, AWS not answering the
checks) gets its status and one fixed sentence per status (PUBLIC), never the gate, its
approvers or an AWS error. The one log line of each refusal has what an operator needs: the
status, the field, the reason, the clicker's Slack ids (and whether the signature was
verified), the request and its gate, the caller's address. An approver of the gate is told
what is true about the decision (below).

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
watches. The data point is Powertools Metrics' embedded metric format in the function's log
(a dimension set of Pipeline alone, the alarm's), not an API call. A rejection (a decision
recorded, or refused before `expires`) publishes nothing; a claim CodePipeline never confirmed
is no recorded decision.

Every input is checked whole before any AWS call, without pydantic (shared/fields.py): the
function URL request (the fields of Powertools' LambdaFunctionUrlModel), the click in its body
(shared/slack.py) and the EventBridge event (shared/events.py). The EventBridge event must also
come from where the GateExpired rule delivers from: source aws.codepipeline, this function's
account and region, this product's release pipeline. A request that is not a click is answered
400 (401 unsigned or stale, 403 another workspace or app), and one log line names the field; an
event that is malformed or untrusted is answered "refused", naming the field, and logged once:
no retry changes either.

Events: Lambda function URL (payload format 2.0), body `payload=<JSON>` form-encoded; or the
EventBridge event above (told apart by its `detail-type`).
Environment: SLACK_SIGNING_SECRET_ARN (a JSON secret: signing_secret, team_id, app_id),
AUDIT_TABLE, RELEASE_PIPELINE, POWERTOOLS_METRICS_NAMESPACE (the alarm's, mlgate/gates).
AWS calls: secretsmanager:GetSecretValue, dynamodb:GetItem, dynamodb:UpdateItem,
dynamodb:PutItem, dynamodb:Query, codepipeline:PutApprovalResult,
codepipeline:GetPipelineState, states:StartExecution (a Roll back click).
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

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from shared import slack
from shared.audit import CLAIMED, DECISIONS, OPEN, AuditTrail, claim_state, now_iso
from shared.coldstart import settle
from shared.events import (
    ACTION_EVENT_SPEC,
    NAME,
    SHORT,
    TEXT,
    Origin,
    Refused,
    excerpt,
    expect,
    from_here,
    read_as,
    resources_within,
    text,
)
from shared.fields import Bool, Dict, Lit, Map, Moment, Obj, Opt, Seq, Str
from shared.rollback import read_offer
from shared.settings import read

logger = Logger()
# Namespace from POWERTOOLS_METRICS_NAMESPACE, set by the construct to the alarm's.
metrics = Metrics()
dynamodb = boto3.client("dynamodb")
codepipeline = boto3.client("codepipeline")
BUTTONS = {"approve": "Approved", "reject": "Rejected", "rollback": "RollBack"}
# The Roll back button of the message that says an environment serves a new version
# (hooks/rollback): its value is the rollback offer's id, of the same form as a request id.
ROLLBACK = "RollBack"
# A second click of the same button by the same approver within this many seconds starts
# nothing new: the state machine execution's name repeats, and Step Functions answers the
# running one (StartExecution is idempotent for a name and input,
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
REPEAT_SECONDS = 300
REQUEST_ID = re.compile(r"[0-9a-f]{24}")
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
# CodePipeline writes `expires` to the minute; the FAILED event of a timed-out approval may
# arrive within that minute.
EXPIRY_SLACK = 60


@dataclass(frozen=True)
class Settings:
    secret_arn: str
    table: str
    pipeline: str
    rollback_machine: str = ""


@cache
def settings() -> Settings:
    env = read(
        "gate_callback",
        ("SLACK_SIGNING_SECRET_ARN", "AUDIT_TABLE", "RELEASE_PIPELINE"),
        {"ROLLBACK_STATE_MACHINE": ""},
    )
    return Settings(
        rollback_machine=env["ROLLBACK_STATE_MACHINE"],
        secret_arn=env["SLACK_SIGNING_SECRET_ARN"],
        table=env["AUDIT_TABLE"],
        pipeline=env["RELEASE_PIPELINE"],
    )


# What a refusal about the clicked request (its state, its decision) names.
REQUEST = "payload.actions[0].value"
# The answer to a request refused before its clicker is known as an approver of the gate: one
# sentence per status, the same for every such request (module docstring). The reason is in
# the log line only.
PUBLIC = {
    400: "Not a gate button click: nothing was recorded.",
    401: "This request could not be verified as a Slack click: nothing was recorded.",
    403: "You cannot decide this gate: nothing was recorded.",
    404: "Nothing to decide here: nothing was recorded.",
    503: "The click could not be checked just now: nothing was sent to CodePipeline; click "
    "again in a moment.",
}
REFUSED = "This click was refused: nothing was recorded."


class Refusal(Refused):
    """A click or event refused: `status` is the HTTP answer, `field` what it names (by
    default the request the click is for). `told`: the clicker is a verified approver of the
    gate, who is answered `reason`; anyone else gets PUBLIC's sentence."""

    def __init__(self, status: int, reason: str, field: str = REQUEST) -> None:
        super().__init__(field, reason)
        self.status = status
        self.told = False

    @property
    def answer(self) -> str:
        return self.reason if self.told else PUBLIC.get(self.status, REFUSED)


@dataclass
class Seen:
    """What the log line of a request says about it, filled in as the checks pass."""

    source_ip: str = ""
    user_agent: str = ""
    user: str = ""
    team: str = ""
    app: str = ""
    request: str = ""
    gate: str = ""
    verified: bool = False

    def fields(self) -> dict[str, Any]:
        found = {k: v for k, v in vars(self).items() if v and k != "verified"}
        return {**found, "signature_verified": self.verified}


@dataclass(frozen=True)
class Click:
    user: str
    user_name: str
    decision: str
    request_id: str
    team: str = ""
    app: str = ""


# The function URL request as Powertools' LambdaFunctionUrlModel types it (payload format 2.0,
# https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads), its fields
# in that model's order, the callback's fields narrowed as above; checked without pydantic
# (shared/fields.py). Lambda writes the caller's address, which the callback does not use.
HTTP = Obj(
    "Http",
    {
        "method": Lit(("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")),
        "path": TEXT,
        "protocol": SHORT,
        "sourceIp": text(64),
        "userAgent": TEXT,
    },
)
STRINGS = Dict(Str())
COGNITO = Obj(
    "RequestContextV2AuthorizerIamCognito",
    {"amr": Seq(Str(), max_length=1 << 30), "identityId": Str(), "identityPoolId": Str()},
)
IAM_FIELDS = ("accessKey", "accountId", "callerId", "principalOrgId", "userArn", "userId")
IAM = Obj(
    "RequestContextV2AuthorizerIam",
    {
        **{k: Opt(Str()) for k in IAM_FIELDS},
        "cognitoIdentity": Opt(COGNITO),
    },
)
JWT = Obj(
    "RequestContextV2AuthorizerJwt",
    {"claims": Map(max_length=1 << 30), "scopes": Opt(Seq(Str(), max_length=1 << 30))},
)
AUTHORIZER = Obj(
    "RequestContextV2Authorizer",
    {"jwt": Opt(JWT), "iam": Opt(IAM), "lambda_value": Opt(Map(max_length=1 << 30))},
    aliases={"lambda_value": "lambda"},
)
URL_REQUEST_CONTEXT = Obj(
    "UrlRequestContext",
    {
        "accountId": SHORT,
        "apiId": SHORT,
        "authorizer": Opt(AUTHORIZER),
        "domainName": NAME,
        "domainPrefix": SHORT,
        "requestId": NAME,
        "routeKey": SHORT,
        "stage": SHORT,
        "time": SHORT,
        "timeEpoch": Moment(),
        "http": HTTP,
    },
)
URL_REQUEST = Obj(
    "UrlRequest",
    {
        "version": SHORT,
        "routeKey": SHORT,
        "rawPath": TEXT,
        "rawQueryString": Str(),
        "cookies": Opt(Seq(Str(), max_length=1 << 30)),
        "headers": STRINGS,
        "queryStringParameters": Opt(STRINGS),
        "pathParameters": Opt(STRINGS),
        "stageVariables": Opt(STRINGS),
        "requestContext": URL_REQUEST_CONTEXT,
        "body": Opt(Str()),
        "isBase64Encoded": Opt(Bool()),
    },
)


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
        raise Refusal(400, f"body: does not decode ({err})", "body") from None
    return body


def parse_click(body: str) -> Click:
    """The click in a request's body (shared/slack.py); 400 naming the field otherwise."""
    try:
        if not isinstance(body, str):
            raise Refused("body", "body: not text")
        found = slack.interaction(body)
    except Refused as err:
        raise Refusal(400, f"not a gate button click: {err.reason}", err.field) from None
    action, user = found.actions[0], found.user
    return Click(
        user=user.id,
        user_name=user.name or user.username or user.id,
        decision=BUTTONS[action.action_id],
        request_id=action.value,
        team=found.team.id if found.team else "",
        app=found.api_app_id or "",
    )


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


def decide(
    click: Click, audit: AuditTrail, client: Any, now: float, seen: Seen | None = None
) -> str:
    request = open_request(audit, click.request_id)
    gate = request["gate"]
    if seen is not None:
        seen.gate = gate
    # Who decided, and who may, is the approvers' business: anyone else learns nothing about
    # the request (the answer is PUBLIC's; the log line has the reason).
    if click.user not in request["approvers"].split(","):
        raise Refusal(403, f"{click.user} is not an approver of gate {gate}; nothing was "
                           "recorded", "payload.user.id")  # fmt: skip
    try:
        state = claim_state(request)
        if state == OPEN and click.decision == "Approved" and needs_all(request):
            done, answer = second(click, audit, request, now)
            if not done:
                return answer
            request = claim(click, audit, request, now, who=answer)
        elif state == OPEN:
            request = claim(click, audit, request, now)
        else:
            check_claim(click, request, state)
        return apply(click, audit, client, request, now)
    except Refusal as refusal:
        refusal.told = True  # an approver of this gate: told what is true
        raise


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
                           "this click changes nothing",
                      "payload.actions[0].action_id")  # fmt: skip


def still_open(request: dict[str, str], now: float) -> None:
    """Refuses a click on an approval that has expired (or whose expiry cannot be read)."""
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


def needs_all(request: dict[str, str]) -> bool:
    """The gate needs every approver's approval (manifest `requires: all`); a rejection by any
    one of them rejects it. An item written before the field existed needs one."""
    return request.get("requires") == "all" and len(request["approvers"].split(",")) > 1


def names_of(request: dict[str, str]) -> dict[str, str]:
    """Slack id -> name of each approver, as the notifier stored them (ids alone when the
    names do not line up)."""
    ids = request["approvers"].split(",")
    names = request.get("approver_names", "").split(", ")
    return dict(zip(ids, names, strict=True)) if len(names) == len(ids) else {i: i for i in ids}


def second(
    click: Click, audit: AuditTrail, request: dict[str, str], now: float
) -> tuple[bool, str]:
    """One approver's approval of a gate that needs them all: recorded on the request (and as
    an `approval` event of the audit trail), and CodePipeline told nothing until the last one.
    (True, who) when this approval completes the set: the decision is then claimed for all of
    them; else (False, the answer)."""
    gate, approvers = request["gate"], request["approvers"].split(",")
    still_open(request, now)
    already = set(filter(None, request.get("approved_by", "").split(",")))
    try:
        approved = audit.second(click.request_id, click.user)
    except (ClientError, BotoCoreError) as err:
        raise Refusal(503, f"your approval of gate {gate} could not be recorded "
                           f"({code_of(err)}): nothing was sent to CodePipeline; click Approve "
                           "again in a moment") from None  # fmt: skip
    if not approved:  # a decision was claimed meanwhile: say which
        claimed = audit.request(click.request_id) or {}
        check_claim(click, claimed, claim_state(claimed), race=True)
        raise Refusal(409, f"gate {gate} changed while this click was taken; click again")
    names = names_of(request)
    if click.user not in already:
        try:
            audit.record(
                pipeline=request["pipeline"], execution=request.get("execution", "unknown"),
                event="approval", gate=gate, who=f"{click.user_name} ({click.user})",
                key=f"{click.request_id}-{click.user}", decision="Approved", now=now,
                model_version=request.get("model_version", ""),
                evidence_sha256=request.get("evidence_sha256", ""),
                detail=f"{len(approved)} of {len(approvers)} approvals of a gate that needs "
                "every approver",
            )  # fmt: skip
        except (ClientError, BotoCoreError) as err:
            logger.exception("approval event not written", extra={"request": click.request_id})
            raise Refusal(503, f"your approval of gate {gate} is kept, but writing it to the "
                               f"audit trail did not complete ({code_of(err)}): click Approve "
                               "again to record it") from None  # fmt: skip
    if set(approvers) <= approved:
        return True, " and ".join(f"{names[a]} ({a})" for a in approvers)
    waiting = ", ".join(names[a] for a in approvers if a not in approved)
    return False, (
        f"Your approval of gate {gate} is recorded ({len(approved & set(approvers))} of "
        f"{len(approvers)}): the gate needs every approver, and waits for {waiting}. "
        "CodePipeline is told once all have approved; a rejection by any one rejects it."
    )


def claim(
    click: Click, audit: AuditTrail, request: dict[str, str], now: float, who: str = ""
) -> dict[str, str]:
    """open -> claimed, for an open approval that has not expired; the claimed request.
    `who`: the decision's makers (every approver of a gate that needs them all), else the
    clicker."""
    gate = request["gate"]
    still_open(request, now)
    who = who or f"{click.user_name} ({click.user})"
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


def respond(status: int, text: str) -> dict[str, Any]:
    """The function URL's response (https://docs.aws.amazon.com/lambda/latest/dg/
    urls-invocation.html#urls-response-payload): Slack's ephemeral message as JSON."""
    body = {"response_type": "ephemeral", "replace_original": False, "text": text}
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def signing_secret() -> dict[str, str]:
    """The Slack app this product trusts (shared/slack.py caches it for five minutes)."""
    secret = json.loads(slack.secret(settings().secret_arn))
    if not isinstance(secret, dict) or not isinstance(secret.get("signing_secret"), str):
        raise ValueError("the signing secret must be JSON with signing_secret, team_id, app_id")
    return {k: str(v) for k, v in secret.items()}


def take(request: Any, now: float, seen: Seen) -> str:
    """Refuses what can be refused without the signing secret first (headers, body, request
    id), then checks the signature and the workspace, then decides."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    timestamp, signature = (
        headers.get("x-slack-request-timestamp"),
        headers.get("x-slack-signature"),
    )
    try:
        slack.check_fresh(timestamp, signature, now)
    except slack.SignatureError as err:
        raise Refusal(401, str(err), "headers") from None
    body = raw_body(request.body, request.isBase64Encoded)
    click = parse_click(body)
    seen.user, seen.team, seen.app = click.user, click.team, click.app
    seen.request = excerpt(click.request_id, 40)
    if not REQUEST_ID.fullmatch(click.request_id):
        raise Refusal(400, f"{excerpt(click.request_id, 40)!r} is not a request id",
                      "payload.actions[0].value")  # fmt: skip
    trusted = signing_secret()
    try:
        slack.verify(trusted["signing_secret"], timestamp, signature, body, now)
    except slack.SignatureError as err:
        raise Refusal(401, str(err), "headers.x-slack-signature") from None
    seen.verified = True
    if (click.team, click.app) != (trusted.get("team_id"), trusted.get("app_id")):
        which = "payload.team.id" if click.team != trusted.get("team_id") else "payload.api_app_id"
        raise Refusal(403, f"the click comes from Slack workspace {click.team[:20]!r}, app "
                           f"{click.app[:20]!r}: not the app this gate trusts", which)  # fmt: skip
    if click.decision == ROLLBACK:
        return roll_back(click, now, seen)
    return decide(click, AuditTrail(dynamodb, settings().table), codepipeline, now, seen)


@cache
def stepfunctions() -> Any:
    """Made at the first rollback click, not at every cold start."""
    return boto3.client("stepfunctions")


def roll_back(click: Click, now: float, seen: Seen) -> str:
    """A Roll back click: a rollback approver's starts the rollback state machine, which
    plans, refuses or runs the rollback and posts each outcome to chat (hooks/rollback)."""
    offer = read_offer(dynamodb, settings().table, settings().pipeline, click.request_id)
    if offer is None or not offer.get("to_version") or not settings().rollback_machine:
        raise Refusal(404, f"unknown rollback offer {click.request_id}: nothing to roll back")
    seen.gate = f"rollback of {offer['env']}"
    if click.user not in offer["approvers"].split(","):
        raise Refusal(403, f"{click.user} is not a rollback approver of this product; nothing "
                           "was started", "payload.user.id")  # fmt: skip
    name = f"{click.request_id}-{click.user}-{int(now // REPEAT_SECONDS)}"
    where = f"{offer['env']} to version {offer['to_version']}"
    try:
        stepfunctions().start_execution(
            stateMachineArn=settings().rollback_machine,
            name=name,
            input=json.dumps({"offer": click.request_id, "slack_user": click.user}),
        )
    except ClientError as err:
        if code_of(err) != "ExecutionAlreadyExists":
            raise
        return (f"Your rollback of {where} was already started from this message a moment "
                "ago: its progress is posted in this channel.")  # fmt: skip
    return (f"Rollback of {where} requested by {click.user_name}: the rollback checks it can "
            "run (no release or other rollback in progress, the message still true) and posts "
            "its progress and outcome in this channel.")  # fmt: skip


def refused(refusal: Refusal, seen: Seen) -> dict[str, Any]:
    """The answer to a refused request (PUBLIC's unless the clicker is the gate's approver),
    and its one log line."""
    logger.warning("decision refused", extra={"status": refusal.status, "field": refusal.field,
                                              "reason": refusal.reason,
                                              "answered": "detail" if refusal.told else "generic",
                                              **seen.fields()})  # fmt: skip
    return respond(refusal.status, refusal.answer)


def unavailable(err: Exception, seen: Seen) -> dict[str, Any]:
    """An AWS call the steps above do not answer for failed: the signing secret, the request,
    a claim just lost; each is made before anything is sent to CodePipeline."""
    logger.exception("AWS call failed", extra={"status": 503, "error": code_of(err),
                                               **seen.fields()})  # fmt: skip
    return respond(503, PUBLIC[503])


def url_request(event: Any) -> Any:
    """The function URL request, checked whole (its fields as attributes); 400 naming the
    field otherwise."""
    try:
        if not isinstance(event, dict):
            raise Refused("the event", "the event: not an object")
        return read_as(event, URL_REQUEST, Refused, "a function URL request")
    except Refused as err:
        reason = err.reason.removeprefix("not a function URL request: ")
        raise Refusal(400, f"not a function URL request: {reason}", err.field) from None


def source_of(event: Any) -> str:
    """The caller's address as Lambda wrote it, escaped, read before the request is known to
    be whole (a flood of malformed requests is logged with where it comes from too)."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    http = context.get("http") if isinstance(context, dict) else None
    found = http.get("sourceIp") if isinstance(http, dict) else None
    return excerpt(found, 64) if isinstance(found, str) else ""


def on_click(event: Any, now: float) -> dict[str, Any]:
    """Slack posts to the URL's root; anything else is refused (404)."""
    seen = Seen(source_ip=source_of(event))
    try:
        request = url_request(event)
        http = request.requestContext.http
        seen.user_agent = excerpt(http.userAgent, 60)
        if (http.method, request.rawPath) != ("POST", "/"):
            where = f"{http.method} {excerpt(request.rawPath, 60)}"
            field = "rawPath" if request.rawPath != "/" else "requestContext.http.method"
            raise Refusal(404, f"{where}: only POST / takes gate clicks", field)
        message = take(request, now, seen)
    except Refusal as refusal:
        return refused(refusal, seen)
    except (ClientError, BotoCoreError) as err:
        return unavailable(err, seen)
    logger.info("decision recorded", extra={"outcome": message, **seen.fields()})
    return respond(200, message)


def failed_approval(event: Any, origin: Origin) -> tuple[str, str, str]:
    """(pipeline, execution, stage) of a FAILED Approval action of this product's release
    pipeline, from this account and region; Refusal otherwise (before any AWS call)."""
    found = read_as(event, ACTION_EVENT_SPEC, Refused, "a CodePipeline action event")
    detail = found.detail
    from_here(found, origin, "aws.codepipeline", Refused)
    expect(Refused, "detail.pipeline", detail.pipeline, settings().pipeline,
           "this product's release pipeline, from RELEASE_PIPELINE")  # fmt: skip
    pipeline_arn = origin.arn("codepipeline", detail.pipeline)
    resources_within(found, pipeline_arn, "this product's release pipeline", Refused)
    if (detail.type.category, detail.state) != ("Approval", "FAILED"):
        field = "detail.type.category" if detail.type.category != "Approval" else "detail.state"
        raise Refused(field, f"a {detail.type.category} action {detail.state}: not a failed "
                             "approval")  # fmt: skip
    return detail.pipeline, detail.execution_id, detail.stage


def approval_request(audit: AuditTrail, pipeline: str, execution: str, stage: str) -> Any:
    """The latest approval request of this execution and stage (None when none was stored)."""
    requested = [e for e in audit.events(pipeline, execution) if e.get("event") == "requested"]
    for item in sorted(requested, key=lambda e: e.get("sk", ""), reverse=True):
        request_id = item.get("sk", "").rsplit("#", 1)[-1]
        request = audit.request(request_id) if REQUEST_ID.fullmatch(request_id) else None
        if request is not None and request.get("stage") == stage:
            return request
    return None


def expiry(failed: tuple[str, str, str], audit: AuditTrail, now: float) -> dict[str, str]:
    """Publishes GateExpired once when the failed approval expired undecided."""
    pipeline, execution, stage = failed
    request = approval_request(audit, pipeline, execution, stage)
    where = f"gate {stage} of execution {execution}"
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
        stored = request.get("expires", "")[:40]
        raise Refusal(409, f"the stored expiry {stored!r} of {where} is unreadable; nothing was "
                           "published", "detail.stage") from None  # fmt: skip
    if now + EXPIRY_SLACK < expires:
        return {"expired": "false", "reason": f"{where} failed before it expired at "
                f"{request['expires']} (a rejection); nothing was published"}  # fmt: skip
    # The alarm watches GateExpired by Pipeline alone: a dimension set of its own, beside the
    # service set Powertools adds.
    metrics.add_dimensions(Pipeline=pipeline)
    metrics.add_metric(name="GateExpired", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    return {"expired": "true", "reason": f"{where} expired at {request['expires']} undecided"}


def on_failed_approval(event: Any, context: Any, now: float) -> dict[str, str]:
    try:
        failed = failed_approval(event, Origin.of(context))
        outcome = expiry(failed, AuditTrail(dynamodb, settings().table), now)
    except Refused as refusal:
        outcome = {"expired": "refused", "reason": refusal.reason}
        logger.warning("failed approval refused", extra={"field": refusal.field, **outcome})
        return outcome
    logger.info("failed approval", extra=outcome)
    return outcome


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId || id")
def handler(event: Any, context: Any, now: float | None = None) -> dict[str, Any]:
    if isinstance(event, dict) and "detail-type" in event and "requestContext" not in event:
        return on_failed_approval(event, context, now or time.time())
    return on_click(event, now or time.time())


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
