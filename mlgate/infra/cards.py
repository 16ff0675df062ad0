"""What a product's model cards know of it: the manifest's part of each card (objective, owners,
intended use, risks with mitigations, metrics with thresholds and owners), built here, and the
card's names and content, from the model card hook's own module.

The hook's card module (mlgate/runtime/hooks/model_card/card.py) is loaded from its file, as
Lambda loads it from the hooks' asset: runtime code ships without the package, so the two are
joined by the file, not by an import (tests/test_layout.py), and the stack, the evidence pack and
the hook compute one card alike. The module uses the standard library only.
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType
from typing import Any

from mlgate.infra.gates import kpi_rows
from mlgate.infra.naming import Names
from mlgate.infra.product_code import load_module
from mlgate.manifest import ENV_NAMES, GateKind, Manifest

# The hooks' asset folder (mlgate/infra/constructs/hooks.py LAMBDAS, without importing CDK).
CARD_MODULE = Path(__file__).resolve().parents[1] / "runtime" / "hooks" / "model_card" / "card.py"
LIVE_STAGE = "VerifyProd"
"""The release pipeline's stage that verifies prod, its last (ReleasePipeline names each
environment's Verify<Environment>): its success is a version's go-live."""
MAX_CONTEXT_BYTES = 3000
"""The encoded context's share of the hook's 4 KB of environment (the rest: its names)."""


@functools.cache
def card() -> ModuleType:
    """mlgate/runtime/hooks/model_card/card.py, loaded once per process."""
    return load_module(CARD_MODULE, "mlgate_model_card")


def card_prefix(manifest: Manifest) -> str:
    """Every card of the product is named this and its version's digits: the model package
    group's name (mlgate-<product>, at most 39 characters), then -v."""
    return f"{Names.of(manifest).model_package_group()}-v"


def review_gate(manifest: Manifest) -> str:
    """The first manual gate of the release pipeline: its request moves the version's card to
    PendingReview."""
    return next(g.name for g in manifest.pipeline_gates if g.kind is GateKind.MANUAL)


def go_live_gate(manifest: Manifest) -> str:
    """The last manual gate before prod: its brief links the version's card."""
    return [g.name for g in manifest.pipeline_gates if g.kind is GateKind.MANUAL][-1]


def card_context(manifest: Manifest) -> dict[str, Any]:
    """The manifest's part of every card of the product (card.content reads it)."""
    contact = manifest.contact
    owners = manifest.product.owners
    people = (
        ("Product manager", owners.product_manager),
        ("ML lead", owners.ml_lead),
        ("On-call", owners.on_call),
    )
    model = manifest.model
    mon = manifest.monitoring
    return {
        "product": manifest.product.name,
        "display_name": manifest.product.display_name,
        "objective": manifest.product.objective,
        "owners": [
            {"role": role, "name": contact(who).name, "title": contact(who).role}
            for role, who in people
        ],
        "model": {
            "problem_type": model.problem_type.value,
            "algorithm": model.algorithm.value,
            "version": model.version,
            "target": manifest.data.curated.target_column,
            "features": list(model.features),
        },
        "serving": {env: manifest.env_serving(env).mode.value for env in ENV_NAMES},
        "monitoring": {
            "engine": mon.engine.value,
            "schedule": mon.schedule,
            "drift_threshold": mon.drift_threshold,
            "cooldown_hours": mon.retrain_cooldown_hours,
            "environments": [env for env in ENV_NAMES if manifest.monitored(env)],
        },
        "gates": [
            {"name": g.name, "approvers": [contact(a).name for a in g.approvers]}
            for g in manifest.gates
        ],
        "metrics": [
            {
                "name": m.name.value,
                "threshold": m.threshold,
                "direction": m.direction.value,
                "owner": contact(m.owner).name,
                "description": m.description,
            }
            for m in manifest.metrics.model_metrics
        ],
        "kpis": kpi_rows(manifest),
        "slos": [
            {"name": s.name.value, "threshold": s.threshold, "owner": contact(s.owner).name}
            for s in manifest.metrics.slos
        ],
        "risks": [
            {
                "id": r.id,
                "title": r.title,
                "score": r.score,
                "status": r.status,
                "owner": contact(r.owner).name,
                "mitigation": r.mitigation,
            }
            for r in manifest.risks
        ],
    }


def encoded_context(manifest: Manifest) -> str:
    """The context as the hook's MODEL_CARD_CONTEXT, refused at synth time when it would not
    fit the function's environment."""
    value: str = card().encode(card_context(manifest))
    if len(value) > MAX_CONTEXT_BYTES:
        raise ValueError(
            f"{manifest.product.name}: the model cards' context takes {len(value)} bytes "
            f"encoded, more than the {MAX_CONTEXT_BYTES} its hook's environment leaves it: "
            "shorten the manifest's risks, metric descriptions or objective"
        )
    return value


def card_content(manifest: Manifest, metrics: dict[str, float] | None) -> dict[str, Any]:
    """What the hook writes on a version's card, as far as it is known offline: the manifest's
    part and an evaluation (`metrics`; None: none yet)."""
    content: dict[str, Any] = card().content(card_context(manifest), None, metrics)
    return content
