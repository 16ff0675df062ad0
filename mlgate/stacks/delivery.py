"""Delivery: the CodePipeline that carries one approved model version from staging to prod
through the manifest's stage gates, with the hooks that post, take and record decisions."""

from __future__ import annotations

import json
from collections.abc import Callable

from aws_cdk import CfnOutput, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from mlgate import accounts, naming
from mlgate.constructs.compliance import (
    KEY_GRANT_FINDINGS,
    acknowledge,
    acknowledge_findings,
    bucket_grant_findings,
)
from mlgate.constructs.hooks import FailureRouting, HookFunction, on_call_owner
from mlgate.constructs.storage import SecureBucket
from mlgate.gates import encoded, gate_context, thresholds
from mlgate.manifest import ENV_NAMES, EnvName, Gate, GateKind, Manifest
from mlgate.naming import endpoint_name
from mlgate.stacks.base import ProductStack
from mlgate.stacks.data import DataStack
from mlgate.stacks.foundation import FoundationStack
from mlgate.stacks.training import model_package_group_name

RELEASE_KEY = "release.json"
# Where the gate callback counts approvals that expired undecided (lambdas/gate_callback).
GATE_NAMESPACE = "mlgate/gates"


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
        self,
        scope: Construct,
        *,
        manifest: Manifest,
        foundation: FoundationStack,
        data: DataStack,
    ) -> None:
        super().__init__(
            scope,
            manifest=manifest,
            description="release pipeline, stage gates, gate hooks, audit trail",
        )
        key = self.key = foundation.key
        self.data = data
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
            bucket_name=self.bucket_name("releases"),
        ).bucket
        self.pipeline_artifacts = SecureBucket(
            self,
            "PipelineArtifacts",
            key=key,
            access_logs=foundation.access_logs,
            log_prefix="pipeline-artifacts/",
            noncurrent_days=30,
        ).bucket

        self.webhook_secret = self._secret(
            "SlackWebhook", "Slack incoming-webhook URL the gate briefs are posted to"
        )
        self.signing_secret = self._secret(
            "SlackSigningSecret",
            "Slack app that may decide gates, as JSON: signing_secret (authenticates button "
            "clicks), team_id and app_id (the workspace and app whose clicks count)",
        )
        self.deployer = HookFunction(
            self,
            "Deployer",
            hook="deployer",
            description="Updates a Serving stack with the released model version",
            environment={},
            role_name=accounts.deployer_role(manifest),
            timeout=Duration.minutes(1),
            failures=self._failures(foundation, "deployer"),
        )
        self.verifier = self._verifier(foundation)
        # The quality gate hook exists only for a product whose manifest has an automated gate.
        self.quality_gate = (
            self._quality_gate(foundation)
            if any(g.kind is GateKind.AUTOMATED for g in manifest.pipeline_gates)
            else None
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
        for gate in manifest.pipeline_gates:
            action: codepipeline.IAction
            if gate.kind is GateKind.MANUAL:
                action = self._gate_action(gate)
            else:
                assert self.quality_gate is not None
                action = actions.LambdaInvokeAction(
                    action_name="Evaluate",
                    lambda_=self.quality_gate.function,
                    inputs=[source],
                    # CodePipeline resolves the variable, so the verdict joins the
                    # execution's other gate events in the audit trail.
                    user_parameters_string=json.dumps(
                        {
                            "endpoint": endpoint_name(self.product, "staging"),
                            "window_minutes": 60,
                            "execution": "#{codepipeline.PipelineExecutionId}",
                        }
                    ),
                )
            self.pipeline.add_stage(stage_name=naming.pascal(gate.name), actions=[action])
        self._add_deploy_stage("prod", source)
        self.notifier = self._notifier(foundation)
        self.callback = self._callback()
        self.release = self._release(foundation)
        self.gate_wait_alarm_name = self._gate_wait_alarm(foundation)
        self._grant_deployer()
        self._acknowledge_pipeline_grants()

    def _add_deploy_stage(self, env: EnvName, source: codepipeline.Artifact) -> None:
        params: dict[str, str] = {
            "environment": env,
            "stack": accounts.serving_stack_name(self.manifest, env),
        }
        checks = {"environment": env, "endpoint": endpoint_name(self.product, env)}
        if self.manifest.is_remote(env):
            # The hooks act in the environment's account through its deploy and verify roles.
            account = self.manifest.environment(env).account
            params["role_arn"] = accounts.role_arn(
                account, accounts.deploy_role(self.manifest, env)
            )
            checks["role_arn"] = accounts.role_arn(
                account, accounts.verify_role(self.manifest, env)
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
        self.pipeline.add_stage(
            stage_name=f"Verify{env.capitalize()}",
            actions=[
                actions.LambdaInvokeAction(
                    action_name=f"CheckEndpoint{env.capitalize()}",
                    lambda_=self.verifier.function,
                    inputs=[source],
                    user_parameters_string=json.dumps(checks, sort_keys=True),
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
        """The deployer updates the Serving stacks and nothing else."""
        self._grant_release_access(self.deployer, accounts.deploy_access, accounts.deploy_role)
        acknowledge(
            self.deployer.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "codepipeline:PutJobSuccessResult and PutJobFailureResult, granted by the Lambda "
            "pipeline action, support no resource-level permissions.",
        )

    def _grant_release_access(
        self,
        hook: HookFunction,
        access: Callable[[Manifest, EnvName], tuple[list[iam.PolicyStatement], accounts.Findings]],
        remote_role: Callable[[Manifest, EnvName], str],
    ) -> None:
        """What `access` allows in each environment: directly in the home account, through the
        environment's own role (sts:AssumeRole) in another account."""
        for env in ENV_NAMES:
            if self.manifest.is_remote(env):
                account = self.manifest.environment(env).account
                hook.role.add_to_policy(
                    iam.PolicyStatement(
                        actions=["sts:AssumeRole"],
                        resources=[accounts.role_arn(account, remote_role(self.manifest, env))],
                    )
                )
                continue
            statements, findings = access(self.manifest, env)
            for statement in statements:
                hook.role.add_to_policy(statement)
            for finding, reason in findings.items():
                acknowledge(hook.role.node.find_child("DefaultPolicy"), finding, reason)

    def _acknowledge_pipeline_grants(self) -> None:
        """CodePipeline's roles carry CDK's standard grants; each is acknowledged for its cause."""
        bucket = self.get_logical_id(self.pipeline_artifacts.node.default_child)  # type: ignore[arg-type]
        invoked = {
            stage: self.get_logical_id(hook.function.node.default_child)  # type: ignore[arg-type]
            for stage, hook in (
                ("Deploy", self.deployer),
                ("Verify", self.verifier),
                (naming.pascal(self._automated_gate_name()), self.quality_gate),
            )
            if hook is not None
        }
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
            elif any(f"/{stage}" in path for stage in invoked):
                function = next(f for stage, f in invoked.items() if f"/{stage}" in path)
                acknowledge_findings(policy, bucket_grant_findings(bucket, write=False), store)
                acknowledge(
                    policy,
                    "AwsSolutions-IAM5[Resource::*]",
                    "The Lambda action lists functions to invoke its hook; "
                    "lambda:ListFunctions supports no resource-level permission.",
                )
                acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::<{function}.Arn>:*]",
                    "Invokes only this action's hook, in any of its published versions.",
                )
            else:
                acknowledge_findings(
                    policy, [*bucket_grant_findings(bucket, write=True), *KEY_GRANT_FINDINGS], store
                )

    # --- hooks -------------------------------------------------------------------------------

    def _automated_gate_name(self) -> str:
        return next(
            (g.name for g in self.manifest.pipeline_gates if g.kind is GateKind.AUTOMATED),
            "quality-gate",
        )

    def _secret(self, id: str, description: str) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            id,
            secret_name=f"mlgate/{self.product}/{id}",
            description=f"{description}; set its value with put-secret-value (README)",
            encryption_key=self.key,
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            f"{id} is issued by Slack and rotated there (regenerating it in the Slack app); "
            "Secrets Manager has no rotation function for a Slack credential.",
        )
        return secret

    def _sagemaker_arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name}"

    def _failures(self, foundation: FoundationStack, hook: str) -> FailureRouting:
        """Every delivery hook but the callback is invoked asynchronously (by CodePipeline,
        SNS or EventBridge): an event it fails on three times goes to on-call."""
        return FailureRouting(
            key=self.key,
            on_call=foundation.on_call_topic,
            alarm_name=naming.alarm_name(self.product, "prod", "system", f"{hook}-failed",
                                         "critical"),
            owner=on_call_owner(self.manifest),
            runbook=self.manifest.product.runbook_url,
        )  # fmt: skip

    def _write_audit(self, hook: HookFunction, prefixes: list[str], *actions: str) -> None:
        """Audit access limited to the key prefixes the hook writes (dynamodb:LeadingKeys):
        "gate" events, "request" items (shared/audit.py)."""
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=list(actions),
                resources=[self.audit_table.table_arn],
                conditions={
                    "ForAllValues:StringLike": {
                        "dynamodb:LeadingKeys": [f"{prefix}#*" for prefix in prefixes]
                    }
                },
            )
        )
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[self.key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"dynamodb.{self.region}.amazonaws.com"}
                },
            )
        )

    def _verifier(self, foundation: FoundationStack) -> HookFunction:
        hook = HookFunction(
            self,
            "DeployVerifier",
            hook="deploy_verifier",
            description="Fails the stage on a silent rollback or a failing sample invocation",
            environment={"SAMPLE_PAYLOAD": self.manifest.sample_record},
            role_name=accounts.verifier_role(self.manifest),
            failures=self._failures(foundation, "deploy_verifier"),
        )
        self._grant_release_access(hook, accounts.verify_access, accounts.verify_role)
        acknowledge(
            hook.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "The verifier reports to CodePipeline; PutJobSuccessResult and PutJobFailureResult "
            "support no resource-level permission.",
        )
        return hook

    def _quality_gate(self, foundation: FoundationStack) -> HookFunction:
        hook = HookFunction(
            self,
            "QualityGate",
            hook="quality_gate",
            description="Automated gate: registered metrics and staging SLOs against the manifest",
            environment={
                "MLGATE_THRESHOLDS": json.dumps(thresholds(self.manifest), separators=(",", ":")),
                "AUDIT_TABLE": self.audit_table.table_name,
                "RELEASE_PIPELINE": self.name("release"),
            },
            failures=self._failures(foundation, "quality_gate"),
        )
        hook.make_idempotent(foundation.idempotency)
        self._write_audit(hook, ["gate"], "dynamodb:PutItem")
        hook.role.add_to_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        policy = hook.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "The quality gate reads staging endpoint metrics; cloudwatch:GetMetricData "
            "supports no resource-level permission.",
        )
        self._acknowledge_key_grant(policy, "writes its verdict to the encrypted audit table")
        return hook

    def _notifier(self, foundation: FoundationStack) -> HookFunction:
        context = gate_context(
            self.manifest,
            brief_topics={name: topic.topic_arn for name, topic in self.brief_topics.items()},
            dashboard_url=naming.dashboard_url(self.product, "prod", str(self.region)),
        )
        hook = HookFunction(
            self,
            "GateNotifier",
            hook="gate_notifier",
            description="Posts each gate's evidence brief to chat and email",
            environment={
                "MLGATE_CONTEXT": encoded(context),
                "AUDIT_TABLE": self.audit_table.table_name,
                "RELEASE_BUCKET": self.bucket_name("releases"),
                "RELEASE_KEY": RELEASE_KEY,
                "RELEASE_PIPELINE": self.name("release"),
                "SLACK_WEBHOOK_SECRET_ARN": self.webhook_secret.secret_arn,
                "DQ_DATABASE": self.data.database_name,
                "DQ_TABLE": self.data.curated_table.table_name,
            },
            failures=self._failures(foundation, "gate_notifier"),
        )
        hook.make_idempotent(foundation.idempotency)
        for topic in self.gate_topics.values():
            topic.add_subscription(subs.LambdaSubscription(hook.function))
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"],
                resources=[t.topic_arn for t in self.brief_topics.values()],
            )
        )
        self._read_secret(hook, self.webhook_secret)
        self._use_key(hook, "kms:Decrypt", "kms:GenerateDataKey")
        self._write_audit(hook, ["request", "gate"], "dynamodb:PutItem", "dynamodb:GetItem")
        # The brief reads release.json at the gate's execution's source revision: an object
        # version, which S3 reads under s3:GetObjectVersion.
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObjectVersion"],
                resources=[f"{self.bucket_arn('releases')}/{RELEASE_KEY}"],
            )
        )
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["codepipeline:GetPipelineState", "codepipeline:GetPipelineExecution"],
                resources=[self.pipeline.pipeline_arn],
            )
        )
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:ListDataQualityResults", "glue:GetDataQualityResult"],
                resources=[f"arn:aws:glue:{self.region}:{self.account}:dataQualityRuleset/*"],
            )
        )
        policy = hook.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::arn:aws:glue:{self.region}:{self.account}:"
            "dataQualityRuleset/*]",
            "Data Quality results are listed by table, not by ruleset ARN; the notifier reads "
            "only results, for the product's curated table.",
        )
        self._acknowledge_key_grant(policy, "reads release.json and publishes encrypted briefs")
        return hook

    def _callback(self) -> HookFunction:
        hook = HookFunction(
            self,
            "GateCallback",
            hook="gate_callback",
            description="Takes signed Approve / Reject clicks from chat, approvers only",
            environment={
                "SLACK_SIGNING_SECRET_ARN": self.signing_secret.secret_arn,
                "AUDIT_TABLE": self.audit_table.table_name,
                "RELEASE_PIPELINE": self.name("release"),
            },
            # Its URL is public: a flood of requests must not take the account's concurrency
            # from the other functions (Slack sends one request per click).
            reserved_concurrency=5,
        )
        self._read_secret(hook, self.signing_secret)
        self._write_audit(
            hook,
            ["request", "gate"],
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
        )
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["codepipeline:PutApprovalResult"],
                resources=[f"{self.pipeline.pipeline_arn}/*"],
            )
        )
        # A failed approval that expired undecided is counted (the gate-waiting-too-long alarm).
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": GATE_NAMESPACE}},
            )
        )
        # Slack cannot sign requests with SigV4: the URL is public and every request must carry
        # a valid Slack signature made in the last five minutes (checked in the handler).
        self.callback_url = hook.function.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.NONE,
            cors=lambda_.FunctionUrlCorsOptions(allowed_origins=["https://slack.com"]),
        )
        CfnOutput(
            self,
            "GateCallbackUrl",
            value=self.callback_url.url,
            description="Request URL of the Slack app's Interactivity (the gate buttons)",
        )
        policy = hook.role.node.find_child("DefaultPolicy")
        pipeline = self.get_logical_id(self.pipeline.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::arn:aws:codepipeline:{self.region}:{self.account}:"
            f"<{pipeline}>/*]",
            "PutApprovalResult is granted on this pipeline's stages and actions only; the ARN "
            "of an approval action is the pipeline ARN followed by stage/action.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:PutMetricData has no resource ARN; it is conditioned on the "
            f"{GATE_NAMESPACE} namespace.",
        )
        self._acknowledge_key_grant(policy, "reads and writes the encrypted audit table")
        return hook

    def _release(self, foundation: FoundationStack) -> HookFunction:
        group = model_package_group_name(self.product)
        hook = HookFunction(
            self,
            "Release",
            hook="release",
            description="Writes release.json for an approved model version and starts the pipeline",
            environment={
                "MODEL_PACKAGE_GROUP": group,
                "RELEASE_BUCKET": self.bucket_name("releases"),
                "RELEASE_KEY": RELEASE_KEY,
                "RELEASE_PIPELINE": self.name("release"),
                "AUDIT_TABLE": self.audit_table.table_name,
            },
            failures=self._failures(foundation, "release"),
        )
        hook.make_idempotent(foundation.idempotency)
        self._write_audit(hook, ["gate"], "dynamodb:PutItem")
        artifacts = foundation.bucket_arn("artifacts")
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[f"{self.bucket_arn('releases')}/{RELEASE_KEY}"],
            )
        )
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[f"{artifacts}/training/{self.product}/*"]
            )
        )
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeModelPackage"],
                resources=[self._sagemaker_arn("model-package", f"{group}/*")],
            )
        )
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["codepipeline:StartPipelineExecution"],
                resources=[self.pipeline.pipeline_arn],
            )
        )
        self._use_key(hook, "kms:Decrypt", "kms:GenerateDataKey")
        events.Rule(
            self,
            "ModelApproved",
            rule_name=self.name("model-approved"),
            description="A version of this product's model was approved in the registry",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
            ),
            targets=[targets.LambdaFunction(hook.function, retry_attempts=2)],
        )
        policy = hook.role.node.find_child("DefaultPolicy")
        for resource, reason in {
            f"{artifacts}/training/{self.product}/*": "reads the version's evaluation report",
            self._sagemaker_arn("model-package", f"{group}/*"): "describes versions of this "
            "product's model package group",
        }.items():
            acknowledge(policy, f"AwsSolutions-IAM5[Resource::{resource}]",
                        f"Release hook of {self.product}: {reason}.")  # fmt: skip
        self._acknowledge_key_grant(policy, "writes release.json and the audit trail encrypted")
        return hook

    def _gate_wait_alarm(self, foundation: FoundationStack) -> str:
        """A manual approval that outlived its timeout fails its action: on-call hears of it.

        CodePipeline's action execution event (category Approval, state FAILED) is the same for
        an expired approval and a rejected one, so the rule routes it to the gate callback,
        which looks the request up in the audit trail and publishes GateExpired only when no
        decision was recorded and the request's expiry has passed; the alarm watches that
        metric. The event shape is CodePipeline's documented one; it could not be observed
        offline."""
        rule = events.Rule(
            self,
            "GateExpired",
            rule_name=self.name("gate-expired"),
            description="A manual gate of the release pipeline failed: expired or rejected",
            event_pattern=events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=["CodePipeline Action Execution State Change"],
                detail={
                    "pipeline": [self.name("release")],
                    "type": {"category": ["Approval"]},
                    "state": ["FAILED"],
                },
            ),
        )
        rule.add_target(targets.LambdaFunction(self.callback.function, retry_attempts=2))
        name = naming.alarm_name(
            self.product, "prod", "system", "gate-waiting-too-long", "critical"
        )
        on_call = self.manifest.contact(self.manifest.product.owners.on_call)
        alarm = cloudwatch.Alarm(
            self,
            "GateWaitingTooLong",
            alarm_name=name,
            alarm_description=(
                "A manual gate waited past its manifest timeout and CodePipeline failed it "
                "(rejections do not count). First checks: 1) which gate (the gate callback's "
                '"failed approval" log line names it) 2) whether its approvers received the '
                "brief (audit trail, chat) 3) re-run the pipeline once they are available. "
                f"Owner: {on_call.name} <{on_call.email}>. Runbook: "
                f"{self.manifest.product.runbook_url}"
            ),
            metric=cloudwatch.Metric(
                namespace=GATE_NAMESPACE,
                metric_name="GateExpired",
                dimensions_map={"Pipeline": self.name("release")},
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # No expired gate, no data point: silence is the healthy state.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(foundation.on_call_topic))
        return name

    def _read_secret(self, hook: HookFunction, secret: secretsmanager.Secret) -> None:
        """Identity-side grants only: the key lives in the foundation stack, whose key policy
        must not name roles of later stacks (that would make the stacks depend on each other)."""
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[secret.secret_arn]
            )
        )
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[self.key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"
                    }
                },
            )
        )

    def _use_key(self, hook: HookFunction, *actions: str) -> None:
        hook.role.add_to_policy(
            iam.PolicyStatement(actions=list(actions), resources=[self.key.key_arn])
        )

    def _acknowledge_key_grant(self, policy: object, why: str) -> None:
        for action in ("GenerateDataKey*", "ReEncrypt*"):
            acknowledge(
                policy,  # type: ignore[arg-type]
                f"AwsSolutions-IAM5[Action::kms:{action}]",
                f"The hook {why}; CDK's grant on the product key expands to these actions.",
            )
