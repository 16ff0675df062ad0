"""Conditions applied to kinds of resource: every resource of the listed kinds under a scope
carries the condition, however many there are and whichever method created them."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

# What cannot exist before a model version is released: the endpoint and everything that
# watches, scales or monitors it.
NEEDS_A_MODEL = frozenset(
    {
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::SageMaker::DataQualityJobDefinition",
        "AWS::SageMaker::ModelQualityJobDefinition",
        "AWS::SageMaker::MonitoringSchedule",
    }
)


def condition_all(scope: IConstruct, condition: cdk.CfnCondition, kinds: frozenset[str]) -> None:
    """Sets `condition` on every CfnResource of `kinds` under `scope`. Call it once the scope is
    built (the stacks do, at the end of their constructors), so it sees every resource,
    whichever construct made it.

    One pass in Python, not a CDK aspect: node calls an aspect written in Python back for every
    construct of the stack, a round trip each (about 120 a product); tests/stacks check that
    every resource of these kinds in the synthesized templates carries the condition."""
    for child in scope.node.find_all():
        if isinstance(child, cdk.CfnResource) and child.cfn_resource_type in kinds:
            child.cfn_options.condition = condition
