"""The product's one-pager: name, objective, owners and contacts."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
)

from mlgate.manifest.base import Slug, Text, _Model

# --- product -------------------------------------------------------------------------------


class Contact(_Model):
    """A person the manifest can name as an owner or an approver."""

    id: Slug
    """Short handle used everywhere else in the manifest to name this person."""
    name: Text
    """Full name, shown in briefs and dashboards."""
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")]
    """Email address: gate briefs, warnings for metrics this person owns."""
    role: Text
    """Role, shown in the evidence brief (e.g. Compliance officer)."""
    slack_user_id: Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{6,}$")] | None = None
    """Slack member id; required for anyone who approves a gate from chat."""


class Owners(_Model):
    product_manager: Slug
    """Contact id of the product manager (owns business KPIs, signs off releases)."""
    ml_lead: Slug
    """Contact id of the ML lead (owns model metrics, approves model versions)."""
    on_call: Slug
    """Contact id of on-call (owns SLOs; subscribed to the on-call topic)."""


class Product(_Model):
    name: Slug
    """Namespaces every stack and physical name: lowercase letters, digits and dashes."""
    display_name: Text
    """Human name of the product, shown in dashboards and briefs."""
    objective: Text
    """What the product is for, in one or two sentences; heads every brief."""
    owners: Owners
    """Who owns the product, by role."""
    contacts: tuple[Contact, ...] = Field(min_length=1)
    """Everyone the manifest names as an owner or approver."""
    runbook_url: Annotated[str, StringConstraints(pattern=r"^https://\S+$")]
    """Where on-call finds the runbooks; linked from every alarm."""
    chat_channel: Text = "#ml-releases"
    """Chat channel the gate briefs are posted to."""
