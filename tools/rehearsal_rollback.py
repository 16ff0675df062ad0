"""Roll back on demand in the rehearsal (issue 34), both ways, once version 2 is live in prod.

From chat: the rollback hook (mlgate/runtime/hooks/rollback) posts "prod now serves version 2"
with its Roll back button, as it does when CodePipeline reports prod's verify action SUCCEEDED;
someone who may not roll back clicks it (refused, nothing starts), then a rollback approver
does: the gate callback checks the signed click and starts the rollback state machine, whose
steps (the hook's start, then polls) run here as its definition runs them. Prod goes back to
version 1.

From the command line: `python -m mlgate rollback <product> prod --reason ... --by
<approver>`, the command's own code (mlgate/cli/rollback.py): a refused rollback (a version
never served in prod: nothing written, nothing updated), then, the alarm having been a false
one, version 2 put back with `--to 2 --no-wait`, and the same command again, which resumes it
and finishes it once (no second update); then the audit trail's events.

Both read their targets from the "served" records the deploy verifier wrote when it verified
each version in prod; their Serving stack updates run under moto's CloudFormation as the
deployer's do; the endpoint stand-in then serves what the stack names, as SageMaker's
blue/green update would (the fleets and the bake are simulated).
A developer tool, not shipped.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from typing import Any

from mlgate.manifest import EnvName

ENV: EnvName = "prod"
AUDIT_TABLE = "audit"


class PipelineState:
    """GetPipelineState of the release pipeline once its execution has finished: no stage in
    progress (moto lacks the call; the rehearsal's CodePipeline stand-in keeps the jobs)."""

    def __init__(self, stages: list[str]) -> None:
        self.stages = stages

    def get_pipeline_state(self, **_: Any) -> dict[str, Any]:
        return {
            "stageStates": [
                {"stageName": s, "latestExecution": {"status": "Succeeded"}} for s in self.stages
            ]
        }


class Machine:
    """The rollback state machine (mlgate/infra/constructs/rollback.py) as its definition runs
    it: the hook's start step, then, while the rollback runs, a wait (where the blue/green
    update happens: `update`) and a poll. The gate callback starts executions here."""

    def __init__(self, hook: Any, context: Any, update: Any) -> None:
        self.hook, self.context, self.update = hook, context, update
        self.started: list[tuple[str, dict[str, Any]]] = []

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
        import json

        self.started.append((name, json.loads(input)))
        return {"executionArn": f"{stateMachineArn}:{name}", "startDate": "now"}

    def run(self) -> str:
        """Run every started execution; the last one's end state."""
        state: dict[str, Any] = {"state": "none"}
        for name, given in self.started:
            state = self.hook.handler({"step": "start", **given, "rollback_id": name},
                                      self.context)  # fmt: skip
            while state["state"] == "running":
                self.update()
                state = self.hook.handler(state, self.context)
        self.started.clear()
        return str(state["state"])


class Home:
    """The rollback role's session, as the hook assumes it: the rehearsal's clients."""

    def __init__(self, rehearsal: Any) -> None:
        self.rehearsal = rehearsal

    def client(self, name: str, **_: Any) -> Any:
        return self.rehearsal.client(name)


def from_chat(rehearsal: Any, say: Any, clients: Any, simulated: str) -> bool:
    """The Roll back button: False when prod did not end on version 1."""
    import os

    from gate_callback import handler as callback
    from rollback import handler as hook

    from mlgate.infra.gates import encoded
    from mlgate.infra.naming import role_arn
    from mlgate.infra.rollback_timing import rollback_context
    from shared.served import stack_parameters
    from tools.rehearsal import ACCOUNT, REGION, lambda_context

    m, names = rehearsal.manifest, rehearsal.names
    endpoint, stack = names.endpoint(ENV), names.serving_stack(ENV)
    os.environ.update(
        {
            "ROLLBACK_CONTEXT": encoded(rollback_context(m)),
            "ROLLBACK_ROLE_ARN": role_arn(ACCOUNT, names.rollback_role()),
            "ROLLBACK_STATE_MACHINE": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:rollback",
        }
    )
    hook.settings.cache_clear()
    callback.settings.cache_clear()
    hook.clients_for = lambda env: clients
    hook.boto3_home = lambda: Home(rehearsal)
    cfn = rehearsal.account_client(ENV, "cloudformation")

    def update() -> None:
        found = stack_parameters(cfn.describe_stacks(StackName=stack)["Stacks"][0])
        switched(rehearsal, found)

    context = lambda_context("rollback")
    machine = Machine(hook, context, update)
    callback.stepfunctions = lambda: machine  # type: ignore[assignment]
    served = rehearsal.client("dynamodb").query(
        TableName=AUDIT_TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"served#{rehearsal.release_pipeline}#{ENV}"}},
    )["Items"]
    execution = max(served, key=lambda i: i["sk"]["S"])["execution"]["S"]
    event = {
        "version": "0",
        "id": "0b7e3a1c-0000-4000-8000-rehearsal001",
        "detail-type": "CodePipeline Action Execution State Change",
        "source": "aws.codepipeline",
        "account": ACCOUNT,
        "time": "2026-12-05T12:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{rehearsal.release_pipeline}"],
        "detail": {"pipeline": rehearsal.release_pipeline, "execution-id": execution,
                   "stage": "VerifyProd", "action": "Verify", "state": "SUCCEEDED",
                   "type": {"owner": "AWS", "provider": "Lambda", "category": "Invoke"}},
    }  # fmt: skip
    before = len(rehearsal.posted)
    answer = hook.handler(event, context)
    posted = rehearsal.posted[before:]
    if answer.get("result") != "posted" or len(posted) != 1:
        say("Rollback", f"FAILED: the Roll back button was not posted: {answer}")
        return False
    blocks = posted[0]["blocks"]
    button = blocks[-1]["elements"][0]
    text = " ".join(blocks[0]["text"]["text"].split())
    say("Rollback", f"VerifyProd SUCCEEDED: the rollback hook posts to chat ({simulated}): "
        f"{text} [{button['text']['text']}]")  # fmt: skip
    stranger = rehearsal.click(button["value"], "U0NOTALLOWED", action="rollback")
    say("Rollback", f"someone who may not roll back clicks it: HTTP {stranger['statusCode']}; "
        f"state machine executions started: {len(machine.started)}")  # fmt: skip
    if stranger["statusCode"] != 403 or machine.started:
        return False
    approver = next(a for a in rollback_context(m)["approvers"] if a["slack_user_id"])
    clicked = rehearsal.click(button["value"], approver["slack_user_id"], action="rollback")
    import json

    said = json.loads(clicked["body"])["text"]
    say("Rollback", f"{approver['name']} clicks it: HTTP {clicked['statusCode']}: {said}")
    before = len(rehearsal.posted)
    end = machine.run()
    for message in rehearsal.posted[before:]:
        say("Rollback", f"chat: {' '.join(message['text'].split())}")
    url = rehearsal.endpoint.serving.get(endpoint, "")
    rehearsal.moment("rollback", f"from chat: prod back on {url}", ENV)
    ok = end == "completed" and url.endswith("/1/model.tar.gz")
    if not ok:
        say("Rollback", f"FAILED: the rollback from chat ended {end}; prod serves {url}")
    return ok


def switched(rehearsal: Any, parameters: Mapping[str, Any]) -> None:
    """What the Serving stack's update does once CloudFormation is done: the endpoint serves
    the artifact it names, or a batch environment's runs score with a model of it."""
    url = str(parameters["ModelDataUrl"])
    rehearsal.endpoint.serving[rehearsal.names.endpoint(ENV)] = url
    if rehearsal.manifest.is_batch(ENV):
        rehearsal.batch.release(
            ENV, rehearsal.version_of(url), url, str(parameters["ModelPackageArn"])
        )


def play(rehearsal: Any, say: Any, simulated: str) -> bool:
    """The scenario; False when the chat's rollback did not put prod on version 1, or the
    command did not put version 2 back."""
    from mlgate.cli import rollback as rb

    m = rehearsal.manifest
    by = m.rollback_approvers[0]
    names = rehearsal.names
    quiet = lambda _seconds: None  # noqa: E731 - the waits of a rollback that moto answers at once
    clients = rb.Clients(
        dynamodb=rb.Retrying(rehearsal.client("dynamodb"), quiet),
        codepipeline=PipelineState([names.gate_stage(g.name) for g in m.pipeline_gates]),
        sts=rb.Retrying(rehearsal.client("sts"), quiet),
        cloudformation=rb.Retrying(rehearsal.account_client(ENV, "cloudformation"), quiet),
        sagemaker=rehearsal.endpoint,
        # The verifier's sample, answered by the product's model back on its target.
        runtime=rehearsal.endpoint,
        ssm=rb.Retrying(rehearsal.client("ssm"), quiet),
    )
    # The rehearsal's audit table (its hooks' AUDIT_TABLE), where the verifier wrote its records.
    place = dataclasses.replace(rb.Place.of(m, ENV), table=AUDIT_TABLE)
    endpoint = names.endpoint(ENV)

    def command(**options: Any) -> tuple[int, str]:
        out = io.StringIO()
        code = rb.rollback(m, ENV, reason="p99 latency doubled since version 2 (rehearsal)",
                           by=by, clients=clients, place=place, out=out, err=out, sleep=quiet,
                           **options)  # fmt: skip
        return code, " ".join(out.getvalue().split())

    if not from_chat(rehearsal, say, clients, simulated):
        return False
    print()
    before = rehearsal.endpoint.serving.get(endpoint)
    code, text = command(to=99)
    say("Rollback", f"`mlgate rollback {m.product.name} prod --to 99 --by {by}`: exit {code}: "
        f"{text}")  # fmt: skip
    if code != rb.REFUSED or rehearsal.endpoint.serving.get(endpoint) != before:
        say("Rollback", "FAILED: a version never served in prod was not refused")
        return False
    # The alarm was a false one: the command puts version 2 back (any version served there).
    code, text = command(to=2, wait=False)
    say("Rollback", f"on-call runs `mlgate rollback {m.product.name} prod --to 2 --by {by} "
        f"--no-wait` (as {m.contact(by).name}): exit {code}: {text}")  # fmt: skip
    if code != 0:
        return False
    stack = rehearsal.account_client(ENV, "cloudformation").describe_stacks(StackName=place.stack)[
        "Stacks"
    ][0]
    found = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    url = found["ModelDataUrl"]
    switched(rehearsal, found)
    rehearsal.moment("rollback", f"with the command: prod back on {url}", ENV)
    what = (
        "the batch model's replacement" if m.is_batch(ENV) else "the endpoint's blue/green update"
    )
    say("Rollback", f"CloudFormation updated {place.stack} under moto; {what} to {url} is "
        f"{simulated}.")  # fmt: skip
    code, text = command(to=2)
    say("Rollback", f"the same command again: exit {code}: {text}")
    events = [
        item["event"]["S"]
        for item in rehearsal.client("dynamodb").query(
            TableName=AUDIT_TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": place.pk}},
        )["Items"]
        if item["sk"]["S"] != "lock"
    ]
    say("Rollback", f"audit trail ({place.pk}): {', '.join(events)}")
    served = rehearsal.endpoint.serving.get(endpoint, "")
    # Two rollbacks (the chat's, the command's), each updated once.
    ok = code == 0 and served == url and events.count("rollback-update-started") == 2
    if not ok:
        say("Rollback", f"FAILED: prod serves {served}; events {events}")
    return ok
