"""The core of a rollback on demand: its plan and refusals, its lock, its steps and their audit
events. Shared by `python -m mlgate rollback` (mlgate/cli/rollback.py, which builds the places
and clients from the manifest and prints the plan) and the rollback hook (the chat's Roll back
button: hooks/rollback/handler.py), so a rollback from either refuses, updates, checks and
records alike. The audit items it reads and writes are described in mlgate/cli/rollback.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shared.audit import AuditTrail, now_iso
from shared.served import (
    DONE,
    IN_PROGRESS,
    PARAMETER,
    REQUIRED,
    read_endpoint,
    rollback_reason,
    served_history,
    served_item,
    stack_parameters,
    stuck,
    update_parameters,
    update_stack,
)

# Past the rollout's max_execution_timeout_minutes, CloudFormation's own work around the
# endpoint update (the new model and config before, the old ones' cleanup after).
LOCK_MARGIN_MINUTES = 30
POLL_SECONDS = 30.0
# The deploy verifier's re-reads while the old config is being deleted (its READS, PAUSE).
READS, PAUSE = 4, 5.0

# The order of a rollback's events, in their sort key: its trail reads in the order it ran.
STEPS = {
    "rollback-requested": 1,
    "rollback-update-started": 2,
    "rollback-update-skipped": 2,
    "rollback-completed": 3,
    "rollback-failed": 3,
}


class Refused(Exception):
    """The rollback is refused before anything is written or updated: one line."""


@dataclass(frozen=True)
class Clients:
    """The AWS clients a rollback uses: home account (audit table, release pipeline, caller
    identity) and the environment's (its Serving stack; its endpoint)."""

    dynamodb: Any
    codepipeline: Any
    sts: Any
    cloudformation: Any
    sagemaker: Any
    runtime: Any = None
    """The environment's SageMaker runtime: the sample the endpoint answers once it is back
    (None: no sample is sent)."""
    ssm: Any = None
    """The environment's SSM: a batch environment's live model parameter."""


@dataclass(frozen=True)
class Place:
    """Where a rollback of `env` acts (the CLI builds it from the manifest's names, the hook
    from its environment)."""

    env: str
    pipeline: str
    table: str
    stack: str
    endpoint: str
    service_role: str
    stages: tuple[str, ...]
    sample: str = ""
    """The sample record the deploy verifier sends (the manifest's); sent once the endpoint is
    back, as the verifier sends it, except to an asynchronous endpoint (its answer is queued:
    the artifact check stands alone there). Empty: none."""
    queued: bool = False
    """The endpoint is asynchronous."""
    live_parameter: str = ""
    """A batch environment's live model package parameter (the Serving stack writes it in the
    update that switches the version): read instead of an endpoint, which it has none of. A
    batch rollback sends no sample: the next run scores with the version."""

    @property
    def pk(self) -> str:
        return f"rollback#{self.pipeline}#{self.env}"


def version_of(arn: str | None) -> int | None:
    """The version a model package ARN names (…/<group>/<version>), None if none."""
    tail = str(arn or "").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


# --- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    current_version: int | None
    current_arn: str
    current_since: str
    target: dict[str, str]
    keys: tuple[str, ...]
    status: str
    resume: dict[str, str] | None

    @property
    def target_version(self) -> int:
        return int(self.target["model_version"])


def pick_target(
    history: list[dict[str, str]], current: int | None, to: int | None
) -> dict[str, str]:
    """The served record to go back to: version `to`'s newest, or by default the newest version
    served before the current one's latest serving, skipping versions a rollback left."""
    if to is not None:
        found = [r for r in history if int(r["model_version"]) == to]
        if not found:
            served = ", ".join(sorted({r["model_version"] for r in history}, key=int)) or "none"
            raise Refused(f"version {to} was never served in this environment (served: {served})")
        if to == current:
            raise Refused(f"version {to} is the version this environment serves now")
        return found[-1]
    left = {r["rolled_back_from"] for r in history if r.get("rolled_back_from")}
    ours = [i for i, r in enumerate(history) if int(r["model_version"]) == current]
    before = history[: ours[-1]] if ours else history
    for record in reversed(before):
        if int(record["model_version"]) != current and record["model_version"] not in left:
            return record
    raise Refused(
        f"no version was served in this environment before the current one ({current}): "
        "nothing to roll back to (name one with --to)"
    )


def lock_key(place: Place) -> dict[str, Any]:
    return {"pk": {"S": place.pk}, "sk": {"S": "lock"}}


def running_lock(clients: Clients, place: Place, now: float) -> dict[str, str] | None:
    item = clients.dynamodb.get_item(
        TableName=place.table, Key=lock_key(place), ConsistentRead=True
    ).get("Item")
    if not item or int(item.get("expires_at", {}).get("N", "0")) <= now:
        return None  # none, or one a crashed command left past its expiry (TTL is lazy)
    return {k: v.get("S", v.get("N", "")) for k, v in item.items()}


def plan(place: Place, clients: Clients, to: int | None, now: float) -> Plan:
    """Every refusal, read only: nothing is written until the plan stands."""
    lock = running_lock(clients, place, now)
    if lock is not None and to is not None and int(lock["to_version"]) != to:
        raise Refused(
            f"a rollback of {place.env} to version {lock['to_version']} is running (by "
            f"{lock['by']}, since {lock['started']}); wait for it (its lock expires "
            f"{now_iso(float(lock['expires_at']))})"
        )
    state = clients.codepipeline.get_pipeline_state(name=place.pipeline)
    for stage in state.get("stageStates", []):
        name = stage.get("stageName", "")
        if name in place.stages and stage.get("latestExecution", {}).get("status") == "InProgress":
            raise Refused(
                f"a release is in progress in {place.env}: stage {name} of {place.pipeline} is "
                "InProgress; let it finish or stop it first"
            )
    stack = clients.cloudformation.describe_stacks(StackName=place.stack)["Stacks"][0]
    params = stack_parameters(stack)
    keys = tuple(p["ParameterKey"] for p in stack.get("Parameters", []))
    if missing := [k for k in REQUIRED if k not in keys]:
        raise Refused(f"stack {place.stack} has no {' or '.join(missing)} parameter")
    status = str(stack.get("StackStatus", ""))
    if (way_out := stuck(status)) is not None:
        raise Refused(
            f"stack {place.stack} is {status}, which CloudFormation will not update: "
            f"{way_out.removesuffix(', then retry the stage')}"
        )
    current_arn = str(params.get(PARAMETER) or "")
    history = served_history(clients.dynamodb, place.table, place.pipeline, place.env)
    if lock is not None:
        target = next((r for r in history if r["sk"] == lock["to_sk"]), None)
        if target is None:
            raise Refused(f"the running rollback's target {lock['to_sk']} has no served record")
        on_target = current_arn == target["model_package_arn"]
        if status.endswith(IN_PROGRESS) and not on_target:
            raise Refused(
                f"stack {place.stack} is {status}: another operation runs; retry once it ends"
            )
        return Plan(
            version_of(lock["from_arn"]),
            lock["from_arn"],
            lock["from_since"],
            target,
            keys,
            status,
            lock,
        )
    if status.endswith(IN_PROGRESS):
        raise Refused(
            f"stack {place.stack} is {status}: another operation runs; retry once it ends"
        )
    current = version_of(current_arn)
    target = pick_target(history, current, to)
    since = next(
        (r["when"] for r in reversed(history) if r["model_package_arn"] == current_arn),
        "no served record",
    )
    return Plan(current, current_arn, since, target, keys, status, None)


# --- the action -----------------------------------------------------------------------------


@dataclass
class Rollback:
    """One rollback of `place`: `timeout_minutes` is the environment's rollout's
    max_execution_timeout_minutes, `keep_days` the audit trail's retention, `say` where its
    progress lines go (the command's output, the hook's log)."""

    place: Place
    clients: Clients
    timeout_minutes: int
    keep_days: int | None
    say: Callable[[str], None]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.audit = AuditTrail(self.clients.dynamodb, self.place.table, keep_days=self.keep_days)
        self.locked = False
        """Whether this run holds the environment's lock (took it, or resumes a rollback that
        holds it): from then on the audit trail says how far it got."""

    def event(self, lock: dict[str, str], step: str, detail: str = "") -> None:
        """One rollback event, once per rollback id (module docstring)."""
        when = now_iso(self.clock())
        item = {
            "pk": {"S": self.place.pk},
            "sk": {"S": f"{lock['started']}#{lock['id']}#{STEPS[step]}#{step}"},
            "event": {"S": step},
            "when": {"S": when},
            "rollback": {"S": lock["id"]},
            "environment": {"S": self.place.env},
            "who": {"S": lock["by"]},
            "identity": {"S": lock["identity"]},
            "reason": {"S": lock["reason"]},
            "from_version": {"S": lock["from_version"]},
            "to_version": {"S": lock["to_version"]},
            "from_arn": {"S": lock["from_arn"]},
            "to_arn": {"S": lock["to_arn"]},
            "detail": {"S": detail[:2000]},
        }
        self.audit.append(item)

    def take_lock(
        self, plan: Plan, by: str, identity: str, reason: str, rollback_id: str | None = None
    ) -> dict[str, str]:
        now = self.clock()
        expires = int(now) + (self.timeout_minutes + LOCK_MARGIN_MINUTES) * 60
        lock = {
            "id": rollback_id or uuid.uuid4().hex[:12],
            "started": now_iso(now),
            "by": by,
            "identity": identity,
            "reason": reason,
            "from_version": str(plan.current_version),
            "from_arn": plan.current_arn,
            "from_since": plan.current_since,
            "to_version": str(plan.target_version),
            "to_arn": plan.target["model_package_arn"],
            "to_sk": plan.target["sk"],
        }
        item = {**lock_key(self.place), **{k: {"S": v} for k, v in lock.items()}}
        item["expires_at"] = {"N": str(expires)}
        try:
            self.clients.dynamodb.put_item(
                TableName=self.place.table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Refused(f"another rollback of {self.place.env} started just now") from None
            raise
        return {**lock, "expires_at": str(expires)}

    def ended(self, lock: dict[str, str]) -> str | None:
        """ "completed" or "failed" when the rollback of `lock` has recorded its end; None while
        it has not (a retried step reads this rather than finish it twice)."""
        prefix = f"{lock['started']}#{lock['id']}#{STEPS['rollback-completed']}#"
        items = self.clients.dynamodb.query(
            TableName=self.place.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
            ExpressionAttributeValues={":pk": {"S": self.place.pk}, ":sk": {"S": prefix}},
            ConsistentRead=True,
        )["Items"]
        for item in items:
            return "completed" if item["event"]["S"] == "rollback-completed" else "failed"
        return None

    def release_lock(self, lock: dict[str, str]) -> None:
        try:
            self.clients.dynamodb.delete_item(
                TableName=self.place.table,
                Key=lock_key(self.place),
                ConditionExpression="id = :id",
                ExpressionAttributeValues={":id": {"S": lock["id"]}},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def run(
        self,
        plan: Plan,
        *,
        by: str,
        reason: str,
        wait: bool,
        identity: str | None = None,
        rollback_id: str | None = None,
    ) -> int:
        """Take the lock (or resume the rollback holding it), record the request, start the
        update; then, with `wait`, follow it to the end (`finish`). `identity`: who acts, as
        AWS knows them (default: the caller's ARN from STS); `rollback_id`: the rollback's id
        (default: a new random one)."""
        place, target = self.place, plan.target
        self.lock: dict[str, str] | None = None
        if plan.resume is None:
            identity = identity or self.clients.sts.get_caller_identity()["Arn"]
            lock = self.take_lock(plan, by, identity, reason, rollback_id)
        else:
            lock = plan.resume
            self.say(f"resuming rollback {lock['id']} (by {lock['by']}, {lock['started']})")
        self.locked, self.lock = True, lock
        self.event(
            lock,
            "rollback-requested",
            f"{by}: {place.env} from version {lock['from_version']} to "
            f"{lock['to_version']}: {lock['reason']}",
        )
        cfn = self.clients.cloudformation
        status = cfn.describe_stacks(StackName=place.stack)["Stacks"][0]
        on_target = stack_parameters(status).get(PARAMETER) == target["model_package_arn"]
        if on_target and plan.resume is not None:
            # A resumed rollback whose update this rollback started: the event is keyed on the
            # rollback's id, so writing it again records it once (a crash may have lost it).
            self.event(
                lock,
                "rollback-update-started",
                f"UpdateStack {place.stack}: {target['model_package_arn']}",
            )
        elif on_target:
            self.event(lock, "rollback-update-skipped", f"{place.stack} already on the target")
        else:
            parameters = update_parameters(list(plan.keys), target)
            update_stack(cfn, place.stack, parameters, place.service_role)
            self.event(
                lock,
                "rollback-update-started",
                f"UpdateStack {place.stack}: {target['model_package_arn']}",
            )
        self.say(f"updating {place.stack} to version {lock['to_version']}")
        if not wait:
            self.say(
                "not waiting (--no-wait): run the same command again to follow it and finish "
                f"(its lock holds until {now_iso(float(lock['expires_at']))})"
            )
            return 0
        return self.finish(lock, target)

    def finish(self, lock: dict[str, str], target: dict[str, str]) -> int:
        """Follow the update to its end: 0 completed, 1 failed."""
        while (code := self.check(lock, target)) is None:
            self.sleep(POLL_SECONDS)
        return code

    def check(self, lock: dict[str, str], target: dict[str, str]) -> int | None:
        """One look at the update: None while it runs (until the lock expires), else it is
        finished as `finish` says (the endpoint checked, the outcome recorded, the lock
        released)."""
        cfn, place = self.clients.cloudformation, self.place
        status = str(cfn.describe_stacks(StackName=place.stack)["Stacks"][0]["StackStatus"])
        if status.endswith(IN_PROGRESS) and self.clock() <= float(lock["expires_at"]):
            return None
        if status not in DONE:
            why = f"{place.stack} ended {status}: {rollback_reason(cfn, place.stack)}"
            return self.failed(lock, why)
        if place.live_parameter:
            return self.switched(lock, target)
        serving = read_endpoint(
            self.clients.sagemaker,
            place.endpoint,
            reads=READS,
            pause_seconds=PAUSE,
            pause=self.sleep,
        )
        wanted = {target["model_data_url"], target["model_package_arn"]}
        if serving.status != "InService" or not wanted & set(serving.named or []):
            named = (serving.named or ["nothing it can tell"])[0]
            return self.failed(
                lock,
                f"{place.endpoint} is {serving.status} serving {named}, not "
                f"{target['model_data_url']}",
            )
        refused = self.sample_fails(serving)
        if refused is not None:
            return self.failed(lock, refused)
        if serving.modified is not None:
            self.record_served(lock, target, serving.modified)
        self.event(
            lock, "rollback-completed", f"{place.endpoint} serves {target['model_data_url']}"
        )
        self.release_lock(lock)
        self.say(f"rolled back: {place.env} serves version {lock['to_version']} again")
        return 0

    def record_served(self, lock: dict[str, str], target: dict[str, str], when: Any) -> None:
        """What the environment serves again, as the verifier records a release's, marked with
        the version it was rolled back from."""
        place = self.place
        record = served_item(
            pipeline=place.pipeline,
            env=place.env,
            when=when,
            version=int(target["model_version"]),
            document=target,
            execution=f"rollback-{lock['id']}",
            endpoint=place.endpoint,
        )
        record["rolled_back_from"] = {"S": lock["from_version"]}
        self.audit.append(record)

    def switched(self, lock: dict[str, str], target: dict[str, str]) -> int:
        """A batch environment's rollback is done when its live model parameter names the
        target (the next run scores with it); the served record's time is now."""
        place = self.place
        live = self.clients.ssm.get_parameter(Name=place.live_parameter)["Parameter"]["Value"]
        if live != target["model_package_arn"]:
            return self.failed(
                lock, f"{place.live_parameter} names {live}, not {target['model_package_arn']}"
            )
        self.record_served(lock, target, now_iso(self.clock()))
        self.event(lock, "rollback-completed", f"{place.env}'s next batch run scores with "
                   f"{target['model_data_url']}")  # fmt: skip
        self.release_lock(lock)
        self.say(f"rolled back: {place.env} scores with version {lock['to_version']} again")
        return 0

    def sample_fails(self, serving: Any) -> str | None:
        """The verifier's sample, answered by the endpoint now on the target (naming its
        inference component, if it hosts one); why it failed, or None."""
        place, runtime = self.place, self.clients.runtime
        if runtime is None or not place.sample or place.queued:
            return None
        component = getattr(serving, "component", None)
        named = {"InferenceComponentName": component.name} if component is not None else {}
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=place.endpoint,
                Body=place.sample.encode(),
                ContentType="text/csv",
                Accept="text/csv",
                **named,
            )
            answer["Body"].read()
        except ClientError as err:
            error = err.response.get("Error", {})
            return (
                f"{place.endpoint} serves the target but answered its sample with "
                f"{error.get('Code', 'an error')}: {str(error.get('Message', ''))[:300]}"
            )
        return None

    def failed(self, lock: dict[str, str], why: str) -> int:
        self.event(lock, "rollback-failed", why)
        self.release_lock(lock)
        self.say(f"rollback failed: {why}")
        return 1


# --- the chat's offers ----------------------------------------------------------------------
# The message that says an environment serves a new version offers a rollback (hooks/rollback):
# one item per release and environment, pk "rollback#<pipeline>#offer", sk the offer id; the
# gate callback reads it when its button is clicked.
OFFER_FIELDS = ("id", "env", "execution", "from_version", "approvers")


def offer_key(pipeline: str, offer: str) -> dict[str, Any]:
    return {"pk": {"S": f"rollback#{pipeline}#offer"}, "sk": {"S": offer}}


def read_offer(client: Any, table: str, pipeline: str, offer: str) -> dict[str, str] | None:
    """The offer `offer` (None when there is none, or it lacks a field an offer has)."""
    item = client.get_item(
        TableName=table, Key=offer_key(pipeline, offer), ConsistentRead=True
    ).get("Item")
    found = {k: v["S"] for k, v in (item or {}).items() if "S" in v}
    return found if all(found.get(f) for f in OFFER_FIELDS) else None


def write_offer(
    client: Any, table: str, pipeline: str, offer: dict[str, str], keep_days: int | None
) -> dict[str, str]:
    """Store the offer once (the audit trail's put-once); the stored one, whichever try wrote
    it."""
    item = {**offer_key(pipeline, offer["id"]), **{k: {"S": v} for k, v in offer.items()}}
    if AuditTrail(client, table, keep_days=keep_days).append(item):
        return offer
    return read_offer(client, table, pipeline, offer["id"]) or offer


def offer_posted(client: Any, table: str, pipeline: str, offer: str) -> bool:
    """Whether the offer's message was posted (its marker item, sk "<offer>#posted")."""
    key = offer_key(pipeline, f"{offer}#posted")
    return "Item" in client.get_item(TableName=table, Key=key, ConsistentRead=True)


def mark_offer_posted(
    client: Any, table: str, pipeline: str, offer: str, keep_days: int | None
) -> None:
    """The offer's marker item: its message was posted (written once). It expires with the
    offer (`keep_days`, the table's retention), not after it."""
    item = {**offer_key(pipeline, f"{offer}#posted"), "posted": {"S": "true"}}
    AuditTrail(client, table, keep_days=keep_days).append(item)
