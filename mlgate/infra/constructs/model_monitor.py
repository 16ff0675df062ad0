"""ModelMonitorSchedules: SageMaker Model Monitor on an endpoint's captured traffic, data
quality always and model quality when ground truth is declared, with the role its jobs run as.

Model Monitor no longer takes new customers
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor.html); mlgate uses it only for
`monitoring.engine: model-monitor`, in accounts that still have it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnResource, Fn
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlgate.infra.constructs.compliance import (
    KEY_GRANT_FINDINGS,
    acknowledge_each,
    acknowledge_findings,
)
from mlgate.infra.constructs.endpoint import capture_prefix
from mlgate.infra.constructs.sagemaker_access import (
    ReleasedVersions,
    decrypt_released_versions,
    pull_images,
    write_job_logs,
)
from mlgate.infra.constructs.storage import grant_volume_keys
from mlgate.infra.naming import Names

MONITOR_INSTANCE = "ml.m5.large"
MONITOR_PROBLEM_TYPES = ("BinaryClassification", "MulticlassClassification", "Regression")
"""Model Monitor's problem types (CfnModelQualityJobDefinition's ProblemType)."""


@dataclass(frozen=True)
class GroundTruth:
    """Labels for live model quality: where they land (`s3_uri`), the model's `problem_type`
    as Model Monitor names it (MONITOR_PROBLEM_TYPES), how late they land (`delay_hours`) and
    the hours between two runs of the schedule (`interval_hours`)."""

    s3_uri: str
    problem_type: str
    delay_hours: int
    interval_hours: int


@dataclass(frozen=True)
class ModelMonitorProps:
    """What one environment's Model Monitor schedules know: its `names` (the environment's),
    the `schedule` (a cron expression), where released baselines are read, and ground truth
    (None: data quality only)."""

    names: Names
    schedule: str
    released: ReleasedVersions
    ground_truth: GroundTruth | None = None


def prediction_attributes(problem: str) -> dict[str, Any]:
    """Where Model Monitor finds the prediction in the endpoint's CSV answer: a binary
    model answers a probability (ProbabilityAttribute, with the threshold that makes it a
    label), a multiclass or regression model the label or value itself
    (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-schedule.html)."""
    if problem not in MONITOR_PROBLEM_TYPES:
        raise ValueError(f"problem type '{problem}' is none of {', '.join(MONITOR_PROBLEM_TYPES)}")
    if problem == "BinaryClassification":
        return {"probability_attribute": "0", "probability_threshold_attribute": 0.5}
    return {"inference_attribute": "0"}


class ModelMonitorSchedules(Construct):
    """Job definitions and schedules on the environment's endpoint, reading the baseline at
    `baseline_statistics` / `baseline_constraints` (keyword-only inputs)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: ModelMonitorProps,
        key: kms.IKey,
        artifacts_bucket: str,
        home_artifacts_arn: str,
        image: str,
        pull: list[str],
        baseline_statistics: str,
        baseline_constraints: str,
    ) -> None:
        """`artifacts_bucket` is the environment's (capture and reports); `home_artifacts_arn`
        the home account's, where baselines of released versions live; `pull` every image the
        role may pull."""
        super().__init__(scope, id)
        if props.names.env is None:
            raise ValueError("the monitor's names are those of its environment")
        self.props, self.env, self.key = props, props.names.env, key
        self.names = props.names
        self.artifacts_bucket = artifacts_bucket
        self.home_artifacts = home_artifacts_arn
        self.role = self._role(f"arn:aws:s3:::{artifacts_bucket}", pull)
        self.schedules = self._schedules(image, baseline_statistics, baseline_constraints)

    def _role(self, artifacts: str, images: list[str]) -> iam.Role:
        product, env = self.names.product, self.env
        role = iam.Role(
            self,
            "MonitorRole",
            role_name=self.names.monitor_role(),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Model Monitor jobs: read captured traffic and baselines, write reports",
        )
        capture = capture_prefix(env)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                resources=[
                    artifacts,
                    f"{artifacts}/{capture}/*",
                    f"{artifacts}/monitoring/{env}/*",
                ],
            )
        )
        # Only the baselines of released versions, where the release hook copied them
        # (Names.released_prefix): no training run, no unapproved version.
        baselines = f"{self.home_artifacts}/{self.names.released_prefix()}/*/baseline/*"
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[baselines]))
        decrypt_released_versions(role, released=self.props.released, key=self.key)
        ground_truth = self.props.ground_truth.s3_uri if self.props.ground_truth else None
        if ground_truth:
            bucket, _, prefix = ground_truth.removeprefix("s3://").partition("/")
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:ListBucket"],
                    resources=[f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{prefix}*"],
                )
            )
        logs = write_job_logs(role, "*")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "aws/sagemaker/*"}},
            )
        )
        pull_images(role, images)
        self.key.grant_encrypt_decrypt(role)
        grant_volume_keys(role, self.key)
        policy = role.node.find_child("DefaultPolicy")
        findings = {
            f"{artifacts}/{capture}/*": "captured requests of this environment",
            f"{artifacts}/monitoring/{env}/*": "monitoring reports of this environment",
            baselines: "baselines of released versions, one folder per version number, not "
            "known at deploy time",
            logs: "logs of monitoring jobs, in groups SageMaker names",
            "*": "ecr:GetAuthorizationToken and namespace-conditioned PutMetricData take no ARN",
        }
        if ground_truth:
            bucket, _, prefix = ground_truth.removeprefix("s3://").partition("/")
            findings[f"arn:aws:s3:::{bucket}/{prefix}*"] = "labels in the ground-truth prefix"
        acknowledge_each(
            policy,
            {
                f"AwsSolutions-IAM5[Resource::{resource}]": (
                    f"Model Monitor role of {product} {env}: {reason}."
                )
                for resource, reason in findings.items()
            },
        )
        acknowledge_findings(
            policy,
            KEY_GRANT_FINDINGS,
            f"Model Monitor role of {product} {env}: writes reports encrypted with "
            "the product key (CDK's encrypt/decrypt grant).",
        )
        return role

    def _schedules(
        self, image: str, statistics: str, constraints: str
    ) -> list[sagemaker.CfnMonitoringSchedule]:
        env = self.env
        endpoint = self.names.endpoint()
        bucket = f"s3://{self.artifacts_bucket}"
        dq = sagemaker.CfnDataQualityJobDefinition
        data_quality = dq(
            self,
            "DataQualityMonitor",
            role_arn=self.role.role_arn,
            data_quality_app_specification=dq.DataQualityAppSpecificationProperty(image_uri=image),
            data_quality_baseline_config=dq.DataQualityBaselineConfigProperty(
                constraints_resource=dq.ConstraintsResourceProperty(s3_uri=constraints),
                statistics_resource=dq.StatisticsResourceProperty(s3_uri=statistics),
            ),
            data_quality_job_input=dq.DataQualityJobInputProperty(
                endpoint_input=dq.EndpointInputProperty(
                    endpoint_name=endpoint, local_path="/opt/ml/processing/input/endpoint"
                )
            ),
            data_quality_job_output_config=dq.MonitoringOutputConfigProperty(
                kms_key_id=self.key.key_arn,
                monitoring_outputs=[
                    dq.MonitoringOutputProperty(
                        s3_output=dq.S3OutputProperty(
                            local_path="/opt/ml/processing/output",
                            s3_uri=f"{bucket}/{self.names.monitoring_reports(False)}",
                            s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            ),
            job_resources=dq.MonitoringResourcesProperty(
                cluster_config=dq.ClusterConfigProperty(
                    instance_count=1,
                    instance_type=MONITOR_INSTANCE,
                    volume_size_in_gb=20,
                    volume_kms_key_id=self.key.key_arn,
                )
            ),
            network_config=dq.NetworkConfigProperty(
                enable_network_isolation=True,
                enable_inter_container_traffic_encryption=True,
            ),
            stopping_condition=dq.StoppingConditionProperty(max_runtime_in_seconds=1800),
        )
        definitions: list[tuple[str, str, CfnResource]] = [
            ("DataQuality", "DataQuality", data_quality)
        ]
        truth = self.props.ground_truth
        if truth:
            ground_truth = truth.s3_uri
            mq = sagemaker.CfnModelQualityJobDefinition
            problem = truth.problem_type
            delay = truth.delay_hours
            interval = truth.interval_hours
            model_quality = mq(
                self,
                "ModelQualityMonitor",
                role_arn=self.role.role_arn,
                model_quality_app_specification=mq.ModelQualityAppSpecificationProperty(
                    image_uri=image, problem_type=problem
                ),
                model_quality_job_input=mq.ModelQualityJobInputProperty(
                    endpoint_input=mq.EndpointInputProperty(
                        endpoint_name=endpoint,
                        local_path="/opt/ml/processing/input/endpoint",
                        **prediction_attributes(problem),
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
            schedule = sagemaker.CfnMonitoringSchedule(
                self,
                f"{label}Schedule",
                monitoring_schedule_name=self.names.monitoring_schedule(
                    label.lower().replace("quality", "-quality")
                ),
                endpoint_name=endpoint,
                monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                    # The definition's generated name, the last part of its ARN (its Ref): a
                    # fixed name would make CloudFormation replace it in place when a release
                    # changes its baseline, which it cannot do for a custom-named resource.
                    monitoring_job_definition_name=Fn.select(
                        1, Fn.split("/", definition.get_att("JobDefinitionArn").to_string())
                    ),
                    monitoring_type=kind,
                    schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                        schedule_expression=self.props.schedule
                    ),
                ),
            )
            schedules.append(schedule)
        self.definitions = [definition for _, _, definition in definitions]
        return schedules
