"""Stage gates, the risk register and RICE prioritisation."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    computed_field,
    field_validator,
    model_validator,
)

from mlgate.manifest.base import Slug, Text, _Model

# --- gates ---------------------------------------------------------------------------------


class GateKind(StrEnum):
    MANUAL = "manual"
    AUTOMATED = "automated"


class GatePlacement(StrEnum):
    """Where a gate sits in the release."""

    MODEL_REGISTRY = "model_registry"
    """Approval of the model version in the SageMaker model registry (starts the release)."""
    AFTER_STAGING = "after_staging"
    """In CodePipeline, once staging is deployed and verified."""
    BEFORE_PROD = "before_prod"
    """In CodePipeline, last before prod is deployed."""


class Gate(_Model):
    name: Slug
    """Gate identifier; names the CodePipeline stage and the SNS topic."""
    kind: GateKind
    """manual (people approve) or automated (the quality gate decides)."""
    placement: GatePlacement
    """model_registry, after_staging or before_prod."""
    description: Text
    """What the gate checks, shown to approvers."""
    approvers: tuple[Slug, ...] = ()
    """Contact ids allowed to decide; anyone else is refused."""
    requires: Literal["one", "all"] = "one"
    """one: the first approver's decision decides the gate (CodePipeline's own rule); all:
    the gate opens once every approver has approved, and any one rejection rejects it (from
    chat: a decision in the CodePipeline console is still one person's)."""
    timeout_hours: int = Field(default=72, ge=1, le=168)
    """CodePipeline expires a manual approval after at most 7 days."""

    @model_validator(mode="after")
    def _approvers_match_kind(self) -> Gate:
        if self.kind is GateKind.MANUAL and not self.approvers:
            raise ValueError("a manual gate needs at least one approver")
        if self.kind is GateKind.AUTOMATED and self.approvers:
            raise ValueError("an automated gate has no approvers; make it manual or drop them")
        if self.kind is GateKind.AUTOMATED and self.placement is GatePlacement.MODEL_REGISTRY:
            raise ValueError("the model registry gate is a person's approval; make it manual")
        if self.kind is GateKind.AUTOMATED and self.requires == "all":
            raise ValueError("an automated gate has no approvers to require all of; drop requires")
        if self.placement is GatePlacement.MODEL_REGISTRY and self.requires == "all":
            raise ValueError(
                "the model registry records one approval per version: a model_registry gate is "
                "decided by one approver (requires: one); put a gate that needs every approver "
                "after_staging or before_prod"
            )
        return self


# --- risks and prioritisation --------------------------------------------------------------


class Risk(_Model):
    id: Annotated[str, StringConstraints(pattern=r"^R[0-9]{1,3}$")]
    """Risk identifier, R1, R2, ..."""
    title: Text
    """What could go wrong."""
    likelihood: int = Field(ge=1, le=5)
    """1 (rare) to 5 (almost certain)."""
    impact: int = Field(ge=1, le=5)
    """1 (negligible) to 5 (severe)."""
    owner: Slug
    """Contact id of the risk's owner."""
    mitigation: Text
    """What reduces the risk."""
    status: Literal["open", "mitigated", "accepted", "closed"] = "open"
    """open, mitigated, accepted or closed; open risks appear in gate briefs."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def score(self) -> int:
        """Likelihood x impact, 1 to 25."""
        return self.likelihood * self.impact


class Rice(_Model):
    reach: int = Field(gt=0)
    """People or transactions affected per quarter."""
    impact: float
    """Intercom's scale: 0.25 minimal, 0.5 low, 1 medium, 2 high, 3 massive."""
    confidence: float = Field(gt=0, le=1)
    """0 to 1."""
    effort: float = Field(gt=0)
    """Person-months."""

    @field_validator("impact")
    @classmethod
    def _impact_scale(cls, value: float) -> float:
        if value not in (0.25, 0.5, 1, 2, 3):
            raise ValueError(f"impact {value} is not on the RICE scale 0.25, 0.5, 1, 2, 3")
        return value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def score(self) -> float:
        return round(float(self.reach * self.impact * self.confidence / self.effort), 1)
