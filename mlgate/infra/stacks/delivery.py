"""Delivery: the release pipeline that carries one approved model version from staging to prod
through the manifest's stage gates, the hooks that post, take and record decisions, the
audit trail they all write, and each model version's model card, whose status follows the
gates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_iam as iam
from constructs import Construct

from mlgate.infra import accounts, cards
from mlgate.infra.batch_settings import batch_checks
from mlgate.infra.constructs.endpoint import SHADOW_VARIANT, VARIANT, capture_prefix
from mlgate.infra.constructs.gate_hooks import (
    GateCallback,
    GateCallbackProps,
    GateNotifier,
    GateNotifierProps,
    SlackSecret,
)
from mlgate.infra.constructs.hooks import AuditTrail
from mlgate.infra.constructs.model_cards import ModelCardProps, ModelCards
from mlgate.infra.constructs.observability import s3_console_url
from mlgate.infra.constructs.release_hooks import (
    Deployer,
    DeployerProps,
    DeployVerifier,
    DeployVerifierProps,
    EnvironmentAccess,
    QualityGate,
    QualityGateProps,
    ReleaseHook,
    ReleaseProps,
)
from mlgate.infra.constructs.release_pipeline import (
    DeployTarget,
    PipelineGate,
    ReleasePipeline,
    ReleasePipelineProps,
)
from mlgate.infra.constructs.rollback import (
    RollbackHook,
    RollbackHookProps,
    RollbackProps,
    RollbackRole,
)
from mlgate.infra.constructs.storage import SecureBucket
from mlgate.infra.gates import encoded, gate_context, thresholds
from mlgate.infra.naming import Names, role_arn
from mlgate.infra.rollback_timing import rollback_context
from mlgate.infra.stacks.base import ProductStack, reports_prefix
from mlgate.infra.stacks.data import DataStack
from mlgate.infra.stacks.foundation import FoundationStack
from mlgate.manifest import ENV_NAMES, EnvName, GateKind, GatePlacement, Manifest

# --- what each construct of this stack takes from the manifest --------------------------------

Access = Callable[[Manifest, EnvName], tuple[list[iam.PolicyStatement], accounts.Findings]]


def _access(
    manifest: Manifest, grant: Access, remote_role: Callable[[EnvName], str]
) -> tuple[EnvironmentAccess, ...]:
    """A release hook's access in each environment, in pipeline order: `grant`'s statements
    in the home account, the environment's `remote_role` in another."""
    found = []
    for env in ENV_NAMES:
        if manifest.is_remote(env):
            account = manifest.environment(env).account
            found.append(EnvironmentAccess(role_arn=role_arn(account, remote_role(env))))
        else:
            statements, findings = grant(manifest, env)
            found.append(EnvironmentAccess(statements=tuple(statements), findings=findings))
    return tuple(found)


def shadow_judged(manifest: Manifest, env: EnvName) -> dict[str, Any] | None:
    """What the Shadow stage's verifier judges the environment's shadow test by (the
    verifier's ShadowParameters), None without one."""
    test = manifest.env_serving(env).shadow
    if test is None:
        return None
    there = manifest.environment(env)
    site = Names.of(manifest, env if manifest.is_remote(env) else None)
    bucket = site.bucket("artifacts", there.account, there.region)
    return {
        "variant": SHADOW_VARIANT,
        "production_variant": VARIANT,
        "minutes": test.minutes,
        "sampling_percent": test.sampling_percent,
        "capture_uri": f"s3://{bucket}/{capture_prefix(env)}",
        "thresholds": {
            "min_requests": test.min_requests,
            "max_latency_ratio": test.max_latency_ratio,
            "max_error_rate": test.max_error_rate,
            "max_prediction_shift": test.max_prediction_shift,
        },
    }


@dataclass(frozen=True)
class DeliveryProps:
    """Every construct's props of the Delivery stack, built from the manifest here only."""

    release: ReleaseProps
    deployer: DeployerProps
    verifier: DeployVerifierProps
    quality_gate: QualityGateProps | None
    pipeline: ReleasePipelineProps
    callback: GateCallbackProps
    cards: ModelCardProps
    approval_hours: int
    audit_days: int

    @classmethod
    def of(cls, manifest: Manifest) -> DeliveryProps:
        names = Names.of(manifest)
        home = manifest.environments.staging
        release = ReleaseProps(
            names=names, home_artifacts=names.bucket("artifacts", home.account, home.region)
        )
        contact = manifest.contact
        queue = accounts.staging_queue_access(manifest)
        gates = tuple(
            PipelineGate(
                name=g.name,
                description=g.description,
                manual=g.kind is GateKind.MANUAL,
                approvers=tuple(contact(a) for a in g.approvers),
                timeout_hours=g.timeout_hours,
                requires_all=g.requires == "all",
                before_prod=g.placement is GatePlacement.BEFORE_PROD,
            )
            for g in manifest.pipeline_gates
        )
        automated = any(g.kind is GateKind.AUTOMATED for g in manifest.pipeline_gates)
        return cls(
            release=release,
            deployer=DeployerProps(
                release=release,
                access=_access(manifest, accounts.deploy_access, names.deploy_role),
            ),
            verifier=DeployVerifierProps(
                release=release,
                access=_access(manifest, accounts.verify_access, names.verify_role),
                sample_payload=manifest.sample_record,
            ),
            quality_gate=QualityGateProps(
                release=release,
                thresholds=thresholds(manifest),
                smoke_requests=manifest.serving.smoke_requests,
                # An async staging endpoint takes its smoke load as queued requests.
                staging_queue=EnvironmentAccess(statements=tuple(queue[0]), findings=queue[1]),
                staging_endpoint=not manifest.is_batch("staging"),
            )
            if automated
            else None,
            pipeline=ReleasePipelineProps(
                names=names,
                display_name=manifest.product.display_name,
                chat_channel=manifest.product.chat_channel,
                gates=gates,
                targets={
                    env: DeployTarget(
                        service_role=accounts.serving_cfn_role_arn(manifest, env),
                        account=manifest.environment(env).account
                        if manifest.is_remote(env)
                        else None,
                        shadow=shadow_judged(manifest, env),
                        batch=batch_checks(manifest, env),
                    )
                    for env in ENV_NAMES
                },
            ),
            callback=GateCallbackProps(
                names=names,
                reserved_concurrency=manifest.delivery.callback_reserved_concurrency,
            ),
            cards=ModelCardProps(
                release=release,
                context=cards.encoded_context(manifest),
                card_prefix=cards.card_prefix(manifest),
                review_stage=names.gate_stage(cards.review_gate(manifest)),
                live_stage=cards.LIVE_STAGE,
            ),
            approval_hours=max(
                (g.timeout_hours for g in manifest.gates if g.kind is GateKind.MANUAL), default=1
            ),
            audit_days=manifest.retention.audit,
        )

    def notifier(
        self, manifest: Manifest, pipeline: ReleasePipeline, region: str
    ) -> GateNotifierProps:
        """The notifier's, once the pipeline (its brief topics) exists."""
        names = self.release.names
        # Staging runs in the home account: its reports are in the home artifact bucket.
        reports = f"s3://{self.release.home_artifacts}/{reports_prefix(manifest, 'staging')}"
        context = gate_context(
            manifest,
            brief_topics={name: topic.topic_arn for name, topic in pipeline.brief_topics.items()},
            dashboard_url=names.dashboard_url(region, "prod"),
            monitoring_url=s3_console_url(reports, region),
        )
        return GateNotifierProps(
            names=names, context=encoded(context), approval_hours=self.approval_hours
        )


class DeliveryStack(ProductStack):
    component = "delivery"

    def __init__(
        self,
        scope: Construct,
        *,
        manifest: Manifest,
        foundation: FoundationStack,
        data: DataStack,
    ) -> None:
        super().__init__(
            scope,
            manifest=manifest,
            description="release pipeline, stage gates, gate hooks, audit trail",
        )
        props = DeliveryProps.of(manifest)
        names = props.release.names
        key = foundation.key
        # Product-wide: the hooks' and gates' alarms belong to the home environment.
        alarms = self.alarm_factory(foundation.on_call_topic)
        self.audit_table = AuditTrail(self, "AuditTrail", key=key, table_name=names.audit_table())
        self.release_bucket = SecureBucket(
            self,
            "Releases",
            key=key,
            access_logs=foundation.access_logs,
            log_prefix="releases/",
            bucket_name=self.bucket_name("releases"),
        ).bucket
        self.pipeline_artifacts = SecureBucket(
            self,
            "PipelineArtifacts",
            key=key,
            access_logs=foundation.access_logs,
            log_prefix="pipeline-artifacts/",
            noncurrent_days=30,
        ).bucket
        self.deployer = Deployer(self, "Deployer", props=props.deployer, key=key, alarms=alarms)
        self.verifier = DeployVerifier(
            self, "DeployVerifier", props=props.verifier, key=key, alarms=alarms
        )
        # What each environment served, once verified: its "served" records, read by `python -m
        # mlgate rollback` (mlgate/runtime/hooks/shared/served.py); it may append those only.
        self.verifier.function.add_environment("AUDIT_TABLE", names.audit_table())
        self.audit_table.grant_append(self.verifier.role, ["served"], "dynamodb:PutItem")
        if any(manifest.env_serving(env).shadow for env in ENV_NAMES):
            # A Shadow stage: the verifier records the shadow test's verdict, the deployer
            # reads it once it has removed the shadow variant.
            self.audit_table.grant_append(
                self.verifier.role, ["shadow"], "dynamodb:PutItem", "dynamodb:GetItem"
            )
            self.audit_table.grant_append(self.deployer.role, ["shadow"], "dynamodb:GetItem")
            self.deployer.function.add_environment("AUDIT_TABLE", names.audit_table())
        # The quality gate hook exists only for a product whose manifest has an automated gate.
        self.quality_gate = (
            QualityGate(
                self,
                "QualityGate",
                props=props.quality_gate,
                key=key,
                alarms=alarms,
                audit=self.audit_table,
                idempotency=foundation.idempotency,
            )
            if props.quality_gate is not None
            else None
        )
        self.release_pipeline = ReleasePipeline(
            self,
            "ReleasePipeline",
            props=props.pipeline,
            key=key,
            releases=self.release_bucket,
            artifacts=self.pipeline_artifacts,
            deployer=self.deployer,
            verifier=self.verifier,
            quality_gate=self.quality_gate,
        )
        webhook = SlackSecret(
            self,
            "SlackWebhook",
            names=names,
            key=key,
            description="Slack incoming-webhook URL the gate briefs (and the Roll back "
            "button) are posted to",
        )
        self.notifier = GateNotifier(
            self,
            "GateNotifier",
            props=props.notifier(manifest, self.release_pipeline, self.target.region),
            key=key,
            alarms=alarms,
            audit=self.audit_table,
            idempotency=foundation.idempotency,
            pipeline=self.release_pipeline,
            webhook=webhook,
            quality_job=data.names.quality_job(),
        )
        self.callback = GateCallback(
            self,
            "GateCallback",
            props=props.callback,
            key=key,
            alarms=alarms,
            audit=self.audit_table,
            pipeline=self.release_pipeline,
            signing=SlackSecret(
                self,
                "SlackSigningSecret",
                names=names,
                key=key,
                description="Slack app that may decide gates, as JSON: signing_secret "
                "(authenticates button clicks), team_id and app_id (the workspace and app whose "
                "clicks count)",
            ),
        )
        self.release = ReleaseHook(
            self,
            "Release",
            props=props.release,
            key=key,
            alarms=alarms,
            audit=self.audit_table,
            idempotency=foundation.idempotency,
            pipeline_arn=self.release_pipeline.pipeline.pipeline_arn,
        )
        # `python -m mlgate rollback` runs as this role: what the deployer and the verifier may
        # do in each environment, its own audit items, the release pipeline's state.
        self.rollback = RollbackRole(
            self,
            "Rollback",
            props=RollbackProps(
                role_name=names.rollback_role(),
                home_account=self.target.account,
                pipeline_arn=self.release_pipeline.pipeline.pipeline_arn,
                deploy=props.deployer.access,
                verify=props.verifier.access,
                product=manifest.product.name,
            ),
            audit=self.audit_table,
        )
        # The chat's Roll back button: posted when prod is verified, clicked by a rollback
        # approver (the callback checks who), run by the rollback state machine as that role.
        self.rollback_hook = RollbackHook(
            self,
            "RollbackHook",
            props=RollbackHookProps(
                names=names,
                context=encoded(rollback_context(manifest)),
                offer_stages=("VerifyProd",),
                longest_minutes=max(
                    manifest.env_serving(env).rollout.max_execution_timeout_minutes
                    for env in ENV_NAMES
                ),
            ),
            key=key,
            alarms=alarms,
            role=self.rollback,
            webhook=webhook,
        )
        self.callback.take_rollbacks(self.rollback_hook.machine, self.audit_table)
        # Each registered version's model card, its status following the gates; the go-live
        # brief (the last manual gate's) links the version's card by its name.
        self.model_cards = ModelCards(self, "ModelCards", props=props.cards, key=key, alarms=alarms)
        self.notifier.function.add_environment("MODEL_CARD_PREFIX", props.cards.card_prefix)
        if any(manifest.env_serving(env).shadow for env in ENV_NAMES):
            # The briefs that follow a shadow test show its verdict.
            self.audit_table.grant_append(self.notifier.role, ["shadow"], "dynamodb:GetItem")
            shadowed = [env for env in ENV_NAMES if manifest.env_serving(env).shadow]
            self.notifier.function.add_environment("SHADOW_TESTS", ",".join(shadowed))
        self.gate_wait_alarm_name = self.callback.wait_alarm_name
        self.product_alarm_names = [
            self.gate_wait_alarm_name,
            *self.callback.flood_alarm_names,
        ]
        """The product-wide alarms of this stack (gates, the public callback): listed on the
        home environment's dashboard."""
        # Every audit item expires (the table's TTL on expires_at) after the manifest's
        # retention.audit days, counted from when its writer puts it (lambdas/shared/audit.py).
        writers = (
            self.notifier,
            self.callback,
            self.release,
            self.quality_gate,
            self.verifier,
            self.rollback_hook,
            # It reads the shadow test's verdict only, but holds AUDIT_TABLE with a Shadow stage.
            self.deployer if any(manifest.env_serving(e).shadow for e in ENV_NAMES) else None,
        )
        for writer in writers:
            if writer is not None:
                writer.function.add_environment("AUDIT_RETENTION_DAYS", str(props.audit_days))
