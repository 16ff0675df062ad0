"""EvidentlyMonitor: mlgate's Evidently job (mlgate/runtime/monitoring_job) on an environment's
captured traffic (a batch environment's: its runs' transform output), as a SageMaker pipeline
that an EventBridge rule starts on the manifest's monitoring schedule.

The steps run in AWS's prebuilt scikit-learn image in script mode, as FrameworkProcessor runs a
`source_dir`: the source arrives as a tar.gz, its requirements are pip-installed, then the entry
point runs with the step's arguments
(https://docs.aws.amazon.com/sagemaker/latest/dg/processing-job-frameworks.html). No image is
built. Dependencies ship with the job: requirements.txt is requirements-monitoring.lock (exact
pins, a sha256 per wheel), and the wheels themselves, built for the image's Python 3.12
(mlgate/infra/wheelsets.py), arrive as a second Processing input, a zip the step unpacks. pip
installs from those files only (`--no-index --find-links`) and refuses any whose hash differs
(`--require-hashes`: https://pip.pypa.io/en/stable/topics/secure-installs/): no step reaches a
package index.

Three steps, so that the one that runs the ~90 third-party packages on prod's captured traffic
runs with network isolation (NetworkConfig.EnableNetworkIsolation: no inbound or outbound call
from its container, AWS APIs included; Processing itself downloads its inputs and uploads its
outputs: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_NetworkConfig.html):
- Stage (network): finds the live version (SSM, DescribeModelPackage) and copies the run's
  inputs (the released baseline, the windows' capture and labels) to a staging prefix under the
  capture prefix, which keeps capture's retention. It runs mlgate's own stdlib code and boto3
  (its closure of the lock, installed by hash): no other third-party package.
- Monitor (network isolation): Evidently on the staged inputs; writes report.html and
  summary.json.
- Publish (network): puts the summary's figures to CloudWatch, reading the summary only.

The definition is written out here rather than by the SageMaker SDK: its steps are literal
CreateProcessingJob requests (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
API_CreateProcessingJob.html) inside the pipeline definition schema
(https://aws-sagemaker-mlops.github.io/sagemaker-model-building-pipeline-definition-JSON-schema/),
with no conditions for the SDK to resolve, so synth needs neither the SDK's import time nor a
cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, Stack, Stage
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlgate.infra.constructs.compliance import acknowledge_each
from mlgate.infra.constructs.endpoint import VARIANT, capture_prefix
from mlgate.infra.constructs.event_rules import WatchedRule
from mlgate.infra.constructs.sagemaker_access import (
    ReleasedVersions,
    decrypt_released_versions,
    pull_images,
    write_job_logs,
)
from mlgate.infra.constructs.storage import grant_volume_keys
from mlgate.infra.ml.images import monitoring_image
from mlgate.infra.ml.pipeline import PROCESSING
from mlgate.infra.monitoring_args import (
    REPORT_DIR,
    STAGED_DIR,
    batch_predictions_uri,
    predictions_prefix,
)
from mlgate.infra.naming import Names
from mlgate.infra.packaging import build_tar_gz
from mlgate.infra.wheelsets import MONITORING, canonical

JOB_SOURCE = Path(__file__).resolve().parents[2] / "runtime" / "monitoring_job"
CODE_DIR = f"{PROCESSING}/input/code"
WHEELS_INPUT = f"{PROCESSING}/input/wheels"
"""Where Processing downloads the wheelhouse zip (its S3 object, named by its asset hash)."""
WHEELHOUSE = f"{PROCESSING}/wheelhouse"
"""Where the job unpacks it: the one place its pip install looks for packages."""
INSTANCE = "ml.m5.large"  # 8 GB: the job peaks at 1.7 GB on 10^6 records (docs/monitoring.md)
STEP = "Monitor"
STAGE_STEP = "Stage"
PUBLISH_STEP = "Publish"
STAGING_FOLDER = "monitor-staging"
"""Under the environment's capture prefix: each run's staged inputs, one folder per execution
(copies of capture, so they expire with it: mlgate.manifest.Retention.capture)."""
AWS_CLIENT_REQUIREMENTS = "requirements-aws.txt"
AWS_CLIENT = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
"""boto3 and what it installs with (its and botocore's Requires-Dist): all the stage and
publish steps install (tests/stacks/test_monitoring.py checks the closure against the wheels)."""


def install(requirements: str) -> str:
    """Unpack the wheelhouse, install `requirements` from it alone, by hash."""
    return (
        f"python3 -m zipfile -e {WHEELS_INPUT}/*.zip {WHEELHOUSE} && "
        "python3 -m pip install --quiet --disable-pip-version-check --no-index "
        f"--find-links {WHEELHOUSE} --require-hashes -r {requirements}"
    )


def entrypoint(requirements: str, script: str) -> str:
    """Unpack the source dir, install, run the entry point with the step's arguments ("$@"):
    what FrameworkProcessor's generated runproc.sh does, without a package index."""
    return (
        f"set -eu; cd {CODE_DIR} && tar -xzf *.gz && {install(requirements)} && "
        f'exec python3 {script} "$@"'
    )


ENTRYPOINT = entrypoint("requirements.txt", "run.py")
STAGE_ENTRYPOINT = entrypoint(AWS_CLIENT_REQUIREMENTS, "stage.py")
PUBLISH_ENTRYPOINT = entrypoint(AWS_CLIENT_REQUIREMENTS, "publish.py")


def lock_subset(lock: str, names: tuple[str, ...]) -> str:
    """The requirements of `lock` (pip's hash-checking format: a pin, then its hashes on
    continuation lines) whose names are `names`."""
    wanted = {canonical(n) for n in names}
    blocks: list[list[str]] = []
    for line in lock.splitlines():
        if line.startswith((" ", "\t")) and blocks:
            blocks[-1].append(line)
        elif line and not line.startswith("#"):
            blocks.append([line])
    kept = [b for b in blocks if canonical(b[0].split("==")[0].split("[")[0]) in wanted]
    found = {canonical(b[0].split("==")[0]) for b in kept}
    if found != wanted:
        raise ValueError(f"the lock pins no {', '.join(sorted(wanted - found))}")
    return "\n".join(line for block in kept for line in block) + "\n"


@jsii.implements(events.IRuleTarget)
class _StartPipeline:
    """EventBridge's native SageMaker pipeline target
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html), with the role
    it starts executions with."""

    def __init__(self, arn: str, role: iam.IRole) -> None:
        self.arn, self.role = arn, role

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self.arn,
            role=self.role,
            retry_policy=events.CfnRule.RetryPolicyProperty(maximum_retry_attempts=2),
        )


@dataclass(frozen=True)
class EvidentlyProps:
    """What one environment's Evidently monitor knows: its `names` (the environment's), the
    `schedule` it runs on (an EventBridge expression), its steps' command lines (`steps`:
    stage, monitor, publish; mlgate/infra/monitoring_args.py's step_arguments, given
    `source_uri` and `released_uri` below), where released baselines are read, the
    ground-truth prefix it reads labels from (None: no ground truth), and whether the
    environment scores in batch (`batch`: its stage step reads the runs' predictions, not
    capture)."""

    names: Names
    schedule: str
    steps: Mapping[str, Sequence[str]]
    released: ReleasedVersions
    ground_truth_s3_uri: str | None = None
    batch: bool = False


def capture_uri(artifacts_bucket: str, names: Names) -> str:
    """Where the environment's endpoint captures its traffic (its variant's folder)."""
    env = names.env
    if env is None:
        raise ValueError("the monitor's names are those of its environment")
    return f"s3://{artifacts_bucket}/{capture_prefix(env)}/{names.endpoint()}/{VARIANT}"


def source_uri(artifacts_bucket: str, names: Names, *, batch: bool) -> str:
    """What the monitor reads (its `--capture-s3-uri`): the endpoint's capture, or a batch
    environment's predictions prefix."""
    if names.env is None:
        raise ValueError("the monitor's names are those of its environment")
    if batch:
        return batch_predictions_uri(artifacts_bucket, names.env)
    return capture_uri(artifacts_bucket, names)


def released_uri(home_artifacts_arn: str, names: Names) -> str:
    """Where released versions (and their baselines) are, in the home artifact bucket."""
    return f"s3://{home_artifacts_arn.removeprefix('arn:aws:s3:::')}/{names.released_prefix()}"


class EvidentlyMonitor(Construct):
    """The job's role and source, its pipeline, and the schedule that starts it (keyword-only
    inputs)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: EvidentlyProps,
        key: kms.IKey,
        artifacts_bucket: str,
        home_artifacts_arn: str,
        build_dir: Path,
    ) -> None:
        """`artifacts_bucket` is the environment's (capture or batch predictions, and
        reports); `home_artifacts_arn` the home account's, where the baselines of released
        versions live; `build_dir` where the job's source archive is written."""
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.props, self.key = props, key
        self.names = props.names
        # What the stage step reads: capture, or a batch environment's predictions.
        self.capture_uri = source_uri(artifacts_bucket, self.names, batch=props.batch)
        assert props.names.env is not None  # source_uri refused names without one
        self.env = env = props.names.env
        self.image = monitoring_image(str(stack.region))
        self.reports_prefix = self.names.monitoring_reports(evidently=True)
        self.reports_uri = f"s3://{artifacts_bucket}/{self.reports_prefix}"
        build_dir.mkdir(parents=True, exist_ok=True)
        aws_client = build_dir / AWS_CLIENT_REQUIREMENTS
        aws_client.write_text(lock_subset(MONITORING.lock.read_text(), AWS_CLIENT))
        self.source = assets.Asset(
            self,
            "JobSource",
            path=str(
                build_tar_gz(
                    {
                        **{p.name: p for p in sorted(JOB_SOURCE.glob("*.py"))},
                        "requirements.txt": MONITORING.lock,
                        AWS_CLIENT_REQUIREMENTS: aws_client,
                    },
                    build_dir / "monitoring-sourcedir.tar.gz",
                )
            ),
        )
        # Named by the lock's key: synth never reads the 200 MB zip to fingerprint it, nor
        # copies it (wheelsets.WheelSet.staged), and the staging and prod monitoring stacks
        # share one asset.
        self.wheels = assets.Asset(
            self,
            "Wheelhouse",
            path=str(MONITORING.staged(Stage.of(self).asset_outdir)),  # type: ignore[union-attr]
            asset_hash=MONITORING.key,
            asset_hash_type=AssetHashType.CUSTOM,
        )
        self.staging_prefix = f"{capture_prefix(env)}/{STAGING_FOLDER}"
        self.staging_uri = f"s3://{artifacts_bucket}/{self.staging_prefix}"
        self.released_uri = released_uri(home_artifacts_arn, self.names)
        self.role = self._role(f"arn:aws:s3:::{artifacts_bucket}", home_artifacts_arn)
        self.steps = {step: list(arguments) for step, arguments in props.steps.items()}
        self.arguments = self.steps["monitor"]
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=self.names.monitoring_pipeline(),
            pipeline_description=(
                f"Evidently drift and data checks of "
                f"{'batch predictions' if props.batch else 'captured traffic'} against the "
                "live version's baseline; live model metrics when ground truth lands"
            ),
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": stack.to_json_string(self.definition())},
        )
        self.pipeline.node.add_dependency(self.role)
        self.pipeline_arn = (
            f"arn:aws:sagemaker:{stack.region}:{stack.account}:pipeline/"
            f"{self.names.monitoring_pipeline()}"
        )
        starter = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="EventBridge starts the monitoring pipeline on its schedule",
        )
        starter.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StartPipelineExecution"], resources=[self.pipeline_arn]
            )
        )
        self.schedule = WatchedRule(
            self,
            "Schedule",
            rule_name=self.names.resource("monitoring"),
            description="Runs the Evidently monitor on the manifest's monitoring schedule",
            schedule=events.Schedule.expression(props.schedule),
            targets=[_StartPipeline(self.pipeline_arn, starter)],
        )
        self.schedule.node.add_dependency(self.pipeline)

    def _input(self, name: str, uri: Any, local: str) -> dict[str, Any]:
        return {
            "InputName": name,
            "AppManaged": False,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": local,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
            },
        }

    def _request(
        self,
        entry: str,
        arguments: list[str],
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        *,
        isolated: bool,
    ) -> dict[str, Any]:
        """One CreateProcessingJob request: the image, the code and the wheelhouse, `inputs`
        and `outputs` encrypted with the environment's key."""
        request: dict[str, Any] = {
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": INSTANCE,
                    "VolumeSizeInGB": 30,
                    "VolumeKmsKeyId": self.key.key_arn,
                }
            },
            "AppSpecification": {
                "ImageUri": self.image,
                "ContainerEntrypoint": ["/bin/bash", "-c", entry, "mlgate-monitor"],
                "ContainerArguments": arguments,
            },
            "RoleArn": self.role.role_arn,
            "ProcessingInputs": [
                self._input("code", self.source.s3_object_url, CODE_DIR),
                self._input("wheels", self.wheels.s3_object_url, WHEELS_INPUT),
                *inputs,
            ],
            "NetworkConfig": {
                "EnableInterContainerTrafficEncryption": True,
                "EnableNetworkIsolation": isolated,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "Environment": {"PYTHONUNBUFFERED": "1"},
        }
        if outputs:
            request["ProcessingOutputConfig"] = {"KmsKeyId": self.key.key_arn, "Outputs": outputs}
        return request

    def definition(self) -> dict[str, Any]:
        """The pipeline definition: stage (network), monitor (network isolation), publish
        (network); each step takes the one before's output, which orders them."""

        def per_execution(uri: str) -> dict[str, Any]:
            return {
                "Std:Join": {"On": "/", "Values": [uri, {"Get": "Execution.PipelineExecutionId"}]}
            }

        def output(name: str, uri: str, local: str) -> dict[str, Any]:
            return {
                "OutputName": name,
                "AppManaged": False,
                "S3Output": {"S3Uri": per_execution(uri), "LocalPath": local,
                             "S3UploadMode": "EndOfJob"},
            }  # fmt: skip

        def produced(step: str, name: str) -> dict[str, str]:
            return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"}

        # The stage and publish steps call AWS APIs (SSM, SageMaker, S3, CloudWatch), which
        # network isolation forbids; they run mlgate's code and boto3 only.
        stage = self._request(
            STAGE_ENTRYPOINT,
            self.steps["stage"],
            [],
            [output("staged", self.staging_uri, STAGED_DIR)],
            isolated=False,
        )
        monitor = self._request(
            ENTRYPOINT,
            self.steps["monitor"],
            [self._input("staged", produced(STAGE_STEP, "staged"), STAGED_DIR)],
            [output("report", self.reports_uri, REPORT_DIR)],
            isolated=True,
        )
        publish = self._request(
            PUBLISH_ENTRYPOINT,
            self.steps["publish"],
            [self._input("report", produced(STEP, "report"), REPORT_DIR)],
            [],
            isolated=False,
        )
        return {
            "Version": "2020-12-01",
            "Metadata": {},
            "Parameters": [],
            "Steps": [
                {"Name": STAGE_STEP, "Type": "Processing", "Arguments": stage},
                {"Name": STEP, "Type": "Processing", "Arguments": monitor},
                {"Name": PUBLISH_STEP, "Type": "Processing", "Arguments": publish},
            ],
        }

    def _role(self, artifacts: str, home_artifacts: str) -> iam.Role:
        """Runs the pipeline and its steps: starts them as itself, reads this environment's
        capture and the live version's released baseline, stages them, writes reports,
        publishes metrics."""
        stack = Stack.of(self)
        region, account = stack.region, stack.account
        product, env = self.names.product, self.env
        role = iam.Role(
            self,
            "MonitorRole",
            role_name=self.names.monitor_role(),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Evidently monitor: reads captured traffic and baselines, writes reports",
        )
        jobs = f"arn:aws:sagemaker:{region}:{account}:processing-job/pipelines-*"
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                ],
                resources=[jobs],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # What the stage step reads: the endpoint's capture, or a batch environment's
        # predictions (mlgate/runtime/hooks/shared/batch.py's layout).
        capture = (
            predictions_prefix(env).rstrip("/")
            if self.props.batch
            else f"{capture_prefix(env)}/{self.names.endpoint()}/{VARIANT}"
        )
        reports = f"{artifacts}/{self.reports_prefix}/*"
        staged = f"{artifacts}/{self.staging_prefix}/*"
        # Stage lists and reads the windows' capture and writes the staged copy; Processing
        # lists and reads the staged copy for Monitor, uploads the report, and downloads it
        # for Publish.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[artifacts],
                conditions={
                    "StringLike": {
                        "s3:prefix": [f"{capture}/*", f"{self.staging_prefix}/*",
                                      f"{self.reports_prefix}/*"]
                    }
                },
            )
        )  # fmt: skip
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[f"{artifacts}/{capture}/*", staged, reports]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[reports, staged])
        )
        # Only the baselines of released versions, where the release hook copied them
        # (Names.released_prefix): no training run, no unapproved version.
        baselines = f"{home_artifacts}/{self.names.released_prefix()}/*/baseline/*"
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[baselines]))
        decrypt_released_versions(role, released=self.props.released, key=self.key)
        # The job's source archive and wheelhouse only, not the whole asset bucket.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    f"arn:aws:s3:::{asset.s3_bucket_name}/{asset.s3_object_key}"
                    for asset in (self.source, self.wheels)
                ],
            )
        )
        home = self.props.released
        group = self.names.model_package_group()
        packages = (
            f"arn:aws:sagemaker:{home.home_region}:{home.home_account}:model-package/{group}/*"
        )
        parameter = (
            f"arn:aws:ssm:{region}:{account}:parameter"
            f"{self.names.live_release_parameter('model-package')}"
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[packages])
        )
        role.add_to_policy(iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[parameter]))
        ground_truth = self.props.ground_truth_s3_uri
        if ground_truth:
            bucket, _, prefix = ground_truth.removeprefix("s3://").partition("/")
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[f"arn:aws:s3:::{bucket}"],
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[f"arn:aws:s3:::{bucket}/{prefix}*"]
                )
            )
        logs = write_job_logs(role, "ProcessingJobs*")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringEquals": {"cloudwatch:namespace": self.names.monitoring_namespace()}
                },
            )
        )
        pull_images(role, [self.image])
        # Captured traffic is encrypted with the environment's key; Processing encrypts the
        # reports it uploads with it (ProcessingOutputConfig.KmsKeyId).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key.key_arn]
            )
        )
        grant_volume_keys(role, self.key)
        policy = role.node.find_child("DefaultPolicy")
        findings = {
            jobs: "processing jobs the pipeline starts, named pipelines-<execution>-<step> by "
            "SageMaker Pipelines",
            f"{artifacts}/{capture}/*": (
                "the transform output of this batch environment's scheduled runs, one folder "
                "per run (run=<run id>), run ids not known at deploy time"
                if self.props.batch
                else "captured traffic of this environment's endpoint, in hourly folders"
            ),
            reports: "report.html and summary.json of each run, one folder per execution",
            staged: "each run's staged inputs (copies of the windows' capture, the baseline and "
            "labels), one folder per execution",
            baselines: "baseline datasets of released versions, one folder per version number, "
            "not known at deploy time",
            packages: "the released version is read from the product's model package group; "
            "version numbers are not known at deploy time",
            logs: "the job's log streams, in the group SageMaker Processing writes to",
            "*": "ecr:GetAuthorizationToken and namespace-conditioned PutMetricData take no "
            "resource ARN",
        }
        if ground_truth:
            bucket, _, prefix = ground_truth.removeprefix("s3://").partition("/")
            findings[f"arn:aws:s3:::{bucket}/{prefix}*"] = "labels in the ground-truth prefix"
        acknowledge_each(
            policy,
            {
                f"AwsSolutions-IAM5[Resource::{resource}]": (
                    f"Evidently monitor role of {product} {env}: {reason}."
                )
                for resource, reason in findings.items()
            },
        )
        return role
