"""`python -m mlgate rollback` (mlgate/cli/rollback.py) for every example product, under moto:
the audit table, the caller's identity and the Serving stack are moto's; the release pipeline's
state is a botocore Stubber (moto has no GetPipelineState); the endpoint is a stand-in that
serves what the Serving stack's ModelDataUrl parameter says, a batch environment's live model
package parameter moto's SSM, written by the stack. Manifests are loaded, never synthesized."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from mlgate.cli import rollback as rb
from mlgate.infra.naming import Names
from mlgate.manifest import Manifest, ManifestError, load_manifest
from shared.served import FROM_RELEASE, served_item

from .conftest import EXAMPLES, PRODUCTS
from .lambdas.conftest import moto

PARAMETERS = ("ModelPackageArn", "ModelDataUrl", "BaselineStatisticsUri", "BaselineConstraintsUri")
WHEN = "2026-11-{:02d}T12:00:00Z"


def document(manifest: Any, version: int) -> dict[str, str]:
    """What release.json (and so the served record) says of `version`."""
    env = manifest.environments.staging
    folder = f"s3://artifacts/released/{manifest.product.name}/{version}"
    return {
        "model_package_arn": f"arn:aws:sagemaker:{env.region}:{env.account}:model-package/"
        f"mlgate-{manifest.product.name}/{version}",
        "model_data_url": f"{folder}/model.tar.gz",
        "baseline_statistics_uri": f"{folder}/baseline/statistics.json",
        "baseline_constraints_uri": f"{folder}/baseline/constraints.json",
    }


def serving_template(manifest: Any, env: str) -> dict[str, Any]:
    """The Serving stack as far as a rollback sees it: the release's parameters, a marker
    following ModelDataUrl and, in a batch environment, its live model package parameter (as
    mlgate/infra/stacks/serving.py writes it: the update that switches the version)."""
    marker = {"Name": f"/serving/{env}", "Type": "String", "Value": {"Ref": "ModelDataUrl"}}
    resources: dict[str, Any] = {"Marker": {"Type": "AWS::SSM::Parameter", "Properties": marker}}
    if manifest.is_batch(env):
        resources["Live"] = {"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": Names.of(manifest, env).live_release_parameter("model-package"),
            "Type": "String", "Value": {"Ref": "ModelPackageArn"}}}  # fmt: skip
    return {"Parameters": {k: {"Type": "String"} for k in PARAMETERS}, "Resources": resources}


class Stack:
    """The Serving stack's CloudFormation client (moto's), its status overridable, every
    UpdateStack recorded; `fail` raises once on the named call (a throttle, a crash)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.status: str | None = None
        self.updates: list[dict[str, Any]] = []
        self.fail: dict[str, Exception] = {}

    def describe_stacks(self, **kwargs: Any) -> Any:
        if (error := self.fail.pop("describe_stacks", None)) is not None:
            raise error
        answer = self.client.describe_stacks(**kwargs)
        if self.status is not None:
            answer["Stacks"][0]["StackStatus"] = self.status
        return answer

    def update_stack(self, **kwargs: Any) -> Any:
        if (error := self.fail.pop("update_stack", None)) is not None:
            raise error
        self.updates.append(kwargs)
        return self.client.update_stack(**kwargs)

    def describe_stack_events(self, **kwargs: Any) -> Any:
        return self.client.describe_stack_events(**kwargs)


class Endpoint:
    """DescribeEndpoint / Config / Model of an endpoint serving what the stack says."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.stack, self.name = stack, name

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {"EndpointStatus": "InService", "EndpointConfigName": "config-b",
                "LastModifiedTime": datetime(2026, 12, 1, 9, 30, tzinfo=UTC)}  # fmt: skip

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        return {"ProductionVariants": [{"ModelName": "model-b"}]}

    def describe_model(self, ModelName: str) -> dict[str, Any]:
        stack = self.stack.client.describe_stacks(StackName=self.name)["Stacks"][0]
        url = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["ModelDataUrl"]
        return {"Containers": [{"ModelDataUrl": url}]}


class Runtime:
    """InvokeEndpoint of the endpoint back on its target: every request kept; `error`, when
    set, the answer (a model error) instead of a score."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.error: ClientError | None = None

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(kwargs)
        if self.error is not None:
            raise self.error
        return {"Body": io.BytesIO(b"0.0213")}


@dataclass
class World:
    manifest: Any
    env: str
    place: rb.Place
    clients: rb.Clients
    stack: Stack
    pipeline: Stubber
    runtime: Runtime = field(default_factory=Runtime)
    stages: dict[str, str] = field(default_factory=dict)

    def items(self) -> list[dict[str, str]]:
        found = self.clients.dynamodb.scan(TableName=self.place.table)["Items"]
        return [{k: v.get("S", v.get("N", "")) for k, v in i.items()} for i in found]

    def events(self) -> list[str]:
        items = sorted(self.items(), key=lambda i: i["sk"])
        return [i["event"] for i in items if i["pk"] == self.place.pk and i["sk"] != "lock"]

    def parameters(self) -> dict[str, str]:
        stack = self.stack.client.describe_stacks(StackName=self.place.stack)["Stacks"][0]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    def live(self) -> str:
        """A batch environment's live model package, as its parameter says."""
        name = Names.of(self.manifest, self.env).live_release_parameter("model-package")  # type: ignore[arg-type]
        return str(self.clients.ssm.get_parameter(Name=name)["Parameter"]["Value"])

    def run(self, *args: str, to: int | None = None, by: str | None = None,
            wait: bool = True) -> tuple[int, str, str]:  # fmt: skip
        """One command; the pipeline answers GetPipelineState with `stages` once."""
        self.pipeline.add_response(
            "get_pipeline_state",
            {"pipelineName": self.place.pipeline, "stageStates": [
                {"stageName": name, "latestExecution": {"pipelineExecutionId": "e-1",
                                                        "status": status}}
                for name, status in self.stages.items()]},
            {"name": self.place.pipeline},
        )  # fmt: skip
        out, err = io.StringIO(), io.StringIO()
        code = rb.rollback(
            self.manifest, self.env, to=to, reason="p99 latency doubled since the release",
            by=by or self.manifest.rollback_approvers[0], wait=wait, clients=self.clients,
            out=out, err=err, sleep=lambda _: None,
        )  # fmt: skip
        return code, out.getvalue(), err.getvalue()


@pytest.fixture(params=PRODUCTS)
def manifest(request: pytest.FixtureRequest) -> Any:
    return load_manifest(EXAMPLES / request.param / "manifest.yaml")


@cache
def mode(product: str, env: str) -> str:
    return load_manifest(EXAMPLES / product / "manifest.yaml").env_serving(env).mode.value  # type: ignore[arg-type]


def worlds(keep: Callable[[str], bool] = lambda _: True) -> list[Any]:
    """Every example product's environments whose serving mode `keep` accepts."""
    return [
        pytest.param((product, env), id=f"{env}-{product}")
        for product in PRODUCTS
        for env in ("staging", "prod")
        if keep(mode(product, env))
    ]


# Environments with an endpoint; those answering the verifier's sample (not asynchronous); batch.
ENDPOINTS = worlds(lambda m: m != "batch")
ANSWERING = worlds(lambda m: m not in {"batch", "async"})
BATCH = worlds(lambda m: m == "batch")


@pytest.fixture(params=worlds())
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    """The environment served versions 3, 4 then 5 (verified, in that order) and serves 5."""
    product, env = request.param
    manifest = load_manifest(EXAMPLES / product / "manifest.yaml")
    region = manifest.environment(env).region
    with moto():
        place = rb.Place.of(manifest, env)
        ddb = boto3.client("dynamodb", region_name=manifest.environments.staging.region)
        ddb.create_table(
            TableName=place.table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        for day, version in ((1, 3), (2, 4), (3, 5)):
            ddb.put_item(TableName=place.table, Item=served_item(
                pipeline=place.pipeline, env=env, when=WHEN.format(day), version=version,
                document=document(manifest, version), execution=f"e-{version}",
                endpoint=place.endpoint))  # fmt: skip
        cfn = boto3.client("cloudformation", region_name=region)
        current = document(manifest, 5)
        cfn.create_stack(
            StackName=place.stack,
            TemplateBody=json.dumps(serving_template(manifest, env)),
            Parameters=[{"ParameterKey": k, "ParameterValue": current[v]}
                        for k, v in FROM_RELEASE.items()],
        )  # fmt: skip
        stack = Stack(cfn)
        codepipeline = boto3.client("codepipeline", region_name=region)
        stubber = Stubber(codepipeline)
        stubber.activate()
        runtime = Runtime()
        clients = rb.Clients(
            dynamodb=ddb,
            codepipeline=codepipeline,
            sts=boto3.client("sts", region_name=region),
            cloudformation=rb.Retrying(stack, lambda _: None),
            sagemaker=Endpoint(stack, place.stack),
            runtime=runtime,
            ssm=boto3.client("ssm", region_name=region),
        )
        yield World(manifest, env, place, clients, stack, stubber, runtime)


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                       operation)  # fmt: skip


# --- the plan's target --------------------------------------------------------------------


def record(version: int, day: int, **extra: str) -> dict[str, str]:
    return {"model_version": str(version), "sk": f"{WHEN.format(day)}#{version}", **extra}


@pytest.mark.parametrize(
    ("history", "current", "to", "expected"),
    [
        ([(3, 1), (4, 2), (5, 3)], 5, None, (4, 2)),
        # 5 served, then 4 again (a deploy of 4), then 5: back to 4's latest record
        ([(3, 1), (5, 2), (4, 3), (5, 4)], 5, None, (4, 3)),
        # 4 is current again after a rollback that left 5: 5 is never a default target
        ([(3, 1), (4, 2), (5, 3), (4, 4, "5")], 4, None, (3, 1)),
        ([(3, 1), (4, 2), (5, 3)], 5, 3, (3, 1)),
        ([(3, 1), (4, 2), (5, 3)], 5, 5, "is the version this environment serves now"),
        ([(3, 1), (4, 2), (5, 3)], 5, 9, "version 9 was never served in this environment"),
        ([(5, 3)], 5, None, "no version was served in this environment before"),
    ],
)
def test_the_plan_s_target_is_the_version_served_before_the_current_one(
    history: list[tuple[Any, ...]], current: int, to: int | None, expected: Any
) -> None:
    records = [record(v, d, **({"rolled_back_from": r[0]} if r else {})) for v, d, *r in history]
    if isinstance(expected, str):
        with pytest.raises(rb.Refused, match=expected):
            rb.pick_target(records, current, to)
        return
    found = rb.pick_target(records, current, to)
    assert (int(found["model_version"]), found["sk"]) == (expected[0], record(*expected)["sk"])


@pytest.mark.parametrize("world", ENDPOINTS, indirect=True)
def test_the_plan_names_both_versions_and_the_time_back_from_the_rollout(world: World) -> None:
    code, out, err = world.run()
    assert (code, err) == (0, "")
    rollout = world.manifest.env_serving(world.env).rollout
    assert f"from       version 5 (served since {WHEN.format(3)})" in out
    assert f"to         version 4 (served {WHEN.format(2)}" in out
    timing = rb.Timing.of(world.manifest, world.env)
    assert f"bake {rollout.bake_minutes} min per step" in out
    assert f"all of it {timing.all_traffic_minutes} min after that" in out
    assert timing.stack_done_minutes == timing.steps * rollout.bake_minutes + (
        rollout.termination_wait_minutes
    )


@pytest.mark.parametrize("world", BATCH, indirect=True)
def test_a_batch_plan_names_both_versions_and_says_the_rollback_is_a_switch(world: World) -> None:
    """No traffic to move, no bake: the update switches the model the next run scores with."""
    code, out, err = world.run()
    assert (code, err) == (0, "")
    assert f"from       version 5 (served since {WHEN.format(3)})" in out
    assert f"to         version 4 (served {WHEN.format(2)}" in out
    assert "guardrail  a switch of the model the next batch run scores with" in out
    assert "traffic    none: the runs after the switch score with the old version" in out
    assert "bake" not in out
    assert rb.Timing.of(world.manifest, world.env).stack_done_minutes == 0


@pytest.mark.parametrize(
    ("policy", "instances", "extra", "steps"),
    [("canary", 4, {"canary_percent": 25}, 2), ("linear", 4, {"linear_step_percent": 25}, 4),
     ("linear", 3, {"linear_step_percent": 50}, 2), ("all_at_once", 2, {}, 1)],
)  # fmt: skip
def test_the_time_back_counts_one_bake_per_traffic_step(
    policy: str, instances: int, extra: dict[str, int], steps: int
) -> None:
    """A 50 % linear step of 3 instances is 2 instances: two steps, not 100 / 50."""
    raw = yaml.safe_load((EXAMPLES / PRODUCTS[0] / "manifest.yaml").read_text())
    raw["serving"]["prod"].update(instance_count=instances)
    raw["serving"]["prod"]["rollout"] = {"policy": policy, "bake_minutes": 10,
                                         "termination_wait_minutes": 5, "allow_all_at_once": True,
                                         "max_first_step_percent": 100, **extra}  # fmt: skip
    timing = rb.Timing.of(Manifest.model_validate(raw), "prod")
    assert timing.steps == steps
    assert timing.all_traffic_minutes == (steps - 1) * 10
    assert timing.stack_done_minutes == steps * 10 + 5


# --- refusals: one line, exit 2, nothing written, no update -----------------------------------


def refuse(world: World, case: str) -> dict[str, Any]:
    """Set the world up for refusal `case`; the run's keyword arguments."""
    if case == "by":
        return {"by": "mallory"}
    if case == "never served":
        return {"to": 9}
    if case == "current":
        return {"to": 5}
    if case == "release in progress":
        world.stages[f"Deploy{world.env.capitalize()}"] = "InProgress"
    elif case == "busy":
        world.stack.status = "UPDATE_IN_PROGRESS"
    elif case == "stuck":
        world.stack.status = "UPDATE_ROLLBACK_FAILED"
    elif case == "running":
        world.run(wait=False)  # a rollback to 4, still running
        return {"to": 3}
    return {}


REFUSALS = {
    "by": "'mallory' may not roll back",
    "never served": "version 9 was never served in this environment (served: 3, 4, 5)",
    "current": "version 5 is the version this environment serves now",
    "release in progress": "a release is in progress in",
    "busy": "is UPDATE_IN_PROGRESS: another operation runs",
    "stuck": "is UPDATE_ROLLBACK_FAILED, which CloudFormation will not update",
    "running": "a rollback of {env} to version 4 is running",
}


@pytest.mark.parametrize("case", REFUSALS)
def test_each_refusal_is_one_line_and_has_no_side_effect(world: World, case: str) -> None:
    kwargs = refuse(world, case)
    before, updates, parameters = world.items(), len(world.stack.updates), world.parameters()
    code, out, err = world.run(**kwargs)
    assert code == rb.REFUSED, (out, err)
    assert err.count("\n") == 1, err
    assert REFUSALS[case].format(env=world.env) in err, err
    assert world.items() == before, "nothing written to the audit trail"
    assert len(world.stack.updates) == updates
    assert world.parameters() == parameters


def test_a_release_in_another_environment_s_stages_is_no_refusal(world: World) -> None:
    other = "prod" if world.env == "staging" else "staging"
    world.stages[f"Deploy{other.capitalize()}"] = "InProgress"
    assert world.run()[0] == 0


def test_a_lock_past_its_expiry_does_not_hold(world: World) -> None:
    """A crashed command's lock (TTL deletes lazily): expired, it refuses nothing."""
    world.clients.dynamodb.put_item(TableName=world.place.table, Item={
        "pk": {"S": world.place.pk}, "sk": {"S": "lock"}, "to_version": {"S": "3"},
        "expires_at": {"N": "1000"}})  # fmt: skip
    code, _, err = world.run(to=3)
    assert (code, err) == (0, "")


# --- the action -----------------------------------------------------------------------------


def test_a_rollback_updates_as_the_deployer_does_and_records_each_step(world: World) -> None:
    code, out, err = world.run()
    assert (code, err) == (0, ""), out
    target = document(world.manifest, 4)
    ((update,),) = [world.stack.updates]
    assert update["UsePreviousTemplate"] is True
    assert update["RoleARN"] == world.place.service_role
    assert update["RoleARN"].endswith(f"-{world.env}-serving-cfn")
    sent = {p["ParameterKey"]: p["ParameterValue"] for p in update["Parameters"]}
    assert sent == {k: target[v] for k, v in FROM_RELEASE.items()}
    assert world.parameters()["ModelDataUrl"] == target["model_data_url"]
    assert world.events() == ["rollback-requested", "rollback-update-started", "rollback-completed"]
    requested = next(i for i in world.items() if i.get("event") == "rollback-requested")
    assert requested["who"] == world.manifest.rollback_approvers[0]
    assert requested["identity"].startswith("arn:aws:sts::") or ":user/" in requested["identity"]
    assert requested["reason"] == "p99 latency doubled since the release"
    assert (requested["from_version"], requested["to_version"]) == ("5", "4")
    assert not [i for i in world.items() if i["sk"] == "lock"], "the lock is released"
    served = [i for i in world.items() if i.get("rolled_back_from")]
    assert [(s["model_version"], s["rolled_back_from"]) for s in served] == [("4", "5")]


def test_a_throttled_update_is_retried_and_made_once(world: World) -> None:
    world.stack.fail["update_stack"] = throttled("UpdateStack")
    assert world.run()[0] == 0
    assert len(world.stack.updates) == 1
    assert world.events().count("rollback-update-started") == 1


def test_an_aws_error_after_the_lock_says_to_resume_and_resuming_finishes(world: World) -> None:
    """UpdateStack refused (not a throttle) once the rollback holds its lock: exit 1, one line
    saying the same command resumes, the lock and the request kept; the next run finishes."""
    world.stack.fail["update_stack"] = ClientError(
        {"Error": {"Code": "ValidationError", "Message": "Role is invalid"}}, "UpdateStack"
    )
    code, _, err = world.run()
    assert code == 1
    assert err.count("\n") == 1
    assert "Role is invalid; run the same command again to resume" in err
    assert world.events() == ["rollback-requested"]
    assert [i["sk"] for i in world.items() if i["sk"] == "lock"] == ["lock"]
    assert world.run()[0] == 0
    assert len(world.stack.updates) == 1


def test_after_a_crash_mid_way_the_same_command_finishes_exactly_once(world: World) -> None:
    """The command dies after UpdateStack (following the stack): the trail says the update
    started, the lock stays; run again, it resumes: no second update, each event once."""
    calls = {"n": 0}
    real = world.stack.describe_stacks

    def describe(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # plan, run, then the first poll after the update: crash
            raise RuntimeError("connection lost")
        return real(**kwargs)

    world.stack.describe_stacks = describe  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        world.run()
    assert world.events() == ["rollback-requested", "rollback-update-started"]
    assert [i["to_version"] for i in world.items() if i["sk"] == "lock"] == ["4"]
    code, out, err = world.run()
    assert (code, err) == (0, ""), out
    assert "resuming rollback" in out
    assert len(world.stack.updates) == 1, "no second update"
    # Resumed on the target its own update reached: "started" again is the same event, once.
    assert world.events() == [
        "rollback-requested", "rollback-update-started", "rollback-completed",
    ]  # fmt: skip
    assert not [i for i in world.items() if i["sk"] == "lock"]


def test_no_wait_starts_the_update_and_the_next_run_finishes_it(world: World) -> None:
    assert world.run(wait=False)[0] == 0
    assert world.events() == ["rollback-requested", "rollback-update-started"]
    code, out, _ = world.run()
    assert code == 0
    assert "rolled back" in out
    assert len(world.stack.updates) == 1
    assert world.events() == [
        "rollback-requested", "rollback-update-started", "rollback-completed",
    ]  # fmt: skip


@pytest.mark.parametrize("world", ENDPOINTS, indirect=True)
def test_an_endpoint_not_on_the_target_fails_the_rollback_and_says_why(world: World) -> None:
    """The stack completed but the endpoint serves another artifact (a silent rollback)."""

    class Elsewhere(Endpoint):
        def describe_model(self, ModelName: str) -> dict[str, Any]:
            return {"Containers": [{"ModelDataUrl": "s3://artifacts/released/x/5/model.tar.gz"}]}

    world.clients = rb.Clients(
        **{**world.clients.__dict__, "sagemaker": Elsewhere(world.stack, world.place.stack)}
    )
    code, out, _ = world.run()
    assert code == 1
    assert "rollback failed" in out
    assert world.events()[-1] == "rollback-failed"
    failed = next(i for i in world.items() if i.get("event") == "rollback-failed")
    assert "s3://artifacts/released/x/5/model.tar.gz" in failed["detail"]
    assert not [i for i in world.items() if i["sk"] == "lock"]


@pytest.mark.parametrize("world", BATCH, indirect=True)
def test_a_live_parameter_not_on_the_target_fails_the_rollback_and_says_why(world: World) -> None:
    """The stack completed but the live model parameter names another version (a silent
    rollback): the next runs would not score with the target."""
    stale = document(world.manifest, 5)["model_package_arn"]

    class Stale:
        def get_parameter(self, Name: str) -> dict[str, Any]:
            return {"Parameter": {"Name": Name, "Value": stale}}

    world.clients = rb.Clients(**{**world.clients.__dict__, "ssm": Stale()})
    code, out, _ = world.run()
    assert code == 1
    assert "rollback failed" in out
    assert world.events()[-1] == "rollback-failed"
    failed = next(i for i in world.items() if i.get("event") == "rollback-failed")
    name = Names.of(world.manifest, world.env).live_release_parameter("model-package")  # type: ignore[arg-type]
    target = document(world.manifest, 4)["model_package_arn"]
    assert failed["detail"] == f"{name} names {stale}, not {target}"
    assert not [i for i in world.items() if i.get("rolled_back_from")], "no served record"
    assert not [i for i in world.items() if i["sk"] == "lock"]


def test_an_environment_in_another_account_goes_through_its_deploy_and_verify_roles(
    manifest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command runs as the product's rollback role; another account's deploy and verify
    roles are assumed from it (their trust names it: tests/stacks)."""
    assumed: list[tuple[str, str]] = []

    class Session:
        def __init__(self, name: str) -> None:
            self.name = name

        def client(self, service: str, **_: Any) -> str:
            return f"{service} as {self.name}"

    def assume(base: Any, arn: str, purpose: str) -> Session:
        assumed.append((base.name if base else "caller", arn))
        return Session(arn.rsplit("/", 1)[-1])

    monkeypatch.setattr(rb, "assume", assume)
    clients = rb.Clients.of(manifest, "prod", lambda _: None)
    prod, home = manifest.environments.prod, manifest.environments.staging
    name = manifest.product.name
    rollback = f"arn:aws:iam::{home.account}:role/mlgate-{name}-rollback"
    remote = f"arn:aws:iam::{prod.account}:role/mlgate-{name}-prod"
    if manifest.is_remote("prod"):
        assert assumed == [
            ("caller", rollback),
            (f"mlgate-{name}-rollback", f"{remote}-deploy"),
            (f"mlgate-{name}-rollback", f"{remote}-verify"),
        ]
        assert clients.cloudformation._client == f"cloudformation as mlgate-{name}-prod-deploy"
    else:
        assert assumed == [("caller", rollback)]
        assert clients.cloudformation._client == f"cloudformation as mlgate-{name}-rollback"
    assert clients.dynamodb._client == f"dynamodb as mlgate-{name}-rollback"


# --- the manifest field -----------------------------------------------------------------------


@pytest.mark.parametrize("product", PRODUCTS)
def test_rollback_approvers_default_to_the_last_manual_gate_s_and_are_declared_contacts(
    product: str, tmp_path: Path
) -> None:
    path = EXAMPLES / product / "manifest.yaml"
    manifest = load_manifest(path)
    manual = [g for g in manifest.gates if g.kind.value == "manual"]
    assert manifest.rollback_approvers == manual[-1].approvers
    contact = manifest.product.contacts[0].id
    typo = contact[:-1] + ("x" if contact[-1] != "x" else "y")
    shutil.copytree(path.parent, tmp_path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("manifest.yaml", "__pycache__"))  # fmt: skip
    raw = yaml.safe_load(path.read_text())
    for given, problem in (([contact], None), ([typo], typo)):
        raw.setdefault("delivery", {})["rollback_approvers"] = given
        (tmp_path / "manifest.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        if problem is None:
            assert load_manifest(tmp_path / "manifest.yaml").rollback_approvers == (contact,)
            continue
        with pytest.raises(ManifestError) as refused:
            load_manifest(tmp_path / "manifest.yaml")
        assert (
            f"delivery.rollback_approvers[0]: '{typo}' is not a declared contact; did you mean "
            f"'{contact}'?"
        ) in str(refused.value)


def test_an_aws_refusal_before_the_lock_is_one_line_and_writes_nothing(world: World) -> None:
    """AWS refuses a read of the plan (the release pipeline does not exist, say): exit 1, one
    line naming it, no traceback, nothing written."""
    world.pipeline.add_client_error("get_pipeline_state", "PipelineNotFoundException",
                                    "pipeline not found")  # fmt: skip
    before = world.items()
    out, err = io.StringIO(), io.StringIO()
    code = rb.rollback(world.manifest, world.env, to=None, reason="why",
                       by=world.manifest.rollback_approvers[0], clients=world.clients, out=out,
                       err=err, sleep=lambda _: None)  # fmt: skip
    assert code == 1
    assert err.getvalue().count("\n") == 1
    assert "PipelineNotFoundException" in err.getvalue()
    assert "nothing was written or changed" in err.getvalue()
    assert world.items() == before
    assert world.stack.updates == []


@pytest.mark.parametrize("world", ENDPOINTS, indirect=True)
def test_the_endpoint_back_on_its_target_answers_the_verifier_s_sample(world: World) -> None:
    """As the deploy verifier does: the manifest's sample, once, to the endpoint (none to an
    asynchronous one, whose answer is queued: the artifact check stands alone there)."""
    code, _, err = world.run()
    assert code == 0, err
    queued = world.manifest.env_serving(world.env).mode.value == "async"
    if queued:
        assert world.runtime.requests == []
        return
    (request,) = world.runtime.requests
    assert request["Body"] == world.manifest.sample_record.encode()
    assert request["EndpointName"] == world.place.endpoint


@pytest.mark.parametrize("world", ANSWERING, indirect=True)
def test_a_sample_answered_with_a_model_error_fails_the_rollback(world: World) -> None:
    world.runtime.error = ClientError(
        {"Error": {"Code": "ModelError", "Message": "predict_fn raised KeyError"}},
        "InvokeEndpoint",
    )
    code, out, _ = world.run()
    assert code == 1
    assert "answered its sample with ModelError: predict_fn raised KeyError" in out
    assert world.events()[-1] == "rollback-failed"


@pytest.mark.parametrize("world", BATCH, indirect=True)
def test_a_batch_environment_back_on_its_target_is_read_on_its_live_parameter_not_sampled(
    world: World,
) -> None:
    """No endpoint to ask: the live model package parameter names the target once the stack is
    updated, no sample is sent (the next run scores with the version), the served record says
    the rollback."""
    code, out, err = world.run()
    assert (code, err) == (0, ""), out
    target = document(world.manifest, 4)
    assert world.live() == target["model_package_arn"]
    assert world.runtime.requests == []
    completed = next(i for i in world.items() if i.get("event") == "rollback-completed")
    assert completed["detail"] == (
        f"{world.env}'s next batch run scores with {target['model_data_url']}"
    )
    served = [i for i in world.items() if i.get("rolled_back_from")]
    assert [(s["model_version"], s["rolled_back_from"]) for s in served] == [("4", "5")]
