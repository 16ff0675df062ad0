"""The hooks that carry a release: release (model approved -> pipeline source), deployer,
deploy verifier and the automated quality gate. Each owns its environment, grants and
cdk-nag acknowledgments; the role in the template is the hook's exact contract
(tests/test_hook_permissions.py)."""

from __future__ import annotations

import json
from collections.abc import Callable

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlgate import accounts, durations
from mlgate.constructs.compliance import acknowledge, acknowledge_each
from mlgate.constructs.event_rules import WatchedRule
from mlgate.constructs.hooks import FailureRouting, HookFunction, IdempotencyTable
from mlgate.gates import thresholds
from mlgate.manifest import ENV_NAMES, EnvName, Manifest
from mlgate.naming import Names, role_arn

RELEASE_KEY = "release.json"
REPORTS_TO_PIPELINE = (
    "codepipeline:PutJobSuccessResult and PutJobFailureResult, granted by the Lambda pipeline "
    "action, support no resource-level permissions."
)
Access = Callable[[Manifest, EnvName], tuple[list[iam.PolicyStatement], accounts.Findings]]


def release_namespace(manifest: Manifest) -> str:
    """Where the release path's hooks publish their EMF metrics (counts of what each answered,
    the quality gate's smoke figures): beside the product's monitoring metrics."""
    return f"{Names.of(manifest).monitoring_namespace()}/release"


def grant_release_access(
    hook: HookFunction, manifest: Manifest, access: Access, remote_role: Callable[[EnvName], str]
) -> None:
    """What `access` allows in each environment: directly in the home account, through the
    environment's own role (sts:AssumeRole) in another account."""
    for env in ENV_NAMES:
        if manifest.is_remote(env):
            account = manifest.environment(env).account
            hook.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"], resources=[role_arn(account, remote_role(env))]
                )
            )
            continue
        statements, findings = access(manifest, env)
        for statement in statements:
            hook.role.add_to_policy(statement)
        acknowledge_each(hook.policy, findings)


class Deployer(HookFunction):
    """Updates a Serving stack with the released model version, and nothing else."""

    def __init__(
        self, scope: Construct, id: str, *, manifest: Manifest, key: kms.IKey, on_call: sns.ITopic
    ) -> None:
        names = Names.of(manifest)
        super().__init__(
            scope,
            id,
            hook="deployer",
            description="Updates a Serving stack with the released model version",
            environment={},
            role_name=names.deployer_role(),
            timeout=durations.minutes(1),
            failures=FailureRouting.of(manifest, "deployer", key=key, on_call=on_call),
            metrics_namespace=release_namespace(manifest),
        )
        grant_release_access(self, manifest, accounts.deploy_access, names.deploy_role)
        acknowledge(self.policy, "AwsSolutions-IAM5[Resource::*]", REPORTS_TO_PIPELINE)


class DeployVerifier(HookFunction):
    """Fails a deploy stage on a silent rollback or a failing sample invocation."""

    def __init__(
        self, scope: Construct, id: str, *, manifest: Manifest, key: kms.IKey, on_call: sns.ITopic
    ) -> None:
        names = Names.of(manifest)
        super().__init__(
            scope,
            id,
            hook="deploy_verifier",
            description="Fails the stage on a silent rollback or a failing sample invocation",
            environment={"SAMPLE_PAYLOAD": manifest.sample_record},
            role_name=names.verifier_role(),
            failures=FailureRouting.of(manifest, "deploy_verifier", key=key, on_call=on_call),
            metrics_namespace=release_namespace(manifest),
        )
        grant_release_access(self, manifest, accounts.verify_access, names.verify_role)
        acknowledge(self.policy, "AwsSolutions-IAM5[Resource::*]", REPORTS_TO_PIPELINE)


class QualityGate(HookFunction):
    """The automated gate: the version's registered metrics, and a smoke load of its held-out
    test split on the staging endpoint judged against the manifest's SLOs."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        manifest: Manifest,
        key: kms.IKey,
        on_call: sns.ITopic,
        audit: dynamodb.ITableV2,
        idempotency: IdempotencyTable,
    ) -> None:
        names = Names.of(manifest)
        stack = Stack.of(scope)
        artifacts = names.bucket("artifacts", stack.account, stack.region)
        super().__init__(
            scope,
            id,
            hook="quality_gate",
            description="Automated gate: registered metrics, and staging SLOs on a smoke load",
            environment={
                "MLGATE_THRESHOLDS": json.dumps(thresholds(manifest), separators=(",", ":")),
                "SMOKE_REQUESTS": str(manifest.serving.smoke_requests),
                "AUDIT_TABLE": names.audit_table(),
                "RELEASE_PIPELINE": names.release_pipeline(),
            },
            # The smoke load is sequential and bounded (manifest: serving.smoke_requests, at
            # most 500, each with a short read timeout): two minutes cover it with retries.
            timeout=durations.minutes(2),
            failures=FailureRouting.of(manifest, "quality_gate", key=key, on_call=on_call),
            metrics_namespace=release_namespace(manifest),
        )
        self.make_idempotent(idempotency)
        self.write_audit(audit, key, ["gate"], "dynamodb:PutItem")
        # Staging always lives in the home account (mlgate/accounts.py).
        endpoint = (
            f"arn:aws:sagemaker:{stack.region}:{stack.account}:endpoint/{names.endpoint('staging')}"
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
                resources=[endpoint],
            )
        )
        # The version's test split, where the training pipeline's preprocess step wrote it
        # (mlgate/ml/pipeline.py: <run>/<execution>/test/test.csv); read with a byte range.
        self.sample = f"arn:aws:s3:::{artifacts}/training/{names.product}/*/test/test.csv"
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.sample])
        )
        self.use_key(key, "kms:Decrypt")
        acknowledge(self.policy, "AwsSolutions-IAM5[Resource::*]", REPORTS_TO_PIPELINE)
        acknowledge(
            self.policy,
            f"AwsSolutions-IAM5[Resource::{self.sample}]",
            "The wildcard is the training pipeline execution id; the quality gate reads only "
            "the test split file of this product's training runs.",
        )
        self.acknowledge_key_grant("writes its verdict to the encrypted audit table")


class ReleaseHook(HookFunction):
    """Writes release.json for an approved model version and starts the release pipeline."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        manifest: Manifest,
        key: kms.IKey,
        on_call: sns.ITopic,
        audit: dynamodb.ITableV2,
        idempotency: IdempotencyTable,
        pipeline_arn: str,
    ) -> None:
        names = Names.of(manifest)
        stack = Stack.of(scope)
        releases = names.bucket("releases", stack.account, stack.region)
        artifacts = names.bucket("artifacts", stack.account, stack.region)
        group = names.model_package_group()
        super().__init__(
            scope,
            id,
            hook="release",
            description="Writes release.json for an approved model version and starts the pipeline",
            environment={
                "MODEL_PACKAGE_GROUP": group,
                "RELEASE_BUCKET": releases,
                "RELEASE_KEY": RELEASE_KEY,
                "RELEASE_PIPELINE": names.release_pipeline(),
                "AUDIT_TABLE": names.audit_table(),
            },
            failures=FailureRouting.of(manifest, "release", key=key, on_call=on_call),
            metrics_namespace=release_namespace(manifest),
        )
        self.make_idempotent(idempotency)
        self.write_audit(audit, key, ["gate"], "dynamodb:PutItem")
        reports = f"arn:aws:s3:::{artifacts}/training/{names.product}/*"
        packages = f"arn:aws:sagemaker:{stack.region}:{stack.account}:model-package/{group}/*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[f"arn:aws:s3:::{releases}/{RELEASE_KEY}"]
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
        self.use_key(key, "kms:Decrypt", "kms:GenerateDataKey")
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
            reports: "reads the version's evaluation report",
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
        self.acknowledge_key_grant("writes release.json and the audit trail encrypted")
