"""The chat's Roll back button in a bare stack: the rollback hook acts only as the rollback role,
its state machine loops start -> (wait, poll)* and retries a failed step, its rule offers the
button for the verify stages it is given, and the gate callback may start that machine and read
the offers, nothing more."""

from __future__ import annotations

import json
from typing import Any

from mlgate.cli.rollback import LOCK_MARGIN_MINUTES as RUNTIME_MARGIN  # shared/rollback.py's
from mlgate.infra.constructs.gate_hooks import GateCallback, GateCallbackProps, SlackSecret
from mlgate.infra.constructs.hooks import AuditTrail
from mlgate.infra.constructs.rollback import (
    LOCK_MARGIN_MINUTES,
    RollbackHook,
    RollbackHookProps,
    RollbackProps,
    RollbackRole,
)

from .conftest import ACCOUNT, Kit, actions_of, granted, policy_statements, resources
from .test_delivery import GATES, access, pipeline, pipeline_props

LONGEST = 90


def build(k: Kit) -> dict[str, Any]:
    built = pipeline(k, pipeline_props(k, gates=GATES[1:]), quality=False)
    audit = AuditTrail(k.stack, "AuditTrail", key=k.key, table_name="audit-trail")
    role = RollbackRole(
        k.stack,
        "Rollback",
        props=RollbackProps(
            role_name="mlgate-churn-rollback",
            home_account=ACCOUNT,
            pipeline_arn=built.pipeline.pipeline_arn,
            deploy=access(),
            verify=access(),
            product="churn",
        ),
        audit=audit,
    )
    secret = SlackSecret(k.stack, "SlackWebhook", names=k.product_names, key=k.key,
                         description="webhook")  # fmt: skip
    hook = RollbackHook(
        k.stack,
        "RollbackHook",
        props=RollbackHookProps(
            names=k.product_names,
            context='{"product":"churn"}',
            offer_stages=("VerifyProd",),
            longest_minutes=LONGEST,
        ),
        key=k.key,
        alarms=k.alarms,
        role=role,
        webhook=secret,
    )
    callback = GateCallback(
        k.stack,
        "GateCallback",
        props=GateCallbackProps(names=k.product_names),
        key=k.key,
        alarms=k.alarms,
        audit=audit,
        pipeline=built,
        signing=SlackSecret(k.stack, "SlackSigningSecret", names=k.product_names, key=k.key,
                            description="signing"),
    )  # fmt: skip
    callback.take_rollbacks(hook.machine, audit)
    template = k.template()
    return {"template": template, "hook": hook, "callback": callback}


def definition(template: Any) -> dict[str, Any]:
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "<fn>" for p in parts)
    return dict(json.loads(text))


def policy_of(template: Any, role_prefix: str) -> list[dict[str, Any]]:
    """The statements of the policy attached to the role whose logical id starts so."""
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if any(r["Ref"].startswith(role_prefix) for r in policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_machine_loops_until_the_rollback_ends_and_retries_a_failed_step(home: Kit) -> None:
    found = definition(build(home)["template"])
    states = found["States"]
    assert found["StartAt"] == "Start"
    assert states["Start"]["Next"] == "AfterStart"
    assert states["Poll"]["Next"] == "AfterPoll"
    for choice in ("AfterStart", "AfterPoll"):
        routes = {c["StringEquals"]: c["Next"] for c in states[choice]["Choices"]}
        assert routes == {"running": "Bake", "failed": "Failed"}
        assert states[choice]["Default"] == "Done"
    assert states["Bake"]["Next"] == "Poll"
    assert states["Bake"]["Seconds"] > 0
    for step in ("Start", "Poll"):
        retried = {e for r in states[step]["Retry"] for e in r["ErrorEquals"]}
        assert "States.TaskFailed" in retried, step
    # The start's rollback id is the execution's name: a retried start resumes its own.
    assert states["Start"]["Parameters"]["rollback_id.$"] == "$$.Execution.Name"
    assert "Parameters" not in states["Poll"]  # the state, as it is, is the poll's payload
    # No execution outlives the lock of the rollback it runs.
    assert found["TimeoutSeconds"] == (LONGEST + LOCK_MARGIN_MINUTES + 10) * 60


def test_the_lock_margin_is_the_runtime_s(home: Kit) -> None:
    assert LOCK_MARGIN_MINUTES == RUNTIME_MARGIN


def test_the_hook_acts_only_as_the_rollback_role(home: Kit) -> None:
    template = build(home)["template"]
    statements = policy_of(template, "RollbackHookRole")
    actions = {a for s in statements for a in actions_of(s)}
    assert "sts:AssumeRole" in actions
    assert not {a for a in actions if a.split(":")[0] in ("dynamodb", "cloudformation",
                                                          "sagemaker", "iam")}  # fmt: skip
    (assume,) = [s for s in statements if "sts:AssumeRole" in actions_of(s)]
    assert "RollbackRole" in json.dumps(assume["Resource"])
    # The role itself may read its offers back (Query) and never update an audit item.
    role = policy_of(template, "RollbackRole")
    dynamo = {a for s in role for a in actions_of(s) if a.startswith("dynamodb:")}
    assert "dynamodb:Query" in dynamo
    assert "dynamodb:UpdateItem" not in dynamo


def test_the_rule_offers_the_button_for_the_verify_stages_given(home: Kit) -> None:
    template = build(home)["template"]
    patterns = [r["Properties"]["EventPattern"] for r in
                resources(template, "AWS::Events::Rule").values()]  # fmt: skip
    (offered,) = [p for p in patterns if p["detail"].get("stage") == ["VerifyProd"]]
    assert offered["detail"]["state"] == ["SUCCEEDED"]
    assert offered["detail"]["pipeline"] == ["mlgate-churn-release"]


def test_the_callback_may_start_the_machine_and_read_offers_only(home: Kit) -> None:
    template = build(home)["template"]
    starts = granted(template, "states:StartExecution")
    assert len(starts) == 1
    assert "RollbackHookMachine" in json.dumps(starts)
    callback = policy_of(template, "GateCallbackRole")
    reads = [s for s in callback if actions_of(s) == ["dynamodb:GetItem"]
             and "rollback#*" in json.dumps(s.get("Condition", {}))]  # fmt: skip
    assert reads, "the callback reads the offers (rollback# items)"
    on_offers = [s for s in callback if "rollback#*" in json.dumps(s.get("Condition", {}))]
    assert {a for s in on_offers for a in actions_of(s)} == {"dynamodb:GetItem"}
    variables = next(
        f["Properties"]["Environment"]["Variables"]
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "gate_callback.handler.handler"
    )
    assert "ROLLBACK_STATE_MACHINE" in variables
    assert policy_statements(template)
