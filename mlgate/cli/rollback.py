"""`python -m mlgate rollback PATH ENV [--to VERSION] --reason TEXT --by CONTACT [--no-wait]`.

Puts an environment back on a version it served before, through the same Serving stack update
a release makes (the deployer's: UpdateStack on the previous template, the stack's own service
role, the blue/green guardrails and rollback alarms of the environment's rollout), then checks
the endpoint as the deploy verifier does (InService, serving the target's model artifact, and
answering the manifest's sample but on an asynchronous endpoint). A batch environment has no
endpoint: the update switches the model its next runs score with, checked on its live model
package parameter; no sample is sent.

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

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from mlgate.infra.naming import Names, role_arn
from mlgate.infra.rollback_timing import Timing, release_stages
from mlgate.manifest import ENV_NAMES, EnvName, Manifest
from mlgate.manifest.serving import ServingMode

HOOKS = Path(__file__).resolve().parents[1] / "runtime" / "hooks"
if str(HOOKS) not in sys.path:  # the hooks' shared code imports as in Lambda: `shared.*`
    sys.path.insert(0, str(HOOKS))

import shared.rollback as core  # noqa: E402
from shared.rollback import (  # noqa: E402
    LOCK_MARGIN_MINUTES,
    Plan,
    Refused,
    Rollback,
    pick_target,
    plan,
    version_of,
)

__all__ = [
    "LOCK_MARGIN_MINUTES",
    "Clients",
    "Place",
    "Plan",
    "Refused",
    "Retrying",
    "Rollback",
    "Timing",
    "pick_target",
    "plan",
    "rollback",
    "version_of",
]

REFUSED = 2
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


class Clients(core.Clients):
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
            runtime=wrap(verify.client("sagemaker-runtime", region_name=target.region)),
            ssm=wrap(verify.client("ssm", region_name=target.region)),
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


class Place(core.Place):
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
            sample=manifest.sample_record,
            queued=manifest.env_serving(env).mode is ServingMode.ASYNC,
            live_parameter=names.live_release_parameter("model-package", env)
            if manifest.is_batch(env)
            else "",
        )


def print_plan(
    out: TextIO, manifest: Manifest, env: EnvName, place: core.Place, plan: Plan
) -> None:
    target = plan.target
    for line in (
        f"rollback   {manifest.product.name} {place.env} ({place.stack})",
        f"from       version {plan.current_version} (served since {plan.current_since})",
        f"to         version {target['model_version']} (served {target['when']}, "
        f"{target['model_data_url']})",
        *Timing.of(manifest, env).lines(),
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
            the_plan = plan(place, clients, to, clock())
            print_plan(out, manifest, env, place, the_plan)
            runner = Rollback(
                place,
                clients,
                timeout_minutes=manifest.env_serving(env).rollout.max_execution_timeout_minutes,
                keep_days=manifest.retention.audit,
                say=lambda line: print(line, file=out),
                sleep=sleep,
                clock=clock,
            )
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
