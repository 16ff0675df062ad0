"""`python -m mlgate rollback PATH ENV [--to VERSION] --reason TEXT --by CONTACT [--no-wait]`.

Puts an environment back on a version it served before, through the same Serving stack update
a release makes (the deployer's: UpdateStack on the previous template, the stack's own service
role, the blue/green guardrails and rollback alarms of the environment's rollout), then checks
the endpoint as the deploy verifier does (InService, serving the target's model artifact).

What it reads, all in the audit trail: the "served" records the deploy verifier writes
(mlgate/runtime/hooks/shared/served.py), and its own items, pk "rollback#<pipeline>#<env>":
- sk "lock": the rollback running in that environment (a conditional put; deleted when it
  ends). It expires (LOCK_MARGIN_MINUTES past the rollout's max_execution_timeout_minutes:
  SageMaker abandons a blue/green update that runs longer, so no rollback outlives it), so a
  crashed command holds it no longer than that. Running the same rollback again (no --to, or
  the locked target) resumes it; another target is refused until it ends.
- sk "<ISO time>#<id>#<n>#rollback-<step>": rollback-requested (who, their AWS identity, why,
  from -> to) before any change, rollback-update-started (or rollback-update-skipped: the stack
  was already on the target), then rollback-completed or rollback-failed (why). Each is a
  conditional put keyed on the rollback's id: a resumed run writes each step once.
On completion it writes the target's served record (with `rolled_back_from`): a version a
rollback moved away from is never a default target again.

Refusals (exit 2, one line, nothing written and no stack touched): --by not allowed; a release
in progress in that environment; another rollback running; the Serving stack busy or stuck; a
target never served there, or the one it serves now.

It runs as the product's rollback role (`mlgate-<product>-rollback`, home account:
mlgate/infra/constructs/rollback.py), which the caller assumes: IAM says who may, the manifest's
delivery.rollback_approvers who the command accepts. An environment in another account is
updated through its deploy role and checked through its verify role, which trust the rollback
role beside the deployer's and the verifier's (mlgate/infra/stacks/foundation.py).
"""

from __future__ import annotations

import math
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from mlgate.infra.naming import Names, role_arn
from mlgate.manifest import ENV_NAMES, EnvName, GatePlacement, Manifest, RolloutPolicy
from mlgate.manifest.serving import ServingMode

HOOKS = Path(__file__).resolve().parents[1] / "runtime" / "hooks"
if str(HOOKS) not in sys.path:  # the hooks' shared code imports as in Lambda: `shared.*`
    sys.path.insert(0, str(HOOKS))

from shared.audit import AuditTrail, now_iso  # noqa: E402
from shared.served import (  # noqa: E402
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

REFUSED = 2
# Past the rollout's max_execution_timeout_minutes, CloudFormation's own work around the
# endpoint update (the new model and config before, the old ones' cleanup after).
LOCK_MARGIN_MINUTES = 30
POLL_SECONDS = 30.0
# The deploy verifier's re-reads while the old config is being deleted (its READS, PAUSE).
READS, PAUSE = 4, 5.0
# AWS's answers for a transient failure, retried with backoff (throttles and 5xx codes).
TRANSIENT = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
}
TRIES = 5
BLUE_GREEN = "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html"


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


class Retrying:
    """A client whose calls are retried on a transient error, TRIES times with backoff."""

    def __init__(self, client: Any, sleep: Callable[[float], None]) -> None:
        self._client, self._sleep = client, sleep

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            for attempt in range(1, TRIES + 1):
                try:
                    return method(**kwargs)
                except ClientError as err:
                    if err.response.get("Error", {}).get("Code") not in TRANSIENT:
                        raise
                    if attempt == TRIES:
                        raise
                    self._sleep(min(2.0**attempt, 20.0))
            raise AssertionError("unreachable")

        return call


@dataclass(frozen=True)
class Clients:
    """The AWS clients a rollback uses: home account (audit table, release pipeline, caller
    identity) and the environment's (its Serving stack; its endpoint)."""

    dynamodb: Any
    codepipeline: Any
    sts: Any
    cloudformation: Any
    sagemaker: Any

    @classmethod
    def of(cls, manifest: Manifest, env: EnvName, sleep: Callable[[float], None]) -> Clients:
        """Everything as the product's rollback role (mlgate/infra/constructs/rollback.py),
        assumed with the caller's credentials; an environment in another account through its
        deploy and verify roles, assumed in turn as the rollback role (they trust it)."""
        names, home = Names.of(manifest), manifest.environments.staging
        target = manifest.environment(env)
        remote = manifest.is_remote(env)
        local = assume(None, role_arn(home.account, names.rollback_role()), "mlgate-rollback")

        def there(role: str, purpose: str) -> Any:
            return assume(local, role_arn(target.account, role), purpose) if remote else local

        deploy = there(names.deploy_role(env), f"mlgate-rollback-{env}")
        verify = there(names.verify_role(env), f"mlgate-rollback-verify-{env}")

        def wrap(client: Any) -> Retrying:
            return Retrying(client, sleep)

        return cls(
            dynamodb=wrap(local.client("dynamodb", region_name=home.region)),
            codepipeline=wrap(local.client("codepipeline", region_name=home.region)),
            sts=wrap(local.client("sts", region_name=home.region)),
            cloudformation=wrap(deploy.client("cloudformation", region_name=target.region)),
            sagemaker=wrap(verify.client("sagemaker", region_name=target.region)),
        )


def assume(base: Any, arn: str, purpose: str) -> Any:
    """A session under `arn`, assumed from `base` (None: the caller's own credentials), named
    after `purpose` so CloudTrail shows who came and why."""
    import boto3

    sts = (base or boto3.Session()).client("sts")
    name = "".join(c if c.isalnum() or c in "=,.@-" else "-" for c in purpose)[:64]
    creds = sts.assume_role(RoleArn=arn, RoleSessionName=name)["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


@dataclass(frozen=True)
class Place:
    """Where a rollback of `env` acts, by the manifest's names."""

    env: EnvName
    pipeline: str
    table: str
    stack: str
    endpoint: str
    service_role: str
    stages: tuple[str, ...]

    @classmethod
    def of(cls, manifest: Manifest, env: EnvName) -> Place:
        names = Names.of(manifest)
        account = manifest.environment(env).account
        return cls(
            env=env,
            pipeline=names.release_pipeline(),
            table=names.audit_table(),
            stack=names.serving_stack(env),
            endpoint=names.endpoint(env),
            service_role=role_arn(account, names.serving_cfn_role(env)),
            stages=release_stages(manifest, env),
        )

    @property
    def pk(self) -> str:
        return f"rollback#{self.pipeline}#{self.env}"


def release_stages(manifest: Manifest, env: str) -> tuple[str, ...]:
    """The release pipeline's stages that act on `env`: its deploy and verify stages, and the
    gates that judge it (after_staging) or lead to it (before_prod)."""
    names = Names.of(manifest)
    placement = GatePlacement.AFTER_STAGING if env == "staging" else GatePlacement.BEFORE_PROD
    gates = [names.gate_stage(g.name) for g in manifest.pipeline_gates if g.placement is placement]
    return (f"Deploy{env.capitalize()}", f"Verify{env.capitalize()}", *gates)


def version_of(arn: str | None) -> int | None:
    """The version a model package ARN names (…/<group>/<version>), None if none."""
    tail = str(arn or "").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


# --- the time from the command to traffic back --------------------------------------------


@dataclass(frozen=True)
class Timing:
    """What the environment's rollout makes of a rollback (a blue/green update like any
    release, BLUE_GREEN): the new (green) fleet of the old version starts first, a step
    of the traffic moves to it, and each step bakes `bake` minutes under the rollback alarms."""

    guardrail: str
    steps: int
    bake: int
    termination_wait: int
    first_share: float

    @classmethod
    def of(cls, manifest: Manifest, env: EnvName) -> Timing:
        serving = manifest.env_serving(env)
        rollout = serving.rollout
        # A serverless endpoint has no instances to shift: its update is all at once
        # (mlgate/manifest/document.py's rollout rules read it the same way).
        if serving.mode is ServingMode.SERVERLESS or rollout.policy is RolloutPolicy.ALL_AT_ONCE:
            steps, share = 1, 100.0
            guardrail = "all at once"
        else:
            shifted, share = rollout.first_step(serving.instance_count)
            if rollout.policy is RolloutPolicy.CANARY:
                steps = 2
                guardrail = (
                    f"canary {rollout.canary_percent} % ({shifted} instance(s), {share:g} %)"
                )
            else:
                steps = math.ceil(serving.instance_count / shifted)
                guardrail = (
                    f"linear {rollout.linear_step_percent} % steps ({steps} steps of {shifted} "
                    "instance(s))"
                )
        guardrail += (
            f", bake {rollout.bake_minutes} min per step under the rollback alarms, old fleet "
            f"kept {rollout.termination_wait_minutes} min, {serving.mode.value} mode"
        )
        return cls(guardrail, steps, rollout.bake_minutes, rollout.termination_wait_minutes, share)

    @property
    def all_traffic_minutes(self) -> int:
        """From the new fleet InService to all traffic on it: one bake per step but the last."""
        return (self.steps - 1) * self.bake

    @property
    def stack_done_minutes(self) -> int:
        """From the new fleet InService to the update's end: every step's bake, then the old
        fleet's termination wait (mlgate/infra/service_rules.py's deployment-timeout rule)."""
        return self.steps * self.bake + self.termination_wait

    def lines(self) -> list[str]:
        first = "all" if self.first_share >= 100 else f"{self.first_share:g} %"
        return [
            f"guardrail  {self.guardrail}",
            f"traffic    {first} of it back on the old version once its new fleet is "
            "InService (the fleet's start-up: minutes, not set by the manifest); all of it "
            f"{self.all_traffic_minutes} min after that; the command ends "
            f"{self.stack_done_minutes} min after that ({BLUE_GREEN})",
        ]


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


def plan(manifest: Manifest, place: Place, clients: Clients, to: int | None, now: float) -> Plan:
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
    manifest: Manifest
    place: Place
    clients: Clients
    out: TextIO
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.audit = AuditTrail(
            self.clients.dynamodb, self.place.table, keep_days=self.manifest.retention.audit
        )
        self.locked = False
        """Whether this run holds the environment's lock (took it, or resumes a rollback that
        holds it): from then on the audit trail says how far it got."""

    def say(self, line: str) -> None:
        print(line, file=self.out)

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

    def take_lock(self, plan: Plan, by: str, identity: str, reason: str) -> dict[str, str]:
        now = self.clock()
        minutes = self.manifest.env_serving(self.place.env).rollout.max_execution_timeout_minutes
        expires = int(now) + (minutes + LOCK_MARGIN_MINUTES) * 60
        lock = {
            "id": uuid.uuid4().hex[:12],
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

    def run(self, plan: Plan, *, by: str, reason: str, wait: bool) -> int:
        place, target = self.place, plan.target
        if plan.resume is None:
            identity = self.clients.sts.get_caller_identity()["Arn"]
            lock = self.take_lock(plan, by, identity, reason)
        else:
            lock = plan.resume
            self.say(f"resuming rollback {lock['id']} (by {lock['by']}, {lock['started']})")
        self.locked = True
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
        cfn, place = self.clients.cloudformation, self.place
        deadline = float(lock["expires_at"])
        while True:
            status = str(cfn.describe_stacks(StackName=place.stack)["Stacks"][0]["StackStatus"])
            if not status.endswith(IN_PROGRESS) or self.clock() > deadline:
                break
            self.sleep(POLL_SECONDS)
        if status not in DONE:
            why = f"{place.stack} ended {status}: {rollback_reason(cfn, place.stack)}"
            return self.failed(lock, why)
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
        if serving.modified is not None:
            record = served_item(
                pipeline=place.pipeline,
                env=place.env,
                when=serving.modified,
                version=int(target["model_version"]),
                document=target,
                execution=f"rollback-{lock['id']}",
                endpoint=place.endpoint,
            )
            record["rolled_back_from"] = {"S": lock["from_version"]}
            self.audit.append(record)
        self.event(
            lock, "rollback-completed", f"{place.endpoint} serves {target['model_data_url']}"
        )
        self.release_lock(lock)
        self.say(f"rolled back: {place.env} serves version {lock['to_version']} again")
        return 0

    def failed(self, lock: dict[str, str], why: str) -> int:
        self.event(lock, "rollback-failed", why)
        self.release_lock(lock)
        self.say(f"rollback failed: {why}")
        return 1


def print_plan(out: TextIO, manifest: Manifest, place: Place, plan: Plan) -> None:
    target = plan.target
    for line in (
        f"rollback   {manifest.product.name} {place.env} ({place.stack})",
        f"from       version {plan.current_version} (served since {plan.current_since})",
        f"to         version {target['model_version']} (served {target['when']}, "
        f"{target['model_data_url']})",
        *Timing.of(manifest, place.env).lines(),
    ):
        print(line, file=out)


@contextmanager
def refusals(err: TextIO) -> Iterator[list[int]]:
    code: list[int] = []
    try:
        yield code
    except Refused as refused:
        print(f"mlgate rollback: refused: {refused}", file=err)
        code.append(REFUSED)


def rollback(
    manifest: Manifest,
    env: str,
    *,
    to: int | None,
    reason: str,
    by: str,
    wait: bool = True,
    clients: Clients | None = None,
    place: Place | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> int:
    """Run one rollback; 0 done (or started, --no-wait), 1 failed, 2 refused. `clients` and
    `place` default to the manifest's (the rehearsal passes its own world's)."""
    with refusals(err) as refused:
        if env not in ENV_NAMES:
            raise Refused(f"{env!r} is no environment: {', '.join(ENV_NAMES)}")
        allowed = manifest.rollback_approvers
        if by not in allowed:
            raise Refused(
                f"--by {by!r} may not roll back {manifest.product.name}: allowed "
                f"{', '.join(allowed) or 'nobody'} (delivery.rollback_approvers)"
            )
        if not reason.strip():
            raise Refused("--reason is empty: say why")
        place = place or Place.of(manifest, env)
        runner: Rollback | None = None
        try:
            clients = clients or Clients.of(manifest, env, sleep)
            the_plan = plan(manifest, place, clients, to, clock())
            print_plan(out, manifest, place, the_plan)
            runner = Rollback(manifest, place, clients, out, sleep, clock)
            return runner.run(the_plan, by=by, reason=reason, wait=wait)
        except (ClientError, BotoCoreError) as failure:
            # Before the lock nothing was written; after it, the audit trail says how far it
            # got and the same command resumes.
            then = (
                "run the same command again to resume once it is fixed"
                if runner is not None and runner.locked
                else "nothing was written or changed: run the command again once it is fixed"
            )
            print(f"mlgate rollback: failed: {failure}; {then}", file=err)
            return 1
    return refused[0] if refused else REFUSED
