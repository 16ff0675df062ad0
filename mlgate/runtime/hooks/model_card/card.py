"""A model version's SageMaker Model Card: its name, its statuses and its content.

Standard library only: the model card hook builds cards with it, the gate notifier links them,
and outside Lambda the stack (the context's encoding) and the evidence pack (the content, from
the manifest and the last rehearsal's evaluation) load this same file (mlgate/infra/cards.py).

The content follows SageMaker's model card JSON schema
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-cards.html#model-cards-json-schema; its
fields as the CloudFormation type documents them: https://docs.aws.amazon.com/
AWSCloudFormation/latest/UserGuide/aws-properties-sagemaker-modelcard-content.html): every
text is cut to the schema's length, and only the schema's fields are written.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any

# The approval statuses of a card (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
# API_CreateModelCard.html: Draft | PendingReview | Approved | Archived), in the order the
# release moves a card through them; Archived is final ("no more updates").
STATUSES = ("Draft", "PendingReview", "Approved", "Archived")
RANK = {status: rank for rank, status in enumerate(STATUSES)}
DIGITS = 6
"""A card's name ends in its version, zero-padded to this many digits: the hook's IAM grant
names exactly that many characters after the product's prefix (one `?` each), which no other
product's card name can match (mlgate/infra/constructs/model_cards.py)."""
MAX_VERSION = 10**DIGITS - 1


def later(current: str | None, target: str) -> bool:
    """Whether moving a card from `current` (None: no card yet) to `target` is a move forward;
    a card is never moved back."""
    return current is None or RANK[target] > RANK[current]


def card_name(prefix: str, version: int) -> str:
    """The card of `version`: the product's prefix and the version's DIGITS digits (SageMaker's
    name pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})."""
    if not 1 <= version <= MAX_VERSION:
        raise ValueError(f"model version {version} has no card name: 1 to {MAX_VERSION} only")
    return f"{prefix}{version:0{DIGITS}d}"


def version_of(prefix: str, name: str) -> int | None:
    """The version a card of this product is named for; None for any other name (another
    product's card may contain this prefix, never match it whole)."""
    found = re.fullmatch(rf"{re.escape(prefix)}(\d{{{DIGITS}}})", name)
    return int(found.group(1)) if found and int(found.group(1)) >= 1 else None


def card_url(region: str, name: str) -> str:
    """The card's page in the SageMaker console (Governance, Model cards). AWS documents no
    deep-link form; the brief names the card too, so it can be found by name."""
    return (
        f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
        f"#/model-cards/{name}"
    )


def encode(context: dict[str, Any]) -> str:
    """The manifest's part of the card, as one environment variable: compact JSON, deflated and
    base64 (Lambda allows 4 KB of environment in all)."""
    text = json.dumps(context, separators=(",", ":"), sort_keys=True).encode()
    return base64.b64encode(zlib.compress(text, 9)).decode()


def decode(value: str) -> dict[str, Any]:
    context: dict[str, Any] = json.loads(zlib.decompress(base64.b64decode(value)))
    return context


# SageMaker's model quality report: one section per problem type
# (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html).
REPORT_SECTIONS = (
    "binary_classification_metrics",
    "multiclass_classification_metrics",
    "regression_metrics",
)


def report_metrics(report: Any) -> dict[str, float]:
    """The numbers of the report's problem-type section ({metric: {"value": x}} or plain
    numbers); empty for anything that is not such a report."""
    sections = report if isinstance(report, dict) else {}
    for section in REPORT_SECTIONS:
        found = sections.get(section)
        if isinstance(found, dict):
            values = {k: v.get("value") if isinstance(v, dict) else v for k, v in found.items()}
            return {
                k: float(v)
                for k, v in values.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
    return {}


def clip(text: str, most: int) -> str:
    """`text` within the schema's `most` characters, cut with an ellipsis."""
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def _words(slug: str) -> str:
    return slug.replace("_", " ")


def _target(direction: str, value: float, unit: str = "") -> str:
    return f"{_words(direction)} {value:g}{f' {unit}' if unit else ''}"


def met(metric: dict[str, Any], value: float) -> bool:
    return bool(
        value >= metric["threshold"]
        if metric["direction"] == "at_least"
        else value <= metric["threshold"]
    )


# A risk's score is likelihood x impact on the manifest's 5 x 5 scale: from 15 (e.g. 3 x 5) a
# risk rates High, from 8 Medium, below that Low; closed risks do not count.
HIGH, MEDIUM = 15, 8


def risk_rating(risks: list[dict[str, Any]]) -> str:
    """SageMaker's rating (High | Medium | Low | Unknown) of the highest-scoring risk that is
    not closed; Unknown when the manifest declares none."""
    scores = [r["score"] for r in risks if r["status"] != "closed"]
    if not scores:
        return "Unknown"
    top = max(scores)
    return "High" if top >= HIGH else "Medium" if top >= MEDIUM else "Low"


def evaluation(context: dict[str, Any], metrics: dict[str, float] | None) -> dict[str, Any]:
    """The version's evaluation against the manifest's model metrics: each metric's value,
    threshold, owner and whether it meets it."""
    rows = []
    for m in context["metrics"]:
        value = (metrics or {}).get(m["name"])
        verdict = "not evaluated" if value is None else "met" if met(m, value) else "NOT MET"
        rows.append({**m, "value": value, "verdict": verdict})
    return {"rows": rows, "evaluated": metrics is not None}


def content(
    context: dict[str, Any],
    version: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The card's content: the manifest's part (`context`, mlgate/infra/cards.py), the
    registered version's (`version`: arn, group, number, model_data_url, image, report_uri,
    metadata; None offline) and its evaluation (`metrics`; None when there is none)."""
    owners = context["owners"]
    people = {o["role"]: o for o in owners}
    model = context["model"]
    risks = sorted(context["risks"], key=lambda r: (-r["score"], r["id"]))
    overview: dict[str, Any] = {
        "model_name": clip(context["display_name"], 1024),
        "model_description": clip(context["objective"], 1024),
        "model_creator": clip(_person(people["ML lead"]), 1024),
        "model_owner": clip(_person(people["Product manager"]), 1024),
        "problem_type": _words(model["problem_type"]),
        "algorithm_type": clip(
            " ".join(p for p in (model["algorithm"], model["version"]) if p), 1024
        ),
    }
    if version is not None:
        overview["model_version"] = version["number"]
        if version.get("model_data_url"):
            overview["model_artifact"] = [version["model_data_url"]]
        if version.get("image"):
            overview["inference_environment"] = {"container_image": [version["image"]]}
    gates = "; ".join(f"{g['name']} ({', '.join(g['approvers']) or 'automated'})"
                      for g in context["gates"])  # fmt: skip
    serving = ", ".join(f"{env} {mode}" for env, mode in context["serving"].items())
    monitoring = context["monitoring"]
    uses = (
        f"Predicts {model['target']} ({_words(model['problem_type'])}) from "
        f"{len(model['features'])} features: {', '.join(model['features'])}. Served by "
        f"{context['display_name']}'s endpoints ({serving}); a version reaches prod only "
        f"through the release gates, in order: {gates}."
    )
    factors = _drift(monitoring)
    explained = " ".join(
        f"{r['id']} (likelihood x impact {r['score']}, {r['status']}, owner {r['owner']}): "
        f"{r['title']}. Mitigation: {r['mitigation']}"
        for r in risks
    )
    stakeholders = "; ".join(f"{o['role']} {_person(o)}" for o in owners)
    stakeholders += f". Gate approvers: {gates}."
    found = evaluation(context, metrics)
    observed = (
        "; ".join(
            f"{r['name']} {'-' if r['value'] is None else format(r['value'], '.4g')}: "
            f"{r['verdict']} (needs {_target(r['direction'], r['threshold'])}, owner "
            f"{r['owner']})"
            for r in found["rows"]
        )
        if metrics is not None
        else "No evaluation report: the version's metrics against the manifest's thresholds "
        "(" + "; ".join(
            f"{r['name']} {_target(r['direction'], r['threshold'])}, owner {r['owner']}"
            for r in found["rows"]
        ) + ") are not known yet."
    )  # fmt: skip
    evaluated: dict[str, Any] = {
        "name": "evaluation on the test split",
        "evaluation_observation": clip(observed, 2096),
    }
    if version is not None and version.get("report_uri"):
        evaluated["datasets"] = [version["report_uri"]]
    data = [
        {
            "name": clip(r["name"], 255),
            "type": "number",
            "value": r["value"],
            "notes": clip(
                f"threshold: {_target(r['direction'], r['threshold'])}; owner {r['owner']}; "
                f"{r['verdict']}. {r['description']}",
                1024,
            ),
        }
        for r in found["rows"]
        if r["value"] is not None
    ]
    if data:
        evaluated["metric_groups"] = [{"name": "model metrics and thresholds", "metric_data": data}]
    caveats = (
        "Business KPIs, watched in prod: "
        + "; ".join(f"{k['name']} {_target(k['direction'], k['target'], k['unit'])} "
                    f"(owner {k['owner']})" for k in context["kpis"])
        + ". Service levels: "
        + "; ".join(f"{s['name']} at most {s['threshold']:g} (owner {s['owner']})"
                    for s in context["slos"])
        + "."
    )  # fmt: skip
    details = {"product": context["product"]}
    card: dict[str, Any] = {
        "model_overview": overview,
        "intended_uses": {
            "purpose_of_model": clip(context["objective"], 2048),
            "intended_uses": clip(uses, 2048),
            "factors_affecting_model_efficiency": clip(factors, 2048),
            "risk_rating": risk_rating(risks),
            "explanations_for_risk_rating": clip(explained, 2048),
        },
        "business_details": {
            "business_problem": clip(context["objective"], 2048),
            "business_stakeholders": clip(stakeholders, 2048),
            "line_of_business": clip(context["display_name"], 2048),
        },
        "evaluation_details": [evaluated],
        "additional_information": {
            "caveats_and_recommendations": clip(caveats, 2048),
            "custom_details": details,
        },
    }
    if version is not None:
        details["model_package_arn"] = version["arn"]
        for key in ("manifest_sha256", "code_sha256", "training_execution"):
            if version.get("metadata", {}).get(key):
                details[key] = clip(str(version["metadata"][key]), 1024)
        # The card of a registered version (https://docs.aws.amazon.com/AWSCloudFormation/
        # latest/UserGuide/aws-properties-sagemaker-modelcard-modelpackagedetails.html).
        card["model_package_details"] = {
            "model_package_arn": version["arn"],
            "model_package_group_name": version["group"],
            "model_package_version": version["number"],
        }
    return card


def _drift(monitoring: dict[str, Any]) -> str:
    """What the monitoring watches for, in words."""
    if not monitoring["environments"]:
        return (
            "Drift in the features' distribution; no environment captures traffic, so none is "
            "monitored: retraining runs on its schedule and on new data only."
        )
    trigger = (
        f"a drifted-feature share above {monitoring['drift_threshold']:g}"
        if monitoring["engine"] == "evidently"
        else "a Model Monitor violation"
    )
    return (
        f"Drift in the features' distribution, monitored on {', '.join(monitoring['environments'])}"
        f" ({monitoring['schedule']}): {trigger} starts retraining, at most once every "
        f"{monitoring['cooldown_hours']} h."
    )


def _person(person: dict[str, Any]) -> str:
    return f"{person['name']} ({person['title']})"
