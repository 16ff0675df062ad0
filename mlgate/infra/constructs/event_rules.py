"""EventBridge rules whose failed deliveries on-call sees.

EventBridge drops an event it could not deliver once its retries are spent (a target whose
policy, key or quota refused it) and counts it in the rule's FailedInvocations metric
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html). A failure notice
that never reached its topic, or an approval that never reached its hook, shows nowhere else:
every rule mlgate creates is a WatchedRule, and the environment's observability stack alarms on
each one's FailedInvocations (mlgate/infra/app.py hands it the names).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_events as events
from constructs import Construct


def watched_rules(stack: Stack) -> list[str]:
    """The names of the WatchedRules of `stack`, in the order they were made."""
    found: list[str] = stack.__dict__.setdefault("_mlgate_watched_rules", [])
    return found


class WatchedRule(events.Rule):
    """An events.Rule with a fixed name (the FailedInvocations alarm's dimension), recorded on
    its stack so that the environment's observability stack alarms on its failed deliveries."""

    def __init__(self, scope: Construct, id: str, *, rule_name: str, **kwargs: Any) -> None:
        super().__init__(scope, id, rule_name=rule_name, **kwargs)
        watched_rules(Stack.of(self)).append(rule_name)
