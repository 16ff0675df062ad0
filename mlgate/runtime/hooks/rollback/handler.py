"""Rollback hook: the "Roll back" button of the message that says prod serves a new version.

Two kinds of invocation:
- **A verified release** (EventBridge: CodePipeline's action execution state change, the
  Verify stage of an environment the button is offered for, SUCCEEDED). The deploy verifier
  has written the environment's served record; the hook reads the served history, picks the
  version a rollback would go back to (the CLI's default: shared/rollback.py `pick_target`) and
  posts "prod now serves version N" to chat with a "Roll back to version M" button, or without
  one when there is nothing to go back to. The offer is an audit item (pk
  "rollback#<pipeline>#offer", sk the offer id: a digest of pipeline, execution and
  environment), written before the post, so a redelivered event posts it once; a post whose
  result was never recorded is posted again by the retry (a harmless duplicate: both buttons
  carry the same offer). The button carries the offer id only.
- **A step of a rollback** (the rollback state machine, started by the gate callback when one
  of the product's rollback approvers clicks the button): `start` plans the rollback as the CLI
  does (every refusal of `python -m mlgate rollback`), refuses an offer that is no longer true
  (the environment serves another version than the one the message named), takes the lock
  under the execution's name (a retried step resumes its own rollback, never another's) and
  starts the Serving stack update; `poll` looks once (shared/rollback.py `Rollback.check`): the
  state machine waits and polls again until the update ends, then the endpoint is checked and
  the outcome recorded, as the CLI does. Each outcome is posted to chat; the audit trail has
  the same events as a rollback from the command line (who: the contact, identity: their Slack
  id and the execution).

Every AWS call but the chat secret is made as the product's rollback role
(mlgate/infra/constructs/rollback.py), assumed by this function; an environment in another
account through its deploy and verify roles, which trust that role. A transient AWS error
fails the invocation: EventBridge's retries (the offer) or the state machine's (a step) run it
again, and each step is made once (the audit items are conditional puts keyed on the offer and
the rollback id).

Environment: ROLLBACK_CONTEXT (JSON, built by the stack: mlgate/infra/constructs/rollback.py),
AUDIT_TABLE, RELEASE_PIPELINE, SLACK_WEBHOOK_SECRET_ARN, ROLLBACK_ROLE_ARN,
AUDIT_RETENTION_DAYS.
AWS calls: sts:AssumeRole (the rollback role), secretsmanager:GetSecretValue.
The rollback role is always assumed; an environment in another account is then reached through
its deploy and verify roles, assumed as the rollback role.
Under the assumed role when one is set: dynamodb:GetItem, dynamodb:PutItem,
dynamodb:DeleteItem, dynamodb:Query, codepipeline:GetPipelineState,
cloudformation:DescribeStacks, cloudformation:UpdateStack, cloudformation:DescribeStackEvents,
iam:PassRole, sagemaker:DescribeEndpoint, sagemaker:DescribeEndpointConfig,
sagemaker:DescribeModel, sagemaker:InvokeEndpoint (the verifier's sample, once the endpoint is
back), sagemaker:ListInferenceComponents (optional: an inference component),
sagemaker:DescribeInferenceComponent (optional: an inference component), sts:AssumeRole
(optional: the environment's roles).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from shared import slack
from shared.accounts import session
from shared.audit import retention_days
from shared.coldstart import settle
from shared.events import (
    ACTION_EVENT_SPEC,
    Origin,
    Refused,
    excerpt,
    expect,
    from_here,
    read_as,
    resources_within,
)
from shared.rollback import (
    Clients,
    Place,
    Rollback,
    mark_offer_posted,
    offer_posted,
    pick_target,
    plan,
    read_offer,
    write_offer,
)
from shared.rollback import Refused as RollbackRefused
from shared.served import served_history
from shared.settings import read

logger = Logger()
HOOK = "rollback"
STEPS = ("start", "poll")


@dataclass(frozen=True)
class Settings:
    context: dict[str, Any]
    table: str
    pipeline: str
    webhook_secret: str
    role_arn: str


@cache
def settings() -> Settings:
    env = read(
        HOOK,
        (
            "ROLLBACK_CONTEXT",
            "AUDIT_TABLE",
            "RELEASE_PIPELINE",
            "SLACK_WEBHOOK_SECRET_ARN",
            "ROLLBACK_ROLE_ARN",
        ),
    )
    return Settings(
        context=json.loads(env["ROLLBACK_CONTEXT"]),
        table=env["AUDIT_TABLE"],
        pipeline=env["RELEASE_PIPELINE"],
        webhook_secret=env["SLACK_WEBHOOK_SECRET_ARN"],
        role_arn=env["ROLLBACK_ROLE_ARN"],
    )


def environment(env: str) -> dict[str, Any]:
    found = settings().context["environments"].get(env)
    if found is None:
        raise Refused("env", f"{excerpt(env)!r} is no environment of this product")
    return dict(found)


def place_of(env: str) -> Place:
    there = environment(env)
    return Place(
        env=env,
        pipeline=settings().pipeline,
        table=settings().table,
        stack=there["stack"],
        endpoint=there["endpoint"],
        service_role=there["service_role"],
        stages=tuple(there["stages"]),
        sample=str(there.get("sample", "")),
        queued=there.get("mode") == "async",
        live_parameter=str(there.get("live_parameter") or ""),
    )


def clients_for(env: str) -> Clients:
    """As the rollback role; the environment's deploy and verify roles when it is remote."""
    there = environment(env)
    home = session(settings().role_arn, f"mlgate-rollback-hook-{env}")

    deploy = session(there.get("deploy_role"), f"mlgate-rollback-{env}", base=home)
    verify = session(there.get("verify_role"), f"mlgate-rollback-verify-{env}", base=home)
    return Clients(
        dynamodb=home.client("dynamodb"),
        codepipeline=home.client("codepipeline"),
        sts=home.client("sts"),
        cloudformation=deploy.client("cloudformation", region_name=there["region"]),
        sagemaker=verify.client("sagemaker", region_name=there["region"]),
        runtime=verify.client("sagemaker-runtime", region_name=there["region"]),
        ssm=verify.client("ssm", region_name=there["region"]),
    )


def approvers() -> dict[str, dict[str, str]]:
    """The rollback approvers by Slack user id (those without one cannot click)."""
    return {
        a["slack_user_id"]: a for a in settings().context["approvers"] if a.get("slack_user_id")
    }


def post(text: str, blocks: list[dict[str, Any]] | None = None) -> int:
    """Post to the product's chat; the status, or 0 when the post failed (logged: the audit
    trail, not the chat, is the record)."""
    message: dict[str, Any] = {"text": text}
    if blocks:
        message["blocks"] = blocks
    try:
        return slack.post(slack.secret(settings().webhook_secret), message)
    except (OSError, ValueError, ClientError, BotoCoreError) as err:
        logger.warning("chat post failed", extra={"error": str(err)[:300]})
        return 0


# --- the offer ------------------------------------------------------------------------------


def offer_id(pipeline: str, execution: str, env: str) -> str:
    return hashlib.sha256(f"{pipeline}#{execution}#{env}".encode()).hexdigest()[:24]


def verified(event: Any, origin: Origin) -> tuple[str, str]:
    """(environment, execution) of a SUCCEEDED verify action this hook offers a rollback for;
    Refused naming the field otherwise (before any AWS call)."""
    found = read_as(event, ACTION_EVENT_SPEC, Refused, "a CodePipeline action event")
    detail = found.detail
    from_here(found, origin, "aws.codepipeline", Refused)
    expect(Refused, "detail.pipeline", detail.pipeline, settings().pipeline,
           "this product's release pipeline, from RELEASE_PIPELINE")  # fmt: skip
    resources_within(found, origin.arn("codepipeline", detail.pipeline),
                     "this product's release pipeline", Refused)  # fmt: skip
    offered = {e["verify_stage"]: name for name, e in settings().context["environments"].items()
               if e.get("offer")}  # fmt: skip
    if detail.stage not in offered:
        raise Refused("detail.stage", f"stage {excerpt(detail.stage)!r} is not a verify stage "
                      f"the button is offered for ({', '.join(sorted(offered))})")  # fmt: skip
    if detail.state != "SUCCEEDED":
        raise Refused("detail.state", f"the verify action {excerpt(detail.state)}: not SUCCEEDED")
    return offered[detail.stage], detail.execution_id


def offer_blocks(env: str, offer: dict[str, str], names: str) -> list[dict[str, Any]]:
    there = environment(env)
    product = settings().context["display_name"]
    head = (
        f"*{product}: {env} now serves version {offer['from_version']}* "
        f"(release execution `{offer['execution']}`)."
    )
    if not offer.get("to_version"):
        return [{"type": "section", "text": {"type": "mrkdwn", "text": f"{head}\n{offer['why']}"}}]
    back = (
        f"If it misbehaves, roll back to version {offer['to_version']} (served "
        f"{offer['to_when']}): {there['guardrail']}. Who may: {names}."
    )
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{head}\n{back}"}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "rollback",
                    "value": offer["id"],
                    "style": "danger",
                    "text": {
                        "type": "plain_text",
                        "text": f"Roll back to version {offer['to_version']}",
                    },
                    # Slack asks the clicker to confirm before the click is sent
                    # (https://api.slack.com/reference/block-kit/composition-objects#confirm).
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Roll back?"},
                        "text": {
                            "type": "plain_text",
                            "text": f"{env} goes back to version "
                            f"{offer['to_version']} through its rollout.",
                        },
                        "confirm": {"type": "plain_text", "text": "Roll back"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                }
            ],
        },
    ]


def on_verified(event: Any, context: Any) -> dict[str, str]:
    try:
        env, execution = verified(event, Origin.of(context))
    except Refused as refusal:
        logger.warning("event refused", extra={"field": refusal.field, "reason": refusal.reason})
        return {"result": "refused", "reason": refusal.reason}
    pipeline = settings().pipeline
    clients = clients_for(env)
    history = served_history(clients.dynamodb, settings().table, pipeline, env)
    ours = [r for r in history if r.get("execution") == execution]
    if not ours:
        reason = f"no served record of execution {execution} in {env}: nothing to offer"
        logger.warning(reason)
        return {"result": "skipped", "reason": reason}
    current = int(ours[-1]["model_version"])
    offer = {
        "id": offer_id(pipeline, execution, env),
        "env": env,
        "execution": execution,
        "from_version": str(current),
        "from_arn": ours[-1]["model_package_arn"],
    }
    try:
        target = pick_target(history, current, None)
        offer.update(to_version=target["model_version"], to_sk=target["sk"],
                     to_when=target["when"])  # fmt: skip
    except RollbackRefused as nothing:
        offer["why"] = str(nothing).replace(" (name one with --to)", "")
    offer["approvers"] = ",".join(approvers())
    stored = write_offer(clients.dynamodb, settings().table, pipeline, offer, retention_days())
    if offer_posted(clients.dynamodb, settings().table, pipeline, stored["id"]):
        return {"result": "already posted", "reason": f"offer {stored['id']} was posted before"}
    names = ", ".join(a["name"] for a in settings().context["approvers"]) or "nobody"
    # Unlike a rollback's progress lines, the offer must reach chat: a failed post fails the
    # invocation, and Lambda's retries post it (then its dead-letter queue keeps the event).
    message = {"text": f"{env} now serves version {current}",
               "blocks": offer_blocks(env, stored, names)}  # fmt: skip
    slack.post(slack.secret(settings().webhook_secret), message)
    mark_offer_posted(clients.dynamodb, settings().table, pipeline, stored["id"], retention_days())
    return {"result": "posted", "reason": f"offer {stored['id']}"}


# --- the steps ------------------------------------------------------------------------------


def runner(env: str, clients: Clients, lines: list[str]) -> Rollback:
    return Rollback(
        place_of(env),
        clients,
        timeout_minutes=int(environment(env)["timeout_minutes"]),
        keep_days=retention_days(),
        say=lines.append,
        clock=time.time,
    )


def refused(reason: str, env: str = "") -> dict[str, Any]:
    product = settings().context["display_name"]
    post(f"{product}: the rollback{f' of {env}' if env else ''} was refused: {reason}")
    logger.warning("rollback refused", extra={"reason": reason})
    return {"state": "refused", "reason": reason}


def start(step: dict[str, Any]) -> dict[str, Any]:
    offer = read_offer(boto3_home().client("dynamodb"), settings().table, settings().pipeline,
                       str(step.get("offer", "")))  # fmt: skip
    if offer is None or not offer.get("to_version"):
        return refused(f"no rollback offer {excerpt(step.get('offer'), 30)!r}")
    who = approvers().get(str(step.get("slack_user", "")))
    if who is None or who["slack_user_id"] not in offer.get("approvers", "").split(","):
        return refused(f"{excerpt(step.get('slack_user'), 20)} is no rollback approver")
    env, rollback_id = offer["env"], str(step["rollback_id"])
    clients = clients_for(env)
    place = place_of(env)
    try:
        the_plan = plan(place, clients, int(offer["to_version"]), time.time())
        lock = the_plan.resume
        if lock is not None and lock["id"] != rollback_id:
            raise RollbackRefused(
                f"a rollback of {env} to version {lock['to_version']} is running (by "
                f"{lock['by']}, since {lock['started']})"
            )
        if lock is None and the_plan.current_version != int(offer["from_version"]):
            raise RollbackRefused(
                f"the message offered a rollback from version {offer['from_version']}, and "
                f"{env} serves version {the_plan.current_version} now: nothing was changed "
                "(roll back from the newer message, or with python -m mlgate rollback)"
            )
    except RollbackRefused as refusal:
        return refused(str(refusal), env)
    lines: list[str] = []
    rollback = runner(env, clients, lines)
    rollback.run(
        the_plan,
        by=who["contact"],
        reason=f"the Roll back button of the {env} message of release {offer['execution']}",
        wait=False,
        identity=f"slack:{who['slack_user_id']} ({who['name']}), state machine execution "
        f"{rollback_id}",
        rollback_id=rollback_id,
    )
    product = settings().context["display_name"]
    post(
        f"{product}: rolling {env} back from version {offer['from_version']} to "
        f"{offer['to_version']}, asked by {who['name']}: {environment(env)['guardrail']}"
    )
    # The next step's payload as it is (the state machine passes the state on).
    return {"step": "poll", "state": "running", "env": env, "lock": rollback.lock,
            "target": the_plan.target}  # fmt: skip


def poll(step: dict[str, Any]) -> dict[str, Any]:
    env, lock, target = str(step["env"]), dict(step["lock"]), dict(step["target"])
    clients = clients_for(env)
    lines: list[str] = []
    rollback = runner(env, clients, lines)
    ended = rollback.ended(lock)
    if ended is not None:  # a retried poll of a rollback that ended: answered, not redone
        return {**step, "state": ended}
    code = rollback.check(lock, target)
    if code is None:
        return {**step, "state": "running"}
    state = "completed" if code == 0 else "failed"
    product = settings().context["display_name"]
    post(f"{product}: {lines[-1] if lines else state}")
    return {**step, "state": state}


def boto3_home() -> Any:
    """A session as the rollback role, made for each step: its credentials last an hour, and
    a warm function outlives them."""
    return session(settings().role_arn, "mlgate-rollback-hook")


@logger.inject_lambda_context
def handler(event: Any, context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("step") in STEPS:
        return start(event) if event["step"] == "start" else poll(event)
    return on_verified(event, context)


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
