"""The chat's Roll back button, for every example product, under moto: the rollback hook posts
the button when prod is verified, the gate callback starts the rollback state machine for a
rollback approver's signed click, and the hook's steps (start, then polls) run the rollback as
`python -m mlgate rollback` does. The Serving stack is moto's CloudFormation, the endpoint a
stand-in serving what the stack says (tests/test_rollback.py's; a batch prod's live model
parameter is moto's SSM, written by the stack), the release pipeline's state a
recorder (moto has no GetPipelineState) and Step Functions a recorder (the state machine's own
loop is checked on its definition: tests/constructs/test_rollback_hook.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.exceptions import ClientError

from mlgate.infra.gates import encoded
from mlgate.infra.naming import Names
from mlgate.infra.rollback_timing import rollback_context
from mlgate.manifest import load_manifest
from shared import slack
from shared.served import FROM_RELEASE, served_item

from ..conftest import EXAMPLES, PRODUCTS
from ..test_rollback import WHEN, Endpoint, Stack, document, serving_template
from .conftest import CONTEXT, Recorder, context_in
from .test_gates import url_event

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM, APP = "T0PRODUCT1", "A0MLGATE01"
HOME, REGION = "123456789012", "eu-west-1"
STRANGER = "U0STRANGER"


@dataclass
class World:
    manifest: Any
    hook: Any
    callback: Any
    stack: Stack
    pipeline: str
    posted: list[dict[str, Any]] = field(default_factory=list)
    started: Recorder = field(default_factory=Recorder)
    real_clients_for: Any = None

    @property
    def approver(self) -> str:
        """The Slack id of the first rollback approver who has one."""
        return next(
            a["slack_user_id"]
            for a in rollback_context(self.manifest)["approvers"]
            if a["slack_user_id"]
        )

    def items(self, prefix: str = "") -> list[dict[str, str]]:
        found = boto3.client("dynamodb", region_name=REGION).scan(TableName="audit")["Items"]
        items = [{k: v.get("S", v.get("N", "")) for k, v in i.items()} for i in found]
        return sorted((i for i in items if i["pk"].startswith(prefix)), key=lambda i: i["sk"])

    def events(self) -> list[str]:
        return [i["event"] for i in self.items(f"rollback#{self.pipeline}#prod") if "event" in i]

    def parameters(self) -> dict[str, str]:
        stack = self.stack.client.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    @property
    def stack_name(self) -> str:
        return Names.of(self.manifest).serving_stack("prod")

    def verified(self, execution: str = "e-5", **detail: str) -> dict[str, Any]:
        """CodePipeline's event for the prod verify action of `execution`, as documented
        (https://docs.aws.amazon.com/codepipeline/latest/userguide/detect-state-changes-cloudwatch-events.html)."""
        return {
            "version": "0",
            "id": "d1d2d3d4-0000-4000-8000-000000000001",
            "detail-type": "CodePipeline Action Execution State Change",
            "source": "aws.codepipeline",
            "account": HOME,
            "time": "2026-12-03T12:05:00Z",
            "region": REGION,
            "resources": [f"arn:aws:codepipeline:{REGION}:{HOME}:{self.pipeline}"],
            "detail": {
                "pipeline": self.pipeline,
                "execution-id": execution,
                "stage": "VerifyProd",
                "action": "Verify",
                "state": "SUCCEEDED",
                "type": {"owner": "AWS", "provider": "Lambda", "category": "Invoke"},
                **detail,
            },
        }

    def offer(self) -> str:
        answer = self.hook.handler(self.verified(), context_in(HOME, REGION))
        assert answer["result"] == "posted", answer
        return str(self.posted[-1]["blocks"][1]["elements"][0]["value"])

    def click(self, offer: str, user: str, now: float = 1_764_000_000.0) -> dict[str, Any]:
        payload = {
            "type": "block_actions",
            "api_app_id": APP,
            "team": {"id": TEAM},
            "user": {"id": user, "username": user.lower(), "name": user.lower()},
            "actions": [{"action_id": "rollback", "value": offer}],
        }
        body = urlencode({"payload": json.dumps(payload)})
        headers = {
            "X-Slack-Request-Timestamp": str(int(now)),
            "X-Slack-Signature": slack.sign(SIGNING_SECRET, str(int(now)), body),
        }
        return dict(self.callback.handler(url_event(headers, body), CONTEXT, now=now))

    def step(self, **step: Any) -> dict[str, Any]:
        return dict(self.hook.handler(step, context_in(HOME, REGION)))

    def roll_back(self, offer: str, rollback_id: str = "run-1") -> dict[str, Any]:
        """The state machine's loop: start, then poll until the rollback is no longer running
        (moto's stack updates complete at once)."""
        state = self.step(step="start", offer=offer, slack_user=self.approver,
                          rollback_id=rollback_id)  # fmt: skip
        while state["state"] == "running":
            state = self.step(**state)
        return state


@pytest.fixture(params=PRODUCTS)
def world(
    request: pytest.FixtureRequest, audit_table: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """Prod served versions 3, 4 then 5 (verified, in that order) and serves 5."""
    from gate_callback import handler as callback
    from rollback import handler as hook

    manifest = load_manifest(EXAMPLES / request.param / "manifest.yaml")
    names = Names.of(manifest)
    pipeline = names.release_pipeline()
    ddb = boto3.client("dynamodb", region_name=REGION)
    for day, version in ((1, 3), (2, 4), (3, 5)):
        ddb.put_item(TableName=audit_table, Item=served_item(
            pipeline=pipeline, env="prod", when=WHEN.format(day), version=version,
            document=document(manifest, version), execution=f"e-{version}",
            endpoint=names.endpoint("prod")))  # fmt: skip
    cfn = boto3.client("cloudformation", region_name=REGION)
    current = document(manifest, 5)
    cfn.create_stack(
        StackName=names.serving_stack("prod"),
        TemplateBody=json.dumps(serving_template(manifest, "prod")),
        Parameters=[{"ParameterKey": k, "ParameterValue": current[v]}
                    for k, v in FROM_RELEASE.items()],
    )  # fmt: skip
    stack = Stack(cfn)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    webhook = secrets.create_secret(Name="webhook", SecretString="https://hooks.slack.test/x")
    signing = secrets.create_secret(Name="signing", SecretString=json.dumps(
        {"signing_secret": SIGNING_SECRET, "team_id": TEAM, "app_id": APP}))  # fmt: skip
    for key, value in {
        "ROLLBACK_CONTEXT": encoded(rollback_context(manifest)),
        "AUDIT_TABLE": audit_table,
        "RELEASE_PIPELINE": pipeline,
        "SLACK_WEBHOOK_SECRET_ARN": webhook["ARN"],
        "SLACK_SIGNING_SECRET_ARN": signing["ARN"],
        "ROLLBACK_ROLE_ARN": f"arn:aws:iam::{HOME}:role/{names.rollback_role()}",
        "ROLLBACK_STATE_MACHINE": f"arn:aws:states:{REGION}:{HOME}:stateMachine:rollback",
        "AUDIT_RETENTION_DAYS": str(manifest.retention.audit),
    }.items():
        monkeypatch.setenv(key, value)
    world = World(manifest, hook, callback, stack, pipeline)
    monkeypatch.setattr(hook.slack, "post", lambda url, msg: world.posted.append(msg) or 200)
    state = Recorder(get_pipeline_state={"pipelineName": pipeline, "stageStates": []})
    home = boto3.Session(region_name=REGION)

    def clients_for(env: str) -> Any:
        return hook.Clients(
            dynamodb=home.client("dynamodb"),
            codepipeline=state,
            sts=home.client("sts"),
            cloudformation=stack,
            sagemaker=Endpoint(stack, names.serving_stack("prod")),
            ssm=home.client("ssm"),
        )

    world.real_clients_for = hook.clients_for
    monkeypatch.setattr(hook, "clients_for", clients_for)
    monkeypatch.setattr(hook, "boto3_home", lambda: home)
    monkeypatch.setattr(callback, "dynamodb", boto3.client("dynamodb", region_name=REGION))
    monkeypatch.setattr(callback, "stepfunctions", lambda: world.started)
    for module in (hook, callback):
        module.settings.cache_clear()
    callback.slack.SECRETS.clear()
    return world


# --- the offer ------------------------------------------------------------------------------


def test_a_verified_prod_release_posts_the_roll_back_button_once(world: World) -> None:
    offer = world.offer()
    message = world.posted[-1]
    head, button = message["blocks"][0]["text"]["text"], message["blocks"][1]["elements"][0]
    assert "prod now serves version 5" in head
    assert "roll back to version 4" in head
    assert button["action_id"] == "rollback"
    assert button["text"]["text"].endswith("version 4")
    names = [a["name"] for a in rollback_context(world.manifest)["approvers"]]
    assert names
    assert all(name in head for name in names)
    # A redelivered event posts nothing more: the offer and its marker are stored once.
    again = world.hook.handler(world.verified(), context_in(HOME, REGION))
    assert again["result"] == "already posted"
    assert len(world.posted) == 1
    stored = list(world.items(f"rollback#{world.pipeline}#offer"))
    assert [i["sk"] for i in stored] == [offer, f"{offer}#posted"]
    # Both expire with the audit trail's retention (DynamoDB TTL): the marker is not left
    # behind by its offer. Written within the same second or two.
    days = world.manifest.retention.audit * 86400
    for item in stored:
        assert abs(int(item["expires_at"]) - time.time() - days) < 60, item
    assert stored[0]["from_version"] == "5"
    assert stored[0]["to_version"] == "4"


def test_a_post_that_fails_fails_the_invocation_and_the_retry_posts_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(url: str, message: Any) -> int:
        raise OSError("chat is down")

    monkeypatch.setattr(world.hook.slack, "post", down)
    with pytest.raises(OSError, match="chat is down"):
        world.hook.handler(world.verified(), context_in(HOME, REGION))
    monkeypatch.setattr(world.hook.slack, "post",
                        lambda url, msg: world.posted.append(msg) or 200)  # fmt: skip
    assert world.hook.handler(world.verified(), context_in(HOME, REGION))["result"] == "posted"
    assert len(world.posted) == 1


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("another pipeline", {"detail": {"pipeline": "someone-else"}}),
        ("another account", {"account": "999999999999"}),
        ("staging's verify", {"detail": {"stage": "VerifyStaging"}}),
        ("a failed verify", {"detail": {"state": "FAILED"}}),
        ("a number for a name", {"detail": {"execution-id": 7}}),
    ],
)
def test_an_event_from_elsewhere_is_refused_and_posts_nothing(
    world: World, case: str, change: dict[str, Any]
) -> None:
    event = world.verified()
    for key, value in change.items():
        event[key] = {**event[key], **value} if isinstance(value, dict) else value
    answer = world.hook.handler(event, context_in(HOME, REGION))
    assert answer["result"] == "refused", case
    assert world.posted == []
    assert world.items("rollback#") == []


def test_nothing_to_go_back_to_posts_the_message_without_a_button(world: World) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    for item in world.items(f"served#{world.pipeline}#prod")[:-1]:
        ddb.delete_item(TableName="audit", Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}})
    world.hook.handler(world.verified(), context_in(HOME, REGION))
    blocks = world.posted[-1]["blocks"]
    assert len(blocks) == 1
    assert "nothing to roll back to" in blocks[0]["text"]["text"]


# --- the click ------------------------------------------------------------------------------


def test_a_rollback_approver_s_click_starts_the_rollback_machine(world: World) -> None:
    offer = world.offer()
    answer = world.click(offer, world.approver)
    assert answer["statusCode"] == 200, answer
    assert "version 4 requested" in json.loads(answer["body"])["text"]
    [(name, call)] = world.started.calls
    assert name == "start_execution"
    assert call["stateMachineArn"].endswith(":stateMachine:rollback")
    assert json.loads(call["input"]) == {"offer": offer, "slack_user": world.approver}


def test_someone_who_may_not_roll_back_is_refused_and_nothing_starts(world: World) -> None:
    offer = world.offer()
    answer = world.click(offer, STRANGER)
    assert answer["statusCode"] == 403
    assert world.started.calls == []
    assert world.click("0" * 24, world.approver)["statusCode"] == 404


def test_a_second_click_of_the_same_button_starts_nothing_new(world: World) -> None:
    offer = world.offer()
    world.click(offer, world.approver)
    world.started.responses["start_execution"] = ClientError(
        {"Error": {"Code": "ExecutionAlreadyExists", "Message": "exists"}}, "StartExecution"
    )
    answer = world.click(offer, world.approver)
    assert answer["statusCode"] == 200
    assert "already started" in json.loads(answer["body"])["text"]
    names = {call["name"] for _, call in world.started.calls}
    assert len(names) == 1  # the same execution name: Step Functions starts it once


# --- the rollback's steps -------------------------------------------------------------------


def test_the_steps_roll_back_as_the_command_does_and_record_each_step(world: World) -> None:
    offer = world.offer()
    assert world.roll_back(offer)["state"] == "completed"
    target = document(world.manifest, 4)
    assert world.parameters()["ModelDataUrl"] == target["model_data_url"]
    if world.manifest.is_batch("prod"):  # checked on its live model parameter, as the command
        live = rollback_context(world.manifest)["environments"]["prod"]["live_parameter"]
        name = Names.of(world.manifest, "prod").live_release_parameter("model-package")
        assert live == name
        ssm = boto3.client("ssm", region_name=REGION)
        assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == target["model_package_arn"]
    assert world.events() == [
        "rollback-requested",
        "rollback-update-started",
        "rollback-completed",
    ]
    requested = world.items(f"rollback#{world.pipeline}#prod")[0]
    approver = rollback_context(world.manifest)["approvers"][0]
    assert requested["who"] == approver["contact"]
    assert world.approver in requested["identity"]
    served = world.items(f"served#{world.pipeline}#prod")[-1]
    assert served["model_version"] == "4"
    assert served["rolled_back_from"] == "5"
    texts = [m["text"] for m in world.posted[1:]]
    assert "rolling prod back from version 5 to 4" in texts[0]
    assert "rolled back" in texts[-1]
    assert len(texts) == 2


def test_an_offer_that_is_no_longer_true_is_refused_and_changes_nothing(world: World) -> None:
    offer = world.offer()
    newer = document(world.manifest, 6)
    world.stack.client.update_stack(
        StackName=world.stack_name,
        UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": k, "ParameterValue": newer[v]}
                    for k, v in FROM_RELEASE.items()],
    )  # fmt: skip
    answer = world.roll_back(offer)
    assert answer["state"] == "refused"
    assert "from version 5" in answer["reason"]
    assert "serves version 6" in answer["reason"]
    assert world.events() == []
    assert world.stack.updates == []
    assert "refused" in world.posted[-1]["text"]


def test_a_second_rollback_while_one_runs_is_refused(world: World) -> None:
    offer = world.offer()
    first = world.step(step="start", offer=offer, slack_user=world.approver, rollback_id="run-1")
    assert first["state"] == "running"
    world.stack.status = "UPDATE_IN_PROGRESS"
    second = world.step(step="start", offer=offer, slack_user=world.approver, rollback_id="run-2")
    assert second["state"] == "refused"
    assert "is running" in second["reason"]
    assert len(world.stack.updates) == 1


def test_a_retried_start_resumes_its_own_rollback_and_updates_once(world: World) -> None:
    offer = world.offer()
    # After the lock and the request's event: the update itself fails once.
    world.stack.fail["update_stack"] = ClientError(
        {"Error": {"Code": "ServiceUnavailable", "Message": "try again"}}, "UpdateStack"
    )
    with pytest.raises(ClientError):  # the state machine retries the step
        world.step(step="start", offer=offer, slack_user=world.approver, rollback_id="run-1")
    assert world.events() == ["rollback-requested"]
    assert world.roll_back(offer, "run-1")["state"] == "completed"
    assert len(world.stack.updates) == 1
    assert world.events().count("rollback-requested") == 1


def test_a_retried_poll_after_the_end_is_answered_not_redone(world: World) -> None:
    offer = world.offer()
    state = world.step(step="start", offer=offer, slack_user=world.approver, rollback_id="run-1")
    done = world.step(**state)
    assert done["state"] == "completed"
    posts = len(world.posted)
    assert world.step(**state)["state"] == "completed"  # the same poll, retried
    assert len(world.posted) == posts
    assert [i["model_version"] for i in world.items(f"served#{world.pipeline}#prod")].count(
        "4"
    ) == 2  # version 4's first serving, and the rollback's, once


def test_a_click_from_someone_not_approving_reaches_no_step(world: World) -> None:
    offer = world.offer()
    answer = world.step(step="start", offer=offer, slack_user=STRANGER, rollback_id="run-9")
    assert answer["state"] == "refused"
    assert world.events() == []


def test_the_hook_acts_as_the_rollback_role_and_through_it_in_another_account(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assumed: list[tuple[str | None, str, bool]] = []
    real = world.hook.session

    def session(role: str | None, purpose: str, base: Any = None) -> Any:
        assumed.append((role, purpose, base is not None))
        return real(role, purpose, base)

    monkeypatch.setattr(world.hook, "session", session)
    clients = world.real_clients_for("prod")
    names = Names.of(world.manifest)
    prod = world.manifest.environment("prod")
    first = (
        f"arn:aws:iam::{HOME}:role/{names.rollback_role()}",
        "mlgate-rollback-hook-prod",
        False,
    )
    if world.manifest.is_remote("prod"):
        assert assumed == [
            first,
            (f"arn:aws:iam::{prod.account}:role/{names.deploy_role('prod')}",
             "mlgate-rollback-prod", True),
            (f"arn:aws:iam::{prod.account}:role/{names.verify_role('prod')}",
             "mlgate-rollback-verify-prod", True),
        ]  # fmt: skip
    else:
        assert assumed[0] == first
        assert all(role is None for role, _, _ in assumed[1:])
    assert clients.cloudformation.meta.region_name == prod.region
    assert clients.sagemaker.meta.region_name == prod.region
