"""Loads a product's own Python code (its ETL transform, its data generator, its KPI stand-ins)
from the product's folder, the way the Glue job and the tests run it: as a module of its own
file, each product under its own module name so two products' `transform.py` never collide."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from mlgate.manifest import BusinessKpi, Manifest


def load_module(path: Path, name: str) -> ModuleType:
    """Import the file at `path` as module `name`; its folder is importable while it loads, so
    the product's helper modules next to it resolve as they do on Glue (zip root)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


def _module_name(manifest: Manifest, role: str) -> str:
    return f"mlgate_product_{manifest.product.name.replace('-', '_')}_{role}"


def transform_module(manifest: Manifest) -> ModuleType:
    """The product's ETL transform: `transform(spark, sources, params)`."""
    module = load_module(manifest.path(manifest.data.transform), _module_name(manifest, "etl"))
    if not callable(getattr(module, "transform", None)):
        raise AttributeError(
            f"{manifest.data.transform} defines no transform(spark, sources, params) function"
        )
    return module


def generator_module(manifest: Manifest) -> ModuleType:
    """The product's synthetic data: `sources(rows, seed) -> {source name: DataFrame}`."""
    if manifest.data.generator is None:
        raise ValueError(f"{manifest.product.name}: the manifest names no data.generator")
    module = load_module(manifest.path(manifest.data.generator), _module_name(manifest, "data"))
    if not callable(getattr(module, "sources", None)):
        raise AttributeError(f"{manifest.data.generator} defines no sources(rows, seed) function")
    return module


def stand_in_function(manifest: Manifest, kpi: BusinessKpi) -> Callable[[Any, str], Any]:
    """The KPI's offline stand-in: `function(batch, prediction)` from the file its `stand_in`
    names (the manifest's load has checked that the file exists and defines it)."""
    if kpi.stand_in_file is None or kpi.stand_in_function is None:
        raise ValueError(f"KPI {kpi.name} declares no stand_in")
    stem = Path(kpi.stand_in_file).with_suffix("").as_posix().replace("/", "_").replace("-", "_")
    module = load_module(manifest.path(kpi.stand_in_file), _module_name(manifest, f"kpi_{stem}"))
    function = getattr(module, kpi.stand_in_function, None)
    if not callable(function):
        raise AttributeError(
            f"the stand-in of KPI {kpi.name}: {kpi.stand_in_file} defines no function "
            f"{kpi.stand_in_function}(batch, prediction)"
        )
    return function  # type: ignore[no-any-return]


def training_contract(manifest: Manifest) -> dict[str, object]:
    """What the preprocessing and evaluation scripts know of the product, as JSON they read from
    their `contract` input: the schema's roles and the features in payload order."""
    schema = manifest.data.curated
    target = schema.column(schema.target_column)
    return {
        "product": manifest.product.name,
        "problem_type": manifest.model.problem_type.value,
        "id_column": schema.id_column,
        "event_time_column": schema.event_time_column,
        "target_column": schema.target_column,
        "target_values": list(target.values),
        "features": [
            {
                "name": name,
                "kind": "categorical" if schema.column(name).type == "string" else "numeric",
                "values": list(schema.column(name).values),
            }
            for name in manifest.features
        ],
        "payload_columns": list(manifest.payload_columns),
        "metrics": [m.name.value for m in manifest.metrics.model_metrics],
        "report_section": manifest.model.problem_type.report_section,
    }
