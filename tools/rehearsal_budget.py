"""The product's budget alert, played offline by the rehearsal (issue 33).

The budget is created in moto as the home Foundation stack declares it
(mlgate/infra/constructs/cost.py, CostGuard): the manifest's monthly amount on cost tagged
with the product, a FORECASTED and an ACTUAL notification at the manifest's percentages, each
to two subscribers, on-call's SNS topic and the PM by email (one SNS subscriber and up to ten
email ones per notification: https://docs.aws.amazon.com/aws-cost-management/latest/
APIReference/API_budgets_Notification.html). Each notification is then delivered as Budgets
delivers it once the month's cost crosses its threshold: published to on-call's topic, which
passes it to the topic's subscribers, and mailed to the PM.

Budgets' evaluation of the month's cost and its emails cannot run offline: they are marked
[simulated offline]. The topic is moto's, with the stack's email subscription of on-call; an
SQS queue subscribed beside it reads back what the topic delivered, and an alert the topic did
not deliver stops the rehearsal. tests/test_rehearsal_budget.py checks this routing against
the synthesized Foundation template of every example product.

A development tool, not shipped: it needs moto, and imports no CDK.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SIMULATED = "[simulated offline]"
TAG_KEY = "mlgate:product"
"""The cost allocation tag the budget counts (mlgate/infra/constructs/cost.py's TAG_KEY)."""


class BudgetAlertError(Exception):
    """A budget alert that did not reach a subscriber the stack routes it to."""


@dataclass(frozen=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True)
class BudgetRouting:
    """The budget as the Foundation stack declares it: its `name`, `amount` a month in
    `currency` on cost tagged TAG_KEY=`product`, its (notification type, percent) alerts, each
    to `on_call_topic` (the topic's name) and by email to `pm`; `on_call` is the topic's email
    subscriber."""

    name: str
    product: str
    amount: float
    currency: str
    alerts: tuple[tuple[str, int], ...]
    on_call_topic: str
    on_call: Person
    pm: Person


def routing(manifest: Any) -> BudgetRouting | None:
    """The budget of `manifest` and where its alerts go; None without cost.monthly_budget."""
    from mlgate.infra.naming import Names

    cost = manifest.cost
    if cost.monthly_budget is None:
        return None
    names = Names.of(manifest)  # the home foundation's: product-wide
    owners = manifest.product.owners
    pm, on_call = manifest.contact(owners.product_manager), manifest.contact(owners.on_call)
    return BudgetRouting(
        name=names.resource("budget", max_length=100),
        product=manifest.product.name,
        amount=float(cost.monthly_budget),
        currency=cost.currency,
        alerts=(("FORECASTED", cost.forecast_alert_percent), ("ACTUAL", cost.actual_alert_percent)),
        on_call_topic=names.resource("on-call"),
        on_call=Person(on_call.name, on_call.email),
        pm=Person(pm.name, pm.email),
    )


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def budget_alert(manifest: Any) -> list[str]:
    """Create the product's budget and on-call's topic in the current moto world, deliver each
    of the budget's alerts to its subscribers, and return the lines the rehearsal prints.
    Raises BudgetAlertError when the topic delivered an alert to none of its subscribers."""
    import boto3

    from mlgate.cli.estimate import estimate

    r = routing(manifest)
    if r is None:
        return ["no budget: the manifest's cost.monthly_budget is not set, so no alert is routed."]
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    account = boto3.client("sts").get_caller_identity()["Account"]
    topic = sns.create_topic(Name=r.on_call_topic)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=r.on_call.email)
    inbox = sqs.create_queue(QueueName=f"{r.on_call_topic}-reader")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn["Attributes"]["QueueArn"])
    subscribers = [
        {"SubscriptionType": "SNS", "Address": topic},
        {"SubscriptionType": "EMAIL", "Address": r.pm.email},
    ]
    budgets = boto3.client("budgets")
    budgets.create_budget(
        AccountId=account,
        Budget={
            "BudgetName": r.name,
            "BudgetLimit": {"Amount": f"{r.amount:g}", "Unit": r.currency},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
            "FilterExpression": {
                "Tags": {"Key": TAG_KEY, "Values": [r.product], "MatchOptions": ["EQUALS"]}
            },
        },
        NotificationsWithSubscribers=[
            {
                "Notification": {
                    "NotificationType": kind,
                    "ComparisonOperator": "GREATER_THAN",
                    "Threshold": float(percent),
                    "ThresholdType": "PERCENTAGE",
                },
                "Subscribers": subscribers,
            }
            for kind, percent in r.alerts
        ],
    )
    emails = [
        s["Endpoint"]
        for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        if s["Protocol"] == "email"
    ]
    total = estimate(manifest).total
    lines = [
        f"budget {r.name}: {_usd(r.amount)} a month on cost tagged "
        f"{TAG_KEY}={r.product} (the manifest's estimate: {_usd(total)}, "
        f"{100 * total / r.amount:.0f} % of it); each alert goes to on-call's topic "
        f"{r.on_call_topic} and by email to the PM."
    ]
    found = budgets.describe_notifications_for_budget(AccountId=account, BudgetName=r.name)
    for notification in found["Notifications"]:
        kind, percent = notification["NotificationType"], notification["Threshold"]
        crossed = r.amount * percent / 100
        word = "forecast" if kind == "FORECASTED" else "actual"
        subject = f"AWS Budgets: {r.name} has exceeded your alert threshold"
        message = (
            f"The {kind} Cost associated with your {r.name} budget is greater than "
            f"{_usd(crossed)} ({percent:g} % of the budgeted {_usd(r.amount)}) for the current "
            "month."
        )
        # Budgets publishes to the topic (its policy lets budgets.amazonaws.com, for this
        # budget: tests/constructs/test_cost.py), and the topic passes it on.
        sns.publish(TopicArn=topic, Subject=subject, Message=message)
        delivered = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)
        read = [json.loads(m["Body"]) for m in delivered.get("Messages", [])]
        if not any(n.get("Subject") == subject and n.get("Message") == message for n in read):
            raise BudgetAlertError(
                f"the {word} alert of {r.name} was published to {r.on_call_topic} and reached "
                "none of its subscribers"
            )
        for m in delivered.get("Messages", []):
            sqs.delete_message(QueueUrl=inbox, ReceiptHandle=m["ReceiptHandle"])
        lines.append(
            f"the month's {word} cost passes {percent:g} % ({_usd(crossed)}) {SIMULATED}: "
            f"Budgets publishes the alert to on-call's topic, which passes it to "
            f"{', '.join(f'email {e}' for e in emails) or 'no email subscriber'} (read back "
            f"offline from a queue subscribed beside it: '{subject}'), and mails it to the PM, "
            f"{r.pm.name} <{r.pm.email}> {SIMULATED}."
        )
    if len(lines) != 1 + len(r.alerts):
        raise BudgetAlertError(
            f"{r.name} holds {len(lines) - 1} notification(s), the stack declares {len(r.alerts)}"
        )
    return lines
