"""Serving (rollout, autoscaling), monitoring and delivery settings."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from mlgate.manifest.base import InstanceType, MonitorSchedule, RelativePath, _Model


class RolloutPolicy(StrEnum):
    CANARY = "canary"
    LINEAR = "linear"
    ALL_AT_ONCE = "all_at_once"


class Rollout(_Model):
    """Blue/green traffic shifting for one environment."""

    policy: RolloutPolicy
    """canary, linear or all_at_once blue/green traffic shifting."""
    canary_percent: int = Field(default=10, ge=1, le=50)
    """canary: share of capacity that takes traffic first."""
    linear_step_percent: int = Field(default=25, ge=5, le=50)
    """linear: share of capacity shifted at each step."""
    bake_minutes: int = Field(default=10, ge=0, le=60)
    """How long each traffic step bakes while rollback alarms watch."""
    termination_wait_minutes: int = Field(default=5, ge=0, le=60)
    """How long the old (blue) fleet is kept after the shift completes."""
    max_execution_timeout_minutes: int = Field(default=120, ge=10, le=480)
    """The whole deployment is rolled back if it takes longer."""
    allow_all_at_once: bool = False
    """Prod refuses all_at_once unless this is set explicitly."""
    max_first_step_percent: int = Field(default=50, ge=1, le=100)
    """The most traffic the first step (canary or linear) may carry once rounded up to whole
    instances: a 10 % canary of 2 instances is 1 instance, 50 % of the traffic."""

    def first_step(self, instances: int) -> tuple[int, float]:
        """(instances, share of traffic in %) of the first step: SageMaker moves traffic in
        whole instances, rounding the step's capacity up."""
        if self.policy is RolloutPolicy.ALL_AT_ONCE:
            return instances, 100.0
        step = (
            self.canary_percent
            if self.policy is RolloutPolicy.CANARY
            else (self.linear_step_percent)
        )
        shifted = -(-instances * step // 100)
        return shifted, round(100 * shifted / instances, 1)


class Autoscaling(_Model):
    enabled: bool = True
    """Off while the instance type changes: SageMaker refuses that update while a scaling
    target is registered (docs/platform-engineer.md, "Changing the instance type")."""
    min_instances: int = Field(default=1, ge=1)
    """Autoscaling lower bound."""
    max_instances: int = Field(default=4, ge=1, le=100)
    """Autoscaling upper bound."""
    target_invocations_per_instance: int = Field(default=500, ge=1)
    """Target tracking value of SageMakerVariantInvocationsPerInstance."""

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.max_instances < self.min_instances:
            raise ValueError("max_instances must be at least min_instances")
        return self


class ServingMode(StrEnum):
    """How an environment's endpoint serves: each mode has the same release path (gates,
    verifier, alarms, dashboard)."""

    REAL_TIME = "real-time"
    """Instances always on, answering InvokeEndpoint."""
    SERVERLESS = "serverless"
    """SageMaker Serverless Inference: no instances, billed per request, 0 when idle."""
    ASYNC = "async"
    """SageMaker Asynchronous Inference: requests queued in S3, instances scaled on the
    backlog, down to 0 when idle."""


SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
"""ServerlessConfig.MemorySizeInMB's values (https://docs.aws.amazon.com/sagemaker/latest/
APIReference/API_ProductionVariantServerlessConfig.html)."""


class Serverless(_Model):
    """A serverless endpoint's capacity (ProductionVariantServerlessConfig)."""

    memory_mb: int = 2048
    """Memory of each concurrent copy of the model: 1024 to 6144 in steps of 1024; vCPUs grow
    with it."""
    max_concurrency: int = Field(default=20, ge=1, le=200)
    """Concurrent invocations the endpoint serves; more are throttled."""
    provisioned_concurrency: int | None = Field(default=None, ge=1, le=200)
    """Invocations kept warm (no cold start), billed while provisioned; at most
    max_concurrency. None: 0 when idle."""

    @model_validator(mode="after")
    def _capacity(self) -> Serverless:
        if self.memory_mb not in SERVERLESS_MEMORY_MB:
            raise ValueError(
                f"memory_mb {self.memory_mb} is not one SageMaker offers: "
                f"{', '.join(map(str, SERVERLESS_MEMORY_MB))}"
            )
        if (
            self.provisioned_concurrency is not None
            and self.provisioned_concurrency > self.max_concurrency
        ):
            raise ValueError(
                f"provisioned_concurrency {self.provisioned_concurrency} is above "
                f"max_concurrency {self.max_concurrency}: SageMaker needs it at most that"
            )
        return self


class AsyncServing(_Model):
    """An asynchronous endpoint's queue (AsyncInferenceConfig) and its scaling on the backlog.

    https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html"""

    max_concurrent_invocations_per_instance: int | None = Field(default=None, ge=1, le=1000)
    """Requests SageMaker sends each instance's container at once (None: SageMaker picks)."""
    backlog_per_instance: int = Field(default=5, ge=1, le=1000)
    """Target tracking value of ApproximateBacklogSizePerInstance: queued requests per
    instance before scaling out."""
    scale_to_zero: bool = True
    """Idle: 0 instances (autoscaling's minimum is 0), woken by the first queued request;
    False keeps autoscaling.min_instances always on."""


class EnvironmentServing(_Model):
    mode: ServingMode = ServingMode.REAL_TIME
    """real-time (instances always on), serverless (0 when idle, billed per request) or
    async (queued requests, instances scaled on the backlog, 0 when idle)."""
    instance_type: InstanceType = "ml.m5.large"
    """Endpoint instance type (real-time and async)."""
    instance_count: int = Field(default=2, ge=1, le=50)
    """Instances the endpoint starts with (real-time and async)."""
    autoscaling: Autoscaling = Autoscaling()
    """Target-tracking bounds (real-time and async: async tracks the backlog)."""
    serverless: Serverless | None = None
    """Memory and concurrency; serverless mode only (required there)."""
    async_: AsyncServing | None = Field(default=None, alias="async")
    """Queue and backlog scaling; async mode only (default settings when left out)."""
    rollout: Rollout
    """Blue/green traffic shifting policy for updates."""

    @property
    def async_settings(self) -> AsyncServing:
        """The async settings, defaults when the manifest gives none."""
        return self.async_ or AsyncServing()


class Serving(_Model):
    data_capture_sampling_percent: int = Field(default=20, ge=1, le=100)
    """Share of requests and responses captured for monitoring."""
    sample_request: RelativePath | None = None
    """A CSV file beside the manifest: a header row naming the payload's features, then one
    record the deploy verifier sends; required with a product preprocess (default: built
    from the schema)."""
    smoke_requests: int = Field(default=50, ge=1, le=500)
    """Requests the automated quality gate sends to staging, rows of the version's held-out
    test split, to judge the new fleet's latency and errors against the SLOs."""
    staging: EnvironmentServing
    """Endpoint settings in staging."""
    prod: EnvironmentServing
    """Endpoint settings in prod."""


class MonitoringEngine(StrEnum):
    """What watches the endpoint's captured traffic."""

    EVIDENTLY = "evidently"
    """mlgate's Evidently job (mlgate/runtime/monitoring_job) as a SageMaker Processing job, in any
    account."""
    MODEL_MONITOR = "model-monitor"
    """SageMaker Model Monitor schedules, for accounts that already use it: it no longer takes
    new customers."""


class Monitoring(_Model):
    engine: MonitoringEngine = MonitoringEngine.EVIDENTLY
    """evidently (mlgate's job, works in a new account) or model-monitor (SageMaker Model
    Monitor, closed to new customers: only where the account already has it)."""
    schedule: MonitorSchedule = "cron(0 * ? * * *)"
    """When monitoring checks captured traffic against the baseline: hourly, daily at an
    hour, or every N hours (the forms SageMaker accepts); each run looks back one interval."""
    drift_threshold: float = Field(default=0.1, gt=0, le=1)
    """Share of features (0 to 1) that may drift before drift is declared: the drift alarm
    fires, and retraining starts, when a run's share of drifted features is above it."""
    feature_drift_thresholds: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    """Per-feature drift-score thresholds, {feature: score}, for features of the curated
    schema; a feature drifts when its score is at or above its threshold (default 0.1)."""
    retrain_cooldown_hours: int = Field(default=24, ge=1, le=720)
    """After drift starts retraining, further drift waits this long."""
    ground_truth_s3_uri: Annotated[str, StringConstraints(pattern=r"^s3://\S+/$")] | None = None
    """Where labelled outcomes land, as SageMaker's ground-truth records whose eventId is the
    inference id of the captured request (docs/monitoring.md); enables live model metrics."""
    ground_truth_delay_hours: int = Field(default=24, ge=1, le=720)
    """How long after an inference its label has landed; model quality is computed only on
    inferences at least this old."""


class Delivery(_Model):
    """How the release pipeline's hooks run."""

    callback_reserved_concurrency: int | None = Field(default=None, ge=1, le=1000)
    """Concurrent executions reserved for the public gate callback, so a flood of requests
    cannot take the account's concurrency from the other functions. None (the default) reserves
    nothing: Lambda refuses a reservation that leaves fewer than 100 executions unreserved, and
    a new account's limit can be as low as 10. Set it once `mlgate preflight` shows the
    account's limit covers it
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html)."""
