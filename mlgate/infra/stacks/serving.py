"""Serving, per environment: the endpoint of an approved model version with data capture,
blue/green guardrails that roll back on the SLO alarms, autoscaling, and the drift responder
that closes the retraining loop. What monitors the traffic lives in the Monitoring stack, so
that a monitor AWS refuses cannot roll a release back.

The model version arrives as parameters the deployer sets from release.json: `ModelPackageArn`
(the approved version, kept for monitoring and the audit), `ModelDataUrl` (the released copy of
its model artifact, which the SageMaker model serves with the manifest's serving image) and its
baseline; each parameter's AllowedPattern admits this product's versions and released copies
only, so CloudFormation refuses a forged value whoever submits it. The stack keeps the version
and its baseline in SSM parameters, where monitoring finds the live version. Until a version is
released, the stack holds only what needs no model: alarms, roles, the drift responder. The
endpoint appears with the first release.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import CfnCondition, CfnParameter, Fn
from aws_cdk import aws_events as events
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from mlgate.infra.batch_settings import batch_run
from mlgate.infra.constructs.batch import BatchProps, BatchScoring
from mlgate.infra.constructs.conditions import NEEDS_A_MODEL, condition_all
from mlgate.infra.constructs.drift import DriftProps, DriftResponder
from mlgate.infra.constructs.endpoint import (
    VARIANT,
    AsyncQueue,
    Component,
    EndpointProps,
    MonitoredEndpoint,
    OffHoursSchedule,
    RollbackSlo,
    Rollout,
    Scaling,
    ServerlessCapacity,
    ShadowVariant,
)
from mlgate.infra.ml.images import image_uris
from mlgate.infra.ml.pipeline import SERVING_CODE_DIR, script_mode
from mlgate.infra.naming import Names, role_arn
from mlgate.infra.stacks.base import (
    ProductStack,
    released_versions,
    reports_prefix,
    training_pipeline_arn,
)
from mlgate.infra.stacks.data import DataStack
from mlgate.infra.stacks.foundation import FoundationStack, SiteStack
from mlgate.infra.stacks.training import SCRIPTS, contract_file
from mlgate.manifest import EnvName, Manifest, MonitoringEngine
from mlgate.manifest.serving import EnvironmentServing, ServingMode

__all__ = ["VARIANT", "ServingStack"]

NO_MODEL = "none"
NO_BASELINE = "s3://no-model-released-yet"  # never read: monitoring waits for a release
NO_MODEL_DATA = f"{NO_BASELINE}/model.tar.gz"  # never served: the model waits for a release
NO_SHADOW = "none"  # no shadow variant (the deployer's, shared/served.py)
# The L3 constructs' own ids are left out of their resources' logical IDs, which stay what they
# were before the stack was split into constructs: CloudFormation replaces a resource whose
# logical ID changes, and a replaced endpoint (or custom-named role, alarm, table) is an outage
# or a failed update (see the end of ServingStack.__init__).


def logical_id(path: list[str]) -> str:
    """CDK's `makeUniqueId` (core/lib/private/uniqueid.ts): the path's ids without
    `Default`, de-duplicated and alphanumeric, then 8 hex digits of the path's MD5."""
    path = [part for part in path if part != "Default"]
    if len(path) == 1:
        return re.sub("[^A-Za-z0-9]", "", path[0])
    digest = hashlib.md5("/".join(path).encode()).hexdigest()[:8].upper()
    human: list[str] = []
    for part in path:
        if not human or not human[-1].endswith(part):
            human.append(part)
    readable = "".join(re.sub("[^A-Za-z0-9]", "", p) for p in human if p != "Resource")
    return readable[:240] + digest


def _literal(text: str) -> str:
    """`text` matched literally in an AllowedPattern (CloudFormation's are Java regular
    expressions: backslash escapes, as Python's re.escape writes them)."""
    return re.escape(text)


def release_patterns(manifest: Manifest) -> dict[str, str]:
    """AllowedPattern of each Serving parameter the deployer sets: a version of this product's
    model package group in the home account and region, or the released copy of a version
    (Names.released_prefix) in the home artifact bucket, or the parameter's no-model default.

    A version's ARN carries its group's name in lower case whatever the group's case
    (DescribeModelPackage's ModelPackageArn pattern: https://docs.aws.amazon.com/sagemaker/
    latest/APIReference/API_DescribeModelPackage.html#API_DescribeModelPackage_ResponseSyntax),
    and ends in its version number."""
    home = manifest.environments.staging
    names = Names.of(manifest)
    group = names.model_package_group().lower()
    bucket = names.bucket("artifacts", home.account, home.region)
    released = _literal(f"s3://{bucket}/{names.released_prefix()}/") + "[0-9]+/"

    def one_of(default: str, pattern: str) -> str:
        return f"^({_literal(default)}|{pattern})$"

    return {
        "ModelPackageArn": one_of(
            NO_MODEL,
            _literal(f"arn:aws:sagemaker:{home.region}:{home.account}:model-package/{group}/")
            + "[0-9]+",
        ),
        "ModelDataUrl": one_of(NO_MODEL_DATA, released + _literal("model.tar.gz")),
        "BaselineStatisticsUri": one_of(
            f"{NO_BASELINE}/statistics.json", released + _literal("baseline/statistics.json")
        ),
        "BaselineConstraintsUri": one_of(
            f"{NO_BASELINE}/constraints.json", released + _literal("baseline/constraints.json")
        ),
        "ShadowModelDataUrl": one_of(NO_SHADOW, released + _literal("model.tar.gz")),
    }


def serving_environment(manifest: Manifest, region: str) -> dict[str, str]:
    """The serving container's environment, as the training pipeline registers it with each
    version (mlgate/infra/ml/pipeline.py): a script-mode product's program and the code its
    entry put into the model artifact; nothing for a built-in algorithm or the product's own
    image."""
    program = script_mode(manifest)
    if program is None:
        return {}
    return {
        "SAGEMAKER_PROGRAM": program,
        "SAGEMAKER_SUBMIT_DIRECTORY": SERVING_CODE_DIR,
        "SAGEMAKER_REGION": region,
    }


def off_hours_schedule(settings: EnvironmentServing) -> OffHoursSchedule | None:
    """The environment's off-hours scheduled scaling, None when the manifest asks for none or
    it has nothing to move (EnvironmentServing.off_hours_summary says why)."""
    plan = settings.off_hours_plan()
    if plan is None or settings.off_hours is None:
        return None
    hours = settings.off_hours
    return OffHoursSchedule(
        timezone=hours.timezone,
        start_cron=hours.start_cron,
        end_cron=hours.end_cron,
        off_min=plan.off[0],
        off_max=plan.off[1],
    )


def endpoint_props(manifest: Manifest, env: EnvName, region: str) -> EndpointProps:
    """What the environment's endpoint takes from the manifest."""
    settings = manifest.env_serving(env)
    rollout = settings.rollout
    bounds = settings.autoscaling
    return EndpointProps(
        names=Names.of(manifest, env),
        instance_type=settings.instance_type,
        instance_count=settings.instance_count,
        capture_percent=manifest.serving.data_capture_sampling_percent,
        environment=serving_environment(manifest, region),
        rollout=Rollout(
            policy=rollout.policy.value,
            canary_percent=rollout.canary_percent,
            linear_step_percent=rollout.linear_step_percent,
            bake_minutes=rollout.bake_minutes,
            termination_wait_minutes=rollout.termination_wait_minutes,
            max_execution_timeout_minutes=rollout.max_execution_timeout_minutes,
        ),
        slos=tuple(
            RollbackSlo(
                name=slo.name.value,
                threshold=slo.threshold,
                period_seconds=slo.period_seconds,
                evaluation_periods=slo.evaluation_periods,
                owner=manifest.contact(slo.owner),
            )
            for slo in manifest.metrics.slos
        ),
        scaling=Scaling(
            min_instances=bounds.min_instances,
            max_instances=bounds.max_instances,
            target_invocations_per_instance=bounds.target_invocations_per_instance,
        )
        if bounds.enabled
        else None,
        released=released_versions(manifest, env),
        mode=settings.mode.value,
        serverless=ServerlessCapacity(
            memory_mb=settings.serverless.memory_mb,
            max_concurrency=settings.serverless.max_concurrency,
            provisioned_concurrency=settings.serverless.provisioned_concurrency,
        )
        if settings.serverless is not None and settings.mode is ServingMode.SERVERLESS
        else None,
        async_queue=AsyncQueue(
            max_concurrent_invocations_per_instance=(
                settings.async_settings.max_concurrent_invocations_per_instance
            ),
            backlog_per_instance=settings.async_settings.backlog_per_instance,
            min_instances=0 if settings.async_settings.scale_to_zero else bounds.min_instances,
            max_instances=bounds.max_instances,
        )
        if settings.mode is ServingMode.ASYNC
        else None,
        off_hours=off_hours_schedule(settings),
        component=component(settings),
        shadow=ShadowVariant(
            instance_type=settings.shadow_instance_type(),
            instance_count=settings.shadow.instance_count,
            sampling_percent=settings.shadow.sampling_percent,
        )
        if settings.shadow is not None
        else None,
    )


def component(settings: EnvironmentServing) -> Component | None:
    """The environment's inference component, None when the model sits in the variant."""
    chosen = settings.inference_component
    if chosen is None:
        return None
    bounds = settings.autoscaling
    return Component(
        copies=chosen.copies,
        min_copies=chosen.min_copies,
        max_copies=chosen.max_copies,
        cpus=chosen.cpus,
        memory_mb=chosen.memory_mb,
        target_invocations_per_copy=chosen.target_invocations_per_copy,
        batch_percent=chosen.batch_percent(settings.rollout),
        # Scale to zero: the copies go to 0, then the instances they no longer need.
        min_instances=0 if chosen.min_copies == 0 else bounds.min_instances,
        max_instances=bounds.max_instances,
    )


def drift_props(manifest: Manifest, env: EnvName) -> DriftProps:
    """What the environment's drift responder takes from the manifest."""
    names = Names.of(manifest, env)
    home = manifest.environment("staging")
    return DriftProps(
        names=names,
        cooldown_hours=manifest.monitoring.retrain_cooldown_hours,
        training_pipeline_arn=training_pipeline_arn(manifest),
        retrain_role_arn=role_arn(home.account, names.retrain_role())
        if manifest.is_remote(env)
        else None,
    )


def drift_trigger(manifest: Manifest, env: EnvName, region: str, account: str) -> dict[str, Any]:
    """What starts the drift responder. Evidently: the drift alarm, which watches the share
    of drifted features against `monitoring.drift_threshold`, entering ALARM (EventBridge's
    CloudWatch alarm state change event: https://docs.aws.amazon.com/AmazonCloudWatch/latest/
    monitoring/cloudwatch-and-eventbridge.html). Model Monitor: an execution of its
    data-quality schedule that completed with violations. `drift_source` names that alarm or
    schedule to the drift responder, which checks its events against it."""
    names = Names.of(manifest, env)
    if manifest.monitoring.engine is MonitoringEngine.EVIDENTLY:
        alarm = names.alarm("model", "data-drift", "warning")
        return {
            "drift_description": "The drift alarm of this endpoint went into ALARM",
            "drift_source": {"DRIFT_ALARM": alarm},
            "drift_event": events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}"],
                detail={"state": {"value": ["ALARM"]}},
            ),
        }
    schedule = names.monitoring_schedule("data-quality")
    return {
        "drift_description": "A Model Monitor execution of this endpoint found violations",
        "drift_source": {"MONITORING_SCHEDULE": schedule},
        "drift_event": events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=["SageMaker Processing Job State Change"],
            detail={
                "ProcessingJobStatus": ["Completed"],
                # Model Monitor's exit message for a run that found violations (as
                # documented; the rehearsal and tests use that shape).
                "ExitMessage": [{"prefix": "CompletedWithViolations"}],
                "MonitoringScheduleArn": [
                    {
                        "prefix": f"arn:aws:sagemaker:{region}:{account}:"
                        f"monitoring-schedule/{schedule}"
                    }
                ],
            },
        ),
    }


class ServingStack(ProductStack):
    component = "serving"
    updated_by_hooks = True

    def __init__(
        self,
        scope: Construct,
        *,
        manifest: Manifest,
        env_name: EnvName,
        foundation: FoundationStack,
        site: SiteStack,
        data: DataStack,
    ) -> None:
        """`foundation` is the product's home; `site` is the foundation of the environment's
        account (the home foundation itself when the environment lives there); `data` the
        product's data, which a batch environment scores."""
        super().__init__(
            scope,
            manifest=manifest,
            env_name=env_name,
            description=f"{env_name} endpoint, guardrails, live-version parameters, drift loop",
        )
        names = Names.of(manifest, env_name)
        patterns = release_patterns(manifest)
        self.model_package = CfnParameter(
            self,
            "ModelPackageArn",
            type="String",
            default=NO_MODEL,
            allowed_pattern=patterns["ModelPackageArn"],
            constraint_description="a version of this product's model package group",
            description="Approved model package version to serve; set by the release pipeline",
        )
        self.model_data = CfnParameter(
            self,
            "ModelDataUrl",
            type="String",
            default=NO_MODEL_DATA,
            allowed_pattern=patterns["ModelDataUrl"],
            constraint_description="the released copy of a version's model.tar.gz",
            description="The released copy of the version's model artifact; set by the "
            "release pipeline",
        )
        self.baseline_statistics = CfnParameter(
            self,
            "BaselineStatisticsUri",
            type="String",
            default=f"{NO_BASELINE}/statistics.json",
            allowed_pattern=patterns["BaselineStatisticsUri"],
            constraint_description="the released copy of a version's baseline statistics",
            description="Data-quality baseline statistics registered with the model version",
        )
        self.baseline_constraints = CfnParameter(
            self,
            "BaselineConstraintsUri",
            type="String",
            default=f"{NO_BASELINE}/constraints.json",
            allowed_pattern=patterns["BaselineConstraintsUri"],
            constraint_description="the released copy of a version's baseline constraints",
            description="Data-quality baseline constraints registered with the model version",
        )
        has_model = CfnCondition(
            self,
            "HasModel",
            expression=Fn.condition_not(
                Fn.condition_equals(self.model_package.value_as_string, NO_MODEL)
            ),
        )
        # A shadow test's Shadow stage sets it to the version under test, then back to none
        # (mlgate/runtime/hooks/deployer): only environments with a shadow test take it.
        self.shadow_model_data: CfnParameter | None = None
        has_shadow: CfnCondition | None = None
        if manifest.env_serving(env_name).shadow is not None:
            self.shadow_model_data = CfnParameter(
                self,
                "ShadowModelDataUrl",
                type="String",
                default=NO_SHADOW,
                allowed_pattern=patterns["ShadowModelDataUrl"],
                constraint_description="none, or the released copy of a version's model.tar.gz",
                description="The version under a shadow test, as the endpoint's shadow variant; "
                "set by the release pipeline's Shadow stage",
            )
            has_shadow = CfnCondition(
                self,
                "HasShadow",
                expression=Fn.condition_and(
                    Fn.condition_not(
                        Fn.condition_equals(self.model_package.value_as_string, NO_MODEL)
                    ),
                    Fn.condition_not(
                        Fn.condition_equals(self.shadow_model_data.value_as_string, NO_SHADOW)
                    ),
                ),
            )
        images = image_uris(manifest, self.target.region)
        artifacts = site.bucket_name("artifacts")
        # Released versions (model artifacts, baselines) live in the home artifact bucket.
        home_artifacts = foundation.bucket_arn("artifacts")
        alarms = self.alarm_factory(site.on_call_topic)
        # What the endpoint or the batch runs serve, and where their alarms page.
        released: dict[str, Any] = {
            "model_data": self.model_data.value_as_string,
            "has_model": has_model,
            "key": site.key,
            "artifacts_bucket": artifacts,
            "home_artifacts_arn": home_artifacts,
            "image": images["model"],
            "alarms": alarms,
        }
        self.served: MonitoredEndpoint | None = None
        self.batch: BatchScoring | None = None
        if manifest.is_batch(env_name):
            build = Path(cdk.App.of(self).outdir) / "mlgate-build" / manifest.product.name  # type: ignore[union-attr]
            self.batch = BatchScoring(
                self,
                "Batch",
                props=BatchProps(
                    names=names,
                    run=batch_run(
                        manifest,
                        env_name,
                        curated_bucket=data.bucket_name("curated"),
                        database=data.database_name,
                    ),
                    environment=serving_environment(manifest, self.target.region),
                    released=released_versions(manifest, env_name),
                ),
                **released,
                prepare_code=assets.Asset(self, "PrepareCode", path=str(SCRIPTS / "preprocess.py")),
                contract=assets.Asset(self, "Contract", path=str(contract_file(manifest, build))),
                idempotency=site.idempotency,
            )
            # The predictions table lives in the data's catalog.
            self.add_stack_dependency(data)
            # No endpoint: the name stays the environment's identity in the monitoring job's
            # metrics (their Endpoint dimension) and the dashboards.
            self.endpoint_name = names.endpoint()
            self.mode = "batch"
            self.component_name: str | None = None
            self.rollback_alarm_names: list[str] = []
            self.scaling_alarm_names: list[str] = list(self.batch.alarm_names)
        else:
            self.served = MonitoredEndpoint(
                self,
                "Served",
                props=endpoint_props(manifest, env_name, self.target.region),
                **released,
                shadow_model_data=(
                    self.shadow_model_data.value_as_string if self.shadow_model_data else None
                ),
                has_shadow=has_shadow,
            )
            self.endpoint_name = self.served.endpoint_name
            self.mode = self.served.mode
            self.component_name = self.served.component_name
            self.rollback_alarm_names = self.served.rollback_alarm_names
            self.scaling_alarm_names = self.served.scaling_alarm_names
        # The live version, for monitoring (mlgate/infra/stacks/monitoring.py): written in the
        # update that moves the endpoint, so a release that rolls back rolls these back too.
        self.live_release = {
            what: ssm.StringParameter(
                self,
                f"Live{what.title().replace('-', '')}",
                parameter_name=names.live_release_parameter(what),
                string_value=value,
                description=f"The {what} of the version {names.endpoint()} serves",
            )
            for what, value in (
                ("model-package", self.model_package.value_as_string),
                ("baseline-statistics", self.baseline_statistics.value_as_string),
                ("baseline-constraints", self.baseline_constraints.value_as_string),
            )
        }
        self.drift: DriftResponder | None = None
        if manifest.monitored(env_name):
            self.drift = DriftResponder(
                self,
                "Drift",
                props=drift_props(manifest, env_name),
                key=site.key,
                alarms=alarms,
                idempotency=site.idempotency,
                reports_uri=f"s3://{artifacts}/{reports_prefix(manifest, env_name)}",
                **drift_trigger(manifest, env_name, self.target.region, self.target.account),
            )
        self.drift_responder = self.drift.hook if self.drift else None

        # One pass once everything is built, not an `allocate_logical_id` override: CDK calls
        # that for every reference it resolves, each call a round trip into Python (2 s of a
        # 12 s synth). Elements outside the transparent constructs keep CDK's own IDs.
        below = len(self.node.path.split("/")) + 1  # the path's ids under the stack's child
        transparent_constructs = [c for c in (self.served, self.batch, self.drift) if c]
        for transparent in transparent_constructs:
            for child in transparent.node.find_all():
                if isinstance(child, cdk.CfnElement):
                    path = child.node.path.split("/")[below:]
                    child.override_logical_id(logical_id(path))
        condition_all(self, has_model, NEEDS_A_MODEL)
        if self.served and self.served.shadow_model is not None and has_shadow is not None:
            # Only while a shadow test runs (HasShadow implies HasModel).
            self.served.shadow_model.cfn_options.condition = has_shadow
