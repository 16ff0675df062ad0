"""The deploy verifier and the quality gate on an endpoint hosting its model as an inference
component (issue 32, part 4). moto has no inference components: SageMaker's answers come from
botocore's Stubber on a real client, so each call and each answer is checked against the
service's model (InvokeEndpoint's InferenceComponentName included)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from . import test_deploy_checks as checks
from .conftest import CONTEXT, EXECUTION
from .test_deploy_checks import ENDPOINT, PREVIOUS, RELEASED, REQUESTS, job, payload

# The deploy checks' fixtures: the job, the release, the verifier and the gate under moto.
released, verifier, gate = checks.released, checks.verifier, checks.gate

COMPONENT = f"{ENDPOINT}-model"
MODEL = "model-7"
SAMPLE = "120.5,1,0.3,1.2,3600,2"
"""The verifier's SAMPLE_PAYLOAD in the deploy checks' fixture."""
ARN = "arn:aws:sagemaker:eu-west-1:111111111111"


def answer() -> dict[str, Any]:
    return {"Body": StreamingBody(io.BytesIO(b"0.0132"), 6), "ContentType": "text/csv"}


def reads(
    stub: Stubber,
    *,
    status: str = "InService",
    artifact: str = RELEASED,
    components: tuple[str, ...] = (COMPONENT,),
    model: str = MODEL,
) -> None:
    """One read of the endpoint down to its component's model, as SageMaker answers it: the
    config's variant names instances and no model."""
    when = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    endpoint = {"EndpointName": ENDPOINT, "EndpointArn": f"{ARN}:endpoint/{ENDPOINT}"}
    variant = {"VariantName": "AllTraffic", "InstanceType": "ml.c5.large"}
    config = {"EndpointConfigName": "config-1", "CreationTime": when}
    times = {"CreationTime": when, "LastModifiedTime": when}
    stub.add_response(
        "describe_endpoint",
        {**endpoint, **times, "EndpointConfigName": "config-1", "EndpointStatus": "InService"},
        {"EndpointName": ENDPOINT},
    )
    stub.add_response(
        "describe_endpoint_config",
        {
            **config,
            "EndpointConfigArn": f"{ARN}:endpoint-config/config-1",
            "ProductionVariants": [{**variant, "InitialInstanceCount": 2}],
        },
        {"EndpointConfigName": "config-1"},
    )
    listed = [
        {
            "InferenceComponentName": name,
            "InferenceComponentArn": f"{ARN}:inference-component/{name}",
            "VariantName": "AllTraffic",
            **endpoint,
            **times,
        }
        for name in components
    ]
    stub.add_response(
        "list_inference_components",
        {"InferenceComponents": listed},
        {"EndpointNameEquals": ENDPOINT, "MaxResults": 10},
    )
    if len(components) != 1:
        return
    stub.add_response(
        "describe_inference_component",
        {
            "InferenceComponentName": COMPONENT,
            "InferenceComponentArn": f"{ARN}:inference-component/{COMPONENT}",
            "InferenceComponentStatus": status,
            "Specification": {"ModelName": model},
            **endpoint,
            **times,
        },
        {"InferenceComponentName": COMPONENT},
    )
    stub.add_response(
        "describe_model",
        {
            "ModelName": model,
            "ModelArn": f"{ARN}:model/{model}",
            "CreationTime": when,
            "Containers": [{"Image": "xgboost", "ModelDataUrl": artifact}],
        },
        {"ModelName": model},
    )


def clients() -> tuple[Any, Stubber, Any, Stubber]:
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    runtime = boto3.client("sagemaker-runtime", region_name="eu-west-1")
    return sagemaker, Stubber(sagemaker), runtime, Stubber(runtime)


def run_verifier(
    verifier: Any, monkeypatch: pytest.MonkeyPatch, sagemaker: Any, runtime: Any, *stubs: Stubber
) -> dict[str, str]:
    handler, _ = verifier
    real = boto3.client
    fakes = {"sagemaker": sagemaker, "sagemaker-runtime": runtime}
    monkeypatch.setattr(
        handler.boto3, "client", lambda name, *a, **k: fakes.get(name) or real(name, *a, **k)
    )
    for stub in stubs:
        stub.activate()
    try:
        return dict(handler.handler(job(environment="staging", endpoint=ENDPOINT), CONTEXT))
    finally:
        for stub in stubs:
            stub.deactivate()


# --- the deploy verifier ----------------------------------------------------------------------


def test_verifier_checks_the_component_serves_the_release_and_invokes_it_by_name(
    verifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sagemaker, stub, runtime, runtime_stub = clients()
    reads(stub)
    sample = {"EndpointName": ENDPOINT, "ContentType": "text/csv", "Body": SAMPLE}
    runtime_stub.add_response(
        "invoke_endpoint", answer(), {**sample, "InferenceComponentName": COMPONENT}
    )
    result = run_verifier(verifier, monkeypatch, sagemaker, runtime, stub, runtime_stub)
    assert result["result"] == "succeeded", result
    assert f"inference component {COMPONENT}" in result["reason"]
    assert result["reason"].endswith("sample scored 0.0132")
    stub.assert_no_pending_responses()
    runtime_stub.assert_no_pending_responses()


@pytest.mark.parametrize("status", ["Updating", "Failed", "Creating"])
def test_verifier_fails_a_component_whose_rolling_update_has_not_finished(
    verifier: Any, monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    sagemaker, stub, runtime, runtime_stub = clients()
    reads(stub, status=status)
    result = run_verifier(verifier, monkeypatch, sagemaker, runtime, stub, runtime_stub)
    assert result["result"] == "failed"
    assert (
        f"inference component {COMPONENT} on {ENDPOINT} is {status}, not InService"
        in (result["reason"])
    )
    runtime_stub.assert_no_pending_responses()  # nothing was sent


def test_verifier_catches_a_rolling_update_rolled_back_to_the_previous_version(
    verifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sagemaker, stub, runtime, runtime_stub = clients()
    reads(stub, artifact=PREVIOUS, model="model-6")
    result = run_verifier(verifier, monkeypatch, sagemaker, runtime, stub, runtime_stub)
    assert result["result"] == "failed"
    assert "silent rollback" in result["reason"]
    assert PREVIOUS in result["reason"]


@pytest.mark.parametrize("components", [(), (COMPONENT, "someone-elses")])
def test_verifier_fails_an_endpoint_without_its_one_component(
    verifier: Any, monkeypatch: pytest.MonkeyPatch, components: tuple[str, ...]
) -> None:
    sagemaker, stub, runtime, runtime_stub = clients()
    reads(stub, components=components)
    result = run_verifier(verifier, monkeypatch, sagemaker, runtime, stub, runtime_stub)
    assert result["result"] == "failed"
    assert "hosts inference components, and mlgate creates one: found" in result["reason"]
    assert (", ".join(sorted(components)) or "none") in result["reason"]


# --- the quality gate -------------------------------------------------------------------------


def request(i: int) -> dict[str, Any]:
    return {"EndpointName": ENDPOINT, "ContentType": "text/csv", "Accept": "text/csv",
            "Body": payload(i), "InferenceComponentName": COMPONENT}  # fmt: skip


def run_gate(gate: Any, sagemaker: Any, runtime: Any, *stubs: Stubber) -> dict[str, str]:
    gate.patch.setattr(gate.handler, "sagemaker", sagemaker)
    gate.patch.setattr(gate.handler, "runtime", runtime)
    for stub in stubs:
        stub.activate()
    try:
        return dict(gate.handler.handler(job(endpoint=ENDPOINT, execution=EXECUTION), CONTEXT))
    finally:
        for stub in stubs:
            stub.deactivate()


def config_read(stub: Stubber) -> None:
    """The gate's first read: the endpoint's config, for its mode."""
    reads(stub)
    # Only DescribeEndpoint and DescribeEndpointConfig of that read are made: drop the rest.
    stub._queue = type(stub._queue)(list(stub._queue)[:2])


def state_read(stub: Stubber, *, status: str = "InService", model: str = MODEL) -> None:
    """serving_state's read: endpoint, config, then the component (no DescribeModel)."""
    reads(stub, status=status, model=model)
    stub._queue = type(stub._queue)(list(stub._queue)[:-1])


def test_the_gate_loads_the_component_by_name_on_one_model(gate: Any) -> None:
    sagemaker, stub, runtime, runtime_stub = clients()
    config_read(stub)
    state_read(stub)
    for i in range(REQUESTS):
        runtime_stub.add_response("invoke_endpoint", answer(), request(i))
    state_read(stub)
    result = run_gate(gate, sagemaker, runtime, stub, runtime_stub)
    assert result["result"] == "succeeded", result["reason"]
    stub.assert_no_pending_responses()
    runtime_stub.assert_no_pending_responses()


def test_the_gate_refuses_a_load_credited_to_two_models(gate: Any) -> None:
    """The component's rolling update moved it to another model during the load."""
    sagemaker, stub, runtime, runtime_stub = clients()
    config_read(stub)
    state_read(stub)
    for i in range(REQUESTS):
        runtime_stub.add_response("invoke_endpoint", answer(), request(i))
    state_read(stub, model="model-8")
    result = run_gate(gate, sagemaker, runtime, stub, runtime_stub)
    assert result["result"] == "failed"
    assert f"inference component {COMPONENT} on {MODEL}" in result["reason"]
    assert "moved from" in result["reason"]
    assert "model-8" in result["reason"]


def test_the_gate_sends_nothing_while_the_component_updates(gate: Any) -> None:
    sagemaker, stub, runtime, runtime_stub = clients()
    config_read(stub)
    state_read(stub, status="Updating")
    result = run_gate(gate, sagemaker, runtime, stub, runtime_stub)
    assert result["result"] == "failed"
    assert f"staging inference component {COMPONENT} is Updating" in result["reason"]
    runtime_stub.assert_no_pending_responses()


def test_a_model_in_the_variant_is_invoked_without_a_component(
    verifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broken form of the first test: a request naming a component the endpoint does not
    host is not what the verifier sends for a model in the variant."""
    sagemaker, runtime, runtime_stub = checks.Endpoint("InService", RELEASED), *clients()[2:]
    sample = {"EndpointName": ENDPOINT, "ContentType": "text/csv", "Body": SAMPLE}
    runtime_stub.add_response("invoke_endpoint", answer(), sample)
    result = run_verifier(verifier, monkeypatch, sagemaker, runtime, runtime_stub)
    assert result["result"] == "succeeded", result
    assert "inference component" not in result["reason"]
