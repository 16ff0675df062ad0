"""Roll back on demand in the rehearsal (issue 34): once version 2 is live in prod, on-call runs
`python -m mlgate rollback <product> prod --reason ... --by <approver>`: the command's own code
(mlgate/cli/rollback.py) against the rehearsal's world. Its targets are the "served" records the
deploy verifier wrote when it verified each version in prod; its Serving stack update runs under
moto's CloudFormation as the deployer's does; the endpoint stand-in then serves what the stack
names, as SageMaker's blue/green update would (the fleets and the bake are simulated).

Played: a refused rollback (a version never served in prod: nothing written, nothing updated),
the rollback started without waiting (--no-wait), the endpoint's update, then the same command
again, which resumes it and finishes it once (no second update); then the audit trail's events.
A developer tool, not shipped.
"""

from __future__ import annotations

import dataclasses
import io
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


def play(rehearsal: Any, say: Any, simulated: str) -> bool:
    """The scenario; False when the rollback did not end on version 1 in prod."""
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

    before = rehearsal.endpoint.serving.get(endpoint)
    code, text = command(to=99)
    say("Rollback", f"`mlgate rollback {m.product.name} prod --to 99 --by {by}`: exit {code}: "
        f"{text}")  # fmt: skip
    if code != rb.REFUSED or rehearsal.endpoint.serving.get(endpoint) != before:
        say("Rollback", "FAILED: a version never served in prod was not refused")
        return False
    code, text = command(to=None, wait=False)
    say("Rollback", f"on-call runs `mlgate rollback {m.product.name} prod --by {by} --no-wait`"
        f" (as {m.contact(by).name}): exit {code}: {text}")  # fmt: skip
    if code != 0:
        return False
    stack = rehearsal.account_client(ENV, "cloudformation").describe_stacks(StackName=place.stack)[
        "Stacks"
    ][0]
    url = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["ModelDataUrl"]
    rehearsal.endpoint.serving[endpoint] = url
    rehearsal.moment("rollback", f"on demand: prod back on {url}", ENV)
    say("Rollback", f"CloudFormation updated {place.stack} under moto; the endpoint's blue/green "
        f"update to {url} is {simulated}.")  # fmt: skip
    code, text = command(to=None)
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
    ok = code == 0 and served == url and events.count("rollback-update-started") == 1
    if not ok:
        say("Rollback", f"FAILED: prod serves {served}; events {events}")
    return ok
