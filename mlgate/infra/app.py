"""Builds the whole mlgate CDK app: every stack of every product manifest."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk

from mlgate.infra.constructs.compliance import enable_compliance_checks
from mlgate.infra.constructs.event_rules import watched_rules
from mlgate.infra.constructs.observability import Hook
from mlgate.infra.naming import home_env
from mlgate.infra.stacks.advisor import REGION as ADVISOR_REGION
from mlgate.infra.stacks.advisor import AdvisorStack
from mlgate.infra.stacks.data import DataStack
from mlgate.infra.stacks.delivery import DeliveryStack
from mlgate.infra.stacks.foundation import (
    EnvironmentFoundationStack,
    FoundationStack,
    SiteStack,
    cost_alarm_names,
)
from mlgate.infra.stacks.monitoring import MonitoringStack
from mlgate.infra.stacks.observability import ObservabilityStack
from mlgate.infra.stacks.serving import ServingStack
from mlgate.infra.stacks.training import TrainingStack
from mlgate.manifest import ENV_NAMES, EnvName, Manifest, ManifestBatchError, load_manifests


@dataclass
class ProductStacks:
    """The stacks of one product, in data-flow order."""

    manifest: Manifest
    foundation: FoundationStack
    extra: dict[str, cdk.Stack] = field(default_factory=dict)

    @property
    def all(self) -> list[cdk.Stack]:
        return [self.foundation, *self.extra.values()]


def fresh_outdir() -> Path | None:
    """The output folder `cdk` asked for (CDK_OUTDIR), if it does not exist yet."""
    outdir = os.environ.get("CDK_OUTDIR")
    return Path(outdir) if outdir is not None and not Path(outdir).exists() else None


def manifests_or_exit(target: str, fresh: Path | None = None) -> list[Manifest]:
    """The manifests at `target` (a product folder, its manifest.yaml, or a folder of product
    folders). A bad one stops the synth here, each error on one line: nothing synthesized, and
    no output folder left behind where there was none."""
    try:
        return load_manifests(target)
    except ManifestBatchError as err:
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        print("\n".join(err.lines), file=sys.stderr)
        sys.exit(1)


def build_app(app: cdk.App, manifests: list[Manifest]) -> list[ProductStacks]:
    enable_compliance_checks(app)
    return [build_product(app, manifest) for manifest in manifests]


def build_product(app: cdk.App, manifest: Manifest) -> ProductStacks:
    foundation = FoundationStack(app, manifest=manifest)
    stacks = ProductStacks(manifest=manifest, foundation=foundation)
    data = DataStack(app, manifest=manifest, foundation=foundation)
    stacks.extra["data"] = data
    training = TrainingStack(app, manifest=manifest, foundation=foundation, data=data)
    stacks.extra["training"] = training
    sites: dict[EnvName, SiteStack] = {}
    for env in ENV_NAMES:
        if manifest.is_remote(env):
            sites[env] = EnvironmentFoundationStack(app, manifest=manifest, env_name=env)
            stacks.extra[f"foundation-{env}"] = sites[env]
        else:
            sites[env] = foundation
    # Trusted Advisor's events reach each foundation from us-east-1 (stacks/advisor.py).
    remote = [(f"advisor-{e}", sites[e]) for e in ENV_NAMES if manifest.is_remote(e)]
    for key, site in [("advisor", foundation), *remote]:
        if site.target.region != ADVISOR_REGION:
            stacks.extra[key] = AdvisorStack(
                app,
                manifest=manifest,
                env_name=site.env_name,
                account=site.target.account,
                region=site.target.region,
            )
    serving = {
        env: ServingStack(
            app,
            manifest=manifest,
            env_name=env,
            foundation=foundation,
            site=sites[env],
            data=data,
        )
        for env in ENV_NAMES
    }
    for env in ENV_NAMES:
        stacks.extra[f"serving-{env}"] = serving[env]
    # A serverless environment captures no traffic: nothing to monitor (stacks/serving.py).
    monitoring = {
        env: MonitoringStack(
            app, manifest=manifest, env_name=env, foundation=foundation, site=sites[env]
        )
        for env in ENV_NAMES
        if manifest.monitored(env)
    }
    for env, watcher in monitoring.items():
        # It reads the live-version parameters Serving keeps, and takes over the monitor role
        # name Serving held before monitoring moved out of it.
        watcher.add_stack_dependency(serving[env])
        stacks.extra[f"monitoring-{env}"] = watcher
    delivery = DeliveryStack(app, manifest=manifest, foundation=foundation, data=data)
    stacks.extra["delivery"] = delivery
    release_hooks = [
        Hook(name, hook.function, hook.failure_alarm_name)
        for name, hook in (
            ("release", delivery.release),
            ("deployer", delivery.deployer),
            ("deploy_verifier", delivery.verifier),
            ("quality_gate", delivery.quality_gate),
            ("gate_notifier", delivery.notifier),
            ("gate_callback", delivery.callback),
            ("pipeline_starter", training.starter),
            ("model_card", delivery.model_cards),
            ("rollback", delivery.rollback_hook),
        )
        if hook is not None
    ]
    # A release gate that waited too long is a prod matter, shown where its alarm lives: the
    # home account's prod dashboard, or staging's when prod is in another account.
    gate_wait_env: EnvName = home_env(manifest)
    # Each rule's dropped events alarm where its hooks' alarms do: an environment's own stacks
    # on its dashboard, the product-wide stacks' with the gate wait.
    rules: dict[EnvName, list[str]] = {env: [] for env in ENV_NAMES}
    for stack in stacks.all:
        env_name = getattr(stack, "env_name", None) or gate_wait_env
        rules[env_name] += watched_rules(stack)
    for env in ENV_NAMES:
        drift = serving[env].drift_responder
        drift_hook = (
            [Hook("drift_responder", drift.function, drift.failure_alarm_name)] if drift else []
        )
        batch = serving[env].batch
        if batch is not None:
            drift_hook.append(Hook("batch_run", batch.hook.function, batch.hook.failure_alarm_name))
        # A product-wide hook's alarms live once, in the home environment (Names.alarm's
        # rule): both dashboards of one account would page twice for one function.
        local = release_hooks if env == gate_wait_env else []
        stacks.extra[f"observability-{env}"] = ObservabilityStack(
            app,
            manifest=manifest,
            env_name=env,
            site=sites[env],
            serving=serving[env],
            monitoring=monitoring.get(env),
            hooks=[*local, *drift_hook],
            external_alarms=[
                *(delivery.product_alarm_names if env == gate_wait_env else []),
                *serving[env].scaling_alarm_names,
                *cost_alarm_names(manifest, env),
                # The Trusted Advisor forwarding rule's alarm, in us-east-1, by ARN.
                *[
                    s.alarm_arn
                    for s in stacks.extra.values()
                    if isinstance(s, AdvisorStack) and (s.env_name or gate_wait_env) == env
                ],
            ],
            event_rules=rules[env],
        )
        # The dashboard's composite alarm names the Serving stack's rollback alarms by ARN,
        # which makes no dependency of its own: CloudWatch refuses a composite alarm whose
        # alarms do not exist yet, so the Serving stack deploys first.
        stacks.extra[f"observability-{env}"].add_dependency(
            serving[env], "its composite alarm names the Serving stack's alarms"
        )
    return stacks
