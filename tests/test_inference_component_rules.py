"""The service rules of an inference component (issue 32, part 4), each on its broken forms:
the rolling update's batch, the endpoint it joins, its name."""

from __future__ import annotations

import copy
from typing import Any

from mlgate.infra.service_rules import TABLE, App, violations

RULE = next(row for row in TABLE if row.id == "sagemaker-inference-component")
NAME = next(
    row for row in TABLE if row.id == "name-sagemaker-inferencecomponent-inferencecomponentname"
)


def good() -> dict[str, Any]:
    resources = copy.deepcopy(dict(RULE.broken))
    resources["Config"]["Properties"]["ProductionVariants"][0].pop("ModelName")
    resources["Config"]["Properties"]["ProductionVariants"][0]["InstanceType"] = "ml.c5.large"
    return resources


def problems(resources: dict[str, Any]) -> list[str]:
    return violations(RULE, App.of(resources))


def test_a_component_on_a_model_free_variant_keeps_the_rule() -> None:
    assert problems(good()) == []


def test_a_variant_that_names_a_model_breaks_it() -> None:
    (problem,) = problems(dict(RULE.broken))
    assert "endpoint e's variant names a model" in problem


def test_a_batch_outside_5_to_50_percent_breaks_it() -> None:
    for value in (4, 51, 100):
        resources = good()
        policy = resources["Subject"]["Properties"]["DeploymentConfig"]["RollingUpdatePolicy"]
        policy["MaximumBatchSize"]["Value"] = value
        (problem,) = problems(resources)
        assert f"MaximumBatchSize {value} % is outside 5 to 50 %" in problem
    resources = good()
    policy = resources["Subject"]["Properties"]["DeploymentConfig"]["RollingUpdatePolicy"]
    policy["MaximumBatchSize"]["Value"] = 50
    assert problems(resources) == []


def test_a_component_created_before_its_endpoint_breaks_it() -> None:
    resources = good()
    del resources["Subject"]["DependsOn"]
    (problem,) = problems(resources)
    assert "joins e without DependsOn Endpoint" in problem


def test_the_name_follows_create_inference_component() -> None:
    def named(name: str) -> list[str]:
        props = {"InferenceComponentName": name}
        resources = {"S": {"Type": "AWS::SageMaker::InferenceComponent", "Properties": props}}
        return violations(NAME, App.of(resources))

    assert named("mlgate-delivery-time-prod-model") == []
    for bad in ("model-", "m" * 64, "my_model"):
        assert named(bad), bad
