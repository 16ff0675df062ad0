"""AlarmFactory: the one place mlgate makes a CloudWatch alarm or composite alarm.

Every alarm, whichever construct watches what, gets from here:
- its name, by the one rule of `Names.alarm`: mlgate/<product>/<env>/<tier>/<what>/<severity>,
  `env` the environment whose account and dashboard hold it (a product-wide resource's alarm:
  the home environment, `naming.home_env`);
- its description, in one format: what fired, then "First checks: 1) .. 2) .. 3) ..", then
  "Owner: <name> <email>. Runbook: <url>";
- its one SNS action: critical pages the on-call topic, warning mails the owner's topic.

A factory is built per environment (or for the home environment) by the stack, from the
manifest; it takes only names, the runbook, the on-call contact and topics, so it builds in a
bare `Stack()` (tests/test_alarms.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlgate.infra.naming import PREFIX, Names

CRITICAL, WARNING = "critical", "warning"
ALARM_PUBLISH_MARKER = "AlarmsMayPublish"
"""The child a topic is given once its policy admits the product's alarms."""


class Owner(Protocol):
    """Who answers an alarm (a manifest contact, or anything with these three)."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def email(self) -> str: ...


def hook_alarm(hook: str, what: str) -> str:
    """A hook's alarm's `what`: hook-<hook, hyphenated>-<what> (hook-deploy-verifier-failed,
    hook-deploy-verifier-errors), whichever construct watches it."""
    return f"hook-{hook.replace('_', '-')}-{what}"


def describe(meaning: str, checks: tuple[str, str, str], owner: Owner, runbook: str) -> str:
    """The one description format: what fired, the first three checks, owner and runbook."""
    return (
        f"{meaning} First checks: 1) {checks[0]} 2) {checks[1]} 3) {checks[2]}. "
        f"Owner: {owner.name} <{owner.email}>. Runbook: {runbook}"
    )


@dataclass
class AlarmFactory:
    """Makes the alarms of one environment: `names` (their environment), `runbook`, and
    `on_call`, the topic critical alarms page, answered by `on_call_owner`. `owner_topic`
    gives a warning's owner their topic (only ProductMonitoring's alarms are warnings; without
    it a warning is refused)."""

    names: Names
    runbook: str
    on_call: sns.ITopic
    on_call_owner: Owner
    owner_topic: Callable[[Owner], sns.ITopic] | None = None
    # One alarm action per topic, shared by its alarms (each new one is a call to node).
    _actions: dict[int, cw_actions.SnsAction] = field(default_factory=dict, repr=False)

    def with_owner_topics(self, owner_topic: Callable[[Owner], sns.ITopic]) -> AlarmFactory:
        """The same factory, able to route warnings to `owner_topic(owner)`."""
        return AlarmFactory(
            self.names, self.runbook, self.on_call, self.on_call_owner, owner_topic, self._actions
        )

    def name(self, tier: str, what: str, severity: str) -> str:
        return self.names.alarm(tier, what, severity)

    def describe(self, meaning: str, checks: tuple[str, str, str], owner: Owner) -> str:
        return describe(meaning, checks, owner, self.runbook)

    def alarm(
        self,
        scope: Construct,
        id: str,
        *,
        tier: str,
        what: str,
        severity: str,
        meaning: str,
        checks: tuple[str, str, str],
        metric: cw.IMetric,
        threshold: float,
        comparison: cw.ComparisonOperator,
        missing: cw.TreatMissingData,
        owner: Owner | None = None,
        periods: int = 1,
        datapoints: int | None = None,
    ) -> cw.Alarm:
        """An alarm on `metric` under `scope` (construct id `id`), named, described and
        routed by the rule; `owner` defaults to on-call."""
        owner = owner or self.on_call_owner
        alarm = cw.Alarm(
            scope,
            id,
            alarm_name=self.name(tier, what, severity),
            alarm_description=self.describe(meaning, checks, owner),
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )
        self.route(alarm, severity, owner)
        return alarm

    def composite(
        self,
        scope: Construct,
        id: str,
        *,
        tier: str,
        what: str,
        severity: str,
        meaning: str,
        checks: tuple[str, str, str],
        rule: cw.IAlarmRule,
        owner: Owner | None = None,
    ) -> cw.CompositeAlarm:
        """A composite alarm on `rule`, named, described and routed like any other."""
        owner = owner or self.on_call_owner
        composite = cw.CompositeAlarm(
            scope,
            id,
            composite_alarm_name=self.name(tier, what, severity),
            alarm_rule=rule,
            alarm_description=self.describe(meaning, checks, owner),
        )
        self.route(composite, severity, owner)
        return composite

    def route(self, alarm: cw.AlarmBase, severity: str, owner: Owner) -> None:
        """The alarm's one action: critical to on-call, warning to the owner's topic."""
        if severity == CRITICAL:
            topic = self.on_call
        elif self.owner_topic is None:
            raise ValueError(f"a {severity} alarm needs its owner's topic; this factory has none")
        else:
            topic = self.owner_topic(owner)
        key = id(topic)
        if key not in self._actions:
            self._actions[key] = cw_actions.SnsAction(topic)
            self._let_alarms_publish(topic)
        alarm.add_alarm_action(self._actions[key])

    def _let_alarms_publish(self, topic: sns.ITopic) -> None:
        """The topic's policy admits this product's alarms, once per topic. CloudWatch
        publishes an alarm's notification as cloudwatch.amazonaws.com, which an SNS topic
        policy must allow: the topic policy CDK writes (enforce_ssl's deny, or another
        service's allow) replaces SNS's default one, and without this statement every alarm
        notification fails with "not authorized to perform: SNS:Publish ... because no
        resource-based policy allows" in the alarm's history
        (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger). The
        conditions keep the grant to this account's alarms of this product (the confused
        deputy: https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html)."""
        if topic.node.try_find_child(ALARM_PUBLISH_MARKER) is not None:
            return
        Construct(topic, ALARM_PUBLISH_MARKER)  # adds nothing to the template
        stack = Stack.of(topic)
        alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{PREFIX}/{self.names.product}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisProductPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": alarms},
                },
            )
        )
