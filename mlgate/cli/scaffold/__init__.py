"""`python -m mlgate new NAME`: a working product folder, as `cdk init` makes a working app.

The manifest is rendered from the typed model itself, every field with its documentation as a
comment and its value (the scaffold's, or the default), so the scaffold can never fall behind
the model. The folder validates and synthesizes at once; replace the template code and data
with the product's own.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mlgate.manifest import MANIFEST_FILE, Manifest, parse_manifest
from mlgate.manifest.reference import _model_in

TEMPLATE = Path(__file__).resolve().parent / "template"
NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")


def settings(name: str) -> dict[str, Any]:
    """The scaffold's own values; every other field is rendered with its default."""
    people = [
        ("pmgr", "Product Manager", "Product manager", "U0000PM001"),
        ("mllead", "ML Lead", "ML lead", "U0000ML001"),
        ("oncall", "On Call", "On-call", "U0000OC001"),
    ]
    return {
        "product": {
            "name": name,
            "display_name": name.replace("-", " ").capitalize(),
            "objective": "Say in one or two sentences what the model decides and for whom.",
            "owners": {"product_manager": "pmgr", "ml_lead": "mllead", "on_call": "oncall"},
            "contacts": [
                {"id": i, "name": n, "email": f"{i}@example.com", "role": r, "slack_user_id": s}
                for i, n, r, s in people
            ],
            "runbook_url": f"https://wiki.example.com/ml/{name}/runbooks",
        },
        "metrics": {
            "business_kpis": [
                {
                    "name": "decisions-accepted",
                    "description": "Share of the model's decisions the business keeps.",
                    "owner": "pmgr",
                    "target": 0.9,
                    "direction": "at_least",
                    "unit": "fraction",
                    "metric_name": "DecisionsAccepted",
                    "stand_in": "kpis.py:decisions_accepted",
                }
            ],
            "model_metrics": [
                {
                    "name": "auc",
                    "description": "Ranking quality on the held-out test split.",
                    "owner": "mllead",
                    "threshold": 0.75,
                    "direction": "at_least",
                },
                {
                    "name": "precision",
                    "description": "Share of positive decisions that are right.",
                    "owner": "mllead",
                    "threshold": 0.6,
                    "direction": "at_least",
                },
            ],
            "slos": [
                {
                    "name": "latency_p99_ms",
                    "description": "Model latency p99 at the endpoint.",
                    "owner": "oncall",
                    "threshold": 300,
                },
                {
                    "name": "error_rate_5xx",
                    "description": "Share of invocations answered with a 5xx error.",
                    "owner": "oncall",
                    "threshold": 0.01,
                },
            ],
        },
        "gates": [
            {
                "name": "model-review",
                "kind": "manual",
                "placement": "model_registry",
                "description": "The ML lead reviews the evaluation report.",
                "approvers": ["mllead"],
            },
            {
                "name": "quality-gate",
                "kind": "automated",
                "placement": "after_staging",
                "description": "Registered metrics and staging SLOs meet the manifest.",
            },
            {
                "name": "go-live",
                "kind": "manual",
                "placement": "before_prod",
                "description": "The PM releases the version to production.",
                "approvers": ["pmgr"],
            },
        ],
        "risks": [
            {
                "id": "R1",
                "title": "The data the model sees drifts from what it was trained on",
                "likelihood": 3,
                "impact": 3,
                "owner": "mllead",
                "mitigation": "Drift monitoring starts retraining; the quality gate holds.",
            }
        ],
        "rice": {"reach": 10000, "impact": 1, "confidence": 0.5, "effort": 2},
        "data": {
            "sources": [{"name": "events", "format": "csv", "prefix": "events/"}],
            "curated": {
                "columns": [
                    {"name": "record_id", "type": "string", "description": "Record id"},
                    {"name": "occurred_at", "type": "timestamp"},
                    {"name": "feature_a", "type": "double"},
                    {"name": "feature_b", "type": "double"},
                    {"name": "segment", "type": "string", "values": ["a", "b", "c"]},
                    {"name": "label", "type": "int", "description": "1 for the positive class"},
                    {"name": "occurred_on", "type": "date"},
                ],
                "id_column": "record_id",
                "target_column": "label",
                "event_time_column": "occurred_at",
                "partition_keys": ["occurred_on"],
            },
            "transform": "etl/transform.py",
            "generator": "data/generate.py",
            "quality_rules": [
                "RowCount > 100",
                'IsComplete "record_id"',
                'IsUnique "record_id"',
                'ColumnValues "label" in [0, 1]',
            ],
        },
        "model": {
            "hyperparameters": {"objective": "binary:logistic", "num_round": 50, "max_depth": 4},
        },
        "serving": {
            "staging": {
                "instance_count": 1,
                "autoscaling": {"min_instances": 1, "max_instances": 2},
                "rollout": {"policy": "all_at_once", "termination_wait_minutes": 0},
            },
            "prod": {
                "instance_count": 2,
                "autoscaling": {"min_instances": 2, "max_instances": 4},
                "rollout": {"policy": "canary", "canary_percent": 10, "bake_minutes": 10},
            },
        },
        "environments": {
            "staging": {"account": "111111111111", "region": "eu-west-1"},
            "prod": {"account": "111111111111", "region": "eu-west-1"},
        },
    }


def new_product(name: str, parent: Path) -> Path:
    """Write `parent/name/` (manifest, transform, generator, KPI stand-in); refuse to overwrite
    anything."""
    if not NAME.match(name):
        raise ValueError(
            f"'{name}' is not a product name: lowercase letters, digits and dashes, 3-32 "
            "characters, starting with a letter"
        )
    folder = parent / name
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; choose another name or folder")
    shutil.copytree(TEMPLATE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    text = render_manifest(settings(name))
    (folder / MANIFEST_FILE).write_text(text, encoding="utf-8")
    # The scaffold must validate as it is: a broken template is a bug here, not the user's.
    parse_manifest(yaml.safe_load(text), folder / MANIFEST_FILE)
    return folder


def render_manifest(values: dict[str, Any]) -> str:
    header = (
        "# The product's one-pager and the settings of everything mlgate deploys for it.\n"
        "# Every field is listed with what it means; delete what you leave at its default.\n"
        "# Reference: docs/manifest-reference.md. Check it: python -m mlgate validate\n"
    )
    return header + "\n".join(_mapping(Manifest, values, 0)) + "\n"


def _mapping(model: type[BaseModel], values: dict[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for name, field in model.model_fields.items():
        for comment in textwrap.wrap(" ".join((field.description or "").split()), 92 - indent):
            lines.append(f"{pad}# {comment}")
        value = values.get(name, _default(field))
        sub = _model_in(field.annotation)
        if sub is not None and isinstance(value, dict):
            body = _mapping(sub, value, indent + 2)
            # A section whose fields are all commented out would load as null: keep it a
            # mapping, its fields still documented below it.
            empty = all(line.lstrip().startswith("#") for line in body)
            lines.append(f"{pad}{name}: {{}}" if empty else f"{pad}{name}:")
            lines += body
        elif sub is not None and isinstance(value, list) and value:
            lines.append(f"{pad}{name}:")
            for n, item in enumerate(value):
                body = _mapping(sub, item, indent + 4)
                first = next(i for i, line in enumerate(body) if not line.lstrip().startswith("#"))
                body[first] = f"{pad}  - {body[first].lstrip()}"
                # The first item documents the fields; the others only list their values.
                lines += [
                    line
                    for i, line in enumerate(body)
                    if i >= first and (n == 0 or not line.lstrip().startswith("#"))
                ]
        elif value is None:
            lines.append(f"{pad}# {name}:")
        else:
            lines.append(f"{pad}{name}: {_scalar(value)}")
    return lines


def _default(field: Any) -> Any:
    if field.default_factory is not None:
        return field.default_factory()
    value = field.default
    if value is PydanticUndefined:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_computed_fields=True)
    if isinstance(value, Enum):
        return value.value
    return list(value) if isinstance(value, tuple) else value


def _scalar(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    text = yaml.safe_dump(value, default_flow_style=True, width=1000, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()
