"""The hooks of the manual gates: the notifier posts each gate's evidence brief to chat and
email, the callback takes signed decisions from chat and tells an expired gate from a rejected
one. Each owns its environment, grants and cdk-nag acknowledgments."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra.constructs.alarms import CRITICAL, AlarmFactory
from mlgate.infra.constructs.compliance import acknowledge
from mlgate.infra.constructs.event_rules import WatchedRule
from mlgate.infra.constructs.hooks import AuditTrail, FailureRouting, HookFunction, IdempotencyTable
from mlgate.infra.constructs.release_hooks import RELEASE_KEY
from mlgate.infra.constructs.release_pipeline import ReleasePipeline
from mlgate.infra.naming import Names

# Where the gate callback counts approvals that expired undecided (lambdas/gate_callback).
GATE_NAMESPACE = "mlgate/gates"
# The public callback URL's flood alarm: this many requests answered 4xx in five minutes. A
# release's gates see a handful of clicks, a few of them refused (a second click, a colleague
# who is no approver); this many is no one clicking in chat (docs/product-manager.md).
FLOOD_REFUSALS = 50


@dataclass(frozen=True)
class GateNotifierProps:
    """The notifier's: the product-wide `names`; `context`, what the briefs say of the product
    as compact JSON (mlgate/infra/gates.py: gate_context, encoded), the release pipeline's
    brief topics in it; `approval_hours`, the longest manual gate's timeout (how long its
    dead-letter queue keeps an event)."""

    names: Names
    context: str
    approval_hours: int


@dataclass(frozen=True)
class GateCallbackProps:
    """The callback's: the product-wide `names`, and the concurrency reserved for its public
    URL (`reserved_concurrency`; None: none reserved)."""

    names: Names
    reserved_concurrency: int | None = None


class SlackSecret(secretsmanager.Secret):
    """A Slack credential the gate hooks read, encrypted with the product key; set by hand."""

    def __init__(
        self, scope: Construct, id: str, *, names: Names, key: kms.IKey, description: str
    ) -> None:
        super().__init__(
            scope,
            id,
            secret_name=names.secret(id),
            description=f"{description}; set its value with put-secret-value "
            "(docs/platform-engineer.md)",
            encryption_key=key,
        )
        acknowledge(
            self,
            "AwsSolutions-SMG4",
            f"{id} is issued by Slack and rotated there (regenerating it in the Slack app); "
            "Secrets Manager has no rotation function for a Slack credential.",
        )


class GateNotifier(HookFunction):
    """Posts each manual gate's evidence brief to chat and to its approvers' email topic."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: GateNotifierProps,
        key: kms.IKey,
        alarms: AlarmFactory,
        audit: AuditTrail,
        idempotency: IdempotencyTable,
        pipeline: ReleasePipeline,
        webhook: secretsmanager.ISecret,
        quality_job: str,
    ) -> None:
        """`pipeline`: the release pipeline whose manual gates it posts (their request topics
        invoke it, it publishes to their brief topics)."""
        names = props.names
        stack = Stack.of(scope)
        releases = names.bucket("releases", stack.account, stack.region)
        super().__init__(
            scope,
            id,
            hook="gate_notifier",
            description="Posts each gate's evidence brief to chat and email",
            environment={
                "MLGATE_CONTEXT": props.context,
                "AUDIT_TABLE": names.audit_table(),
                "RELEASE_BUCKET": releases,
                "RELEASE_KEY": RELEASE_KEY,
                "RELEASE_PIPELINE": names.release_pipeline(),
                "SLACK_WEBHOOK_SECRET_ARN": webhook.secret_arn,
                "DQ_JOB": quality_job,
            },
            failures=FailureRouting.of(
                "gate_notifier", key=key, alarms=alarms, approval_hours=props.approval_hours
            ),
        )
        self.make_idempotent(idempotency)
        for topic in pipeline.gate_topics.values():
            topic.add_subscription(subs.LambdaSubscription(self.function))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"],
                resources=[t.topic_arn for t in pipeline.brief_topics.values()],
            )
        )
        self.read_secret(webhook, key)
        # release.json (S3) is read and the briefs (SNS) are published encrypted with the key.
        self.use_key(key, "kms:Decrypt", "kms:GenerateDataKey", via=("s3", "sns"))
        # It opens requests (and reads one back on a retry) and appends events: no updates.
        audit.grant_append(self.role, ["request"], "dynamodb:PutItem", "dynamodb:GetItem")
        audit.grant_append(self.role, ["gate"], "dynamodb:PutItem")
        # The brief reads release.json at the gate's execution's source revision: an object
        # version, which S3 reads under s3:GetObjectVersion.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObjectVersion"],
                resources=[f"arn:aws:s3:::{releases}/{RELEASE_KEY}"],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["codepipeline:GetPipelineState", "codepipeline:GetPipelineExecution"],
                resources=[pipeline.pipeline.pipeline_arn],
            )
        )
        rulesets = f"arn:aws:glue:{stack.region}:{stack.account}:dataQualityRuleset/*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:ListDataQualityResults", "glue:GetDataQualityResult"],
                resources=[rulesets],
            )
        )
        acknowledge(
            self.policy,
            f"AwsSolutions-IAM5[Resource::{rulesets}]",
            "Data Quality results are listed by table, not by ruleset ARN; the notifier reads "
            "only results, for the product's curated table.",
        )


class GateCallback(HookFunction):
    """Takes signed Approve / Reject clicks from chat (the gate's approvers only), and counts
    the manual gates that expired undecided, which its alarm reports to on-call."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: GateCallbackProps,
        key: kms.IKey,
        alarms: AlarmFactory,
        audit: AuditTrail,
        pipeline: ReleasePipeline,
        signing: secretsmanager.ISecret,
    ) -> None:
        names = props.names
        stack = Stack.of(scope)
        super().__init__(
            scope,
            id,
            hook="gate_callback",
            description="Takes signed Approve / Reject clicks from chat, approvers only",
            environment={
                "SLACK_SIGNING_SECRET_ARN": signing.secret_arn,
                "AUDIT_TABLE": names.audit_table(),
                "RELEASE_PIPELINE": names.release_pipeline(),
                # GateExpired is written in the embedded metric format to the function's log;
                # CloudWatch files it under this namespace, the wait alarm's.
                "POWERTOOLS_METRICS_NAMESPACE": GATE_NAMESPACE,
            },
            # Its URL is public: a reservation keeps a flood of requests from taking the
            # account's concurrency from the other functions. Only where the manifest asks:
            # Lambda refuses one that leaves fewer than 100 unreserved, which a new account's
            # limit cannot (mlgate preflight checks it).
            reserved_concurrency=props.reserved_concurrency,
            # The GateExpired rule invokes it asynchronously: an event Lambda gave up on waits
            # in a dead-letter queue, and on-call hears of it.
            failures=FailureRouting.of("gate_callback", key=key, alarms=alarms),
        )
        self.read_secret(signing, key)
        # The audit trail's append-only rule, enforced by IAM (lambdas/shared/audit.py): the
        # request's state changes by conditional UpdateItem on request items only; events
        # are PutItem'd (conditionally, in code) and queried, never updated or deleted.
        audit.grant_append(self.role, ["request"], "dynamodb:GetItem", "dynamodb:UpdateItem")
        audit.grant_append(self.role, ["gate"], "dynamodb:PutItem", "dynamodb:Query")
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["codepipeline:PutApprovalResult"],
                resources=[f"{pipeline.pipeline.pipeline_arn}/*"],
            )
        )
        # An approval CodePipeline reports closed is read back from the stage's state (who
        # decided it, or that it expired), so the audit trail records what was applied.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["codepipeline:GetPipelineState"],
                resources=[pipeline.pipeline.pipeline_arn],
            )
        )
        # Slack cannot sign requests with SigV4: the URL is public and every request must carry
        # a valid Slack signature made in the last five minutes (checked in the handler). No
        # CORS: Slack posts from its servers and no browser page calls the URL, so Lambda
        # answers no preflight and sends no Access-Control-* header
        # (https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html#urls-cors).
        self.url = self.function.add_function_url(auth_type=lambda_.FunctionUrlAuthType.NONE)
        CfnOutput(
            stack,
            "GateCallbackUrl",
            value=self.url.url,
            description="Request URL of the Slack app's Interactivity (the gate buttons)",
        )
        logical = stack.get_logical_id(pipeline.pipeline.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            self.policy,
            f"AwsSolutions-IAM5[Resource::arn:aws:codepipeline:{stack.region}:{stack.account}:"
            f"<{logical}>/*]",
            "PutApprovalResult is granted on this pipeline's stages and actions only; the ARN "
            "of an approval action is the pipeline ARN followed by stage/action.",
        )
        self.wait_alarm = self._gate_wait_alarm(names, alarms)
        self.flood_alarms = self._flood_alarms(alarms)
        # By name, for the home environment's dashboard (a reference would be an export).
        self.flood_alarm_names = [
            alarms.name("system", what, CRITICAL)
            for what in ("gate-callback-refused", "gate-callback-throttled")
        ]

    def _flood_alarms(self, factory: AlarmFactory) -> list[cloudwatch.Alarm]:
        """Nothing rate-limits the public URL (docs/product-manager.md: a CloudFront or API
        Gateway limit would refuse real clicks with the junk); on-call hears of a flood: many
        requests answered 4xx (Lambda's Url4xxCount of this function's URL,
        https://docs.aws.amazon.com/lambda/latest/dg/urls-monitoring.html), or any invocation
        throttled (Throttles: a real click may have been turned away with a 429)."""
        watched: list[tuple[str, str, cloudwatch.IMetric, float, str, tuple[str, str, str]]] = [
            (
                "CallbackRefusals",
                "gate-callback-refused",
                cloudwatch.Metric(
                    namespace="AWS/Lambda",
                    metric_name="Url4xxCount",
                    dimensions_map={"FunctionName": self.function.function_name},
                    statistic="Sum",
                    period=durations.minutes(5),
                ),
                FLOOD_REFUSALS,
                f"The gate callback's public URL refused more than {FLOOD_REFUSALS} requests in "
                "five minutes: no one clicks that often, something is sending it junk.",
                (
                    'the callback\'s "decision refused" log lines (source_ip, field, reason)',
                    "whether approvers' clicks still get through (Throttles)",
                    "while it lasts, approvers decide in the CodePipeline console",
                ),
            ),
            (
                "CallbackThrottled",
                "gate-callback-throttled",
                self.function.metric_throttles(statistic="Sum", period=durations.minutes(5)),
                0,
                "Lambda throttled the gate callback: a click may have been answered 429 and not "
                "taken.",
                (
                    "the refusals alarm and the callback's log (a flood?)",
                    "the account's unreserved concurrency",
                    "approvers click again, or decide in the CodePipeline console",
                ),
            ),
        ]
        return [
            factory.alarm(
                self,
                id,
                tier="system",
                what=what,
                severity=CRITICAL,
                meaning=meaning,
                checks=checks,
                metric=metric,
                threshold=threshold,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                # No refused or throttled request, no data point: the healthy state.
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            for id, what, metric, threshold, meaning, checks in watched
        ]

    def _gate_wait_alarm(self, names: Names, factory: AlarmFactory) -> cloudwatch.Alarm:
        """A manual approval that outlived its timeout fails its action: on-call hears of it.

        CodePipeline's action execution event (category Approval, state FAILED) is the same for
        an expired approval and a rejected one, so the rule routes it to this callback, which
        looks the request up in the audit trail and publishes GateExpired only when no
        decision was recorded and the request's expiry has passed; the alarm watches that
        metric. The event shape is CodePipeline's documented one; it could not be observed
        offline."""
        self.expired_rule = WatchedRule(
            self,
            "GateExpired",
            rule_name=names.rule("gate-expired"),
            description="A manual gate of the release pipeline failed: expired or rejected",
            event_pattern=events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=["CodePipeline Action Execution State Change"],
                detail={
                    "pipeline": [names.release_pipeline()],
                    "type": {"category": ["Approval"]},
                    "state": ["FAILED"],
                },
            ),
        )
        self.expired_rule.add_target(targets.LambdaFunction(self.function, retry_attempts=2))
        what = "gate-waiting-too-long"
        # The name as a string (alarm_name is a token): the home dashboard imports it.
        self.wait_alarm_name = factory.name("system", what, CRITICAL)
        return factory.alarm(
            self,
            "GateWaitingTooLong",
            tier="system",
            what=what,
            severity=CRITICAL,
            meaning="A manual gate waited past its manifest timeout and CodePipeline failed it "
            "(rejections do not count).",
            checks=(
                'which gate (the gate callback\'s "failed approval" log line names it)',
                "whether its approvers received the brief (audit trail, chat)",
                "re-run the pipeline once they are available",
            ),
            metric=cloudwatch.Metric(
                namespace=GATE_NAMESPACE,
                metric_name="GateExpired",
                dimensions_map={"Pipeline": names.release_pipeline()},
                statistic="Sum",
                period=durations.minutes(5),
            ),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # No expired gate, no data point: silence is the healthy state.
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def take_rollbacks(self, machine: sfn.IStateMachine, audit: AuditTrail) -> None:
        """The Roll back button's clicks: the callback reads the offer a button names
        ("rollback#" items) and starts the rollback state machine for an approver's click."""
        self.function.add_environment("ROLLBACK_STATE_MACHINE", machine.state_machine_arn)
        machine.grant_start_execution(self.role)
        audit.grant_append(self.role, ["rollback"], "dynamodb:GetItem")
