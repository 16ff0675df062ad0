"""Delivery: the CodePipeline that carries one approved model version from staging to prod
through the manifest's stage gates, with the hooks that post, take and record decisions."""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from mlgate import naming
from mlgate.constructs.compliance import (
    KEY_GRANT_FINDINGS,
    acknowledge,
    acknowledge_findings,
    bucket_grant_findings,
)
from mlgate.constructs.hooks import HookFunction
from mlgate.constructs.storage import SecureBucket
from mlgate.manifest import ENV_NAMES, EnvName, Gate, GateKind, Manifest
from mlgate.stacks.base import ProductStack
from mlgate.stacks.foundation import FoundationStack

RELEASE_KEY = "release.json"


def serving_stack_name(manifest: Manifest, env: EnvName) -> str:
    return naming.stack_name(manifest.product.name, "serving", env)


def deploy_role_name(manifest: Manifest, env: EnvName) -> str:
    """The role the deployer assumes in an environment that lives in another account."""
    return naming.resource_name(manifest.product.name, env, "deploy", max_length=64)


def gate_summary(manifest: Manifest, gate: Gate) -> str:
    """The one line CodePipeline shows beside a manual approval (at most 500 characters)."""
    names = ", ".join(manifest.contact(a).name for a in gate.approvers)
    line = (
        f"{gate.name}: {gate.description} Approvers: {names}. Evidence brief in "
        f"{manifest.product.chat_channel} and by email; decide within {gate.timeout_hours} h."
    )
    return line[:500]


class DeliveryStack(ProductStack):
    component = "delivery"

    def __init__(
        self, scope: Construct, *, manifest: Manifest, foundation: FoundationStack
    ) -> None:
        super().__init__(
            scope,
            manifest=manifest,
            description="release pipeline, stage gates, gate hooks, audit trail",
        )
        key = self.key = foundation.key
        self.audit_table = dynamodb.TableV2(
            self,
            "AuditTrail",
            table_name=self.name("audit"),
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            time_to_live_attribute="expires_at",
        )
        self.release_bucket = SecureBucket(
            self,
            "Releases",
            key=key,
            access_logs=foundation.access_logs,
            log_prefix="releases/",
        ).bucket
        self.pipeline_artifacts = SecureBucket(
            self,
            "PipelineArtifacts",
            key=key,
            access_logs=foundation.access_logs,
            log_prefix="pipeline-artifacts/",
            noncurrent_days=30,
        ).bucket

        self.deployer = HookFunction(
            self,
            "Deployer",
            hook="deployer",
            description="Updates a Serving stack with the released model version",
            environment={},
            timeout=Duration.minutes(1),
        )
        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=self.name("release"),
            pipeline_type=codepipeline.PipelineType.V2,
            execution_mode=codepipeline.ExecutionMode.QUEUED,
            artifact_bucket=self.pipeline_artifacts,
            restart_execution_on_update=False,
        )
        source = codepipeline.Artifact("Release")
        self.pipeline.add_stage(
            stage_name="Source",
            actions=[
                actions.S3SourceAction(
                    action_name="ReleaseJson",
                    bucket=self.release_bucket,
                    bucket_key=RELEASE_KEY,
                    output=source,
                    # The release hook starts each execution once release.json is written.
                    trigger=actions.S3Trigger.NONE,
                )
            ],
        )
        self.gate_topics: dict[str, sns.Topic] = {}
        self.brief_topics: dict[str, sns.Topic] = {}
        self._add_deploy_stage("staging", source)
        gates = [
            self._gate_action(gate)
            for gate in manifest.pipeline_gates
            if gate.kind is GateKind.MANUAL
        ]
        for gate, action in zip(
            [g for g in manifest.pipeline_gates if g.kind is GateKind.MANUAL], gates, strict=True
        ):
            self.pipeline.add_stage(stage_name=naming.pascal(gate.name), actions=[action])
        self._add_deploy_stage("prod", source)
        self._grant_deployer()
        self._acknowledge_pipeline_grants()

    def _add_deploy_stage(self, env: EnvName, source: codepipeline.Artifact) -> None:
        params: dict[str, str] = {
            "environment": env,
            "stack": serving_stack_name(self.manifest, env),
        }
        target = self.manifest.environment(env)
        if target.account != self.account:
            params["role_arn"] = (
                f"arn:aws:iam::{target.account}:role/{deploy_role_name(self.manifest, env)}"
            )
        self.pipeline.add_stage(
            stage_name=f"Deploy{env.capitalize()}",
            actions=[
                actions.LambdaInvokeAction(
                    action_name=f"UpdateServing{env.capitalize()}",
                    lambda_=self.deployer.function,
                    inputs=[source],
                    user_parameters_string=json.dumps(params, sort_keys=True),
                )
            ],
        )

    def _gate_action(self, gate: Gate) -> actions.ManualApprovalAction:
        topic = sns.Topic(
            self,
            f"Gate{naming.pascal(gate.name)}",
            topic_name=self.name("gate", gate.name),
            display_name=f"{self.manifest.product.display_name}: {gate.name} gate",
            master_key=self.key,
            enforce_ssl=True,
        )
        brief = sns.Topic(
            self,
            f"Brief{naming.pascal(gate.name)}",
            topic_name=self.name("brief", gate.name),
            display_name=f"{self.manifest.product.display_name}: {gate.name} evidence brief",
            master_key=self.key,
            enforce_ssl=True,
        )
        for approver in gate.approvers:
            brief.add_subscription(subs.EmailSubscription(self.manifest.contact(approver).email))
        self.gate_topics[gate.name] = topic
        self.brief_topics[gate.name] = brief
        return actions.ManualApprovalAction(
            action_name="Approve",
            notification_topic=topic,
            additional_information=gate_summary(self.manifest, gate),
            timeout=Duration.hours(gate.timeout_hours),
        )

    def _grant_deployer(self) -> None:
        """The deployer updates the two Serving stacks and nothing else."""
        role = self.deployer.role
        stacks, exec_roles = [], []
        for env in ENV_NAMES:
            target = self.manifest.environment(env)
            stacks.append(
                f"arn:aws:cloudformation:{target.region}:{target.account}:stack/"
                f"{serving_stack_name(self.manifest, env)}/*"
            )
            # UpdateStack runs as the role `cdk deploy` attached to the stack (the bootstrap
            # CloudFormation execution role), which the caller must be allowed to pass.
            exec_roles.append(
                f"arn:aws:iam::{target.account}:role/"
                f"cdk-hnb659fds-cfn-exec-role-{target.account}-{target.region}"
            )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "cloudformation:DescribeStacks",
                    "cloudformation:DescribeStackEvents",
                    "cloudformation:UpdateStack",
                ],
                resources=sorted(set(stacks)),
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=sorted(set(exec_roles)),
                conditions={
                    "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
                },
            )
        )
        policy = role.node.find_child("DefaultPolicy")
        for arn in sorted(set(stacks)):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{arn}]",
                "A stack ARN ends in the stack id CloudFormation generates; the stack name "
                "before it is fixed, so this names exactly one Serving stack.",
            )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "codepipeline:PutJobSuccessResult and PutJobFailureResult, granted by the Lambda "
            "pipeline action, support no resource-level permissions.",
        )

    def _acknowledge_pipeline_grants(self) -> None:
        """CodePipeline's roles carry CDK's standard grants; each is acknowledged for its cause."""
        bucket = self.get_logical_id(self.pipeline_artifacts.node.default_child)  # type: ignore[arg-type]
        deployer = self.get_logical_id(self.deployer.function.node.default_child)  # type: ignore[arg-type]
        store = (
            "Reads and writes release artifacts in this pipeline's own artifact bucket, "
            "encrypted with the product key; CDK's grant expands into these wildcards."
        )
        for policy in self.pipeline.node.find_all():
            if policy.node.id != "DefaultPolicy":
                continue
            path = policy.node.path
            if "/Approve/" in path:
                acknowledge(
                    policy,
                    KEY_GRANT_FINDINGS[0],
                    "Publishes the approval request to its gate topic, which is encrypted with "
                    "the product key; kms:GenerateDataKey* is the publish grant on that key.",
                )
            elif "/Deploy" in path:
                acknowledge_findings(policy, bucket_grant_findings(bucket, write=False), store)
                acknowledge(
                    policy,
                    "AwsSolutions-IAM5[Resource::*]",
                    "The deploy action lists functions to invoke the deployer hook; "
                    "lambda:ListFunctions supports no resource-level permission.",
                )
                acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::<{deployer}.Arn>:*]",
                    "Invokes only the deployer hook, in any of its published versions.",
                )
            else:
                acknowledge_findings(
                    policy, [*bucket_grant_findings(bucket, write=True), *KEY_GRANT_FINDINGS], store
                )
