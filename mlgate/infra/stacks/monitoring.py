"""Monitoring, per environment: what watches the endpoint's captured traffic, in a stack of its
own so that a monitor AWS refuses never rolls a release back (Serving is updated by the release
hooks; this stack only by `cdk deploy`).

`monitoring.engine: evidently` (the default): mlgate's Evidently job as a scheduled SageMaker
pipeline. It finds the live version at run time, through the SSM parameter the Serving stack
keeps at the released model package, so it follows every release without being updated.

`monitoring.engine: model-monitor`: SageMaker Model Monitor schedules, for accounts that
already have it (it takes no new customers:
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor.html). Its job definitions name
their baseline, which CloudFormation reads from the Serving stack's SSM parameters
(`AWS::SSM::Parameter::Value<String>` parameters, resolved on every create and update:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html#aws-ssm-parameter-types);
so the schedules follow a release when this stack is next deployed (`cdk deploy --force`
re-reads them). Until a version is released the stack holds the role only.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import CfnCondition, CfnParameter, Fn
from constructs import Construct

from mlgate.infra.constructs.conditions import condition_all
from mlgate.infra.constructs.evidently import (
    EvidentlyMonitor,
    EvidentlyProps,
    released_uri,
    source_uri,
)
from mlgate.infra.constructs.model_monitor import (
    GroundTruth,
    ModelMonitorProps,
    ModelMonitorSchedules,
)
from mlgate.infra.ml.images import image_uris
from mlgate.infra.monitoring_args import step_arguments
from mlgate.infra.naming import Names
from mlgate.infra.stacks.base import ProductStack, released_versions, reports_prefix
from mlgate.infra.stacks.foundation import FoundationStack, SiteStack
from mlgate.infra.stacks.serving import NO_BASELINE
from mlgate.manifest import EnvName, Manifest, MonitoringEngine, ProblemType
from mlgate.manifest.schedules import schedule_interval_hours

MODEL_MONITOR_RESOURCES = frozenset(
    {
        "AWS::SageMaker::DataQualityJobDefinition",
        "AWS::SageMaker::ModelQualityJobDefinition",
        "AWS::SageMaker::MonitoringSchedule",
    }
)


MONITOR_PROBLEM_TYPES = {
    ProblemType.BINARY_CLASSIFICATION: "BinaryClassification",
    ProblemType.MULTICLASS: "MulticlassClassification",
    ProblemType.REGRESSION: "Regression",
}
"""The manifest's problem type -> Model Monitor's."""


def evidently_props(
    manifest: Manifest, env: EnvName, *, artifacts_bucket: str, home_artifacts_arn: str
) -> EvidentlyProps:
    """What the environment's Evidently monitor takes from the manifest."""
    names = Names.of(manifest, env)
    batch = manifest.is_batch(env)
    return EvidentlyProps(
        names=names,
        schedule=manifest.monitoring.schedule,
        steps=step_arguments(
            manifest,
            env,
            capture_uri=source_uri(artifacts_bucket, names, batch=batch),
            released_uri=released_uri(home_artifacts_arn, names),
        ),
        released=released_versions(manifest, env),
        ground_truth_s3_uri=manifest.monitoring.ground_truth_s3_uri,
        batch=batch,
    )


def model_monitor_props(manifest: Manifest, env: EnvName) -> ModelMonitorProps:
    """What the environment's Model Monitor schedules take from the manifest."""
    monitoring = manifest.monitoring
    truth = monitoring.ground_truth_s3_uri
    return ModelMonitorProps(
        names=Names.of(manifest, env),
        schedule=monitoring.schedule,
        released=released_versions(manifest, env),
        ground_truth=GroundTruth(
            s3_uri=truth,
            problem_type=MONITOR_PROBLEM_TYPES[manifest.model.problem_type],
            delay_hours=monitoring.ground_truth_delay_hours,
            interval_hours=schedule_interval_hours(monitoring.schedule),
        )
        if truth
        else None,
    )


class MonitoringStack(ProductStack):
    component = "monitoring"

    def __init__(
        self,
        scope: Construct,
        *,
        manifest: Manifest,
        env_name: EnvName,
        foundation: FoundationStack,
        site: SiteStack,
    ) -> None:
        """`foundation` is the product's home; `site` the foundation of the environment's
        account (the home foundation itself when the environment lives there)."""
        engine = manifest.monitoring.engine
        super().__init__(
            scope,
            manifest=manifest,
            env_name=env_name,
            description=f"{env_name} monitoring of "
            f"{'batch predictions' if manifest.is_batch(env_name) else 'captured traffic'} "
            f"({engine.value})",
        )
        names = Names.of(manifest, env_name)
        artifacts = site.bucket_name("artifacts")
        home_artifacts = foundation.bucket_arn("artifacts")
        self.evidently: EvidentlyMonitor | None = None
        self.model_monitor: ModelMonitorSchedules | None = None
        if engine is MonitoringEngine.EVIDENTLY:
            outdir = Path(cdk.App.of(self).outdir)  # type: ignore[union-attr]
            self.evidently = EvidentlyMonitor(
                self,
                "Evidently",
                props=evidently_props(
                    manifest,
                    env_name,
                    artifacts_bucket=artifacts,
                    home_artifacts_arn=home_artifacts,
                ),
                key=site.key,
                artifacts_bucket=artifacts,
                home_artifacts_arn=home_artifacts,
                build_dir=outdir / "mlgate-build" / self.product / env_name,
            )
            self.reports_uri = self.evidently.reports_uri
            return
        baseline = {
            what: CfnParameter(
                self,
                f"Live{what.title().replace('-', '')}",
                type="AWS::SSM::Parameter::Value<String>",
                default=names.live_release_parameter(what),
                description=f"SSM parameter the Serving stack keeps at the live version's {what}",
            ).value_as_string
            for what in ("baseline-statistics", "baseline-constraints")
        }
        released = CfnCondition(
            self,
            "Released",
            expression=Fn.condition_not(
                Fn.condition_equals(
                    baseline["baseline-statistics"], f"{NO_BASELINE}/statistics.json"
                )
            ),
        )
        images = image_uris(manifest, self.target.region)
        self.model_monitor = ModelMonitorSchedules(
            self,
            "ModelMonitor",
            props=model_monitor_props(manifest, env_name),
            key=site.key,
            artifacts_bucket=artifacts,
            home_artifacts_arn=home_artifacts,
            image=images["model-monitor"],
            pull=[images["model-monitor"]],
            baseline_statistics=baseline["baseline-statistics"],
            baseline_constraints=baseline["baseline-constraints"],
        )
        self.reports_uri = f"s3://{artifacts}/{reports_prefix(manifest, env_name)}"
        condition_all(self, released, MODEL_MONITOR_RESOURCES)
