"""One alarm factory (mlgate/infra/constructs/alarms.py), one naming rule (Names.alarm).

- The factory, built in a bare `Stack()` from names, a runbook and two topics (no manifest):
  the names, the description format and the routing it gives an alarm.
- Every alarm and composite alarm of every synthesized template of every example product and
  of a scaffolded one: named by the rule (the environment the one whose account holds it),
  described in the one format with an owner and a runbook, with one SNS action, on-call's for a
  critical alarm; no two alarms share a name in an account; and every alarm name a template
  mentions (rollback configuration, composite rules, dashboards, drift rules) is one that
  exists. The checks fail on a hand-made alarm, shown beside them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any, cast

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from mlgate.infra.constructs.alarms import CRITICAL, WARNING, AlarmFactory, Owner, hook_alarm
from mlgate.infra.naming import ALARM_NAME, Names, home_env
from mlgate.infra.service_rules import ACCOUNT, REGION, App, Resource, Stack

from .conftest import APPS

DESCRIPTION = re.compile(
    r"(?P<meaning>\S.*) First checks: 1\) .+ 2\) .+ 3\) .+\. "
    r"Owner: (?P<owner>[^<>]+ <[^<>@\s]+@[^<>\s]+>)\. Runbook: https?://\S+"
)
# An alarm name anywhere in a template (a rollback configuration, a composite's rule, a
# dashboard's alarm widget, the drift rule's resources, an environment variable).
MENTIONED = re.compile(
    r"mlgate/[a-z0-9-]+/(?:staging|prod)/(?:business|model|system)/[a-z0-9_-]+/"
    r"(?:critical|warning|scaling)"
)


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str


ON_CALL = Person("oncall", "Ada On-Call", "oncall@example.org")
PM = Person("pm", "Pat Manager", "pm@example.org")
RUNBOOK = "https://runbooks.example.org/demo"


def factory(stack: cdk.Stack) -> tuple[AlarmFactory, sns.Topic, dict[str, sns.Topic]]:
    on_call = sns.Topic(stack, "OnCall")
    owners: dict[str, sns.Topic] = {}

    def owner_topic(owner: Owner) -> sns.ITopic:
        return owners.setdefault(owner.id, sns.Topic(stack, f"Owner{owner.id}"))

    made = AlarmFactory(Names("demo", "prod"), RUNBOOK, on_call, ON_CALL)
    return made.with_owner_topics(owner_topic), on_call, owners


def test_the_factory_names_describes_and_routes_every_alarm_by_the_rule() -> None:
    stack = cdk.Stack()
    alarms, on_call, owners = factory(stack)
    metric = cw.Metric(namespace="Demo", metric_name="Errors")
    common: dict[str, Any] = {
        "metric": metric,
        "threshold": 0,
        "comparison": cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        "missing": cw.TreatMissingData.NOT_BREACHING,
    }
    failed = alarms.alarm(
        stack,
        "Failed",
        tier="system",
        what=hook_alarm("deploy_verifier", "failed"),
        severity=CRITICAL,
        meaning="The deploy_verifier hook failed.",
        checks=("its log group", "the queue", "redrive"),
        **common,
    )
    kpi = alarms.alarm(
        stack,
        "Kpi",
        tier="business",
        what="fraud-caught",
        severity=WARNING,
        owner=PM,
        meaning="Fraud caught is off target.",
        checks=("the model tier", "recent releases", "the business"),
        periods=3,
        **common,
    )
    alarms.composite(
        stack,
        "Unhealthy",
        tier="model",
        what="model-unhealthy",
        severity=CRITICAL,
        meaning="The model is unhealthy.",
        checks=("which child fired", "a rollout", "the drift report"),
        rule=cw.AlarmRule.any_of(failed, kpi),
    )
    template = Template.from_stack(stack)
    by_name = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
        for a in template.find_resources(kind).values()
    }
    ref = stack.resolve
    assert by_name.keys() == {
        "mlgate/demo/prod/system/hook-deploy-verifier-failed/critical",
        "mlgate/demo/prod/business/fraud-caught/warning",
        "mlgate/demo/prod/model/model-unhealthy/critical",
    }
    failed_props = by_name["mlgate/demo/prod/system/hook-deploy-verifier-failed/critical"]
    assert failed_props["AlarmDescription"] == (
        "The deploy_verifier hook failed. First checks: 1) its log group 2) the queue "
        f"3) redrive. Owner: Ada On-Call <oncall@example.org>. Runbook: {RUNBOOK}"
    )
    assert failed_props["AlarmActions"] == [ref(on_call.topic_arn)]
    warning = by_name["mlgate/demo/prod/business/fraud-caught/warning"]
    assert warning["AlarmActions"] == [ref(owners["pm"].topic_arn)]
    assert "Owner: Pat Manager <pm@example.org>." in warning["AlarmDescription"]
    composite = by_name["mlgate/demo/prod/model/model-unhealthy/critical"]
    assert composite["AlarmActions"] == [ref(on_call.topic_arn)]
    for name, props in by_name.items():
        assert ALARM_NAME.fullmatch(name), name
        assert DESCRIPTION.fullmatch(props["AlarmDescription"]), name


def test_a_name_off_the_rule_is_refused() -> None:
    names = Names("demo", "staging")
    assert names.alarm("system", "gate-waiting-too-long", CRITICAL) == (
        "mlgate/demo/staging/system/gate-waiting-too-long/critical"
    )
    assert names.alarm("*", "*", "*") == "mlgate/demo/staging/*/*/*"  # an IAM pattern
    for tier, what, severity in (
        ("system", "deploy_verifier-failed", CRITICAL),  # an underscore
        ("system", "Hook-Errors", CRITICAL),
        ("system", "hook--errors", CRITICAL),
        ("hooks", "hook-release-failed", CRITICAL),
        ("system", "hook-release-failed", "page"),
    ):
        with pytest.raises(ValueError, match="alarm"):
            names.alarm(tier, what, severity)
    with pytest.raises(ValueError, match="needs an environment"):
        Names("demo").alarm("system", "hook-release-failed", CRITICAL)


def test_a_warning_without_its_owner_s_topic_is_refused() -> None:
    stack = cdk.Stack()
    alarms = AlarmFactory(Names("demo", "prod"), RUNBOOK, sns.Topic(stack, "OnCall"), ON_CALL)
    with pytest.raises(ValueError, match="owner's topic"):
        alarms.alarm(
            stack,
            "Kpi",
            tier="business",
            what="fraud-caught",
            severity=WARNING,
            owner=PM,
            meaning="Off target.",
            checks=("a", "b", "c"),
            metric=cw.Metric(namespace="Demo", metric_name="Kpi"),
            threshold=1,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cw.TreatMissingData.MISSING,
        )


def test_a_product_wide_alarm_belongs_to_prod_when_prod_shares_the_home_account() -> None:
    def manifest(prod_remote: bool) -> Any:
        return SimpleNamespace(
            product=SimpleNamespace(name="demo"), is_remote=lambda env: prod_remote
        )

    assert home_env(manifest(False)) == "prod"
    assert home_env(manifest(True)) == "staging"
    assert Names.home(manifest(True)) == Names("demo", "staging")


# --- every alarm of every synthesized template ---------------------------------------------


def _env_accounts(app: App) -> dict[tuple[str, str], str]:
    """(product, env) -> account, from the per-environment stacks' names."""
    found = {}
    for stack in app.stacks:
        match = re.fullmatch(r"mlgate-(.+)-(staging|prod)-[a-z]+", stack.name)
        if match:
            found[(match[1], match[2])] = stack.account
    return found


def _action_topic(alarm: Resource) -> tuple[Resource | None, str]:
    actions = alarm.props.get("AlarmActions", [])
    if len(actions) != 1:
        return None, f"has {len(actions)} actions, not one"
    topic = alarm.ref(actions[0])
    if topic is None or topic.type != "AWS::SNS::Topic":
        return None, "its action is no SNS topic of this app"
    return topic, ""


def alarm_problems(app: App) -> list[str]:
    """What breaks the one rule, per alarm: name, environment, description, action."""
    problems = []
    accounts = _env_accounts(app)
    seen: dict[tuple[str, str, str], str] = {}
    for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
        for alarm in app.resources(kind):
            where = f"{alarm.stack.name}/{alarm.id}"
            name = alarm.literal(alarm.props.get("AlarmName"))
            match = ALARM_NAME.fullmatch(name or "")
            if name is None or match is None:
                problems.append(f"{where}: name {name!r} does not follow Names.alarm")
                continue
            key = (alarm.stack.account, alarm.stack.region, name)
            if key in seen:
                problems.append(f"{where}: name {name} already taken by {seen[key]}")
            seen[key] = where
            product, env = match["product"], match["env"]
            rest = alarm.stack.name.removeprefix(f"mlgate-{product}-")
            own = rest.split("-")[0] if rest.split("-")[0] in ("staging", "prod") else None
            if rest == alarm.stack.name:
                problems.append(f"{where}: {name} names another product")
            elif own is not None and env != own:
                problems.append(f"{where}: {name} is in {own}'s stack, named for {env}")
            elif own is None and accounts.get((product, env)) != alarm.stack.account:
                problems.append(
                    f"{where}: {name} is product-wide, named for {env}, whose account does not "
                    "hold it (naming.home_env)"
                )
            description = str(alarm.props.get("AlarmDescription", ""))
            if not DESCRIPTION.fullmatch(description):
                problems.append(
                    f"{where}: {name}'s description is not 'what fired. First checks: 1) .. "
                    "2) .. 3) ... Owner: name <email>. Runbook: url'"
                )
            if match["severity"] == "scaling":
                # Pages no one: its one action is the scaling policy it wakes (an async
                # endpoint scaled to zero, mlgate/infra/constructs/endpoint.py).
                actions = alarm.props.get("AlarmActions", [])
                policy = alarm.ref(actions[0]) if len(actions) == 1 else None
                if policy is None or policy.type != "AWS::ApplicationAutoScaling::ScalingPolicy":
                    problems.append(f"{where}: {name} acts on no scaling policy of this app")
                continue
            topic, why = _action_topic(alarm)
            if topic is None:
                problems.append(f"{where}: {name} {why}")
                continue
            topic_name = topic.literal(topic.props.get("TopicName")) or ""
            wanted, whose = (
                ("-on-call", "on-call") if match["severity"] == CRITICAL else ("-owner-", "owner")
            )
            if wanted not in topic_name:
                problems.append(
                    f"{where}: {name} notifies {topic_name or topic.id}, not its {whose} topic"
                )
    return problems


def unknown_names(app: App) -> list[str]:
    """Alarm names a template mentions that no alarm of the app has (an old name)."""
    names = {
        alarm.literal(alarm.props.get("AlarmName"))
        for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
        for alarm in app.resources(kind)
    }
    return sorted(
        f"{stack.name}: {mentioned}"
        for stack in app.stacks
        for mentioned in set(MENTIONED.findall(json.dumps(stack.template)))
        if mentioned not in names
    )


@pytest.mark.parametrize("app", APPS)
def test_every_alarm_follows_the_one_rule(request: pytest.FixtureRequest, app: str) -> None:
    found: App = request.getfixturevalue(app)
    assert sum(1 for _ in found.resources("AWS::CloudWatch::Alarm")) > 20, "alarms are read"
    assert alarm_problems(found) == []


@pytest.mark.parametrize("app", APPS)
def test_every_alarm_name_a_template_mentions_exists(
    request: pytest.FixtureRequest, app: str
) -> None:
    found: App = request.getfixturevalue(app)
    assert unknown_names(found) == []


def _rendered(stack: Any, value: Any) -> str:
    """A dashboard body as CloudWatch reads it: each alarm a token points at, by its name."""
    if isinstance(value, str):
        return value
    ((function, argument),) = value.items()
    if function == "Fn::Join":
        return str(argument[0]).join(_rendered(stack, part) for part in argument[1])
    if function == "Fn::GetAtt":
        props = stack.template["Resources"][argument[0]].get("Properties", {})
        return f"arn:aws:cloudwatch:region:account:alarm:{props.get('AlarmName', argument[0])}"
    return "token"


def alarms_missing_from_their_widget(app: App) -> list[str]:
    """Every alarm of an environment (its name's environment) is on that environment's
    dashboard, in the widget that lists them all."""
    listed: dict[tuple[str, str], set[str]] = {}
    for dashboard in app.resources("AWS::CloudWatch::Dashboard"):
        name = dashboard.literal(dashboard.props.get("DashboardName")) or ""
        match = re.fullmatch(r"mlgate-(.+)-(staging|prod)", name)
        assert match, name
        body = json.loads(_rendered(dashboard.stack, dashboard.props["DashboardBody"]))
        (widget,) = [
            w for w in body["widgets"] if w["properties"].get("title", "").startswith("Every alarm")
        ]
        arns = widget["properties"]["alarms"]
        listed[(match[1], match[2])] = {arn.split(":alarm:", 1)[1] for arn in arns}
    missing = []
    for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
        for alarm in app.resources(kind):
            name = alarm.literal(alarm.props.get("AlarmName")) or ""
            match = ALARM_NAME.fullmatch(name)
            if match and name not in listed.get((match["product"], match["env"]), set()):
                missing.append(f"{alarm.stack.name}: {name}")
    return sorted(missing)


@pytest.mark.parametrize("app", APPS)
def test_every_alarm_is_on_its_environments_dashboard(
    request: pytest.FixtureRequest, app: str
) -> None:
    found: App = request.getfixturevalue(app)
    assert alarms_missing_from_their_widget(found) == []
    # The broken form: a hook's dead-letter alarm left off the widget is named.
    failed = next(
        a
        for a in found.resources("AWS::CloudWatch::Alarm")
        if "/hook-release-failed/" in (a.literal(a.props.get("AlarmName")) or "")
    )
    name = str(failed.literal(failed.props["AlarmName"]))

    def without(template: Any) -> Any:
        resources = {
            k: json.loads(json.dumps(v).replace(name, "gone"))
            if v["Type"] == "AWS::CloudWatch::Dashboard"
            else v
            for k, v in template["Resources"].items()
        }
        return {**template, "Resources": resources}

    stacks = [replace(s, template=without(s.template)) for s in found.stacks]
    assert alarms_missing_from_their_widget(App(stacks)) == [f"{failed.stack.name}: {name}"]


def test_the_checks_fail_on_a_hand_made_alarm() -> None:
    topic = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "mlgate-demo-prod-on-call"}}
    good = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": "mlgate/demo/prod/system/hook-release-failed/critical",
            "AlarmDescription": "The release hook failed. First checks: 1) a 2) b 3) c. "
            "Owner: Ada <ada@example.org>. Runbook: https://runbooks.example.org/demo",
            "AlarmActions": [{"Ref": "OnCall"}],
        },
    }

    def app(resources: dict[str, Any]) -> App:
        """One prod serving stack holding `resources`."""
        return App([Stack("mlgate-demo-prod-serving", ACCOUNT, REGION, {"Resources": resources})])

    assert alarm_problems(app({"OnCall": topic, "Good": good})) == []
    hand_made = cast(dict[str, Any], json.loads(json.dumps(good)))
    hand_made["Properties"].update(
        AlarmName="mlgate/demo/prod/system/deploy_verifier-failed/critical",
    )
    problems = " ".join(alarm_problems(app({"OnCall": topic, "A": hand_made})))
    assert "does not follow Names.alarm" in problems
    for change, expected in (
        ({"AlarmDescription": "Deploy verifier failed. Check the logs."}, "description"),
        ({"AlarmActions": []}, "0 actions"),
        ({"AlarmName": "mlgate/demo/staging/system/hook-release-failed/critical"}, "named for"),
        ({"AlarmName": "mlgate/demo/prod/business/kpi/warning"}, "owner topic"),
    ):
        broken = cast(dict[str, Any], json.loads(json.dumps(good)))
        broken["Properties"].update(change)
        problems = " ".join(alarm_problems(app({"OnCall": topic, "B": broken})))
        assert expected in problems, change
    twice = {"OnCall": topic, "Good": good, "Again": good}
    assert "already taken" in " ".join(alarm_problems(app(twice)))
    mentioning = {
        "OnCall": topic,
        "Good": good,
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardBody": "alarm:mlgate/demo/prod/system/deployer-failed/critical"
            },
        },
    }
    assert unknown_names(app(mentioning)) == [
        "mlgate-demo-prod-serving: mlgate/demo/prod/system/deployer-failed/critical"
    ]
