"""The construct test level: each L3 construct built alone in a bare `cdk.App()` + `Stack()`
from hand-written props (no manifest, no synthesized app), its promises checked on its own
template. The first test of a worker pays jsii's start; each test after builds in well under
a second."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from mlgate.infra.constructs.alarms import AlarmFactory
from mlgate.infra.constructs.hooks import IdempotencyTable
from mlgate.infra.constructs.sagemaker_access import ReleasedVersions
from mlgate.infra.naming import EnvName, Names

ACCOUNT, REGION = "111111111111", "eu-west-1"
REMOTE = "222222222222"
PRODUCT = "churn"
RUNBOOK = "https://runbooks.example.com/churn"


@dataclass(frozen=True)
class Person:
    """An owner (alarms.Owner), as a stack passes the manifest's contacts."""

    id: str
    name: str
    email: str


ON_CALL = Person("oncall", "Olga On-call", "oncall@example.com")
ML_LEAD = Person("ml-lead", "Mo Lead", "ml@example.com")
PM = Person("pm", "Pat Manager", "pm@example.com")


@dataclass
class Kit:
    """A bare stack in the home account and what the constructs share: the product key, the
    on-call topic and the alarm factory of `env`."""

    app: cdk.App
    stack: cdk.Stack
    key: kms.Key
    on_call: sns.Topic
    alarms: AlarmFactory
    env: EnvName

    @property
    def names(self) -> Names:
        """The environment's names."""
        return Names(PRODUCT, self.env)

    @property
    def product_names(self) -> Names:
        return Names(PRODUCT)

    def idempotency(self) -> IdempotencyTable:
        return IdempotencyTable(self.stack, "Idempotency", key=self.key, table_name="idem")

    def released(self, *, remote: bool = False) -> ReleasedVersions:
        return ReleasedVersions(
            env=self.env,
            home_account=ACCOUNT,
            home_region=REGION,
            bucket=self.product_names.bucket("artifacts", ACCOUNT, REGION),
            remote=remote,
        )

    def template(self) -> Template:
        return Template.from_stack(self.stack)


def kit(env: EnvName = "staging", account: str = ACCOUNT) -> Kit:
    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=cdk.Environment(account=account, region=REGION))
    key = kms.Key(stack, "ProductKey")
    on_call = sns.Topic(stack, "OnCall")
    alarms = AlarmFactory(
        names=Names(PRODUCT, env), runbook=RUNBOOK, on_call=on_call, on_call_owner=ON_CALL
    )
    return Kit(app, stack, key, on_call, alarms, env)


@pytest.fixture
def home() -> Kit:
    return kit()


def resources(template: Template, kind: str) -> dict[str, Any]:
    return dict(template.find_resources(kind))


def policy_statements(template: Template) -> list[dict[str, Any]]:
    """Every statement of every IAM policy of the template."""
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions_of(statement: dict[str, Any]) -> list[str]:
    found = statement["Action"]
    return [found] if isinstance(found, str) else list(found)


def granted(template: Template, action: str) -> list[Any]:
    """The resources of every statement granting `action`."""
    return [s["Resource"] for s in policy_statements(template) if action in actions_of(s)]


def text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
