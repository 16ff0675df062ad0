"""Conditions applied by an aspect: every resource of the listed kinds under a scope carries
the condition, however many there are and whichever method created them."""

from __future__ import annotations

import aws_cdk as cdk
import jsii
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


@jsii.implements(cdk.IAspect)
class ConditionOn:
    """Sets `condition` on every CfnResource of `kinds` under the scope it is added to."""

    def __init__(self, condition: cdk.CfnCondition, kinds: frozenset[str]) -> None:
        self.condition = condition
        self.kinds = kinds

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, cdk.CfnResource) and node.cfn_resource_type in self.kinds:
            node.cfn_options.condition = self.condition
