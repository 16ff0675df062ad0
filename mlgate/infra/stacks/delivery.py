"""Delivery: the release pipeline that carries one approved model version from staging to prod
through the manifest's stage gates, the hooks that post, take and record decisions, and the
audit trail they all write."""

from __future__ import annotations

from constructs import Construct

from mlgate.infra.constructs.gate_hooks import GateCallback, GateNotifier, SlackSecret
from mlgate.infra.constructs.hooks import AuditTrail
from mlgate.infra.constructs.release_hooks import Deployer, DeployVerifier, QualityGate, ReleaseHook
from mlgate.infra.constructs.release_pipeline import ReleasePipeline
from mlgate.infra.constructs.storage import SecureBucket
from mlgate.infra.naming import Names
from mlgate.infra.stacks.base import ProductStack
from mlgate.infra.stacks.data import DataStack
from mlgate.infra.stacks.foundation import FoundationStack
from mlgate.manifest import GateKind, Manifest


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
        names = Names.of(manifest)
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
        self.deployer = Deployer(self, "Deployer", manifest=manifest, key=key, alarms=alarms)
        self.verifier = DeployVerifier(
            self, "DeployVerifier", manifest=manifest, key=key, alarms=alarms
        )
        # The quality gate hook exists only for a product whose manifest has an automated gate.
        self.quality_gate = (
            QualityGate(
                self,
                "QualityGate",
                manifest=manifest,
                key=key,
                alarms=alarms,
                audit=self.audit_table,
                idempotency=foundation.idempotency,
            )
            if any(g.kind is GateKind.AUTOMATED for g in manifest.pipeline_gates)
            else None
        )
        self.release_pipeline = ReleasePipeline(
            self,
            "ReleasePipeline",
            manifest=manifest,
            key=key,
            releases=self.release_bucket,
            artifacts=self.pipeline_artifacts,
            deployer=self.deployer,
            verifier=self.verifier,
            quality_gate=self.quality_gate,
        )
        self.notifier = GateNotifier(
            self,
            "GateNotifier",
            manifest=manifest,
            key=key,
            alarms=alarms,
            audit=self.audit_table,
            idempotency=foundation.idempotency,
            pipeline=self.release_pipeline,
            webhook=SlackSecret(
                self,
                "SlackWebhook",
                manifest=manifest,
                key=key,
                description="Slack incoming-webhook URL the gate briefs are posted to",
            ),
            quality_job=data.names.quality_job(),
        )
        self.callback = GateCallback(
            self,
            "GateCallback",
            manifest=manifest,
            key=key,
            alarms=alarms,
            audit=self.audit_table,
            pipeline=self.release_pipeline,
            signing=SlackSecret(
                self,
                "SlackSigningSecret",
                manifest=manifest,
                key=key,
                description="Slack app that may decide gates, as JSON: signing_secret "
                "(authenticates button clicks), team_id and app_id (the workspace and app whose "
                "clicks count)",
            ),
        )
        self.release = ReleaseHook(
            self,
            "Release",
            manifest=manifest,
            key=key,
            alarms=alarms,
            audit=self.audit_table,
            idempotency=foundation.idempotency,
            pipeline_arn=self.release_pipeline.pipeline.pipeline_arn,
        )
        self.gate_wait_alarm_name = self.callback.wait_alarm_name
        # Every audit item expires (the table's TTL on expires_at) after the manifest's
        # retention.audit days, counted from when its writer puts it (lambdas/shared/audit.py).
        for writer in (self.notifier, self.callback, self.release, self.quality_gate):
            if writer is not None:
                writer.function.add_environment(
                    "AUDIT_RETENTION_DAYS", str(manifest.retention.audit)
                )
