"""MonitoredEndpoint hosting its model as an inference component (issue 32, part 4), alone in a
bare stack: the variant holds instances only, the component the model with its rolling update
on the same rollback alarms, its copies scale (to zero and back when asked), and the rollback
alarms watch the component's own metrics."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mlgate.infra.constructs.endpoint import Component, MonitoredEndpoint

from .conftest import Kit, resources
from .test_endpoint import build, endpoint_props

COMPONENT = Component(
    copies=2, min_copies=1, max_copies=6, cpus=1.0, memory_mb=2048,
    target_invocations_per_copy=300, batch_percent=25, min_instances=1, max_instances=4,
)  # fmt: skip


def served(k: Kit, component: Component | None = COMPONENT, **changes: Any) -> MonitoredEndpoint:
    props = dataclasses.replace(endpoint_props(k), component=component, **changes)
    return build(k, props)


def test_the_variant_holds_instances_and_the_component_the_model(home: Kit) -> None:
    endpoint = served(home)
    template = home.template()
    (config,) = resources(template, "AWS::SageMaker::EndpointConfig").values()
    variant = config["Properties"]["ProductionVariants"][0]
    assert "ModelName" not in variant
    assert variant["ManagedInstanceScaling"] == {
        "Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 4
    }  # fmt: skip
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    assert "ExecutionRoleArn" in config["Properties"]
    # Data capture stays on the endpoint config.
    assert config["Properties"]["DataCaptureConfig"]["InitialSamplingPercentage"] == 15

    (component,) = resources(template, "AWS::SageMaker::InferenceComponent").values()
    props = component["Properties"]
    assert (
        props["InferenceComponentName"] == endpoint.component_name == "mlgate-churn-staging-model"
    )
    assert props["EndpointName"] == "mlgate-churn-staging"
    assert props["VariantName"] == "AllTraffic"
    (model_id,) = resources(template, "AWS::SageMaker::Model")
    assert props["Specification"]["ModelName"] == {"Fn::GetAtt": [model_id, "ModelName"]}
    assert props["Specification"]["ComputeResourceRequirements"] == {
        "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 2048
    }  # fmt: skip
    assert props["RuntimeConfig"] == {"CopyCount": 2}
    rolling = props["DeploymentConfig"]["RollingUpdatePolicy"]
    assert rolling == {
        "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        "WaitIntervalInSeconds": 7 * 60,
        "MaximumExecutionTimeoutInSeconds": 90 * 60,
    }
    alarms = props["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName"] for a in alarms] == endpoint.rollback_alarm_names
    assert len(alarms) == 2
    assert component["Condition"] == "HasModel"
    (endpoint_id,) = resources(template, "AWS::SageMaker::Endpoint")
    assert endpoint_id in component["DependsOn"]


def test_without_a_component_the_variant_names_its_model(home: Kit) -> None:
    """The broken form of the test above: the model in the variant, no component."""
    endpoint = served(home, component=None)
    template = home.template()
    (config,) = resources(template, "AWS::SageMaker::EndpointConfig").values()
    variant = config["Properties"]["ProductionVariants"][0]
    assert "ModelName" in variant
    assert "ManagedInstanceScaling" not in variant
    assert resources(template, "AWS::SageMaker::InferenceComponent") == {}
    assert endpoint.component_name is None


def test_rollback_alarms_watch_the_component_metrics(home: Kit) -> None:
    served(home)
    template = home.template()
    text = str(resources(template, "AWS::CloudWatch::Alarm"))
    assert "InferenceComponentName" in text
    assert "mlgate-churn-staging-model" in text
    assert "VariantName" not in text


def test_copies_scale_on_invocations_per_copy_and_never_the_variant(home: Kit) -> None:
    served(home)
    template = home.template()
    (target,) = resources(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert target["Properties"]["ResourceId"] == "inference-component/mlgate-churn-staging-model"
    assert target["Properties"]["ScalableDimension"] == (
        "sagemaker:inference-component:DesiredCopyCount"
    )
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (1, 6)
    (policy,) = resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 300
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerInferenceComponentInvocationsPerCopy"
    )


def test_scale_to_zero_wakes_on_requests_no_copy_could_answer(home: Kit) -> None:
    zero = dataclasses.replace(COMPONENT, min_copies=0, min_instances=0)
    endpoint = served(home, component=zero)
    template = home.template()
    (config,) = resources(template, "AWS::SageMaker::EndpointConfig").values()
    assert (
        config["Properties"]["ProductionVariants"][0]["ManagedInstanceScaling"]["MinInstanceCount"]
        == 0
    )
    (target,) = resources(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert target["Properties"]["MinCapacity"] == 0
    policies = resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    steps = [p for p in policies if p["Properties"]["PolicyType"] == "StepScaling"]
    assert len(steps) == 1
    wake = [
        a for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "NoCapacityInvocationFailures"
    ]  # fmt: skip
    assert len(wake) == 1
    assert wake[0]["Properties"]["Dimensions"] == [
        {"Name": "InferenceComponentName", "Value": "mlgate-churn-staging-model"}
    ]
    assert wake[0]["Condition"] == "HasModel"
    assert endpoint.scaling_alarm_names == [
        "mlgate/churn/staging/system/no-capacity-invocations/scaling"
    ]


def test_copies_that_never_reach_zero_have_no_wake_policy(home: Kit) -> None:
    served(home)
    policies = resources(home.template(), "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    assert [p["Properties"]["PolicyType"] for p in policies] == ["TargetTrackingScaling"]


def test_only_a_real_time_endpoint_hosts_a_component(home: Kit) -> None:
    with pytest.raises(ValueError, match="only a real-time endpoint hosts an inference component"):
        served(home, mode="serverless")
