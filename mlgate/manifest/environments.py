"""The accounts and regions of staging and prod, and retention per data class."""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
)

from mlgate.manifest.base import AWS_REGIONS, _Model


class Retention(_Model):
    """How long each class of the product's data is kept, in days. S3 lifecycle rules expire
    it (raw and curated buckets, the capture and reports prefixes of every artifact bucket); an
    object overwritten or expired before that stays as a noncurrent version for at most
    `NONCURRENT_DAYS` more, so a mistaken delete can be undone and nothing outlives its class
    by more. The evidence pack shows each class with where it is enforced."""

    raw: int = Field(default=30, ge=1, le=3650)
    """Raw data as the sources land it, customer ids and all: kept only until the ETL has
    curated it and a re-run could still need it, so short."""
    curated: int = Field(default=365, ge=1, le=3650)
    """Curated data every version is trained on: a year of history covers seasonality;
    longer only when the model needs it."""
    capture: int = Field(default=30, ge=1, le=3650)
    """Captured prod requests and answers (whole customer records): long enough for the
    monitor to judge them (its window, plus the ground-truth delay) and to investigate an
    incident, then gone."""
    reports: int = Field(default=400, ge=1, le=3650)
    """Monitoring reports and summaries (aggregates, no records): a year of drift history for
    the yearly model review, plus a month's margin."""
    audit: int = Field(default=2557, ge=365, le=3653)
    """Gate decisions and approvals (who approved which release, when): seven years, the
    review cycle regulators commonly ask for; never shorter than a year nor than any data
    class it vouches for."""


ARTIFACT_PREFIXES = {"capture": "datacapture/", "reports": "monitoring/"}


"""The data classes every artifact bucket keeps under a prefix: captured traffic (the
endpoint's capture destination, mlgate/infra/constructs/endpoint.py, and the monitor's staged copies
of it) and monitoring reports (Names.monitoring_reports)."""


NONCURRENT_DAYS = 30


"""How long an overwritten or expired object of a data class stays as a noncurrent version:
this, or its class's own days when shorter."""


class Environment(_Model):
    account: Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
    """12-digit AWS account id."""
    region: str
    """AWS region, e.g. eu-west-1."""

    @field_validator("region")
    @classmethod
    def _real_region(cls, value: str) -> str:
        if value not in AWS_REGIONS:
            near = difflib.get_close_matches(value, sorted(AWS_REGIONS), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ValueError(f"'{value}' is not an AWS region mlgate supports{hint}")
        return value


class Environments(_Model):
    staging: Environment
    """Where staging endpoints run; also home of the product-wide stacks."""
    prod: Environment
    """Where prod endpoints run: the staging account or another one (cross-account deploy
    roles), in the staging region."""
