"""Trusted Advisor's events, forwarded from us-east-1 to the product's region.

Trusted Advisor publishes its check events in us-east-1 only, whatever the resources' region
(https://docs.aws.amazon.com/awssupport/latest/user/cloudwatch-events-ta.html). For a
foundation in another region this small stack, in the same account and in us-east-1, sends the
events of the checks mlgate routes to that region's default event bus, where the foundation's
rules page on-call or mail the check's tier owner (mlgate/infra/constructs/cost.py). An event
bus in another region is a rule target of its own, with a role EventBridge assumes
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from mlgate.infra.constructs.alarms import CRITICAL, AlarmFactory
from mlgate.infra.constructs.cost import ADVISOR_CHECKS, advisor_pattern
from mlgate.infra.constructs.service_access import ServiceTopic
from mlgate.infra.naming import EnvName, Names
from mlgate.manifest import Manifest

REGION = "us-east-1"


class AdvisorStack(cdk.Stack):
    """mlgate-<product>[-<env>]-advisor in us-east-1 of one account the product runs in."""

    def __init__(
        self, scope: Construct, *, manifest: Manifest, env_name: EnvName | None, account: str,
        region: str,
    ) -> None:  # fmt: skip
        names = Names.of(manifest, env_name)
        product = manifest.product.name
        super().__init__(
            scope,
            names.stack("advisor"),
            description=f"mlgate {product}: forwards Trusted Advisor's events from us-east-1 "
            f"to {region}",
            env=cdk.Environment(account=account, region=REGION),
        )
        self.manifest = manifest
        self.env_name = env_name
        self.account_id = account
        tags = cdk.Tags.of(self)
        for key, value in {
            "mlgate:product": product,
            "mlgate:component": "advisor",
            "mlgate:environment": env_name or "shared",
            "mlgate:owner": manifest.contact(manifest.product.owners.product_manager).email,
        }.items():
            tags.add(key, value)
        bus = f"arn:aws:events:{region}:{account}:event-bus/default"
        role = iam.Role(
            self,
            "ForwardRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": account}}
            ),
            description=f"EventBridge forwards {product}'s Trusted Advisor events to {region}",
        )
        role.add_to_policy(iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus]))
        self.rule = events.Rule(
            self,
            "Forward",
            rule_name=names.rule("advisor-forward"),
            description=f"Trusted Advisor warnings and errors of the checks mlgate routes, to "
            f"{region}",
            event_pattern=advisor_pattern(ADVISOR_CHECKS, ["WARN", "ERROR"]),
        )
        self.rule.add_target(
            targets.EventBus(events.EventBus.from_event_bus_arn(self, "Home", bus), role=role)
        )
        self._watch(manifest, names)

    def _watch(self, manifest: Manifest, names: Names) -> None:
        """The forwarding rule drops an event it could not deliver after its retries, and only
        its FailedInvocations metric, in us-east-1, says so
        (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html). An alarm
        watches metrics of its own region only, so it lives here, with an on-call topic of this
        region: encrypted with a key of this region that CloudWatch may use, as the foundation's
        is (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html)."""
        key = kms.Key(
            self,
            "AdvisorKey",
            description=f"Encrypts {manifest.product.name}'s on-call topic in {REGION}",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchPublishesToTheEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        on_call = manifest.contact(manifest.product.owners.on_call)
        topic = ServiceTopic(
            self,
            "OnCallTopic",
            topic_name=names.resource("advisor", "on-call"),
            display_name=f"{manifest.product.display_name} on-call ({REGION}, Trusted Advisor)",
            master_key=key,
            enforce_ssl=True,
        )
        topic.add_subscription(subs.EmailSubscription(on_call.email))
        home = Names.home(manifest) if self.env_name is None else names
        alarms = AlarmFactory(
            names=home,
            runbook=manifest.product.runbook_url,
            on_call=topic,
            on_call_owner=on_call,
        )
        rule_name = names.rule("advisor-forward")
        prefix = f"mlgate-{manifest.product.name}-"
        self.alarm_name = alarms.name(
            "system", f"rule-{rule_name.removeprefix(prefix)}-failed-invocations", CRITICAL
        )
        self.alarm_arn = f"arn:aws:cloudwatch:{REGION}:{self.account_id}:alarm:{self.alarm_name}"
        """For the dashboard of its environment, in the product's region (a dashboard shows
        alarms of other Regions of its account:
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_xaxr_dashboard.html)."""
        alarms.alarm(
            self,
            "ForwardFailed",
            tier="system",
            what=f"rule-{rule_name.removeprefix(prefix)}-failed-invocations",
            severity=CRITICAL,
            meaning=f"EventBridge could not forward a Trusted Advisor event of rule {rule_name} "
            "from us-east-1 after its retries and dropped it.",
            checks=(
                f"the rule's target and its role (aws events list-targets-by-rule --rule "
                f"{rule_name} --region {REGION})",
                "the product region's default event bus and its rules",
                "the check in the Trusted Advisor console",
            ),
            metric=cw.Metric(
                namespace="AWS/Events",
                metric_name="FailedInvocations",
                dimensions_map={"RuleName": rule_name},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            ),
            threshold=0,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            missing=cw.TreatMissingData.NOT_BREACHING,
        )
