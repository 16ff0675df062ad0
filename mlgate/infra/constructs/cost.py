"""Cost guardrails of one account's foundation: the product's budget, the owner topic its
warnings mail, the idle-endpoint alarms and the Trusted Advisor routing.

Constructs import nothing from the manifest: the foundation stack builds the props.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from mlgate.infra.constructs.alarms import WARNING, AlarmFactory, Owner
from mlgate.infra.constructs.event_rules import WatchedRule
from mlgate.infra.constructs.service_access import ServiceTopic
from mlgate.infra.naming import EnvName, Names

TAG_KEY = "mlgate:product"
"""The tag every mlgate stack puts on its resources (stacks/base.py), naming the product: the
budget counts the cost it tags."""
IDLE_TIER, IDLE_WHAT = "business", "endpoint-idle"


def idle_alarm_name(names: Names, env: EnvName) -> str:
    """The idle-endpoint alarm of `env` (Names.alarm's rule: a warning, to its owner)."""
    return names.alarm(IDLE_TIER, IDLE_WHAT, WARNING, env)


# --- Trusted Advisor -----------------------------------------------------------------------

ADVISOR_DETAIL_TYPE = "Trusted Advisor Check Item Refresh Notification"
"""The event Trusted Advisor sends EventBridge when a check item's status changes; its detail
has check-name, status (OK, WARN, ERROR), resource_id and check-item-detail
(https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-trustedadvisor.html). Trusted
Advisor publishes it in us-east-1 only (https://docs.aws.amazon.com/awssupport/latest/user/
cloudwatch-events-ta.html)."""


@dataclass(frozen=True)
class AdvisorCheck:
    name: str
    """The check's name as the event's detail.check-name carries it."""
    resource_type: str
    """The CloudFormation type of the product's resources it looks at."""
    tier: str
    """The dashboard tier whose owner gets its warnings: business (cost: the PM), system
    (security, fault tolerance: on-call)."""
    core: bool = False
    """Run on every support plan (Basic and Developer too); the others need Business,
    Enterprise On-Ramp or Enterprise Support."""


# Names from the Trusted Advisor check reference
# (https://docs.aws.amazon.com/awssupport/latest/user/trusted-advisor-check-reference.html),
# kept to the resource types mlgate's stacks create. Trusted Advisor has no check of SageMaker
# endpoints, training or Glue jobs: the idle-endpoint alarm and the budget cover their cost.
ADVISOR_CHECKS: tuple[AdvisorCheck, ...] = (
    AdvisorCheck("Amazon S3 Bucket Permissions", "AWS::S3::Bucket", "system", core=True),
    AdvisorCheck("Amazon S3 Bucket Logging", "AWS::S3::Bucket", "system"),
    AdvisorCheck("Amazon S3 Bucket Versioning", "AWS::S3::Bucket", "system"),
    AdvisorCheck(
        "Amazon S3 Incomplete Multipart Upload Abort Configuration", "AWS::S3::Bucket", "business"
    ),
    AdvisorCheck("AWS Lambda Functions with High Error Rates", "AWS::Lambda::Function", "system"),
    AdvisorCheck(
        "AWS Lambda Functions with Excessive Timeouts", "AWS::Lambda::Function", "business"
    ),
    AdvisorCheck("AWS Lambda Functions Using Deprecated Runtimes", "AWS::Lambda::Function",
                 "system"),
    AdvisorCheck("AWS Lambda over-provisioned functions for memory size", "AWS::Lambda::Function",
                 "business"),
    AdvisorCheck("Amazon DynamoDB Point-in-time Recovery", "AWS::DynamoDB::Table", "system"),
    AdvisorCheck("Amazon CloudWatch Log Group Retention Period", "AWS::Logs::LogGroup", "system"),
    AdvisorCheck("Amazon CloudWatch Alarm Action is Disabled", "AWS::CloudWatch::Alarm", "system"),
)  # fmt: skip
SUPPORT_PLANS = "Business (Business Support+), Enterprise On-Ramp or Enterprise Support"
"""The plans on which Trusted Advisor runs every check and answers the Support API's
DescribeTrustedAdvisorChecks; Basic and Developer run the core checks only and the API answers
SubscriptionRequiredException (https://docs.aws.amazon.com/awssupport/latest/APIReference/
API_DescribeTrustedAdvisorChecks.html)."""


def advisor_checks(resource_types: set[str]) -> tuple[AdvisorCheck, ...]:
    """The checks that look at any of these resource types."""
    return tuple(c for c in ADVISOR_CHECKS if c.resource_type in resource_types)


def advisor_pattern(checks: tuple[AdvisorCheck, ...], statuses: list[str]) -> events.EventPattern:
    return events.EventPattern(
        source=["aws.trustedadvisor"],
        detail_type=[ADVISOR_DETAIL_TYPE],
        detail={"check-name": [c.name for c in checks], "status": statuses},
    )


# --- the construct -------------------------------------------------------------------------


@dataclass(frozen=True)
class CostGuardProps:
    names: Names
    """This foundation's names (env None: the home account's product-wide foundation)."""
    account: str
    product_manager: Owner
    """Mailed the budget's alerts, the idle-endpoint warnings and cost check warnings."""
    on_call: Owner
    """Paged by the budget's alerts and Trusted Advisor errors; mailed system warnings."""
    runbook: str
    endpoints: tuple[tuple[EnvName, str, str, str], ...] = ()
    """(environment, endpoint name, variant, the metric that counts its requests) of this
    account's endpoints that bill by the hour while idle."""
    idle_hours: int = 24
    idle_hours_by_env: tuple[tuple[EnvName, int], ...] = ()
    """An environment's own idle hours where they differ from `idle_hours` (one with off hours
    waits out its longest stretch of them)."""
    monthly_budget: float | None = None
    currency: str = "USD"
    forecast_percent: int = 80
    actual_percent: int = 100
    advisor: tuple[AdvisorCheck, ...] = ()
    """The Trusted Advisor checks to route, when this foundation is in us-east-1."""


class CostGuard(Construct):
    """The budget (home foundation only), the PM's owner topic, the idle-endpoint alarms, and
    Trusted Advisor's events routed by status and tier."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: CostGuardProps,
        key: kms.IKey,
        on_call_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        self.props = props
        self._key = key
        self.owner_topics: dict[str, ServiceTopic] = {}
        self.alarms: list[cw.Alarm] = []
        self.budget: budgets.CfnBudget | None = None
        self._on_call_topic = on_call_topic
        for env, endpoint, variant, requests in props.endpoints:
            self._idle_alarm(env, endpoint, variant, requests)
        if props.monthly_budget is not None:
            self.budget = self._budget(props.monthly_budget)
        if props.advisor:
            self._advisor(props.advisor)

    def owner_topic(self, contact: Owner) -> ServiceTopic:
        """One warning topic per owner in this foundation, mailed to them."""
        if contact.id not in self.owner_topics:
            topic = ServiceTopic(
                self,
                f"Owner{contact.id.replace('-', '').capitalize()}",
                topic_name=self.props.names.resource("owner", contact.id, "cost"),
                display_name=f"mlgate {self.props.names.product} cost warnings for {contact.name}",
                master_key=self._key,
                enforce_ssl=True,
            )
            topic.add_subscription(subs.EmailSubscription(contact.email))
            self.owner_topics[contact.id] = topic
        return self.owner_topics[contact.id]

    def _idle_alarm(self, env: EnvName, endpoint: str, variant: str, requests: str) -> None:
        p = self.props
        hours = dict(p.idle_hours_by_env).get(env, p.idle_hours)
        waits = (
            f" ({p.idle_hours} in the manifest, longer here: the {env} endpoint scales down "
            "outside working hours, when no request is expected)"
            if hours != p.idle_hours
            else ""
        )
        factory = AlarmFactory(
            names=p.names.at(env),
            runbook=p.runbook,
            on_call=self._on_call_topic,
            on_call_owner=p.on_call,
        ).with_owner_topics(self.owner_topic)
        # SageMaker publishes Invocations only for periods with requests
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html), so a
        # missing hour is an idle hour. An async endpoint publishes no Invocations at all: it
        # counts requests in InvocationsProcessed
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html).
        # An alarm may look back 7 days at most with hourly periods
        # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/
        # API_PutMetricAlarm.html): idle_hours is at most 168.
        metric = cw.Metric(
            namespace="AWS/SageMaker",
            metric_name=requests,
            dimensions_map={"EndpointName": endpoint, "VariantName": variant},
            statistic="Sum",
            period=Duration.hours(1),
        )
        alarm = factory.alarm(
            self,
            f"Idle{env.capitalize()}",
            tier=IDLE_TIER,
            what=IDLE_WHAT,
            severity=WARNING,
            owner=p.product_manager,
            meaning=f"The {env} endpoint {endpoint} answered no request for {hours} "
            f"hours{waits}; it is billed every hour it runs.",
            checks=(
                f"the endpoint's {requests} on the dashboard: is its traffic gone for good",
                "whether callers moved to another endpoint or environment",
                "scale it in, switch the environment to serverless, or delete the endpoint",
            ),
            metric=metric,
            threshold=0,
            comparison=cw.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
            missing=cw.TreatMissingData.BREACHING,
            periods=hours,
        )
        self.alarms.append(alarm)

    def _budget(self, amount: float) -> budgets.CfnBudget:
        p = self.props
        name = p.names.resource("budget", max_length=100)
        # Budgets publishes to an SNS topic only when the topic's policy lets
        # budgets.amazonaws.com, held to this account and its budgets
        # (https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html),
        # and to an encrypted topic only when the key lets it generate data keys and decrypt
        # (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
        budgets_principal = iam.ServicePrincipal("budgets.amazonaws.com")
        self._on_call_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="BudgetsPublish",
                principals=[budgets_principal],
                actions=["sns:Publish"],
                resources=[self._on_call_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": p.account},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:budgets::{p.account}:budget/{name}"},
                },
            )
        )
        self._key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="BudgetsPublishToEncryptedTopics",
                principals=[budgets_principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        # One SNS subscriber per notification (https://docs.aws.amazon.com/aws-cost-management/
        # latest/APIReference/API_budgets_NotificationWithSubscribers.html): on-call's topic,
        # and the PM by email.
        subscribers = [
            budgets.CfnBudget.SubscriberProperty(
                subscription_type="SNS", address=self._on_call_topic.topic_arn
            ),
            budgets.CfnBudget.SubscriberProperty(
                subscription_type="EMAIL", address=p.product_manager.email
            ),
        ]
        budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=amount, unit=p.currency),
                # The product's cost allocation tag: Billing counts a tag's cost only once the
                # tag is activated there (https://docs.aws.amazon.com/awsaccountbilling/latest/
                # aboutv2/activating-tags.html).
                filter_expression=budgets.CfnBudget.ExpressionProperty(
                    tags=budgets.CfnBudget.TagValuesProperty(
                        key=TAG_KEY, values=[p.names.product], match_options=["EQUALS"]
                    )
                ),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind,
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=subscribers,
                )
                for kind, percent in (
                    ("FORECASTED", p.forecast_percent),
                    ("ACTUAL", p.actual_percent),
                )
            ],
        )
        return budget

    def _advisor(self, checks: tuple[AdvisorCheck, ...]) -> None:
        """ERROR of any check pages on-call; WARN mails the owner of the check's tier."""
        p = self.props
        names = p.names
        errors = WatchedRule(
            self,
            "AdvisorErrors",
            rule_name=names.rule("advisor-errors"),
            description="Trusted Advisor errors on the product's resource types page on-call",
            event_pattern=advisor_pattern(checks, ["ERROR"]),
        )
        errors.add_target(targets.SnsTopic(self._on_call_topic))
        owners = {"business": p.product_manager, "system": p.on_call}
        for tier in sorted({c.tier for c in checks}):
            rule = WatchedRule(
                self,
                f"AdvisorWarnings{tier.capitalize()}",
                rule_name=names.rule(f"advisor-{tier}-warnings"),
                description=f"Trusted Advisor warnings of {tier}-tier checks mail their owner",
                event_pattern=advisor_pattern(tuple(c for c in checks if c.tier == tier), ["WARN"]),
            )
            rule.add_target(targets.SnsTopic(self.owner_topic(owners[tier])))
