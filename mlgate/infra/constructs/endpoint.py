"""MonitoredEndpoint: a released model version served with data capture, blue/green
guardrails that roll back on the SLO alarms, and autoscaling."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import CfnCondition, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra.constructs.alarms import CRITICAL, AlarmFactory, Owner
from mlgate.infra.constructs.compliance import acknowledge_each
from mlgate.infra.constructs.sagemaker_access import (
    ReleasedVersions,
    decrypt_released_versions,
    pull_images,
)
from mlgate.infra.naming import EnvName, Names, pascal

VARIANT = "AllTraffic"
CAPTURE_PREFIX = "datacapture"
# The SLOs an endpoint rolls back on, by their manifest names (mlgate.manifest.SloKind), and the
# endpoint metric each watches: latency (ModelLatency's p99), or a rate of errors per invocation.
LATENCY_P99_MS = "latency_p99_ms"
ERROR_METRICS = {
    "error_rate_5xx": ("Invocation5XXErrors", "5xx error rate"),
    "invocation_error_rate": ("InvocationModelErrors", "model error rate"),
}
ROLLOUTS = {"canary": "CANARY", "linear": "LINEAR", "all_at_once": "ALL_AT_ONCE"}
"""Rollout policy (the manifest's) -> SageMaker's traffic routing type."""


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


def capture_prefix(env: EnvName) -> str:
    """Where an environment's endpoint writes captured traffic, inside its artifact bucket."""
    return f"{CAPTURE_PREFIX}/{env}"


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
        self.props, self.key = props, key
        self.env: EnvName = props.names.env
        self.names = props.names
        self.endpoint_name = self.names.endpoint()
        self.capture_uri = f"s3://{artifacts_bucket}/{capture_prefix(self.env)}"
        self.model_role = self._model_role(artifacts_bucket, home_artifacts_arn, [image])
        environment = dict(props.environment)
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.model_role.role_arn,
            containers=[
                sagemaker.CfnModel.ContainerDefinitionProperty(
                    image=image,
                    model_data_url=model_data,
                    environment=environment or None,
                )
            ],
            enable_network_isolation=True,
        )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            kms_key_id=key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=self.model.attr_model_name,
                    initial_instance_count=props.instance_count,
                    instance_type=props.instance_type,
                    initial_variant_weight=1.0,
                )
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=props.capture_percent,
                destination_s3_uri=self.capture_uri,
                kms_key_id=key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=(
                    sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                        csv_content_types=["text/csv"]
                    )
                ),
            ),
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
        self.scaling = self._autoscaling(props.scaling) if props.scaling else None

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

    def _endpoint_metric(self, name: str, statistic: str, period: int) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": VARIANT},
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
                errors, what = ERROR_METRICS[slo.name]
                metric = cloudwatch.MathExpression(
                    expression="IF(invocations > 0, errors / invocations, 0)",
                    using_metrics={
                        "errors": self._endpoint_metric(errors, "Sum", p),
                        "invocations": self._endpoint_metric("Invocations", "Sum", p),
                    },
                    period=durations.seconds(p),
                    label=f"{errors} / Invocations",
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

    def _autoscaling(self, bounds: Scaling) -> autoscaling.ScalableTarget:
        target = autoscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=bounds.min_instances,
            max_capacity=bounds.max_instances,
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
        target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=bounds.target_invocations_per_instance,
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=durations.minutes(5),
            scale_out_cooldown=durations.minutes(1),
        )
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
        role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[capture]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Encrypt"], resources=[self.key.key_arn]
            )
        )
        policy = role.node.find_child("DefaultPolicy")
        acknowledge_each(
            policy,
            {
                f"AwsSolutions-IAM5[Resource::{alarms}]": (
                    "SageMaker's deployment guardrails read the state of this environment's "
                    "alarms with the model role during a blue/green update; alarm names carry "
                    "the product and environment."
                ),
                f"AwsSolutions-IAM5[Resource::{capture}]": (
                    "SageMaker writes data capture files with the model role, under this "
                    "environment's capture prefix only; object keys carry the date and hour."
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
