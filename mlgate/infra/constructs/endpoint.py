"""MonitoredEndpoint: a released model version served with blue/green guardrails that roll
back on the SLO alarms, in one of three modes:

- real-time: instances always on, data capture, target tracking on invocations per instance;
- serverless: a ServerlessConfig (memory, max and provisioned concurrency), no instances, no
  data capture and no network isolation, which Serverless Inference does not support
  (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html#serverless-endpoints-how-it-works-exclusions);
- async: an AsyncInferenceConfig writing results and failures under the environment's artifact
  bucket with its key and notifying two topics encrypted with it; target tracking on the
  backlog per instance, down to zero, and a step policy on HasBacklogWithoutCapacity that wakes
  it when work arrives (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html).

A real-time endpoint may host its model as an inference component (Component): the endpoint
config's variant then names no model, only its instances (managed instance scaling, least
outstanding requests routing) and the model role as its execution role; the component holds
the model, what each copy reserves and its copies, a release is its rolling update (batches of
copies, each baking while the same rollback alarms watch, rolled back on them), and its copies
scale on invocations per copy, to zero and back when min_copies is 0
(https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints-deploy-models.html,
https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html).
Its invocation metrics carry the component's name (InferenceComponentName), which the rollback
alarms watch then.

Off hours (OffHoursSchedule): two scheduled actions on the variant's scalable target move its
bounds outside working hours and back (a serverless variant's target is its provisioned
concurrency).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, CfnCondition, Fn, Stack, TimeZone
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra.constructs.alarms import CRITICAL, AlarmFactory, Owner
from mlgate.infra.constructs.compliance import acknowledge_each
from mlgate.infra.constructs.sagemaker_access import (
    ReleasedVersions,
    decrypt_released_versions,
    pull_images,
    released_model,
)
from mlgate.infra.inference_component import WAKE_FROM_ZERO, component_name
from mlgate.infra.instance_storage import has_instance_storage
from mlgate.infra.naming import EnvName, Names, pascal

VARIANT = "AllTraffic"
# The shadow variant's name, when the manifest asks for a shadow test (mlgate/manifest/shadow.py).
SHADOW_VARIANT = "Shadow"
CAPTURE_PREFIX = "datacapture"
# The SLOs an endpoint rolls back on, by their manifest names (mlgate.manifest.SloKind), and the
# endpoint metric each watches: latency (ModelLatency's p99), or a rate of errors per invocation.
LATENCY_P99_MS = "latency_p99_ms"
ERROR_METRICS = {
    "error_rate_5xx": ("Invocation5XXErrors", "5xx error rate"),
    "invocation_error_rate": ("InvocationModelErrors", "model error rate"),
}
# An async endpoint publishes no Invocations nor InvocationModelErrors: it counts requests in
# InvocationsProcessed and failures in InvocationFailures
# (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html).
ASYNC_ERROR_METRICS = {
    "error_rate_5xx": ("Invocation5XXErrors", "5xx error rate"),
    "invocation_error_rate": ("InvocationFailures", "failed invocation rate"),
}
ASYNC_REQUESTS = "InvocationsProcessed"
ROLLOUTS = {"canary": "CANARY", "linear": "LINEAR", "all_at_once": "ALL_AT_ONCE"}
"""Rollout policy (the manifest's) -> SageMaker's traffic routing type."""
REAL_TIME, SERVERLESS, ASYNC = "real-time", "serverless", "async"
MODES = (REAL_TIME, SERVERLESS, ASYNC)
"""Serving modes (the manifest's serving.<env>.mode)."""
ASYNC_PREFIX = "async"


@dataclass(frozen=True)
class Rollout:
    """A blue/green deployment: `policy` (canary, linear or all_at_once) shifting
    `canary_percent` or `linear_step_percent` of capacity at a time, baking `bake_minutes`
    between steps; the old fleet ends `termination_wait_minutes` after, and the whole update
    within `max_execution_timeout_minutes`."""

    policy: str
    canary_percent: int
    linear_step_percent: int
    bake_minutes: int
    termination_wait_minutes: int
    max_execution_timeout_minutes: int


@dataclass(frozen=True)
class RollbackSlo:
    """An SLO whose alarm pages on-call and rolls a deployment back: `name` (latency_p99_ms or
    a key of ERROR_METRICS), `threshold` (ms for latency, a fraction for rates), its alarm's
    period and evaluation periods, and its `owner`."""

    name: str
    threshold: float
    period_seconds: int
    evaluation_periods: int
    owner: Owner


@dataclass(frozen=True)
class Scaling:
    """Target tracking on invocations per instance, between `min_instances` and
    `max_instances`."""

    min_instances: int
    max_instances: int
    target_invocations_per_instance: int


@dataclass(frozen=True)
class ServerlessCapacity:
    """A serverless variant: `memory_mb`, `max_concurrency` and the `provisioned_concurrency`
    kept warm (None: none)."""

    memory_mb: int
    max_concurrency: int
    provisioned_concurrency: int | None


@dataclass(frozen=True)
class AsyncQueue:
    """An async endpoint's queue: the container's concurrent requests per instance (None:
    SageMaker picks), the backlog per instance autoscaling tracks, its bounds
    (`min_instances` 0 scales to zero) and `max_instances`."""

    max_concurrent_invocations_per_instance: int | None
    backlog_per_instance: int
    min_instances: int
    max_instances: int


@dataclass(frozen=True)
class OffHoursSchedule:
    """Scheduled scaling outside working hours: at `end_cron` the scalable target's bounds go
    to (`off_min`, `off_max`), at `start_cron` back to the target's own; both six-field crons
    in `timezone` (IANA), which Application Auto Scaling follows through daylight saving time
    (https://docs.aws.amazon.com/autoscaling/application/userguide/scheduled-scaling-using-cron-expressions.html,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-applicationautoscaling-scalabletarget-scheduledaction.html).
    Outside working hours a real-time variant keeps off_min = off_max instances; an async one
    goes to 0 when idle (off_min 0, woken by its backlog) and wakes at most off_max; a
    serverless one keeps off_min = off_max provisioned concurrency."""

    timezone: str
    start_cron: str
    end_cron: str
    off_min: int
    off_max: int


@dataclass(frozen=True)
class ShadowVariant:
    """A real-time endpoint's shadow variant while a shadow test runs: its fleet, and the share
    of production's requests SageMaker copies to it."""

    instance_type: str
    instance_count: int
    sampling_percent: int


@dataclass(frozen=True)
class Component:
    """The model as an inference component: `copies` to start with, autoscaling between
    `min_copies` (0: scale to zero) and `max_copies` on `target_invocations_per_copy`, what
    each copy reserves (`cpus`, `memory_mb`), the rolling update's batch (`batch_percent` of
    the copies), and the endpoint's managed instance scaling (`min_instances`, 0 with
    min_copies 0, to `max_instances`)."""

    copies: int
    min_copies: int
    max_copies: int
    cpus: float
    memory_mb: int
    target_invocations_per_copy: int
    batch_percent: int
    min_instances: int
    max_instances: int


START_ACTION, END_ACTION = "working-hours-start", "working-hours-end"
"""The scheduled actions' names (unique per scalable target)."""


@dataclass(frozen=True)
class EndpointProps:
    """What one environment's endpoint serves and how: its `names` (the environment's), its
    fleet, the share of traffic it captures, the serving container's `environment`, its
    rollout, the SLOs it rolls back on, its scaling (None: a fixed fleet), and where the
    released versions it serves are read from."""

    names: Names
    instance_type: str
    instance_count: int
    capture_percent: int
    environment: Mapping[str, str]
    rollout: Rollout
    slos: tuple[RollbackSlo, ...]
    scaling: Scaling | None
    released: ReleasedVersions
    mode: str = REAL_TIME
    serverless: ServerlessCapacity | None = None
    """Required in serverless mode."""
    async_queue: AsyncQueue | None = None
    """Required in async mode."""
    off_hours: OffHoursSchedule | None = None
    """Scheduled scaling outside working hours; real-time needs `scaling`, serverless its
    provisioned concurrency."""
    component: Component | None = None
    """Real-time only: the model hosted as an inference component."""
    shadow: ShadowVariant | None = None
    """Real-time only, without a component: the shadow variant a shadow test adds."""


def capture_prefix(env: EnvName) -> str:
    """Where an environment's endpoint writes captured traffic, inside its artifact bucket."""
    return f"{CAPTURE_PREFIX}/{env}"


def async_prefix(env: EnvName, what: str) -> str:
    """Where an async endpoint's requests (`input`), results (`output`) and failures
    (`failures`) live, inside the environment's artifact bucket."""
    return f"{ASYNC_PREFIX}/{env}/{what}"


class MonitoredEndpoint(Construct):
    """The endpoint serving the released model artifact `model_data` with the serving
    `image`, its model role, rollback alarms and scaling target (keyword-only inputs)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: EndpointProps,
        model_data: str,
        has_model: CfnCondition,
        key: kms.IKey,
        artifacts_bucket: str,
        home_artifacts_arn: str,
        image: str,
        alarms: AlarmFactory,
        shadow_model_data: str | None = None,
        has_shadow: CfnCondition | None = None,
    ) -> None:
        """`artifacts_bucket` is the environment's (capture goes there); `home_artifacts_arn`
        the home account's, where released versions live (released/<product>/<version>/, the
        copies the release hook makes of approved versions); `image` the serving image;
        `alarms` the environment's alarm factory (the rollback alarms page on-call).

        The model is built from the image and the released artifact, not from the model
        package: the model role then reads released copies only, never a training run, and
        needs no access to the registry (issue 29)."""
        super().__init__(scope, id)
        if props.names.env is None:
            raise ValueError("an endpoint's names are those of its environment")
        self.props, self.key, self.has_model = props, key, has_model
        self.env: EnvName = props.names.env
        self.names = props.names
        self.endpoint_name = self.names.endpoint()
        self.capture_uri = f"s3://{artifacts_bucket}/{capture_prefix(self.env)}"
        if props.mode not in MODES:
            raise ValueError(f"serving mode '{props.mode}' is none of {', '.join(MODES)}")
        self.mode = props.mode
        if props.component is not None and self.mode != REAL_TIME:
            raise ValueError(
                f"only a real-time endpoint hosts an inference component ({self.mode})"
            )
        self.component_name: str | None = (
            component_name(self.names) if props.component is not None else None
        )
        self.artifacts_bucket = artifacts_bucket
        self.topics: dict[str, sns.Topic] = {}
        if self.mode == ASYNC:
            # Success and error notifications, encrypted with the environment's key.
            for what in ("success", "error"):
                self.topics[what] = sns.Topic(
                    self,
                    f"Async{what.title()}",
                    topic_name=self.names.resource(f"async-{what}"),
                    display_name=f"{self.endpoint_name} async {what}",
                    master_key=key,
                    enforce_ssl=True,
                )
        self.model_role = self._model_role(artifacts_bucket, home_artifacts_arn, [image])
        environment = dict(props.environment)
        self.model = released_model(
            self,
            "Model",
            role=self.model_role,
            image=image,
            model_data=model_data,
            environment=environment,
            # Serverless Inference does not support network isolation (see the module's doc).
            isolated=self.mode != SERVERLESS,
        )
        self.shadow_model: sagemaker.CfnModel | None = None
        if props.shadow is not None:
            if shadow_model_data is None or has_shadow is None:
                raise ValueError("a shadow variant needs its model data and its condition")
            if self.mode != REAL_TIME or props.component is not None:
                raise ValueError("only a real-time endpoint without a component has a shadow")
            # The version under test, served exactly as the production model is: the same
            # image, environment, role and isolation; only the artifact differs. It exists
            # while the shadow test runs (`has_shadow`, set by the stack).
            self.shadow_model = released_model(
                self,
                "ShadowModel",
                role=self.model_role,
                image=image,
                model_data=shadow_model_data,
                environment=environment,
                isolated=True,
            )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            kms_key_id=self._volume_key(key.key_arn),
            # An endpoint of inference components runs their containers with the config's role
            # (https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints-deploy-models.html).
            execution_role_arn=self.model_role.role_arn if self.component_name else None,
            production_variants=[self._variant()],
            shadow_production_variants=self._shadow_variants(has_shadow),
            data_capture_config=None if self.mode == SERVERLESS else self._capture(),
            async_inference_config=self._async_config() if self.mode == ASYNC else None,
        )
        self.rollback_alarm_names: list[str] = []
        self.rollback_alarms = self._rollback_alarms(alarms)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            # A release keeps the capacity autoscaling reached instead of resetting it to the
            # config's initial count. An instance-type change is the exception: deregister the
            # scaling target first (docs/platform-engineer.md, "Changing the instance type").
            retain_all_variant_properties=True,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=self._blue_green(),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[
                        sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name)
                        for name in self.rollback_alarm_names
                    ]
                ),
            ),
        )
        for alarm in self.rollback_alarms:
            self.endpoint.node.add_dependency(alarm)
        self.component: sagemaker.CfnInferenceComponent | None = None
        if props.component is not None:
            self.component = self._component(props.component)
        self.scaling_alarm_names: list[str] = []
        self.scaling: autoscaling.ScalableTarget | None = None
        if self.mode == ASYNC:
            self.scaling = self._async_scaling(alarms)
        elif props.component is not None:
            # The instances follow the copies (managed instance scaling): only the copies
            # have a scalable target.
            if props.scaling:
                self.scaling = self._component_scaling(props.component, alarms)
        elif self.mode == REAL_TIME and props.scaling:
            self.scaling = self._autoscaling(props.scaling)
        elif self.mode == SERVERLESS and props.off_hours is not None:
            self.scaling = self._provisioned_concurrency()
        if props.off_hours is not None:
            if self.scaling is None:
                raise ValueError(
                    "off hours move a scalable target's bounds: a real-time endpoint needs "
                    "its Scaling"
                )
            self._off_hours(self.scaling, props.off_hours)

    # --- the variant, by mode --------------------------------------------------------------

    def _volume_key(self, key_arn: str) -> str | None:
        """The key of the instances' volumes: none for a serverless endpoint (no volume, no
        capture), nor when a variant's instances keep their volumes on instance storage, where
        CreateEndpointConfig refuses one (mlgate/infra/instance_storage.py)."""
        if self.mode == SERVERLESS:
            return None
        fleets = [self.props.instance_type]
        if self.props.shadow is not None:
            fleets.append(self.props.shadow.instance_type)
        if any(has_instance_storage(fleet) for fleet in fleets):
            return None
        return key_arn

    def _shadow_variants(self, has_shadow: CfnCondition | None) -> Any:
        """The shadow variant while the shadow test runs, none otherwise. SageMaker copies
        production's requests to it and captures its answers, never returning them; an
        endpoint with a shadow variant has one production variant
        (https://docs.aws.amazon.com/sagemaker/latest/dg/model-shadow-deployment.html). The
        share it copies is set as the ratio of the two variants' weights (production 1.0).
        AWS states a copied share only for its shadow-test API (ShadowModelVariantConfig's
        SamplingPercentage); its shadow-variant example gives both variants weight 1, and no
        page says how a lower weight samples: unconfirmed, and the verdict's invocation counts
        of both variants show the share SageMaker copied."""
        shadow = self.props.shadow
        if shadow is None or has_shadow is None or self.shadow_model is None:
            return None
        variant = {
            "VariantName": SHADOW_VARIANT,
            "ModelName": self.shadow_model.attr_model_name,
            "InitialInstanceCount": shadow.instance_count,
            "InstanceType": shadow.instance_type,
            "InitialVariantWeight": shadow.sampling_percent / 100,
        }
        return Fn.condition_if(has_shadow.logical_id, [variant], Aws.NO_VALUE)

    def _variant(self) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
        props = self.props
        if self.mode == SERVERLESS:
            if props.serverless is None:
                raise ValueError("a serverless endpoint needs its ServerlessCapacity")
            capacity = props.serverless
            return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT,
                model_name=self.model.attr_model_name,
                initial_variant_weight=1.0,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=capacity.memory_mb,
                    max_concurrency=capacity.max_concurrency,
                    provisioned_concurrency=capacity.provisioned_concurrency,
                ),
            )
        if props.component is not None:
            # The variant holds instances only; managed instance scaling adds and removes
            # them as the component's copies need, down to MinInstanceCount (0: scale to
            # zero, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantManagedInstanceScaling.html).
            component = props.component
            return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT,
                initial_instance_count=props.instance_count,
                instance_type=props.instance_type,
                managed_instance_scaling=sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                    status="ENABLED",
                    min_instance_count=component.min_instances,
                    max_instance_count=component.max_instances,
                ),
                routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                    routing_strategy="LEAST_OUTSTANDING_REQUESTS"
                ),
            )
        return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=VARIANT,
            model_name=self.model.attr_model_name,
            initial_instance_count=props.instance_count,
            instance_type=props.instance_type,
            initial_variant_weight=1.0,
        )

    def _capture(self) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty:
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=self.props.capture_percent,
            destination_s3_uri=self.capture_uri,
            kms_key_id=self.key.key_arn,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
            ],
            capture_content_type_header=(
                sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=["text/csv"]
                )
            ),
        )

    def async_uri(self, what: str) -> str:
        """s3:// URI of the async `input`, `output` or `failures` prefix."""
        return f"s3://{self.artifacts_bucket}/{async_prefix(self.env, what)}"

    def _async_config(self) -> sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty:
        queue = self.props.async_queue
        if queue is None:
            raise ValueError("an async endpoint needs its AsyncQueue")
        config = sagemaker.CfnEndpointConfig
        per_instance = queue.max_concurrent_invocations_per_instance
        return config.AsyncInferenceConfigProperty(
            client_config=config.AsyncInferenceClientConfigProperty(
                max_concurrent_invocations_per_instance=per_instance
            )
            if per_instance
            else None,
            output_config=config.AsyncInferenceOutputConfigProperty(
                s3_output_path=self.async_uri("output"),
                s3_failure_path=self.async_uri("failures"),
                kms_key_id=self.key.key_arn,
                notification_config=config.AsyncInferenceNotificationConfigProperty(
                    success_topic=self.topics["success"].topic_arn,
                    error_topic=self.topics["error"].topic_arn,
                ),
            ),
        )

    # --- blue/green and rollback -----------------------------------------------------------

    def _blue_green(self) -> sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty:
        rollout = self.props.rollout
        if rollout.policy not in ROLLOUTS:
            raise ValueError(f"rollout policy '{rollout.policy}' is none of {', '.join(ROLLOUTS)}")
        routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty
        capacity = sagemaker.CfnEndpoint.CapacitySizeProperty
        if rollout.policy == "canary":
            traffic = routing(
                type="CANARY",
                canary_size=capacity(type="CAPACITY_PERCENT", value=rollout.canary_percent),
                wait_interval_in_seconds=rollout.bake_minutes * 60,
            )
        elif rollout.policy == "linear":
            traffic = routing(
                type="LINEAR",
                linear_step_size=capacity(
                    type="CAPACITY_PERCENT", value=rollout.linear_step_percent
                ),
                wait_interval_in_seconds=rollout.bake_minutes * 60,
            )
        else:
            traffic = routing(
                type="ALL_AT_ONCE", wait_interval_in_seconds=rollout.bake_minutes * 60
            )
        return sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=traffic,
            termination_wait_in_seconds=rollout.termination_wait_minutes * 60,
            maximum_execution_timeout_in_seconds=rollout.max_execution_timeout_minutes * 60,
        )

    def _component(self, component: Component) -> sagemaker.CfnInferenceComponent:
        """The model as an inference component of the endpoint. A release replaces the model
        (its ModelDataUrl), which updates the component's ModelName: SageMaker's rolling
        update, in batches of `batch_percent` of the copies, each baking the manifest's
        minutes while the rollback alarms watch, rolled back on any of them
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceComponentRollingUpdatePolicy.html)."""
        rollout = self.props.rollout
        ic = sagemaker.CfnInferenceComponent
        batch = ic.InferenceComponentCapacitySizeProperty(
            type="CAPACITY_PERCENT", value=component.batch_percent
        )
        resource = ic(
            self,
            "Component",
            inference_component_name=self.component_name,
            endpoint_name=self.endpoint_name,
            variant_name=VARIANT,
            specification=ic.InferenceComponentSpecificationProperty(
                model_name=self.model.attr_model_name,
                compute_resource_requirements=ic.InferenceComponentComputeResourceRequirementsProperty(
                    number_of_cpu_cores_required=component.cpus,
                    min_memory_required_in_mb=component.memory_mb,
                ),
            ),
            runtime_config=ic.InferenceComponentRuntimeConfigProperty(copy_count=component.copies),
            deployment_config=ic.InferenceComponentDeploymentConfigProperty(
                rolling_update_policy=ic.InferenceComponentRollingUpdatePolicyProperty(
                    maximum_batch_size=batch,
                    wait_interval_in_seconds=rollout.bake_minutes * 60,
                    maximum_execution_timeout_in_seconds=rollout.max_execution_timeout_minutes * 60,
                ),
                auto_rollback_configuration=ic.AutoRollbackConfigurationProperty(
                    alarms=[ic.AlarmProperty(alarm_name=n) for n in self.rollback_alarm_names]
                ),
            ),
        )
        resource.add_resource_dependency(self.endpoint)
        for alarm in self.rollback_alarms:
            resource.node.add_dependency(alarm)
        # It exists once a version is released, as the endpoint does.
        resource.cfn_options.condition = self.has_model
        return resource

    def _component_scaling(
        self, component: Component, factory: AlarmFactory
    ) -> autoscaling.ScalableTarget:
        """Target tracking on invocations per copy between the copies' bounds; with
        min_copies 0, the step policy that adds a copy when NoCapacityInvocationFailures
        counts a request no copy could answer: target tracking cannot scale out from zero
        (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html)."""
        assert self.component is not None
        assert self.component_name is not None
        target = self._scalable_target(
            component.min_copies,
            component.max_copies,
            "sagemaker:inference-component:DesiredCopyCount",
            resource_id=f"inference-component/{self.component_name}",
        )
        target.node.add_dependency(self.component)
        target.scale_to_track_metric(
            "InvocationsPerCopy",
            target_value=component.target_invocations_per_copy,
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY,
            scale_in_cooldown=durations.minutes(5),
            scale_out_cooldown=durations.minutes(1),
        )
        if component.min_copies > 0:
            return target
        wake = autoscaling.StepScalingAction(
            self,
            "WakeFromZero",
            scaling_target=target,
            adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=autoscaling.MetricAggregationType.MAXIMUM,
            cooldown=durations.minutes(1),
        )
        wake.add_adjustment(adjustment=1, lower_bound=0)
        name = factory.name("system", WAKE_FROM_ZERO, "scaling")
        alarm = cloudwatch.Alarm(
            self,
            "WakeAlarm",
            alarm_name=name,
            alarm_description=factory.describe(
                f"{self.component_name} on {self.endpoint_name} answered requests with no copy "
                "to serve them: the step policy adds one. Expected after an idle spell; it "
                "pages nobody.",
                (
                    "the component's copies (DescribeInferenceComponent CurrentCopyCount)",
                    "Application Auto Scaling's scaling activities for the component",
                    "the endpoint's instances (managed instance scaling)",
                ),
                factory.on_call_owner,
            ),
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="NoCapacityInvocationFailures",
                dimensions_map={"InferenceComponentName": self.component_name},
                statistic="Maximum",
                period=durations.seconds(60),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
        )
        alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(wake))
        alarm.node.default_child.cfn_options.condition = self.has_model  # type: ignore[union-attr]
        self.scaling_alarm_names.append(name)
        return target

    def _endpoint_metric(self, name: str, statistic: str, period: int) -> cloudwatch.Metric:
        # An inference component's invocation metrics are published per component
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html#cloudwatch-metrics-inference-component).
        dimensions = (
            {"InferenceComponentName": self.component_name}
            if self.component_name
            else {"EndpointName": self.endpoint_name, "VariantName": VARIANT}
        )
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=durations.seconds(period),
        )

    def _rollback_alarms(self, factory: AlarmFactory) -> list[cloudwatch.Alarm]:
        """One alarm per manifest SLO: they page on-call and roll a deployment back."""
        alarms = []
        for slo in self.props.slos:
            p = slo.period_seconds
            if slo.name == LATENCY_P99_MS:
                # ModelLatency is reported in microseconds.
                metric: cloudwatch.IMetric = self._endpoint_metric("ModelLatency", "p99", p)
                threshold = slo.threshold * 1000
                what = "model latency p99"
            elif slo.name in ERROR_METRICS:
                table, requests = (
                    (ASYNC_ERROR_METRICS, ASYNC_REQUESTS)
                    if self.mode == ASYNC
                    else (ERROR_METRICS, "Invocations")
                )
                errors, what = table[slo.name]
                metric = cloudwatch.MathExpression(
                    expression="IF(invocations > 0, errors / invocations, 0)",
                    using_metrics={
                        "errors": self._endpoint_metric(errors, "Sum", p),
                        "invocations": self._endpoint_metric(requests, "Sum", p),
                    },
                    period=durations.seconds(p),
                    label=f"{errors} / {requests}",
                )
                threshold = slo.threshold
            else:
                known = ", ".join([LATENCY_P99_MS, *ERROR_METRICS])
                raise ValueError(f"SLO '{slo.name}' is none of {known}")
            # Named after the SLO, hyphenated: system/latency-p99-ms/critical.
            part = slo.name.replace("_", "-")
            alarm = factory.alarm(
                self,
                f"Rollback{pascal(slo.name)}",
                tier="system",
                what=part,
                severity=CRITICAL,
                owner=slo.owner,
                meaning=f"{what} of {self.endpoint_name} breached the SLO ({slo.threshold}) for "
                f"{slo.evaluation_periods} x {p} s. During a blue/green deployment this rolls "
                "the endpoint back to the previous model.",
                checks=(
                    "a deployment in progress (CloudFormation events of this stack)",
                    "the endpoint's CloudWatch logs",
                    "instance CPU/memory and invocations per instance",
                ),
                metric=metric,
                threshold=threshold,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                # No traffic is not an outage: quiet endpoints must not roll deployments back.
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
                periods=slo.evaluation_periods,
                datapoints=slo.evaluation_periods,
            )
            # The name as a string, not alarm.alarm_name (a token): the deployer and
            # CloudFormation's rollback configuration are handed these.
            self.rollback_alarm_names.append(factory.name("system", part, CRITICAL))
            alarms.append(alarm)
        return alarms

    # --- scaling ---------------------------------------------------------------------------

    def _scalable_target(
        self,
        low: int,
        high: int,
        dimension: str = "sagemaker:variant:DesiredInstanceCount",
        resource_id: str | None = None,
    ) -> autoscaling.ScalableTarget:
        target = autoscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=resource_id or f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            scalable_dimension=dimension,
            min_capacity=low,
            max_capacity=high,
            # Application Auto Scaling's service-linked role for SageMaker, not a new role.
            role=iam.Role.from_role_arn(
                self,
                "ScalingServiceRole",
                f"arn:aws:iam::{Stack.of(self).account}:role/aws-service-role/"
                "sagemaker.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
            ),
        )
        target.node.add_dependency(self.endpoint)
        return target

    def _autoscaling(self, bounds: Scaling) -> autoscaling.ScalableTarget:
        target = self._scalable_target(bounds.min_instances, bounds.max_instances)
        target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=bounds.target_invocations_per_instance,
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=durations.minutes(5),
            scale_out_cooldown=durations.minutes(1),
        )
        return target

    def _provisioned_concurrency(self) -> autoscaling.ScalableTarget:
        """A serverless variant's provisioned concurrency as a scalable target, held at the
        config's value (no scaling policy): only the off-hours schedule moves it
        (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-autoscale.html)."""
        capacity = self.props.serverless
        warm = capacity.provisioned_concurrency if capacity else None
        if not warm:
            raise ValueError(
                "off hours of a serverless endpoint move its provisioned concurrency, and "
                "this one has none (it is 0 when idle already)"
            )
        return self._scalable_target(warm, warm, "sagemaker:variant:DesiredProvisionedConcurrency")

    def _off_hours(self, target: autoscaling.ScalableTarget, hours: OffHoursSchedule) -> None:
        """At the end of working hours the target's bounds go to the off-hours ones; at their
        start back to the target's own (its MinCapacity and MaxCapacity)."""
        resource = target.node.default_child
        assert isinstance(resource, autoscaling.CfnScalableTarget)
        if not 0 <= hours.off_min <= hours.off_max:
            raise ValueError(
                f"off-hours bounds {hours.off_min}..{hours.off_max} are not 0 <= min <= max"
            )
        zone = TimeZone.of(hours.timezone)
        for name, cron, low, high in (
            (END_ACTION, hours.end_cron, hours.off_min, hours.off_max),
            (START_ACTION, hours.start_cron, resource.min_capacity, resource.max_capacity),
        ):
            target.scale_on_schedule(
                name,
                schedule=autoscaling.Schedule.expression(cron),
                min_capacity=low,
                max_capacity=high,
                time_zone=zone,
            )

    def _queue_metric(self, name: str, statistic: str, period: int = 60) -> cloudwatch.Metric:
        """A metric of the async queue: published per endpoint, with no VariantName
        (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html)."""
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name},
            statistic=statistic,
            period=durations.seconds(period),
        )

    def _async_scaling(self, factory: AlarmFactory) -> autoscaling.ScalableTarget:
        """Target tracking on ApproximateBacklogSizePerInstance between the queue's bounds
        (0: scales to zero), and AWS's step policy that adds an instance when
        HasBacklogWithoutCapacity is 1: target tracking cannot scale out from zero instances
        (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html)."""
        queue = self.props.async_queue
        assert queue is not None  # _async_config refused it first
        target = self._scalable_target(queue.min_instances, queue.max_instances)
        target.scale_to_track_metric(
            "BacklogPerInstance",
            target_value=queue.backlog_per_instance,
            custom_metric=self._queue_metric("ApproximateBacklogSizePerInstance", "Average"),
            scale_in_cooldown=durations.minutes(5),
            scale_out_cooldown=durations.minutes(1),
        )
        off_hours = self.props.off_hours
        if queue.min_instances > 0 and (off_hours is None or off_hours.off_min > 0):
            return target
        wake = autoscaling.StepScalingAction(
            self,
            "WakeFromZero",
            scaling_target=target,
            adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=autoscaling.MetricAggregationType.AVERAGE,
            cooldown=durations.minutes(5),
        )
        wake.add_adjustment(adjustment=1, lower_bound=0)
        what = "async-backlog-without-capacity"
        # A scaling signal, not a page: named and described by the factory's rule, its one
        # action the step policy (it fires whenever work reaches an idle endpoint).
        alarm = cloudwatch.Alarm(
            self,
            "WakeAlarm",
            alarm_name=factory.name("system", what, "scaling"),
            alarm_description=factory.describe(
                f"{self.endpoint_name} has queued requests and no instance: the step policy "
                "adds one. Expected after an idle spell; it pages nobody.",
                (
                    "the endpoint's instance count (DescribeEndpoint CurrentInstanceCount)",
                    "Application Auto Scaling's scaling activities for the variant",
                    "ApproximateAgeOfOldestRequest on the dashboard",
                ),
                factory.on_call_owner,
            ),
            metric=self._queue_metric("HasBacklogWithoutCapacity", "Average"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=2,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
        )
        alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(wake))
        # The step policy exists once a version is released (the Serving stack's condition).
        alarm.node.default_child.cfn_options.condition = self.has_model  # type: ignore[union-attr]
        self.scaling_alarm_names.append(factory.name("system", what, "scaling"))
        return target

    # --- the model's role ------------------------------------------------------------------

    def _model_role(
        self, artifacts_bucket: str, home_artifacts: str, images: list[str]
    ) -> iam.Role:
        stack = Stack.of(self)
        env = self.env
        released = f"{home_artifacts}/{self.names.released_prefix()}/*"
        role = iam.Role(
            self,
            "ModelRole",
            role_name=self.names.model_role(),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Hosts the approved model: reads released versions and its image only",
        )
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[released]))
        pull_images(role, images)
        decrypt_released_versions(role, released=self.props.released, key=self.key)
        # What SageMaker does with this role on the product's behalf (mlgate/
        # service_permissions.py, each with its documentation page): read the rollback alarms
        # during a blue/green update, write captured traffic under the capture prefix with
        # the environment's key.
        product = self.names.product
        alarms = f"arn:aws:cloudwatch:{stack.region}:{stack.account}:alarm:mlgate/{product}/{env}/*"
        capture = f"arn:aws:s3:::{artifacts_bucket}/{capture_prefix(env)}/*"
        role.add_to_policy(
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=[alarms])
        )
        findings: dict[str, str] = {}
        if self.mode != SERVERLESS:  # serverless endpoints capture no traffic
            role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[capture]))
            findings[f"AwsSolutions-IAM5[Resource::{capture}]"] = (
                "SageMaker writes data capture files with the model role, under this "
                "environment's capture prefix only; object keys carry the date and hour."
            )
        kms_actions = ["kms:GenerateDataKey", "kms:Encrypt"]
        if self.mode == ASYNC:
            # Asynchronous inference reads each request from S3 and writes its result or
            # failure with the model role, and publishes to the two topics (encrypted: the
            # publisher needs the key): https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-create-endpoint.html
            requests = f"arn:aws:s3:::{artifacts_bucket}/{async_prefix(env, 'input')}/*"
            results = [
                f"arn:aws:s3:::{artifacts_bucket}/{async_prefix(env, what)}/*"
                for what in ("output", "failures")
            ]
            role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[requests]))
            role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=results))
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sns:Publish"], resources=[t.topic_arn for t in self.topics.values()]
                )
            )
            kms_actions.append("kms:Decrypt")
            for uri in (requests, *results):
                findings[f"AwsSolutions-IAM5[Resource::{uri}]"] = (
                    "Asynchronous inference reads requests and writes results under this "
                    "environment's async prefixes only; object names are per request."
                )
        if self.mode != SERVERLESS:  # the key encrypts captured (and queued) files only
            role.add_to_policy(
                iam.PolicyStatement(actions=kms_actions, resources=[self.key.key_arn])
            )
        policy = role.node.find_child("DefaultPolicy")
        acknowledge_each(
            policy,
            {
                **findings,
                f"AwsSolutions-IAM5[Resource::{alarms}]": (
                    "SageMaker's deployment guardrails read the state of this environment's "
                    "alarms with the model role during a blue/green update; alarm names carry "
                    "the product and environment."
                ),
                "AwsSolutions-IAM5[Resource::*]": (
                    "The model role pulls its container image; ecr:GetAuthorizationToken supports "
                    "no resource-level permission (the image repositories themselves are named)."
                ),
                f"AwsSolutions-IAM5[Resource::{released}]": (
                    "The model role reads the released copies of approved versions of this "
                    "product only (released/<product>/<version>/); never a training run."
                ),
            },
        )
        return role
