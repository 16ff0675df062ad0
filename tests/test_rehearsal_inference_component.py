"""The rehearsal's stand-in endpoint for an environment hosting its model as an inference
component (issue 32, part 4): its config names no model, it lists and describes the component
the Serving stack names, and InvokeEndpoint answers only a request naming that component."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlgate.infra.inference_component import component_name
from mlgate.infra.naming import Names
from mlgate.manifest import load_manifest
from tools.rehearsal import Endpoint

from .conftest import EXAMPLES

MANIFEST = load_manifest(EXAMPLES / "delivery-time" / "manifest.yaml")
ENDPOINT = Names.of(MANIFEST).endpoint("prod")
COMPONENT = component_name(Names.of(MANIFEST, "prod"))


class Host:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def invoke(self, endpoint: str, variant: str, url: str, body: bytes, *_: Any) -> bytes:
        self.calls.append(endpoint)
        return b"0.5"


def stand_in(components: dict[str, str] | None) -> tuple[Endpoint, Host]:
    host = Host()
    endpoint = Endpoint(None, host, None, {ENDPOINT: ("prod", MANIFEST.env_serving("prod"))}, 20,
                        components)  # fmt: skip
    endpoint.serving[ENDPOINT] = "s3://artifacts/released/delivery-time/1/model.tar.gz"
    return endpoint, host


def invoke(endpoint: Endpoint, **named: str) -> Any:
    return endpoint.invoke_endpoint(EndpointName=ENDPOINT, Body="1,2", ContentType="text/csv",
                                    **named)  # fmt: skip


def test_the_example_hosts_its_prod_model_as_a_component() -> None:
    assert MANIFEST.env_serving("prod").inference_component is not None
    assert f"{ENDPOINT}-model" == COMPONENT


def test_only_a_request_naming_the_stack_s_component_is_answered() -> None:
    endpoint, host = stand_in({ENDPOINT: COMPONENT})
    assert invoke(endpoint, InferenceComponentName=COMPONENT)["Body"].read() == b"0.5"
    for named in ({}, {"InferenceComponentName": "another-component"}):
        with pytest.raises(ClientError) as refused:
            invoke(endpoint, **named)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert host.calls == [ENDPOINT]


def test_the_config_names_no_model_and_the_component_is_found() -> None:
    endpoint, _ = stand_in({ENDPOINT: COMPONENT})
    (variant,) = endpoint.describe_endpoint_config(f"{ENDPOINT}-config")["ProductionVariants"]
    assert "ModelName" not in variant
    assert variant["InstanceType"] == "ml.c5.large"
    (listed,) = endpoint.list_inference_components(EndpointNameEquals=ENDPOINT)[
        "InferenceComponents"
    ]
    assert listed["InferenceComponentName"] == COMPONENT
    described = endpoint.describe_inference_component(InferenceComponentName=COMPONENT)
    assert described["InferenceComponentStatus"] == "InService"
    with pytest.raises(ClientError):
        endpoint.describe_inference_component(InferenceComponentName="another-component")


def test_without_a_component_the_model_is_in_the_variant_and_names_nothing() -> None:
    """The broken form: the same endpoint without a component refuses a component's name."""
    endpoint, _ = stand_in(None)
    (variant,) = endpoint.describe_endpoint_config(f"{ENDPOINT}-config")["ProductionVariants"]
    assert variant["ModelName"] == ENDPOINT
    assert invoke(endpoint)["Body"].read() == b"0.5"
    with pytest.raises(ClientError):
        invoke(endpoint, InferenceComponentName=COMPONENT)
