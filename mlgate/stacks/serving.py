"""Serving, per environment: the endpoint of an approved model version with data capture,
blue/green guardrails that roll back on the SLO alarms, autoscaling, Model Monitor, and the
drift responder that closes the retraining loop.

The model version arrives as the `ModelPackageArn` parameter (the delivery pipeline sets it,
with the baseline registered beside the version). Until a version is released, the stack holds
only what needs no model: alarms, roles, the drift responder. The endpoint appears with the
first release.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import CfnCondition, CfnParameter, CfnResource, Duration, Fn, RemovalPolicy
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlgate import accounts, naming
from mlgate.constructs.compliance import acknowledge
from mlgate.constructs.conditions import NEEDS_A_MODEL, ConditionOn
from mlgate.constructs.hooks import FailureRouting, HookFunction, on_call_owner
from mlgate.constructs.storage import grant_volume_keys
from mlgate.manifest import EnvName, Manifest, ProblemType, RolloutPolicy, SloKind
from mlgate.ml.pipeline import image_uris
from mlgate.naming import endpoint_name
from mlgate.schedules import schedule_interval_hours
from mlgate.stacks.base import ProductStack
from mlgate.stacks.foundation import FoundationStack, SiteStack, key_alias
from mlgate.stacks.training import start_training, training_pipeline_name

VARIANT = "AllTraffic"
MONITOR_INSTANCE = "ml.m5.large"
CAPTURE_PREFIX = "datacapture"
MONITOR_PROBLEM_TYPES = {
    ProblemType.BINARY_CLASSIFICATION: "BinaryClassification",
    ProblemType.MULTICLASS: "MulticlassClassification",
    ProblemType.REGRESSION: "Regression",
}
NO_MODEL = "none"
NO_BASELINE = "s3://no-model-released-yet"  # never read: monitoring waits for a release


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
    ) -> None:
        """`foundation` is the product's home; `site` is the foundation of the environment's
        account (the home foundation itself when the environment lives there)."""
        super().__init__(
            scope,
            manifest=manifest,
            env_name=env_name,
            description=f"{env_name} endpoint, guardrails, Model Monitor, drift responder",
        )
        settings = manifest.env_serving(env_name)
        self.endpoint_name = endpoint_name(self.product, env_name)
        self.model_package = CfnParameter(
            self,
            "ModelPackageArn",
            type="String",
            default=NO_MODEL,
            description="Approved model package version to serve; set by the release pipeline",
        )
        self.baseline_statistics = CfnParameter(
            self,
            "BaselineStatisticsUri",
            type="String",
            default=f"{NO_BASELINE}/statistics.json",
            allowed_pattern=r"^s3://.+$",
            description="Data-quality baseline statistics registered with the model version",
        )
        self.baseline_constraints = CfnParameter(
            self,
            "BaselineConstraintsUri",
            type="String",
            default=f"{NO_BASELINE}/constraints.json",
            allowed_pattern=r"^s3://.+$",
            description="Data-quality baseline constraints registered with the model version",
        )
        has_model = CfnCondition(
            self,
            "HasModel",
            expression=Fn.condition_not(
                Fn.condition_equals(self.model_package.value_as_string, NO_MODEL)
            ),
        )
        cdk.Aspects.of(self).add(ConditionOn(has_model, NEEDS_A_MODEL))
        self.remote = manifest.is_remote(env_name)
        self.key = site.key
        self.artifacts_bucket = site.bucket_name("artifacts")
        # Released versions (model artifacts, baselines) live in the home artifact bucket.
        self.home_artifacts = foundation.bucket_arn("artifacts")
        self.capture_uri = f"s3://{self.artifacts_bucket}/{CAPTURE_PREFIX}/{env_name}"
        self.model_role = self._model_role()
        images = image_uris(manifest, self.region)

        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.model_role.role_arn,
            containers=[
                sagemaker.CfnModel.ContainerDefinitionProperty(
                    model_package_name=self.model_package.value_as_string
                )
            ],
            enable_network_isolation=True,
        )
        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            kms_key_id=self.key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=model.attr_model_name,
                    initial_instance_count=settings.instance_count,
                    instance_type=settings.instance_type,
                    initial_variant_weight=1.0,
                )
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=manifest.serving.data_capture_sampling_percent,
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
            ),
        )
        self.rollback_alarm_names: list[str] = []
        self.rollback_alarms = self._rollback_alarms(site.on_call_topic)
        endpoint_deps = self.rollback_alarms
        endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
            # A release keeps the capacity autoscaling reached instead of resetting it to the
            # config's initial count. An instance-type change is the exception: deregister the
            # scaling target first (README, "Changing the instance type").
            retain_all_variant_properties=True,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=self._blue_green(env_name),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[
                        sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name)
                        for name in self.rollback_alarm_names
                    ]
                ),
            ),
        )
        for alarm in endpoint_deps:
            endpoint.node.add_dependency(alarm)
        self.scaling = (
            self._autoscaling(endpoint, has_model) if settings.autoscaling.enabled else None
        )
        self.monitor_role = self._monitor_role(site.bucket_arn("artifacts"))
        self.schedules = self._monitoring(images["model-monitor"], endpoint, has_model)
        self.drift_table, self.drift_responder = self._drift_loop(site.on_call_topic, site)

    # --- blue/green and rollback -----------------------------------------------------------

    def _blue_green(self, env: EnvName) -> sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty:
        rollout = self.manifest.env_serving(env).rollout
        routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty
        capacity = sagemaker.CfnEndpoint.CapacitySizeProperty
        if rollout.policy is RolloutPolicy.CANARY:
            traffic = routing(
                type="CANARY",
                canary_size=capacity(type="CAPACITY_PERCENT", value=rollout.canary_percent),
                wait_interval_in_seconds=rollout.bake_minutes * 60,
            )
        elif rollout.policy is RolloutPolicy.LINEAR:
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
            period=Duration.seconds(period),
        )

    def _rollback_alarms(self, on_call: sns.ITopic) -> list[cloudwatch.Alarm]:
        """One alarm per manifest SLO: they page on-call and roll a deployment back."""
        env = self.env_name or "staging"
        alarms = []
        for slo in self.manifest.metrics.slos:
            p = slo.period_seconds
            if slo.name is SloKind.LATENCY_P99_MS:
                # ModelLatency is reported in microseconds.
                metric: cloudwatch.IMetric = self._endpoint_metric("ModelLatency", "p99", p)
                threshold = slo.threshold * 1000
                what = "model latency p99"
            else:
                errors = (
                    "Invocation5XXErrors"
                    if slo.name is SloKind.ERROR_RATE_5XX
                    else "InvocationModelErrors"
                )
                metric = cloudwatch.MathExpression(
                    expression="IF(invocations > 0, errors / invocations, 0)",
                    using_metrics={
                        "errors": self._endpoint_metric(errors, "Sum", p),
                        "invocations": self._endpoint_metric("Invocations", "Sum", p),
                    },
                    period=Duration.seconds(p),
                    label=f"{errors} / Invocations",
                )
                threshold = slo.threshold
                what = (
                    "5xx error rate" if slo.name is SloKind.ERROR_RATE_5XX else "model error rate"
                )
            owner = self.manifest.contact(slo.owner)
            name = naming.alarm_name(
                self.product, env, "system", slo.name.value.replace("_", "-"), "critical"
            )
            self.rollback_alarm_names.append(name)
            alarm = cloudwatch.Alarm(
                self,
                f"Rollback{naming.pascal(slo.name.value)}",
                alarm_name=name,
                alarm_description=(
                    f"{what} of {self.endpoint_name} breached the SLO ({slo.threshold}) for "
                    f"{slo.evaluation_periods} x {p} s. During a blue/green deployment this "
                    "rolls the endpoint back to the previous model. Check: 1) a deployment in "
                    "progress (CloudFormation events of this stack), 2) the endpoint's "
                    "CloudWatch logs, 3) instance CPU/memory and invocations per instance. "
                    f"Owner: {owner.name} <{owner.email}>. Runbook: "
                    f"{self.manifest.product.runbook_url}"
                ),
                metric=metric,
                threshold=threshold,
                evaluation_periods=slo.evaluation_periods,
                datapoints_to_alarm=slo.evaluation_periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                # No traffic is not an outage: quiet endpoints must not roll deployments back.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(on_call))
            alarms.append(alarm)
        return alarms

    # --- scaling ---------------------------------------------------------------------------

    def _autoscaling(
        self, endpoint: sagemaker.CfnEndpoint, has_model: CfnCondition
    ) -> autoscaling.ScalableTarget:
        bounds = self.manifest.env_serving(self.env_name or "staging").autoscaling
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
                f"arn:aws:iam::{self.account}:role/aws-service-role/"
                "sagemaker.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
            ),
        )
        target.node.add_dependency(endpoint)
        target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=bounds.target_invocations_per_instance,
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )
        return target

    # --- Model Monitor ---------------------------------------------------------------------

    def _model_role(self) -> iam.Role:
        artifacts = self.home_artifacts
        role = iam.Role(
            self,
            "ModelRole",
            role_name=accounts.model_role(self.manifest, self.env_name or "staging"),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Hosts the approved model: reads its artifacts and image only",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"{artifacts}/training/{self.product}/*"],
            )
        )
        self._pull_images(role)
        self._decrypt_released_versions(role)
        # What SageMaker does with this role on the product's behalf (mlgate/
        # service_permissions.py, each with its documentation page): read the rollback alarms
        # during a blue/green update, write captured traffic under the capture prefix with
        # the environment's key.
        env = self.env_name or "staging"
        alarms = (
            f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:mlgate/{self.product}/{env}/*"
        )
        capture = f"arn:aws:s3:::{self.artifacts_bucket}/{CAPTURE_PREFIX}/{env}/*"
        role.add_to_policy(
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=[alarms])
        )
        role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[capture]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Encrypt"], resources=[self.key.key_arn]
            )
        )
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            f"AwsSolutions-IAM5[Resource::{alarms}]",
            "SageMaker's deployment guardrails read the state of this environment's alarms "
            "with the model role during a blue/green update; alarm names carry the product "
            "and environment.",
        )
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            f"AwsSolutions-IAM5[Resource::{capture}]",
            "SageMaker writes data capture files with the model role, under this environment's "
            "capture prefix only; object keys carry the date and hour.",
        )
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "The model role pulls its container image; ecr:GetAuthorizationToken supports no "
            "resource-level permission (the image repositories themselves are named).",
        )
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            f"AwsSolutions-IAM5[Resource::{artifacts}/training/{self.product}/*]",
            "The model role reads model artifacts the training pipeline wrote under this "
            "product's training prefix; object keys include the execution id.",
        )
        return role

    def _pull_images(self, role: iam.Role) -> None:
        images = image_uris(self.manifest, self.region)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=sorted(
                    f"arn:aws:ecr:{self.region}:{uri.split('.')[0]}:repository/"
                    f"{uri.split('/', 1)[1].split(':')[0]}"
                    for uri in images.values()
                ),
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )

    def _decrypt_released_versions(self, role: iam.Role) -> None:
        """Released versions are encrypted with the home key. In the home account that is this
        stack's key; from another account, the key is named by its alias (its id is not known
        here) and its key policy lets only this environment's model and monitor roles in."""
        if not self.remote:
            self.key.grant_decrypt(role)
            return
        home = self.manifest.environments.staging
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[f"arn:aws:kms:{home.region}:{home.account}:key/*"],
                conditions={
                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": key_alias(self.manifest)},
                    "StringEquals": {"kms:ViaService": f"s3.{home.region}.amazonaws.com"},
                },
            )
        )
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            f"AwsSolutions-IAM5[Resource::arn:aws:kms:{home.region}:{home.account}:key/*]",
            f"The {self.env_name} account cannot know the home key's id; the grant is limited "
            f"to the key aliased {key_alias(self.manifest)}, used through S3 only.",
        )

    def _monitor_role(self, artifacts: str) -> iam.Role:
        role = iam.Role(
            self,
            "MonitorRole",
            role_name=accounts.monitor_role(self.manifest, self.env_name or "staging"),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Model Monitor jobs: read captured traffic and baselines, write reports",
        )
        env = self.env_name
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                resources=[
                    artifacts,
                    f"{artifacts}/{CAPTURE_PREFIX}/{env}/*",
                    f"{artifacts}/monitoring/{env}/*",
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"{self.home_artifacts}/training/{self.product}/*"],
            )
        )
        self._decrypt_released_versions(role)
        ground_truth = self.manifest.monitoring.ground_truth_s3_uri
        if ground_truth:
            bucket, _, prefix = ground_truth.removeprefix("s3://").partition("/")
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:ListBucket"],
                    resources=[f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{prefix}*"],
                )
            )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "aws/sagemaker/*"}},
            )
        )
        self._pull_images(role)
        self.key.grant_encrypt_decrypt(role)
        grant_volume_keys(role, self.key)
        policy = role.node.find_child("DefaultPolicy")
        findings = {
            f"{artifacts}/{CAPTURE_PREFIX}/{env}/*": "captured requests of this environment",
            f"{artifacts}/monitoring/{env}/*": "monitoring reports of this environment",
            f"{self.home_artifacts}/training/{self.product}/*": (
                "baselines registered with the version"
            ),
            f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/*": (
                "logs of monitoring jobs, in groups SageMaker names"
            ),
            "*": "ecr:GetAuthorizationToken and namespace-conditioned PutMetricData take no ARN",
        }
        if ground_truth:
            bucket, _, prefix = ground_truth.removeprefix("s3://").partition("/")
            findings[f"arn:aws:s3:::{bucket}/{prefix}*"] = "labels in the ground-truth prefix"
        for resource, reason in findings.items():
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{resource}]",
                f"Model Monitor role of {self.product} {env}: {reason}.",
            )
        for action in ("GenerateDataKey*", "ReEncrypt*"):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Action::kms:{action}]",
                f"Model Monitor role of {self.product} {env}: writes reports encrypted with "
                "the product key (CDK's encrypt/decrypt grant).",
            )
        return role

    def _monitoring(
        self, image: str, endpoint: sagemaker.CfnEndpoint, has_model: CfnCondition
    ) -> list[sagemaker.CfnMonitoringSchedule]:
        env = self.env_name
        bucket = f"s3://{self.artifacts_bucket}"
        resources = sagemaker.CfnDataQualityJobDefinition.MonitoringResourcesProperty(
            cluster_config=sagemaker.CfnDataQualityJobDefinition.ClusterConfigProperty(
                instance_count=1,
                instance_type=MONITOR_INSTANCE,
                volume_size_in_gb=20,
                volume_kms_key_id=self.key.key_arn,
            )
        )
        network = sagemaker.CfnDataQualityJobDefinition.NetworkConfigProperty(
            enable_network_isolation=True,
            enable_inter_container_traffic_encryption=True,
        )
        data_quality = sagemaker.CfnDataQualityJobDefinition(
            self,
            "DataQualityMonitor",
            role_arn=self.monitor_role.role_arn,
            data_quality_app_specification=(
                sagemaker.CfnDataQualityJobDefinition.DataQualityAppSpecificationProperty(
                    image_uri=image
                )
            ),
            data_quality_baseline_config=(
                sagemaker.CfnDataQualityJobDefinition.DataQualityBaselineConfigProperty(
                    constraints_resource=sagemaker.CfnDataQualityJobDefinition.ConstraintsResourceProperty(
                        s3_uri=self.baseline_constraints.value_as_string
                    ),
                    statistics_resource=sagemaker.CfnDataQualityJobDefinition.StatisticsResourceProperty(
                        s3_uri=self.baseline_statistics.value_as_string
                    ),
                )
            ),
            data_quality_job_input=sagemaker.CfnDataQualityJobDefinition.DataQualityJobInputProperty(
                endpoint_input=sagemaker.CfnDataQualityJobDefinition.EndpointInputProperty(
                    endpoint_name=self.endpoint_name,
                    local_path="/opt/ml/processing/input/endpoint",
                )
            ),
            data_quality_job_output_config=sagemaker.CfnDataQualityJobDefinition.MonitoringOutputConfigProperty(
                kms_key_id=self.key.key_arn,
                monitoring_outputs=[
                    sagemaker.CfnDataQualityJobDefinition.MonitoringOutputProperty(
                        s3_output=sagemaker.CfnDataQualityJobDefinition.S3OutputProperty(
                            local_path="/opt/ml/processing/output",
                            s3_uri=f"{bucket}/monitoring/{env}/data-quality",
                            s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            ),
            job_resources=resources,
            network_config=network,
            stopping_condition=sagemaker.CfnDataQualityJobDefinition.StoppingConditionProperty(
                max_runtime_in_seconds=1800
            ),
        )
        definitions: list[tuple[str, str, CfnResource]] = [
            ("DataQuality", "DataQuality", data_quality)
        ]
        ground_truth = self.manifest.monitoring.ground_truth_s3_uri
        if ground_truth:
            mq = sagemaker.CfnModelQualityJobDefinition
            problem = self.manifest.model.problem_type
            delay = self.manifest.monitoring.ground_truth_delay_hours
            interval = schedule_interval_hours(self.manifest.monitoring.schedule)
            model_quality = mq(
                self,
                "ModelQualityMonitor",
                role_arn=self.monitor_role.role_arn,
                model_quality_app_specification=mq.ModelQualityAppSpecificationProperty(
                    image_uri=image, problem_type=MONITOR_PROBLEM_TYPES[problem]
                ),
                model_quality_job_input=mq.ModelQualityJobInputProperty(
                    endpoint_input=mq.EndpointInputProperty(
                        endpoint_name=self.endpoint_name,
                        local_path="/opt/ml/processing/input/endpoint",
                        **self._prediction_attributes(problem),
                        # Only inferences whose labels have had time to land: the window ends
                        # the manifest's delay before the run and spans one schedule interval.
                        start_time_offset=f"-PT{delay + interval}H",
                        end_time_offset=f"-PT{delay}H",
                    ),
                    ground_truth_s3_input=mq.MonitoringGroundTruthS3InputProperty(
                        s3_uri=ground_truth
                    ),
                ),
                model_quality_job_output_config=mq.MonitoringOutputConfigProperty(
                    kms_key_id=self.key.key_arn,
                    monitoring_outputs=[
                        mq.MonitoringOutputProperty(
                            s3_output=mq.S3OutputProperty(
                                local_path="/opt/ml/processing/output",
                                s3_uri=f"{bucket}/monitoring/{env}/model-quality",
                                s3_upload_mode="EndOfJob",
                            )
                        )
                    ],
                ),
                job_resources=mq.MonitoringResourcesProperty(
                    cluster_config=mq.ClusterConfigProperty(
                        instance_count=1,
                        instance_type=MONITOR_INSTANCE,
                        volume_size_in_gb=20,
                        volume_kms_key_id=self.key.key_arn,
                    )
                ),
                network_config=mq.NetworkConfigProperty(
                    enable_network_isolation=True,
                    enable_inter_container_traffic_encryption=True,
                ),
                stopping_condition=mq.StoppingConditionProperty(max_runtime_in_seconds=1800),
            )
            definitions.append(("ModelQuality", "ModelQuality", model_quality))

        schedules = []
        for label, kind, definition in definitions:
            definition.node.add_dependency(endpoint)
            schedule = sagemaker.CfnMonitoringSchedule(
                self,
                f"{label}Schedule",
                monitoring_schedule_name=self.name(label.lower().replace("quality", "-quality")),
                endpoint_name=self.endpoint_name,
                monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                    # The definition's generated name, the last part of its ARN (its Ref): a
                    # fixed name would make CloudFormation replace it in place when a release
                    # changes its baseline, which it cannot do for a custom-named resource.
                    monitoring_job_definition_name=Fn.select(
                        1, Fn.split("/", definition.get_att("JobDefinitionArn").to_string())
                    ),
                    monitoring_type=kind,
                    schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                        schedule_expression=self.manifest.monitoring.schedule
                    ),
                ),
            )
            schedules.append(schedule)
        return schedules

    @staticmethod
    def _prediction_attributes(problem: ProblemType) -> dict[str, Any]:
        """Where Model Monitor finds the prediction in the endpoint's CSV answer: a binary
        model answers a probability (ProbabilityAttribute, with the threshold that makes it a
        label), a multiclass or regression model the label or value itself
        (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-schedule.html)."""
        if problem is ProblemType.BINARY_CLASSIFICATION:
            return {"probability_attribute": "0", "probability_threshold_attribute": 0.5}
        return {"inference_attribute": "0"}

    # --- drift -> retraining -----------------------------------------------------------------

    def _drift_loop(
        self, on_call: sns.ITopic, site: SiteStack
    ) -> tuple[dynamodb.TableV2, HookFunction]:
        """Monitoring executions with violations start retraining, once per cool-down."""
        table = dynamodb.TableV2(
            self,
            "DriftCooldown",
            table_name=self.name("drift"),
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(self.key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            removal_policy=RemovalPolicy.RETAIN,
        )
        monitoring = self.manifest.monitoring
        pipeline = training_pipeline_name(self.product)
        home = self.manifest.environment("staging")
        env = self.env_name or "staging"
        hook = HookFunction(
            self,
            "DriftResponder",
            hook="drift_responder",
            role_name=accounts.drift_role(self.manifest, env),
            description="Starts retraining on drift, at most once per cool-down",
            environment={
                "PIPELINE_NAME": pipeline,
                "COOLDOWN_TABLE": table.table_name,
                "COOLDOWN_HOURS": str(monitoring.retrain_cooldown_hours),
                "OWNERS_TOPIC_ARN": on_call.topic_arn,
                "ENDPOINT_NAME": self.endpoint_name,
                "PRODUCT": self.product,
                "ENVIRONMENT": self.env_name or "staging",
            },
            failures=FailureRouting(
                key=self.key,
                on_call=on_call,
                alarm_name=naming.alarm_name(
                    self.product, env, "system", "drift_responder-failed", "critical"
                ),
                owner=on_call_owner(self.manifest),
                runbook=self.manifest.product.runbook_url,
            ),
        )
        hook.make_idempotent(site.idempotency)
        table.grant(hook.function, "dynamodb:PutItem", "dynamodb:GetItem")
        on_call.grant_publish(hook.function)
        if self.remote:
            # The pipeline lives in the home account: start it through the home retrain role.
            retrain = accounts.role_arn(home.account, accounts.retrain_role(self.manifest, env))
            hook.function.add_environment("RETRAIN_ROLE_ARN", retrain)
            hook.role.add_to_policy(
                iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[retrain])
            )
        else:
            hook.role.add_to_policy(start_training(self.manifest))
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "mlgate/monitoring"}},
            )
        )
        policy = hook.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "The drift responder publishes its drift metric; cloudwatch:PutMetricData takes no "
            "resource ARN and is limited to the mlgate/monitoring namespace.",
        )
        for action in ("GenerateDataKey*", "ReEncrypt*"):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Action::kms:{action}]",
                "The drift responder writes cool-down records to its KMS-encrypted table and "
                "publishes to the encrypted on-call topic.",
            )
        events.Rule(
            self,
            "DriftDetected",
            rule_name=self.name("drift"),
            description="A Model Monitor execution of this endpoint found violations",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Processing Job State Change"],
                detail={
                    "ProcessingJobStatus": ["Completed"],
                    # Model Monitor's exit message for a run that found violations (as
                    # documented; the rehearsal and tests use that shape).
                    "ExitMessage": [{"prefix": "CompletedWithViolations"}],
                    "MonitoringScheduleArn": [
                        {
                            "prefix": f"arn:aws:sagemaker:{self.region}:{self.account}:"
                            f"monitoring-schedule/{self.name('data-quality')}"
                        }
                    ],
                },
            ),
            targets=[targets.LambdaFunction(hook.function, retry_attempts=2)],
        )
        return table, hook
