"""tools/rehearsal_budget.py (issue 33): the budget alerts the rehearsal plays reach on-call's
topic and the PM, and the budget it plays is the one the home Foundation stack declares, for
every example product."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mlgate.manifest import load_manifest
from tools.rehearsal_budget import (
    SIMULATED,
    TAG_KEY,
    BudgetAlertError,
    BudgetRouting,
    budget_alert,
    routing,
)

from .conftest import EXAMPLES, PRODUCTS


def test_each_alert_reaches_on_call_and_the_pm() -> None:
    from moto import mock_aws

    with mock_aws():
        for name in PRODUCTS:
            m = load_manifest(EXAMPLES / name / "manifest.yaml")
            r = routing(m)
            assert r is not None, name
            lines = budget_alert(m)
            assert len(lines) == 1 + len(r.alerts), lines
            assert f"budget {r.name}: ${r.amount:,.2f} a month" in lines[0]
            assert f"{TAG_KEY}={m.product.name}" in lines[0]
            for (kind, percent), line in zip(r.alerts, lines[1:], strict=True):
                word = "forecast" if kind == "FORECASTED" else "actual"
                assert f"the month's {word} cost passes {percent} % " in line, line
                assert f"passes it to email {r.on_call.email} (read back" in line, line
                assert f"mails it to the PM, {r.pm.name} <{r.pm.email}> {SIMULATED}" in line


def test_an_alert_the_topic_does_not_deliver_stops_the_rehearsal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broken form: a topic that passes nothing on (here its publish dropped) fails the
    rehearsal, naming the alert."""
    import boto3
    from moto import mock_aws

    real = boto3.client

    def client(name: str, *args: Any, **kwargs: Any) -> Any:
        made = real(name, *args, **kwargs)
        if name == "sns":
            made.publish = lambda **_: {"MessageId": "dropped"}
        return made

    with mock_aws():
        monkeypatch.setattr(boto3, "client", client)
        m = load_manifest(EXAMPLES / PRODUCTS[0] / "manifest.yaml")
        with pytest.raises(BudgetAlertError, match=r"forecast alert .* reached none"):
            budget_alert(m)


def test_no_budget_no_alert() -> None:
    m = load_manifest(EXAMPLES / PRODUCTS[0] / "manifest.yaml")
    bare = m.model_copy(update={"cost": m.cost.model_copy(update={"monthly_budget": None})})
    assert routing(bare) is None
    assert budget_alert(bare) == [
        "no budget: the manifest's cost.monthly_budget is not set, so no alert is routed."
    ]


def declared(template: dict[str, Any]) -> dict[str, Any]:
    """The budget the template declares, with its subscribers resolved to names: the SNS
    subscriber's topic name and that topic's email subscribers."""
    res = template["Resources"]
    (budget,) = [r["Properties"] for r in res.values() if r["Type"] == "AWS::Budgets::Budget"]
    data = budget["Budget"]
    alerts, subscribers = [], []
    for n in budget["NotificationsWithSubscribers"]:
        note = n["Notification"]
        assert (note["ComparisonOperator"], note["ThresholdType"]) == ("GREATER_THAN", "PERCENTAGE")
        alerts.append((note["NotificationType"], note["Threshold"]))
        found = []
        for s in n["Subscribers"]:
            if s["SubscriptionType"] == "SNS":
                topic = s["Address"]["Ref"]
                emails = sorted(
                    r["Properties"]["Endpoint"]
                    for r in res.values()
                    if r["Type"] == "AWS::SNS::Subscription"
                    and r["Properties"]["TopicArn"] == {"Ref": topic}
                    and r["Properties"]["Protocol"] == "email"
                )
                found.append(("SNS", res[topic]["Properties"]["TopicName"], tuple(emails)))
            else:
                found.append((s["SubscriptionType"], s["Address"]))
        subscribers.append(sorted(found))
    return {
        "name": data["BudgetName"],
        "limit": (float(data["BudgetLimit"]["Amount"]), data["BudgetLimit"]["Unit"]),
        "filter": data["FilterExpression"],
        "alerts": alerts,
        "subscribers": subscribers,
    }


def played(r: BudgetRouting) -> dict[str, Any]:
    """The budget the rehearsal plays, in declared()'s shape."""
    return {
        "name": r.name,
        "limit": (r.amount, r.currency),
        "filter": {"Tags": {"Key": TAG_KEY, "Values": [r.product], "MatchOptions": ["EQUALS"]}},
        "alerts": list(r.alerts),
        "subscribers": [
            sorted([("SNS", r.on_call_topic, (r.on_call.email,)), ("EMAIL", r.pm.email)])
            for _ in r.alerts
        ],
    }


def test_the_rehearsal_plays_the_budget_the_foundation_declares(synth: Any, product: Any) -> None:
    template = synth.template(product.foundation).to_json()
    r = routing(product.manifest)
    assert r is not None
    assert declared(template) == played(r)
    # The broken forms: another topic, or the alerts' thresholds swapped, is not what the
    # stack declares.
    other = replace(r, on_call_topic=f"{r.on_call_topic}-x")
    assert declared(template) != played(other)
    kinds, percents = zip(*r.alerts, strict=True)
    swapped = replace(r, alerts=tuple(zip(kinds, percents[::-1], strict=True)))
    assert percents[0] != percents[1]
    assert declared(template) != played(swapped)
