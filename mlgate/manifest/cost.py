"""Cost guardrails: the product's monthly budget, idle-endpoint alarm, spot training, and the
assumptions of the monthly estimate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mlgate.manifest.base import _Model


class Cost(_Model):
    """What the product may spend, and what the monthly estimate assumes."""

    monthly_budget: float | None = Field(default=None, gt=0)
    """The product's monthly AWS Budgets budget, in `currency`; None deploys no budget. The
    budget counts cost tagged mlgate:product=<product name>, once that tag is activated as a
    cost allocation tag in Billing (docs/platform-engineer.md, "Cost guardrails")."""
    currency: Literal["USD"] = "USD"
    """The budget's currency: AWS Budgets' cost budgets are in USD."""
    forecast_alert_percent: int = Field(default=80, ge=1, le=1000)
    """The budget alerts the PM and on-call when the month's forecast reaches this share."""
    actual_alert_percent: int = Field(default=100, ge=1, le=1000)
    """The budget alerts the PM and on-call when the month's actual cost reaches this share."""
    idle_endpoint_hours: int = Field(default=24, ge=1, le=168)
    """An endpoint that answers no request for this many hours raises the idle-endpoint
    warning (to the PM): it is billed by the hour whether it serves or not. An environment
    with off_hours waits longer than its longest stretch of them (61 h for MON-FRI 08:00-19:00)
    so as not to warn every weekend."""
    use_spot: bool = False
    """Train on managed spot capacity: cheaper, may wait for capacity and be interrupted; an
    interrupted built-in XGBoost job resumes from its checkpoints in S3."""
    max_wait_hours: float = Field(default=2.0, gt=0, le=672)
    """With use_spot: how long a training job may take in all, waiting for spot capacity
    included (SageMaker's MaxWaitTimeInSeconds); at least training_hours_per_run."""
    training_hours_per_run: float = Field(default=1.0, gt=0, le=672)
    """How long one training job runs (the training job's MaxRuntimeInSeconds, and the
    estimate's hours per run)."""
    processing_hours_per_job: float = Field(default=0.25, gt=0, le=48)
    """The estimate's hours per preprocessing, evaluation and baseline job of a training run."""
    etl_hours_per_run: float = Field(default=0.25, gt=0, le=48)
    """The estimate's hours per ETL run (the curation job and the quality job each)."""
    monitoring_hours_per_run: float = Field(default=0.25, gt=0, le=24)
    """The estimate's hours per monitoring job."""
    batch_hours_per_run: float = Field(default=0.5, gt=0, le=48)
    """The estimate's hours per batch run (its prepare job and its transform job each)."""
    drift_retrains_per_month: int = Field(default=0, ge=0, le=100)
    """The estimate's training runs started by drift each month, besides the scheduled ones
    and those after each ETL run."""

    @model_validator(mode="after")
    def _spot_waits_for_a_run(self) -> Cost:
        if self.use_spot and self.max_wait_hours < self.training_hours_per_run:
            raise ValueError(
                f"max_wait_hours ({self.max_wait_hours:g}) must be at least "
                f"training_hours_per_run ({self.training_hours_per_run:g}): SageMaker refuses a "
                "spot job whose MaxWaitTimeInSeconds is below its MaxRuntimeInSeconds"
            )
        return self
