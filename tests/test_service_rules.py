"""Every template of every example product, and of a product `python -m mlgate new` makes,
keeps every rule AWS documents for the properties mlgate sets (mlgate/infra/service_rules.py), and
every rule fails on its own broken example."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from mlgate.infra.service_rules import REVIEWED, TABLE, App, ServiceRule, violations

from .conftest import APPS, Synth


@pytest.mark.usefixtures("synth")  # on the synthesis' worker (conftest.GROUPS)
@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.id)
def test_every_template_keeps_the_rule(
    request: pytest.FixtureRequest, app: str, row: ServiceRule
) -> None:
    assert violations(row, request.getfixturevalue(app)) == []


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.id)
def test_the_rule_fails_on_its_broken_example(row: ServiceRule) -> None:
    assert violations(row, App.of(row.broken)), f"{row.id} holds on its broken example"


@pytest.mark.parametrize("app", APPS)
def test_every_resource_type_mlgate_emits_is_reviewed(
    request: pytest.FixtureRequest, synth: Synth, app: str
) -> None:
    emitted = {r.type for r in request.getfixturevalue(app).resources()}
    read = {row.type for row in TABLE}
    assert emitted - read - set(REVIEWED) == set()
    assert not set(REVIEWED) & read
    if app == "examples":
        assert read - {"*"} <= emitted, "a row reads a type no example emits"


def test_every_row_cites_its_documentation() -> None:
    assert len({row.id for row in TABLE}) == len(TABLE)
    for row in TABLE:
        assert row.doc.startswith("https://docs.aws.amazon.com/"), row.id


# --- issue 29: no function may pass a role broader than its stack needs ----------------------

PASSES = next(row for row in TABLE if row.id == "iam-function-passes-narrow-roles")


def _edited(app: App, edit: Callable[[dict[str, Any]], bool]) -> App:
    """A copy of `app` with `edit` applied to each resource (it says whether it changed one)."""
    stacks = []
    changed = False
    for stack in app.stacks:
        template = copy.deepcopy(dict(stack.template))
        for resource in template.get("Resources", {}).values():
            changed |= edit(resource)
        stacks.append(replace(stack, template=template))
    assert changed, "the edit matched no resource: the broken form was not made"
    return App(stacks)


def _deployer_passes(resource: dict[str, Any], target: Any, unconditioned: bool = False) -> bool:
    """The deployer's (or a prod deploy role's) PassRole statement now names `target` (None:
    the same role), without its iam:PassedToService condition if `unconditioned`."""
    if resource["Type"] != "AWS::IAM::Policy":
        return False
    edited = False
    for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
        resources = statement.get("Resource")
        if statement.get("Action") == "iam:PassRole" and "serving-cfn" in json.dumps(resources):
            if target is not None:
                statement["Resource"] = target
            if unconditioned:
                statement.pop("Condition", None)
            edited = True
    return edited


def _serving_cfn_role(resource: dict[str, Any], **props: Any) -> bool:
    name = resource.get("Properties", {}).get("RoleName", "")
    if resource["Type"] != "AWS::IAM::Role" or not str(name).endswith("-serving-cfn"):
        return False
    for key, value in props.items():
        resource["Properties"][key] = value
    return True


CFN_EXEC = {
    "Fn::Join": [
        "",
        [
            "arn:aws:iam::",
            {"Ref": "AWS::AccountId"},
            ":role/cdk-hnb659fds-cfn-exec-role-",
            {"Ref": "AWS::AccountId"},
            "-",
            {"Ref": "AWS::Region"},
        ],
    ]
}
BROKEN_FORMS: dict[str, Callable[[dict[str, Any]], bool]] = {
    # Before issue 29: the deployer passed CDK's bootstrap execution role (AdministratorAccess
    # as the README bootstrapped prod).
    "passes the CDK execution role": lambda r: _deployer_passes(r, CFN_EXEC),
    "passes any role": lambda r: _deployer_passes(r, "*"),
    "passes any mlgate role": lambda r: _deployer_passes(r, "arn:aws:iam::*:role/mlgate-*"),
    "passes to any service": lambda r: _deployer_passes(r, None, unconditioned=True),
    "the passed role is an administrator": lambda r: _serving_cfn_role(
        r, ManagedPolicyArns=["arn:aws:iam::aws:policy/AdministratorAccess"]
    ),
    "the passed role may change IAM": lambda r: _serving_cfn_role(
        r,
        Policies=[
            {
                "PolicyName": "more",
                "PolicyDocument": {
                    "Statement": [
                        {"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "*"}
                    ]
                },
            }
        ],
    ),
    "the passed role may do everything of a service": lambda r: _serving_cfn_role(
        r,
        Policies=[
            {
                "PolicyName": "more",
                "PolicyDocument": {
                    "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]
                },
            }
        ],
    ),
}


@pytest.mark.usefixtures("synth")  # on the synthesis' worker (conftest.GROUPS)
@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("form", BROKEN_FORMS)
def test_a_hook_that_may_pass_a_broad_role_breaks_the_rule(
    request: pytest.FixtureRequest, app: str, form: str
) -> None:
    """Each broken form, made in every product's real templates, is found on the deployer, and
    on the rollback hook, which passes the same role through the rollback role it assumes."""
    found = violations(PASSES, _edited(request.getfixturevalue(app), BROKEN_FORMS[form]))
    assert any("Deployer" in line for line in found), found
    assert all("Deployer" in line or "RollbackHook" in line for line in found), found
