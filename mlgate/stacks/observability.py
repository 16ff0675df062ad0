"""Observability, per environment: the on-call dashboard by metric tier, and its alarms."""

from __future__ import annotations

from constructs import Construct

from mlgate.constructs.monitoring import Hook, ProductMonitoring
from mlgate.events import etl_job_name, quality_job_name
from mlgate.manifest import EnvName, Manifest
from mlgate.stacks.base import ProductStack
from mlgate.stacks.foundation import FoundationStack
from mlgate.stacks.serving import VARIANT, ServingStack
from mlgate.stacks.training import training_pipeline_name


class ObservabilityStack(ProductStack):
    component = "observability"

    def __init__(
        self,
        scope: Construct,
        *,
        manifest: Manifest,
        env_name: EnvName,
        foundation: FoundationStack,
        serving: ServingStack,
        hooks: list[Hook],
        external_alarms: list[str],
    ) -> None:
        super().__init__(
            scope,
            manifest=manifest,
            env_name=env_name,
            description=f"{env_name} dashboard by metric tier, alarms with owners and runbooks",
        )
        self.monitoring = ProductMonitoring(
            self,
            "Monitoring",
            manifest=manifest,
            env=env_name,
            key=foundation.key,
            on_call=foundation.on_call_topic,
            endpoint=serving.endpoint_name,
            variant=VARIANT,
            glue_jobs=[etl_job_name(self.product), quality_job_name(self.product)],
            training_pipeline=training_pipeline_name(self.product),
            hooks=hooks,
            external_alarms=[*serving.rollback_alarm_names, serving.drift_alarm_name,
                             *external_alarms],
        )  # fmt: skip
