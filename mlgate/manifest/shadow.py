"""The shadow test of a real-time environment: the new version answers a copy of live traffic
beside the version in service, before any traffic moves to it.

SageMaker shadow variants (an endpoint config's ShadowProductionVariants): the production
variant answers every request; SageMaker copies `sampling_percent` of them to the shadow
variant, whose answers are captured and measured but never returned
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-shadow-deployment.html). An endpoint
with a shadow variant has one production variant, and serverless and asynchronous endpoints
cannot have one (https://docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-exclusions.html).
"""

from __future__ import annotations

from pydantic import Field

from mlgate.manifest.base import InstanceType, _Model

SHADOW_EXCLUSIONS = "https://docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-exclusions.html"


class ShadowTest(_Model):
    """Run the new version as a shadow variant before the canary, and hold it to production's
    latency, errors and predictions."""

    minutes: int = Field(default=60, ge=10, le=20 * 60)
    """How long the shadow variant takes copied traffic before it is judged: at most 20 hours,
    within the 24 hours CodePipeline gives a Lambda action
    (https://docs.aws.amazon.com/codepipeline/latest/userguide/limits.html) with room for
    adding and removing the shadow variant."""
    sampling_percent: int = Field(default=100, ge=1, le=100)
    """Share of production's requests SageMaker copies to the shadow variant, set as the shadow
    variant's weight against production's 1.0 (AWS's pages state no rule for that weight: see
    the platform engineer's page, Shadow tests); each verdict records the share copied."""
    instance_type: InstanceType | None = None
    """The shadow variant's instances (default: the environment's instance_type)."""
    instance_count: int = Field(default=1, ge=1, le=10)
    """The shadow variant's instance count, billed while the test runs."""
    min_requests: int = Field(default=100, ge=1)
    """Requests the shadow must have answered; fewer is no evidence and fails the test."""
    max_latency_ratio: float = Field(default=1.5, gt=1, le=10)
    """The shadow's average model latency may be at most this times production's."""
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    """The shadow's share of requests answered with an error (4xx or 5xx) may be at most this
    much above production's."""
    max_prediction_shift: float = Field(default=0.1, gt=0, le=1)
    """How far the shadow's predictions may be from production's on the same requests: the
    Wasserstein distance of the two score distributions divided by the standard deviation of
    production's (numeric predictions), or the Jensen-Shannon distance of the two label
    distributions (categorical ones); the monitoring job's drift measures."""
