"""The evidence pack's model cards: where each version's SageMaker Model Card is, how its status
follows the gates, and what it says, rendered offline with the model card hook's own content
function (mlgate/infra/cards.py) from the manifest and the last rehearsal's evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlgate.infra import cards
from mlgate.infra.naming import Names
from mlgate.manifest import Manifest

# Where the rehearsal files the evaluation's model metrics (tools/rehearsal_metrics.py).
EVALUATION_NAMESPACE = "mlgate/evaluation"


def rehearsal_evaluation(m: Manifest, folder: Path | None) -> tuple[dict[str, float], str] | None:
    """The model metrics of the product's last rehearsal (`folder`/<product>/metrics.json,
    where `make rehearse` writes them) and when it ran; None without one."""
    path = folder / m.product.name / "metrics.json" if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
        found = {
            series["name"]: float(series["points"][-1][1])
            for series in document.get("metrics", [])
            if series.get("namespace") == EVALUATION_NAMESPACE
            and series.get("dimensions", {}).get("Product") == m.product.name
            and series.get("points")
        }
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return (found, str(document.get("generated", "?"))) if found else None


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def content_rows(content: dict[str, Any]) -> list[list[str]]:
    """The card's content as (section, field, value) rows, each metric a row of its own."""
    rows = []
    for section, fields in content.items():
        for item in fields if isinstance(fields, list) else [fields]:
            for field, value in item.items():
                if field == "metric_groups":
                    rows += [
                        [section, f"metric {m['name']}", f"{_shown(m['value'])} ({m['notes']})"]
                        for group in value
                        for m in group["metric_data"]
                    ]
                else:
                    rows.append([section, field, _shown(value)])
    return rows


def model_cards(m: Manifest, rehearsal: Path | None) -> tuple[list[str], list[list[str]], str]:
    """(notes, the card's content as rows, the table's caption) for the pack's section."""
    names = Names.of(m)
    home = m.environments.staging
    prefix = cards.card_prefix(m)
    example = cards.card().card_name(prefix, 1)
    evaluated = rehearsal_evaluation(m, rehearsal)
    notes = [
        f"Each version registered in {names.model_package_group()} has a SageMaker Model Card "
        f"in the home account ({home.account}, {home.region}), kept by the model card hook and "
        f"named for the version: {prefix} and six digits ({example} for version 1). The "
        f"go-live brief ({cards.go_live_gate(m)}) links the version's card: "
        f"{cards.card().card_url(home.region, example)}.",
        f"Its status follows the gates: Draft when the version is registered; PendingReview "
        f"when {cards.review_gate(m)} asks its approvers; Approved once prod is verified "
        f"({cards.LIVE_STAGE} succeeded); Archived when a later version goes live. The hook "
        "moves a card only forward, so a replayed or retried event changes nothing.",
        "The card holds the manifest's governance text and the evaluation's figures, no "
        "data: it takes no customer managed key.",
        (
            f"The evaluation below is the last rehearsal's (`make rehearse`, {evaluated[1]}); "
            "on AWS each card holds its own version's registered evaluation report."
            if evaluated
            else "No rehearsal has run (`make rehearse` writes reports/rehearsal/<product>/"
            "metrics.json): the evaluation below is empty; on AWS each card holds its own "
            "version's registered evaluation report."
        ),
    ]
    content = cards.card_content(m, evaluated[0] if evaluated else None)
    source = "the last rehearsal's evaluation" if evaluated else "no evaluation yet"
    return notes, content_rows(content), f"A version's card, offline (the manifest; {source})"
