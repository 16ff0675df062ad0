"""The model card hook in the synthesized templates of every product (the examples and the
scaffold): its role reaches the product's cards and no other's, lists cards as its one
unscoped call, and its rules name the product's group, its release pipeline's first manual
gate and the stage that verifies prod (the pipeline's last); the go-live brief's notifier
names the same cards."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from mlgate.infra.service_rules import App, Resource, Stack

from .conftest import APPS

HANDLER = "model_card.handler.handler"
CARD_ACTIONS = {"sagemaker:DescribeModelCard", "sagemaker:CreateModelCard",
                "sagemaker:UpdateModelCard"}  # fmt: skip


def iam_match(pattern: str, arn: str) -> bool:
    """IAM's resource wildcards: * any run of characters, ? exactly one
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(fn: Resource) -> list[dict[str, Any]]:
    role = fn.props["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in fn.stack.resources.values()
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def grant_problems(fn: Resource, prefix: str) -> list[str]:
    """The card actions on the product's cards only; ListModelCards the one call on "*"."""
    stack = fn.stack
    cards = f"arn:aws:sagemaker:{stack.region}:{stack.account}:model-card/"
    own = [f"{cards}{prefix}000001", f"{cards}{prefix}999999"]
    # Another product's card whose name starts with this product's prefix (its name extends
    # this one's with -v2), and a card named without the version's digits.
    others = [f"{cards}{prefix}2-v000001", f"{cards}{prefix}1"]
    problems = []
    for statement in statements(fn):
        actions, resources = set(listed(statement["Action"])), listed(statement["Resource"])
        if "*" in resources and actions != {"sagemaker:ListModelCards"}:
            problems.append(f"{stack.name}: {sorted(actions)} on every resource")
        if actions & CARD_ACTIONS:
            for resource in resources:
                if not isinstance(resource, str) or not all(iam_match(resource, o) for o in own):
                    problems.append(f"{stack.name}: {resource} misses the product's cards")
                elif any(iam_match(resource, o) for o in others):
                    problems.append(f"{stack.name}: {resource} reaches another product's cards")
    granted = {a for s in statements(fn) for a in listed(s["Action"])}
    if missing := CARD_ACTIONS - granted:
        problems.append(f"{stack.name}: the hook may not {sorted(missing)}")
    return problems


def wiring_problems(fn: Resource, env: dict[str, str]) -> list[str]:
    """The rules that invoke the hook name the product's group, its pipeline's first manual
    gate and the stage that verifies prod, its last."""
    stack = fn.stack
    (pipeline,) = [
        r["Properties"]
        for r in stack.resources.values()
        if r["Type"] == "AWS::CodePipeline::Pipeline"
        and r["Properties"].get("Name") == env["RELEASE_PIPELINE"]
    ]
    stages = [s["Name"] for s in pipeline["Stages"]]
    manual = [
        s["Name"]
        for s in pipeline["Stages"]
        if any(a["ActionTypeId"]["Category"] == "Approval" for a in s["Actions"])
    ]
    problems = []
    if env["MODEL_CARD_REVIEW_STAGE"] != manual[0]:
        problems.append(f"{stack.name}: review at {env['MODEL_CARD_REVIEW_STAGE']}, the first "
                        f"manual gate is {manual[0]}")  # fmt: skip
    if env["MODEL_CARD_LIVE_STAGE"] != stages[-1]:
        problems.append(f"{stack.name}: go-live at {env['MODEL_CARD_LIVE_STAGE']}, prod is "
                        f"verified at {stages[-1]}")  # fmt: skip
    patterns = [
        rule["Properties"]["EventPattern"]
        for rule in stack.resources.values()
        if rule["Type"] == "AWS::Events::Rule"
        and any(t["Arn"] == {"Fn::GetAtt": [fn.id, "Arn"]} for t in rule["Properties"]["Targets"])
    ]
    wanted = [
        {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
         "detail": {"ModelPackageGroupName": [env["MODEL_PACKAGE_GROUP"]]}},
        {"source": ["aws.codepipeline"],
         "detail-type": ["CodePipeline Action Execution State Change"],
         "detail": {"pipeline": [env["RELEASE_PIPELINE"]], "stage": [manual[0]],
                    "state": ["STARTED"]}},
        {"source": ["aws.codepipeline"],
         "detail-type": ["CodePipeline Stage Execution State Change"],
         "detail": {"pipeline": [env["RELEASE_PIPELINE"]], "stage": [stages[-1]],
                    "state": ["SUCCEEDED"]}},
    ]  # fmt: skip
    for pattern in wanted:
        if pattern not in patterns:
            problems.append(f"{stack.name}: no rule delivers {pattern['detail']}")
    (notifier,) = [
        f for f in stack.resources.values()
        if f["Type"] == "AWS::Lambda::Function"
        and f["Properties"].get("Handler") == "gate_notifier.handler.handler"
    ]  # fmt: skip
    if (
        notifier["Properties"]["Environment"]["Variables"].get("MODEL_CARD_PREFIX")
        != env["MODEL_CARD_PREFIX"]
    ):
        problems.append(f"{stack.name}: the go-live brief names no card of this hook's")
    return problems


def problems(app: App) -> tuple[int, list[str]]:
    """(hooks found, what is wrong with them)."""
    found, wrong = 0, []
    for fn in app.resources("AWS::Lambda::Function"):
        if fn.props.get("Handler") != HANDLER:
            continue
        found += 1
        env = fn.props["Environment"]["Variables"]
        wrong += grant_problems(fn, env["MODEL_CARD_PREFIX"])
        wrong += wiring_problems(fn, env)
    return found, wrong


@pytest.mark.parametrize("app", APPS)
def test_each_product_s_card_hook_reaches_its_cards_only_and_is_fed_by_its_gates(
    app: str, request: pytest.FixtureRequest
) -> None:
    found = request.getfixturevalue(app)
    hooks, wrong = problems(found)
    pipelines = list(found.resources("AWS::CodePipeline::Pipeline"))
    assert hooks == len(pipelines) >= 1
    assert wrong == []


def broken(app: App, change: Any) -> App:
    """A copy of `app` whose first model card hook's stack `change` has changed."""
    (fn, *_) = [
        f for f in app.resources("AWS::Lambda::Function") if f.props.get("Handler") == HANDLER
    ]
    stacks = []
    for stack in app.stacks:
        template = copy.deepcopy(dict(stack.template))
        if stack.name == fn.stack.name:
            change(template["Resources"], fn.id)
        stacks.append(Stack(stack.name, stack.account, stack.region, template))
    return App(stacks)


def test_the_check_sees_each_broken_form(examples: App) -> None:
    def env(resources: dict[str, Any], fn: str) -> dict[str, str]:
        variables: dict[str, str] = resources[fn]["Properties"]["Environment"]["Variables"]
        return variables

    def role_statements(resources: dict[str, Any], fn: str) -> list[dict[str, Any]]:
        role = resources[fn]["Properties"]["Role"]["Fn::GetAtt"][0]
        return [s for p in resources.values() if p["Type"] == "AWS::IAM::Policy"
                and {"Ref": role} in p["Properties"]["Roles"]
                for s in p["Properties"]["PolicyDocument"]["Statement"]]  # fmt: skip

    def wildcard_cards(resources: dict[str, Any], fn: str) -> None:
        for s in role_statements(resources, fn):
            if set(listed(s["Action"])) & CARD_ACTIONS:
                s["Resource"] = [r.replace("??????", "*") for r in listed(s["Resource"])]

    def list_more(resources: dict[str, Any], fn: str) -> None:
        for s in role_statements(resources, fn):
            if s["Resource"] == "*":
                s["Action"] = ["sagemaker:ListModelCards", "sagemaker:UpdateModelCard"]

    def review_late(resources: dict[str, Any], fn: str) -> None:
        env(resources, fn)["MODEL_CARD_REVIEW_STAGE"] = "VerifyStaging"

    def live_early(resources: dict[str, Any], fn: str) -> None:
        env(resources, fn)["MODEL_CARD_LIVE_STAGE"] = "VerifyStaging"

    def no_go_live_rule(resources: dict[str, Any], fn: str) -> None:
        for rule in resources.values():
            if rule["Type"] == "AWS::Events::Rule" and "SUCCEEDED" in str(rule["Properties"]):
                rule["Properties"]["Targets"] = []

    def no_card_link(resources: dict[str, Any], fn: str) -> None:
        for f in resources.values():
            if f["Type"] == "AWS::Lambda::Function":
                f["Properties"].get("Environment", {}).get("Variables", {}).pop(
                    "MODEL_CARD_PREFIX", None
                )
        env(resources, fn)["MODEL_CARD_PREFIX"] = "mlgate-x-v"

    for change, said in (
        (wildcard_cards, "reaches another product's cards"),
        (list_more, "on every resource"),
        (review_late, "the first manual gate is"),
        (live_early, "prod is verified at"),
        (no_go_live_rule, "no rule delivers"),
        (no_card_link, "names no card"),
    ):
        _, wrong = problems(broken(examples, change))
        assert any(said in w for w in wrong), (change.__name__, wrong)
