"""The deployer in a Shadow stage, under moto: "start" sets only the shadow variant's model
artifact, "stop" removes it and then passes on the shadow test's verdict (a failed or missing
one fails the job: no traffic moves); a release's own deploy never keeps a shadow variant."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from shared.shadow import Thresholds, Variant, judge
from shared.shadow_record import record_verdict

from .conftest import CONTEXT, EXECUTION, create_audit_table
from .test_deployer import NEW, NEW_DATA, OLD, SERVICE_ROLE, World
from .test_deployer import aws as aws

SHADOWED = "mlgate-fraud-detection-prod-serving"
LIMITS = Thresholds(min_requests=10, max_latency_ratio=1.5, max_error_rate=0.01,
                    max_prediction_shift=0.1)  # fmt: skip


@pytest.fixture
def shadowed(aws: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """A Serving stack with a shadow test, serving the previous version with no shadow."""
    template = {
        "Parameters": {k: {"Type": "String"} for k in
                       ("ModelPackageArn", "ModelDataUrl", "ShadowModelDataUrl")},
        "Resources": {"Marker": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": "/mlgate/shadow", "Type": "String", "Value": {"Ref": "ShadowModelDataUrl"}}}},
    }  # fmt: skip
    boto3.client("cloudformation").create_stack(
        StackName=SHADOWED,
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": "ModelPackageArn", "ParameterValue": OLD},
            {"ParameterKey": "ModelDataUrl", "ParameterValue": "s3://artifacts/released/1.tgz"},
            {"ParameterKey": "ShadowModelDataUrl", "ParameterValue": "none"},
        ],
    )
    monkeypatch.setenv("AUDIT_TABLE", create_audit_table(boto3.client("dynamodb")))
    return aws


def parameters() -> dict[str, str]:
    stack = boto3.client("cloudformation").describe_stacks(StackName=SHADOWED)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def run(world: World, shadow: str | None, token: dict[str, Any] | None = None) -> dict[str, str]:
    params = {"environment": "prod", "stack": SHADOWED, "service_role": SERVICE_ROLE}
    if shadow:
        params["shadow"] = shadow
    return dict(world.handler.handler(world.job(token, **params), CONTEXT))


def verdict(passed: bool) -> None:
    shadow = Variant(invocations=500, errors=0 if passed else 50, latency_us=21_000)
    found = judge(Variant(500, 0, 20_000), shadow, ["0.1", "0.2"], ["0.1", "0.2"], LIMITS)
    record_verdict("audit", EXECUTION, "prod", "2", found)


def test_start_adds_the_release_as_the_shadow_variant_and_nothing_else(shadowed: World) -> None:
    result = run(shadowed, "start")
    assert result["result"] == "in_progress", result
    assert parameters() == {
        "ModelPackageArn": OLD,
        "ModelDataUrl": "s3://artifacts/released/1.tgz",
        "ShadowModelDataUrl": NEW_DATA,
    }
    token = json.loads(shadowed.recorded[-1][1]["continuationToken"])
    assert token == {"stack": SHADOWED, "model_package_arn": NEW, "shadow": "start"}
    done = run(shadowed, "start", token)
    assert done == {"result": "succeeded", "reason": f"prod now shadows {NEW}"}


@pytest.mark.parametrize("passed", [True, False])
def test_stop_removes_the_shadow_then_passes_on_the_verdict(shadowed: World, passed: bool) -> None:
    run(shadowed, "start")
    verdict(passed)
    started = run(shadowed, "stop")
    assert parameters()["ShadowModelDataUrl"] == "none"
    assert parameters()["ModelPackageArn"] == OLD  # no traffic moved
    token = json.loads(shadowed.recorded[-1][1]["continuationToken"])
    result = run(shadowed, "stop", token)
    assert started["result"] == "in_progress"
    if passed:
        assert result["result"] == "succeeded"
        assert "shadow test passed" in result["reason"]
    else:
        assert result["result"] == "failed"
        assert "shadow test failed: error rate 10.00%" in result["reason"]
        assert "before any traffic moves" in result["reason"]


def test_without_a_verdict_stop_fails_after_removing_the_shadow(shadowed: World) -> None:
    run(shadowed, "start")
    token = json.loads(run(shadowed, "stop") and shadowed.recorded[-1][1]["continuationToken"])
    result = run(shadowed, "stop", token)
    assert result["result"] == "failed"
    assert "no shadow test verdict was recorded" in result["reason"]
    assert parameters()["ShadowModelDataUrl"] == "none"


def test_the_release_s_deploy_never_keeps_a_shadow_variant(shadowed: World) -> None:
    run(shadowed, "start")
    run(shadowed, None)  # Deploy<Env>: the version itself
    assert parameters()["ModelPackageArn"] == NEW
    assert parameters()["ShadowModelDataUrl"] == "none"


def test_a_shadow_job_on_a_stack_without_a_shadow_test_is_refused(aws: World) -> None:
    result = dict(aws.handler.handler(aws.job(shadow="start"), CONTEXT))
    assert result["result"] == "failed"
    assert "no ShadowModelDataUrl parameter" in result["reason"]
    assert "with the manifest's shadow test" in result["reason"]


def test_a_token_of_the_other_shadow_step_is_refused(shadowed: World) -> None:
    run(shadowed, "start")
    token = json.loads(shadowed.recorded[-1][1]["continuationToken"])
    result = run(shadowed, "stop", token)
    assert result["result"] == "refused"
    assert "continuationToken.shadow" in result["reason"]
    assert parameters()["ShadowModelDataUrl"] == NEW_DATA  # nothing touched
