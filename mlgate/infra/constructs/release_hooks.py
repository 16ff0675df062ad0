"""The hooks that carry a release: release (model approved -> released copy, pipeline source),
deployer, deploy verifier and the automated quality gate. Each owns its environment, grants and
cdk-nag acknowledgments; the role in the template is the hook's exact contract
(tests/test_hook_permissions.py).

The job hooks (deployer, verifier, quality gate) trust only the job id of their event: they
read the job from CodePipeline (GetJobDetails), the release of its own execution from the
release source at the execution's source revision (GetPipelineExecution, GetObjectVersion),
and check its version in the registry (DescribeModelPackage): ReleaseSource grants and
configures exactly that (mlgate/runtime/hooks/shared/jobs.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra.constructs.alarms import AlarmFactory
from mlgate.infra.constructs.compliance import acknowledge, acknowledge_each
from mlgate.infra.constructs.event_rules import WatchedRule
from mlgate.infra.constructs.hooks import AuditTrail, FailureRouting, HookFunction, IdempotencyTable
from mlgate.infra.naming import Names

RELEASE_KEY = "release.json"
REPORTS_TO_PIPELINE = (
    "codepipeline:GetJobDetails, PutJobSuccessResult and PutJobFailureResult (the last two "
    "granted by the Lambda pipeline action) support no resource-level permissions "
    "(https://docs.aws.amazon.com/service-authorization/latest/reference/"
    "list_awscodepipeline.html); the hook reads and answers only jobs of its release pipeline."
)


@dataclass(frozen=True)
class ReleaseProps:
    """What every release hook knows of the product: its product-wide `names`, and the home
    account's artifact bucket (`home_artifacts`, a name), where released versions live."""

    names: Names
    home_artifacts: str


@dataclass(frozen=True)
class EnvironmentAccess:
    """What a release hook may do in one environment: in the home account, `statements`
    (acknowledging the cdk-nag `findings` they raise); in another account, assume the
    environment's own role `role_arn` (sts:AssumeRole), which holds those statements there."""

    statements: tuple[iam.PolicyStatement, ...] = ()
    findings: Mapping[str, str] = field(default_factory=dict)
    role_arn: str | None = None


@dataclass(frozen=True)
class DeployerProps:
    """The deployer's: the release, and its access in each environment (in pipeline order)."""

    release: ReleaseProps
    access: tuple[EnvironmentAccess, ...]


@dataclass(frozen=True)
class DeployVerifierProps:
    """The verifier's: the release, its access in each environment, and the sample request it
    scores on each endpoint (`sample_payload`)."""

    release: ReleaseProps
    access: tuple[EnvironmentAccess, ...]
    sample_payload: str


@dataclass(frozen=True)
class QualityGateProps:
    """The quality gate's: the release, what it holds a version to (`thresholds`: model metrics
    and SLOs), the size of its smoke load (`smoke_requests`), and what it may do to queue that
    load on an asynchronous staging endpoint (`staging_queue`: mlgate/infra/accounts.py
    staging_queue_access; empty for another mode)."""

    release: ReleaseProps
    thresholds: Mapping[str, Any]
    smoke_requests: int
    staging_queue: EnvironmentAccess = EnvironmentAccess()
    staging_endpoint: bool = True
    """Staging serves an endpoint the smoke load goes to; False: staging scores in batch and the
    gate judges the release's sample run (its access is `staging_queue`'s)."""


def release_namespace(names: Names) -> str:
    """Where the release path's hooks publish their EMF metrics (counts of what each answered,
    the quality gate's smoke figures): beside the product's monitoring metrics."""
    return f"{names.monitoring_namespace()}/release"


def grant_release_access(hook: HookFunction, access: tuple[EnvironmentAccess, ...]) -> None:
    """What each environment's `access` allows: directly in the home account, through the
    environment's own role (sts:AssumeRole) in another account."""
    grant_environment_access(hook.role, access)


def grant_environment_access(role: iam.Role, access: tuple[EnvironmentAccess, ...]) -> None:
    """`access` (each environment's) on any role: its statements in the home account (their
    findings acknowledged on the role's policy), the environment's own role in another."""
    for each in access:
        if each.role_arn is not None:
            role.add_to_policy(
                iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[each.role_arn])
            )
            continue
        for statement in each.statements:
            role.add_to_policy(statement)
        acknowledge_each(role.node.find_child("DefaultPolicy"), dict(each.findings))


def decrypt_via_s3(
    hook: HookFunction, key: kms.IKey, actions: list[str], objects: dict[str, list[str]]
) -> None:
    """The product key, through S3 only, for objects of these buckets (bucket -> key
    prefixes). The buckets use S3 Bucket Keys, so S3 asks KMS with the bucket's ARN as the
    encryption context (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html);
    an object written without one carries its own ARN, hence the prefixes."""
    stack = Stack.of(hook)
    contexts = sorted(
        {f"arn:aws:s3:::{bucket}" for bucket in objects}
        | {f"arn:aws:s3:::{bucket}/{prefix}*" for bucket, ps in objects.items() for prefix in ps}
    )
    hook.role.add_to_policy(
        iam.PolicyStatement(
            actions=actions,
            resources=[key.key_arn],
            conditions={
                "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": contexts},
            },
        )
    )


class ReleaseSource:
    """What a job hook needs to take a job and its release from CodePipeline, S3 and the
    registry, and nothing else: its environment and the grants (shared/jobs.py)."""

    def __init__(self, hook: HookFunction, release: ReleaseProps, key: kms.IKey) -> None:
        names = release.names
        stack = Stack.of(hook)
        releases = names.bucket("releases", stack.account, stack.region)
        group = names.model_package_group()
        settings = {
            "RELEASE_PIPELINE": names.release_pipeline(),
            "RELEASE_BUCKET": releases,
            "RELEASE_KEY": RELEASE_KEY,
            "MODEL_PACKAGE_GROUP": group,
            "ARTIFACT_BUCKET": release.home_artifacts,
            "RELEASED_PREFIX": names.released_prefix(),
        }
        for name, value in settings.items():
            hook.function.add_environment(name, value)
        # The release pipeline is built after its hooks (it names them): its ARN from its name.
        pipeline = f"arn:aws:codepipeline:{stack.region}:{stack.account}:{names.release_pipeline()}"
        self.packages = f"arn:aws:sagemaker:{stack.region}:{stack.account}:model-package/{group}/*"
        for actions, resource in (
            (["codepipeline:GetJobDetails"], "*"),
            (["codepipeline:GetPipelineExecution"], pipeline),
            (["s3:GetObjectVersion"], f"arn:aws:s3:::{releases}/{RELEASE_KEY}"),
            (["sagemaker:DescribeModelPackage"], self.packages),
        ):
            hook.role.add_to_policy(iam.PolicyStatement(actions=actions, resources=[resource]))
        decrypt_via_s3(hook, key, ["kms:Decrypt"], {releases: [RELEASE_KEY]})
        acknowledge_each(
            hook.policy,
            {
                "AwsSolutions-IAM5[Resource::*]": REPORTS_TO_PIPELINE,
                f"AwsSolutions-IAM5[Resource::{self.packages}]": (
                    f"The {hook.hook} hook checks that the release's version is an Approved "
                    f"version of {group}; the wildcard is the version number."
                ),
            },
        )


class Deployer(HookFunction):
    """Updates a Serving stack with the released model version, and nothing else."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: DeployerProps,
        key: kms.IKey,
        alarms: AlarmFactory,
    ) -> None:
        names = props.release.names
        super().__init__(
            scope,
            id,
            hook="deployer",
            description="Updates a Serving stack with the released model version",
            environment={},
            role_name=names.deployer_role(),
            timeout=durations.minutes(1),
            failures=FailureRouting.of("deployer", key=key, alarms=alarms),
            metrics_namespace=release_namespace(names),
        )
        ReleaseSource(self, props.release, key)
        grant_release_access(self, props.access)


class DeployVerifier(HookFunction):
    """Fails a deploy stage on a silent rollback or a failing sample invocation."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: DeployVerifierProps,
        key: kms.IKey,
        alarms: AlarmFactory,
    ) -> None:
        names = props.release.names
        super().__init__(
            scope,
            id,
            hook="deploy_verifier",
            description="Fails the stage on a silent rollback or a failing sample invocation",
            environment={"SAMPLE_PAYLOAD": props.sample_payload},
            role_name=names.verifier_role(),
            failures=FailureRouting.of("deploy_verifier", key=key, alarms=alarms),
            metrics_namespace=release_namespace(names),
        )
        ReleaseSource(self, props.release, key)
        grant_release_access(self, props.access)


class QualityGate(HookFunction):
    """The automated gate: the version's registered metrics, and a smoke load of its held-out
    test split on the staging endpoint judged against the manifest's SLOs."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: QualityGateProps,
        key: kms.IKey,
        alarms: AlarmFactory,
        audit: AuditTrail,
        idempotency: IdempotencyTable,
    ) -> None:
        names = props.release.names
        stack = Stack.of(scope)
        artifacts = names.bucket("artifacts", stack.account, stack.region)
        super().__init__(
            scope,
            id,
            hook="quality_gate",
            description="Automated gate: registered metrics, and staging SLOs on a smoke load",
            environment={
                "MLGATE_THRESHOLDS": json.dumps(props.thresholds, separators=(",", ":")),
                "SMOKE_REQUESTS": str(props.smoke_requests),
                "AUDIT_TABLE": names.audit_table(),
                "RELEASE_PIPELINE": names.release_pipeline(),
            },
            # The smoke load is sequential and bounded (manifest: serving.smoke_requests, at
            # most 500, each with a short read timeout): two minutes cover it with retries.
            timeout=durations.minutes(2),
            failures=FailureRouting.of("quality_gate", key=key, alarms=alarms),
            metrics_namespace=release_namespace(names),
        )
        self.make_idempotent(idempotency)
        audit.grant_append(self.role, ["gate"], "dynamodb:PutItem")
        ReleaseSource(self, props.release, key)
        grant_release_access(self, (props.staging_queue,))
        self.sample: str | None = None
        """The test split the smoke load reads (None: a batch staging, no smoke load)."""
        if props.staging_endpoint:
            self._smoke_load(names, stack, artifacts, key)

    def _smoke_load(self, names: Names, stack: Stack, artifacts: str, key: kms.IKey) -> None:
        """The staging endpoint and the version's test split, which the smoke load reads."""
        # Staging always lives in the home account (mlgate/infra/accounts.py).
        endpoint = (
            f"arn:aws:sagemaker:{stack.region}:{stack.account}:endpoint/{names.endpoint('staging')}"
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
                resources=[endpoint],
            )
        )
        # The endpoint's mode is in its config, which CloudFormation names at deploy time.
        configs = f"arn:aws:sagemaker:{stack.region}:{stack.account}:endpoint-config/*"
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpointConfig"], resources=[configs])
        )
        acknowledge(
            self.policy,
            f"AwsSolutions-IAM5[Resource::{configs}]",
            "CloudFormation names endpoint configs at deploy time; the quality gate reads only "
            "the one the staging endpoint names, for its mode.",
        )
        # The version's test split, where the training pipeline's preprocess step wrote it
        # (mlgate/infra/ml/pipeline.py: <run>/<execution>/test/test.csv); read with a byte range.
        self.sample = f"arn:aws:s3:::{artifacts}/training/{names.product}/*/test/test.csv"
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.sample])
        )
        decrypt_via_s3(self, key, ["kms:Decrypt"], {artifacts: [f"training/{names.product}/"]})
        acknowledge(
            self.policy,
            f"AwsSolutions-IAM5[Resource::{self.sample}]",
            "The wildcard is the training pipeline execution id; the quality gate reads only "
            "the test split file of this product's training runs.",
        )


class ReleaseHook(HookFunction):
    """Copies an approved model version to its released folder, writes release.json for it
    and starts the release pipeline."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: ReleaseProps,
        key: kms.IKey,
        alarms: AlarmFactory,
        audit: AuditTrail,
        idempotency: IdempotencyTable,
        pipeline_arn: str,
    ) -> None:
        names = props.names
        stack = Stack.of(scope)
        releases = names.bucket("releases", stack.account, stack.region)
        artifacts = names.bucket("artifacts", stack.account, stack.region)
        group = names.model_package_group()
        training = f"training/{names.product}"
        super().__init__(
            scope,
            id,
            hook="release",
            description="Releases an approved model version and starts the release pipeline",
            environment={
                "MODEL_PACKAGE_GROUP": group,
                "RELEASE_BUCKET": releases,
                "RELEASE_KEY": RELEASE_KEY,
                "RELEASE_PIPELINE": names.release_pipeline(),
                "AUDIT_TABLE": names.audit_table(),
                "ARTIFACT_BUCKET": artifacts,
                "TRAINING_PREFIX": training,
                "RELEASED_PREFIX": names.released_prefix(),
            },
            failures=FailureRouting.of("release", key=key, alarms=alarms),
            metrics_namespace=release_namespace(names),
        )
        self.make_idempotent(idempotency)
        audit.grant_append(self.role, ["gate"], "dynamodb:PutItem")
        # Reads the evaluation report and the sources of its copies in this product's training
        # runs; writes release.json and the copies in the version's released folder, nothing
        # else (CopyObject needs read on the source and write on the target:
        # https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html).
        reports = f"arn:aws:s3:::{artifacts}/{training}/*"
        released = f"arn:aws:s3:::{artifacts}/{names.released_prefix()}/*"
        packages = f"arn:aws:sagemaker:{stack.region}:{stack.account}:model-package/{group}/*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[f"arn:aws:s3:::{releases}/{RELEASE_KEY}", released],
            )
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[reports]))
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[packages])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["codepipeline:StartPipelineExecution"], resources=[pipeline_arn]
            )
        )
        decrypt_via_s3(
            self,
            key,
            ["kms:Decrypt", "kms:GenerateDataKey"],
            {
                releases: [RELEASE_KEY],
                artifacts: [f"{training}/", f"{names.released_prefix()}/"],
            },
        )
        self.rule = WatchedRule(
            self,
            "ModelApproved",
            rule_name=names.rule("model-approved"),
            description="A version of this product's model was approved in the registry",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
            ),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
        reasons = {
            reports: "reads the version's evaluation report and the model artifact and "
            "baselines it copies, in this product's training runs (the wildcard is the run)",
            released: "writes the copies of each approved version into its released folder "
            "(the wildcard is the version number and the file)",
            packages: "describes versions of this product's model package group",
        }
        acknowledge_each(
            self.policy,
            {
                f"AwsSolutions-IAM5[Resource::{resource}]": (
                    f"Release hook of {names.product}: {why}."
                )
                for resource, why in reasons.items()
            },
        )
