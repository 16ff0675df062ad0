"""Observability, per environment: the on-call dashboard by metric tier, and its alarms."""

from __future__ import annotations

from constructs import Construct

from mlgate.infra.constructs.observability import (
    Hook,
    Kpi,
    ModelMetric,
    Owners,
    ProductMonitoring,
    ProductMonitoringProps,
)
from mlgate.infra.naming import Names
from mlgate.infra.stacks.base import ProductStack
from mlgate.infra.stacks.foundation import SiteStack
from mlgate.infra.stacks.monitoring import MonitoringStack
from mlgate.infra.stacks.serving import VARIANT, ServingStack
from mlgate.manifest import Direction, EnvName, Manifest, SloKind
from mlgate.manifest.schedules import schedule_interval_hours


def monitoring_props(manifest: Manifest, env: EnvName) -> ProductMonitoringProps:
    """What the environment's dashboard and alarms take from the manifest."""
    product, contact, monitoring = manifest.product, manifest.contact, manifest.monitoring
    latency = manifest.metrics.slo(SloKind.LATENCY_P99_MS)
    return ProductMonitoringProps(
        names=Names.of(manifest, env),
        display_name=product.display_name,
        objective=product.objective,
        runbook_url=product.runbook_url,
        owners=Owners(
            product_manager=contact(product.owners.product_manager),
            ml_lead=contact(product.owners.ml_lead),
            on_call=contact(product.owners.on_call),
        ),
        engine=monitoring.engine.value,
        run_hours=schedule_interval_hours(monitoring.schedule),
        kpis=tuple(
            Kpi(
                name=k.name,
                description=k.description,
                owner=contact(k.owner),
                target=k.target,
                at_least=k.direction is Direction.AT_LEAST,
                unit=k.unit,
                metric_name=k.metric_name,
                namespace=k.namespace,
            )
            for k in manifest.metrics.business_kpis
        ),
        model_metrics=tuple(
            ModelMetric(
                name=m.name.value,
                description=m.description,
                owner=contact(m.owner),
                threshold=m.threshold,
                at_least=m.direction is Direction.AT_LEAST,
            )
            for m in manifest.metrics.model_metrics
        ),
        ground_truth=monitoring.ground_truth_s3_uri is not None,
        retrain_cooldown_hours=monitoring.retrain_cooldown_hours,
        drift_threshold=monitoring.drift_threshold,
        feature_drift_thresholds=tuple(monitoring.feature_drift_thresholds.values()),
        payload_columns=tuple(manifest.payload_columns),
        latency_slo_ms=latency.threshold if latency else None,
        mode=manifest.env_serving(env).mode.value,
        batch_late_minutes=manifest.env_serving(env).batch_settings.max_run_minutes
        if manifest.is_batch(env)
        else None,
    )


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
        monitoring: MonitoringStack | None,
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
            props=monitoring_props(manifest, env_name),
            key=site.key,
            alarms=self.alarm_factory(site.on_call_topic),
            endpoint=serving.endpoint_name,
            variant=VARIANT,
            component=serving.component_name,
            glue_jobs=[self.names.etl_job(), self.names.quality_job()] if home else [],
            training_pipeline=self.names.training_pipeline() if home else None,
            hooks=hooks,
            model_alarms=list(serving.rollback_alarm_names),
            # None: a serverless environment, which captures no traffic to monitor.
            reports_uri=monitoring.reports_uri if monitoring else None,
            external_alarms=external_alarms,
            event_rules=event_rules,
        )
