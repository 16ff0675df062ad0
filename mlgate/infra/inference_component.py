"""The name of an environment's inference component (serving.<env>.inference_component), shared
by the Serving stack (mlgate/infra/constructs/endpoint.py) and the rehearsal's stand-in
endpoint, without importing CDK."""

from __future__ import annotations

from mlgate.infra.naming import Names

COMPONENT_SUFFIX = "model"
"""The inference component's name: the endpoint's, then this (Names.resource)."""


def component_name(names: Names) -> str:
    """The name of the inference component an environment's endpoint hosts (`names` are the
    environment's): AWS::SageMaker::InferenceComponent has no create-only property (its
    CloudFormation schema), so no update replaces it under this fixed name."""
    return names.resource(COMPONENT_SUFFIX)


WAKE_FROM_ZERO = "no-capacity-invocations"
"""What the alarm that scales a component out from zero copies is named after
(Names.alarm("system", WAKE_FROM_ZERO, "scaling"))."""
