"""CostGuard alone (issue 33): the budget on the product's tag, Budgets allowed to publish to
on-call's encrypted topic and nothing else, the idle-endpoint alarm, and Trusted Advisor's
events routed by status and tier."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import aws_sns as sns

from mlgate.infra.constructs.cost import (
    ADVISOR_CHECKS,
    ADVISOR_DETAIL_TYPE,
    TAG_KEY,
    CostGuard,
    CostGuardProps,
    advisor_checks,
)
from tests.constructs.conftest import ACCOUNT, ON_CALL, PM, PRODUCT, RUNBOOK, Kit, resources

BUDGET = f"mlgate-{PRODUCT}-budget"


def build(home: Kit, **overrides: Any) -> tuple[CostGuard, dict[str, Any]]:
    props = CostGuardProps(
        names=home.product_names,
        account=ACCOUNT,
        product_manager=PM,
        on_call=ON_CALL,
        runbook=RUNBOOK,
        endpoints=(("prod", f"mlgate-{PRODUCT}-prod", "AllTraffic", "Invocations"),),
        idle_hours=36,
        monthly_budget=1200.0,
        forecast_percent=75,
        actual_percent=100,
        advisor=ADVISOR_CHECKS,
        **overrides,
    )
    guard = CostGuard(home.stack, "Cost", props=props, key=home.key, on_call_topic=home.on_call)
    return guard, home.template().to_json()


def _allows(statement: dict[str, Any], service: str, action: str, context: dict[str, str]) -> bool:
    """Whether one policy statement lets `service` do `action` in this request context (the
    condition operators the statements here use: StringEquals, ArnLike)."""
    import fnmatch

    principals = statement.get("Principal", {}).get("Service", [])
    principals = [principals] if isinstance(principals, str) else principals
    actions = (
        statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    )
    if statement["Effect"] != "Allow" or service not in principals:
        return False
    if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
        return False
    for operator, pairs in statement.get("Condition", {}).items():
        for key, wanted in pairs.items():
            value = context.get(key)
            if value is None:
                return False
            if operator == "StringEquals" and value != wanted:
                return False
            if operator == "ArnLike" and not fnmatch.fnmatchcase(value, wanted):
                return False
    return True


def budgets_may_publish(template: dict[str, Any], topic: str, budget_arn: str) -> bool:
    """A Budgets notification of `budget_arn` reaches `topic` (logical id): its topic policy
    allows budgets.amazonaws.com sns:Publish for that budget and account, and the topic's key
    lets Budgets generate a data key (https://docs.aws.amazon.com/cost-management/latest/
    userguide/budgets-sns-policy.html)."""
    context = {"aws:SourceAccount": budget_arn.split(":")[4], "aws:SourceArn": budget_arn}
    res = template["Resources"]
    policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in res.values()
        if r["Type"] == "AWS::SNS::TopicPolicy" and {"Ref": topic} in r["Properties"]["Topics"]
    ]
    published = any(
        _allows(s, "budgets.amazonaws.com", "sns:Publish", context) for p in policies for s in p
    )
    key = res[template["Resources"][topic]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]]
    encrypts = any(
        _allows(s, "budgets.amazonaws.com", "kms:GenerateDataKey", {})
        for s in key["Properties"]["KeyPolicy"]["Statement"]
    )
    return published and encrypts


def test_the_budget_counts_the_product_tag_and_alerts_pm_and_on_call(home: Kit) -> None:
    _guard, _template = build(home)
    (budget,) = resources(home.template(), "AWS::Budgets::Budget").values()
    data = budget["Properties"]["Budget"]
    assert data["BudgetName"] == BUDGET
    assert data["BudgetLimit"] == {"Amount": 1200, "Unit": "USD"}
    assert data["TimeUnit"] == "MONTHLY"
    assert data["BudgetType"] == "COST"
    assert data["FilterExpression"] == {
        "Tags": {"Key": TAG_KEY, "Values": [PRODUCT], "MatchOptions": ["EQUALS"]}
    }
    alerts = {
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"]): n["Subscribers"]
        for n in budget["Properties"]["NotificationsWithSubscribers"]
    }
    assert set(alerts) == {("FORECASTED", 75), ("ACTUAL", 100)}
    on_call = home.stack.get_logical_id(home.on_call.node.default_child)  # type: ignore[arg-type]
    for subscribers in alerts.values():
        assert {"SubscriptionType": "SNS", "Address": {"Ref": on_call}} in subscribers
        assert {"SubscriptionType": "EMAIL", "Address": PM.email} in subscribers


def test_a_budget_alert_reaches_on_call_and_no_other_budget_s_does(home: Kit) -> None:
    """The offline proof that a budget alert is routed: the policy Budgets is checked against
    lets this budget publish to on-call's encrypted topic; another account's budget, or a topic
    policy without the statement (the broken form), does not."""
    home.on_call = sns.Topic(home.stack, "Paging", master_key=home.key)
    _guard, template = build(home)
    topic = home.stack.get_logical_id(home.on_call.node.default_child)  # type: ignore[arg-type]
    mine = f"arn:aws:budgets::{ACCOUNT}:budget/{BUDGET}"
    assert budgets_may_publish(template, topic, mine)
    assert not budgets_may_publish(
        template, topic, f"arn:aws:budgets::999999999999:budget/{BUDGET}"
    )
    assert not budgets_may_publish(template, topic, f"arn:aws:budgets::{ACCOUNT}:budget/other")
    broken = json.loads(json.dumps(template))
    for r in broken["Resources"].values():
        if r["Type"] == "AWS::SNS::TopicPolicy":
            statements = r["Properties"]["PolicyDocument"]["Statement"]
            statements[:] = [s for s in statements if s.get("Sid") != "BudgetsPublish"]
    assert not budgets_may_publish(broken, topic, mine)


def test_no_budget_without_an_amount_and_no_alarm_without_a_billed_endpoint() -> None:
    from tests.constructs.conftest import kit

    bare = kit()
    CostGuard(
        bare.stack,
        "Cost",
        props=CostGuardProps(
            names=bare.product_names, account=ACCOUNT, product_manager=PM, on_call=ON_CALL,
            runbook=RUNBOOK,
        ),
        key=bare.key,
        on_call_topic=bare.on_call,
    )  # fmt: skip
    assert resources(bare.template(), "AWS::Budgets::Budget") == {}
    assert resources(bare.template(), "AWS::CloudWatch::Alarm") == {}


def test_an_idle_endpoint_warns_its_pm_after_the_manifest_s_hours(home: Kit) -> None:
    guard, _ = build(home)
    (alarm,) = resources(home.template(), "AWS::CloudWatch::Alarm").values()
    p = alarm["Properties"]
    assert p["AlarmName"] == f"mlgate/{PRODUCT}/prod/business/endpoint-idle/warning"
    assert (p["Namespace"], p["MetricName"], p["Statistic"]) == (
        "AWS/SageMaker", "Invocations", "Sum"
    )  # fmt: skip
    assert {d["Name"]: d["Value"] for d in p["Dimensions"]} == {
        "EndpointName": f"mlgate-{PRODUCT}-prod",
        "VariantName": "AllTraffic",
    }
    # 36 one-hour periods with no request (a missing hour is an idle one) fire it.
    assert (p["Period"], p["EvaluationPeriods"]) == (3600, 36)
    assert p["TreatMissingData"] == "breaching"
    assert (p["ComparisonOperator"], p["Threshold"]) == ("LessThanOrEqualToThreshold", 0)
    pm_topic = home.stack.get_logical_id(guard.owner_topic(PM).node.default_child)  # type: ignore[arg-type]
    assert p["AlarmActions"] == [{"Ref": pm_topic}]
    topic = resources(home.template(), "AWS::SNS::Topic")[pm_topic]["Properties"]
    assert "-owner-" in topic["TopicName"]
    assert topic["KmsMasterKeyId"]


def test_advisor_errors_page_on_call_and_warnings_mail_the_tier_owner(home: Kit) -> None:
    guard, _ = build(home)
    template = home.template()
    rules = {
        r["Properties"]["Name"]: r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
    }
    on_call = home.stack.get_logical_id(home.on_call.node.default_child)  # type: ignore[arg-type]
    pm = home.stack.get_logical_id(guard.owner_topic(PM).node.default_child)  # type: ignore[arg-type]
    oncall_mail = home.stack.get_logical_id(guard.owner_topic(ON_CALL).node.default_child)  # type: ignore[arg-type]
    routes = {
        name.removeprefix(f"mlgate-{PRODUCT}-"): (
            rule["EventPattern"]["detail"]["status"],
            set(rule["EventPattern"]["detail"]["check-name"]),
            [t["Arn"] for t in rule["Targets"]],
        )
        for name, rule in rules.items()
    }
    for rule in rules.values():
        assert rule["EventPattern"]["source"] == ["aws.trustedadvisor"]
        assert rule["EventPattern"]["detail-type"] == [ADVISOR_DETAIL_TYPE]
    every = {c.name for c in ADVISOR_CHECKS}
    assert routes["advisor-errors"] == (["ERROR"], every, [{"Ref": on_call}])
    assert routes["advisor-business-warnings"] == (
        ["WARN"], {c.name for c in ADVISOR_CHECKS if c.tier == "business"}, [{"Ref": pm}]
    )  # fmt: skip
    assert routes["advisor-system-warnings"] == (
        ["WARN"], {c.name for c in ADVISOR_CHECKS if c.tier == "system"}, [{"Ref": oncall_mail}]
    )  # fmt: skip


def test_advisor_checks_are_those_of_the_resource_types_given() -> None:
    assert {c.resource_type for c in advisor_checks({"AWS::S3::Bucket"})} == {"AWS::S3::Bucket"}
    assert advisor_checks({"AWS::SageMaker::Endpoint"}) == ()
    assert [c.name for c in ADVISOR_CHECKS if c.core] == ["Amazon S3 Bucket Permissions"]


def test_an_environment_s_own_idle_hours_say_why_they_differ(home: Kit) -> None:
    build(home, idle_hours_by_env=(("prod", 62),))
    (alarm,) = resources(home.template(), "AWS::CloudWatch::Alarm").values()
    p = alarm["Properties"]
    assert p["EvaluationPeriods"] == 62
    assert "no request for 62 hours (36 in the manifest, longer here" in p["AlarmDescription"]
