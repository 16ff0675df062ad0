"""What a rollback acts on and what the environment's rollout makes of it: the release stages
that act on an environment, the time from the request to traffic back on the old version, and
the rollback hook's context. `python -m mlgate rollback` prints it with its plan; the rollback
hook's chat message says it (mlgate/infra/constructs/rollback.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlgate.infra.naming import Names, role_arn
from mlgate.manifest import ENV_NAMES, EnvName, GatePlacement, Manifest, RolloutPolicy
from mlgate.manifest.serving import ServingMode

BLUE_GREEN = "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html"


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
        if serving.mode is ServingMode.BATCH:
            # No traffic to move: the update replaces the model the next run scores with.
            return cls("a switch of the model the next batch run scores with", 0, 0, 0, 100.0)
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
        if self.steps == 0:
            return [
                f"guardrail  {self.guardrail}",
                "traffic    none: the runs after the switch score with the old version; the "
                "command ends once CloudFormation has replaced the model (minutes)",
            ]
        first = "all" if self.first_share >= 100 else f"{self.first_share:g} %"
        return [
            f"guardrail  {self.guardrail}",
            f"traffic    {first} of it back on the old version once its new fleet is "
            "InService (the fleet's start-up: minutes, not set by the manifest); all of it "
            f"{self.all_traffic_minutes} min after that; the command ends "
            f"{self.stack_done_minutes} min after that ({BLUE_GREEN})",
        ]


def release_stages(manifest: Manifest, env: str) -> tuple[str, ...]:
    """The release pipeline's stages that act on `env`: its deploy and verify stages, and the
    gates that judge it (after_staging) or lead to it (before_prod)."""
    names = Names.of(manifest)
    placement = GatePlacement.AFTER_STAGING if env == "staging" else GatePlacement.BEFORE_PROD
    gates = [names.gate_stage(g.name) for g in manifest.pipeline_gates if g.placement is placement]
    title = env.capitalize()
    # A Shadow stage updates the Serving stack too (adding and removing the shadow variant).
    shadow = (f"Shadow{title}",) if manifest.env_serving(env).shadow else ()  # type: ignore[arg-type]
    return (*shadow, f"Deploy{title}", f"Verify{title}", *gates)


def rollback_context(manifest: Manifest, offer: tuple[EnvName, ...] = ("prod",)) -> dict[str, Any]:
    """What the rollback hook acts on (mlgate/runtime/hooks/rollback), as JSON for its
    environment: the rollback approvers with their Slack ids, and per environment where its
    rollback acts (the CLI's Place), the roles it goes through in another account, its
    rollout's timeout and guardrail, and whether its verified releases offer the button."""
    names = Names.of(manifest)
    environments: dict[str, Any] = {}
    for env in ENV_NAMES:
        there = manifest.environment(env)
        remote = manifest.is_remote(env)
        environments[env] = {
            "region": there.region,
            "stack": names.serving_stack(env),
            "endpoint": names.endpoint(env),
            "service_role": role_arn(there.account, names.serving_cfn_role(env)),
            "stages": list(release_stages(manifest, env)),
            "verify_stage": f"Verify{env.capitalize()}",
            "deploy_role": role_arn(there.account, names.deploy_role(env)) if remote else None,
            "verify_role": role_arn(there.account, names.verify_role(env)) if remote else None,
            "timeout_minutes": manifest.env_serving(env).rollout.max_execution_timeout_minutes,
            "guardrail": Timing.of(manifest, env).guardrail,
            "offer": env in offer,
            "sample": manifest.sample_record,
            "mode": manifest.env_serving(env).mode.value,
            "live_parameter": Names.of(manifest, env).live_release_parameter("model-package")
            if manifest.is_batch(env)
            else None,
        }
    contact = manifest.contact
    return {
        "product": manifest.product.name,
        "display_name": manifest.product.display_name,
        "approvers": [
            {"contact": a, "name": contact(a).name, "slack_user_id": contact(a).slack_user_id or ""}
            for a in manifest.rollback_approvers
        ],
        "environments": environments,
    }
