"""Observability, per environment: the on-call dashboard by metric tier, and its alarms."""

from __future__ import annotations

from constructs import Construct

from mlgate.infra.constructs.observability import Hook, ProductMonitoring
from mlgate.infra.stacks.base import ProductStack
from mlgate.infra.stacks.foundation import SiteStack
from mlgate.infra.stacks.monitoring import MonitoringStack
from mlgate.infra.stacks.serving import VARIANT, ServingStack
from mlgate.manifest import EnvName, Manifest


class ObservabilityStack(ProductStack):
    component = "observability"

    def __init__(
        self,
        scope: Construct,
        *,
        manifest: Manifest,
        env_name: EnvName,
        site: SiteStack,
        serving: ServingStack,
        monitoring: MonitoringStack,
        hooks: list[Hook],
        external_alarms: list[str],
        event_rules: list[str],
    ) -> None:
        super().__init__(
            scope,
            manifest=manifest,
            env_name=env_name,
            description=f"{env_name} dashboard by metric tier, alarms with owners and runbooks",
        )
        # Product-wide jobs (ETL, training) run in the home account; an environment in another
        # account shows only what runs there (the home dashboards show the rest).
        home = not manifest.is_remote(env_name)
        self.monitoring = ProductMonitoring(
            self,
            "Monitoring",
            manifest=manifest,
            env=env_name,
            key=site.key,
            alarms=self.alarm_factory(site.on_call_topic),
            endpoint=serving.endpoint_name,
            variant=VARIANT,
            glue_jobs=[self.names.etl_job(), self.names.quality_job()] if home else [],
            training_pipeline=self.names.training_pipeline() if home else None,
            hooks=hooks,
            model_alarms=list(serving.rollback_alarm_names),
            reports_uri=monitoring.reports_uri,
            external_alarms=external_alarms,
            event_rules=event_rules,
        )
