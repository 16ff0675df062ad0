"""What the gate hooks know about the product: built from the manifest, handed to them as JSON.

The gate notifier renders briefs from it; the stack passes it as one environment variable, so
it is kept compact (Lambda allows 4 KB of environment in all).
"""

from __future__ import annotations

import json
from typing import Any

from mlgate.infra.naming import Names
from mlgate.manifest import GateKind, Manifest

MAX_CONTEXT_BYTES = 3500


def kpi_rows(manifest: Manifest) -> list[dict[str, Any]]:
    """The business KPIs as the gate briefs and the model cards show them, owners by name."""
    return [
        {
            "name": k.name,
            "target": k.target,
            "direction": k.direction.value,
            "unit": k.unit,
            "owner": manifest.contact(k.owner).name,
        }
        for k in manifest.metrics.business_kpis
    ]


def gate_context(
    manifest: Manifest,
    *,
    brief_topics: dict[str, str],
    dashboard_url: str,
    monitoring_url: str = "",
) -> dict[str, Any]:
    """Keyed by the CodePipeline stage name of each manual gate. `monitoring_url`: where the
    staging endpoint's monitoring reports are (the version under review runs there)."""
    contact = manifest.contact
    return {
        "product": manifest.product.name,
        "display_name": manifest.product.display_name,
        "objective": manifest.product.objective,
        "dashboard_url": dashboard_url,
        "monitoring_url": monitoring_url,
        "gates": {
            Names.of(manifest).gate_stage(g.name): {
                "name": g.name,
                "description": g.description,
                "timeout_hours": g.timeout_hours,
                "brief_topic_arn": brief_topics.get(g.name, ""),
                "approvers": [
                    {"name": contact(a).name, "slack_user_id": contact(a).slack_user_id or ""}
                    for a in g.approvers
                ],
                # one (the first decision decides) or all (every approver approves)
                "requires": g.requires,
            }
            for g in manifest.pipeline_gates
            if g.kind is GateKind.MANUAL
        },
        "model_metrics": [
            {
                "name": m.name.value,
                "threshold": m.threshold,
                "direction": m.direction.value,
                "owner": contact(m.owner).name,
            }
            for m in manifest.metrics.model_metrics
        ],
        "kpis": kpi_rows(manifest),
        "risks": [
            {"id": r.id, "title": r.title, "score": r.score, "owner": contact(r.owner).name}
            for r in manifest.open_risks
        ],
    }


def encoded(context: dict[str, Any]) -> str:
    """Compact JSON, refused at synth time when it would not fit a Lambda environment."""
    text = json.dumps(context, separators=(",", ":"))
    if len(text.encode()) > MAX_CONTEXT_BYTES:
        raise ValueError(
            f"{context['product']}: the gate context is {len(text.encode())} bytes, more than "
            f"{MAX_CONTEXT_BYTES}; shorten descriptions, risks or KPI names in the manifest"
        )
    return text


def thresholds(manifest: Manifest) -> dict[str, Any]:
    """What the quality gate holds a release to: model metrics and system SLOs."""
    return {
        "model_metrics": [
            {"name": m.name.value, "threshold": m.threshold, "direction": m.direction.value}
            for m in manifest.metrics.model_metrics
        ],
        "slos": [{"name": s.name.value, "threshold": s.threshold} for s in manifest.metrics.slos],
    }
