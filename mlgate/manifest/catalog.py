"""AWS's own tables the manifest is checked against, read from the SageMaker SDK's bundled
region tables (sagemaker/core/image_uri_config/*.json) without importing the SDK: which
framework versions have an image, and in which regions. mlgate/infra/ml/images.py builds the image
URIs from the same tables."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from mlgate.manifest.model import Algorithm

TABLES = Path("sagemaker") / "core" / "image_uri_config"


@cache
def sdk_table(name: str) -> dict[str, Any]:
    for entry in sys.path:
        path = Path(entry) / TABLES / f"{name}.json"
        if path.is_file():
            table: dict[str, Any] = json.loads(path.read_text())
            return table
    raise FileNotFoundError(
        f"the SageMaker SDK's image table {name}.json is not installed (requirements-sagemaker.txt)"
    )


def framework_problem(algorithm: Algorithm, version: str, region: str) -> str | None:
    """Why the algorithm's framework `version` has no image in `region`, naming what the SDK
    knows; None when it has one, for a custom image, or where the SDK's tables are not
    installed (synth says so then)."""
    if algorithm is Algorithm.CUSTOM_IMAGE:
        return None
    try:
        table = sdk_table("sklearn" if algorithm is Algorithm.SKLEARN else "xgboost")
    except FileNotFoundError:
        return None
    versions = table["training"]["versions"]
    found = versions.get(version)
    if found is None:
        known = ", ".join(sorted(v for v in versions if v))
        return f"{algorithm.value} has no image version {version!r}; the SDK knows {known}"
    if region not in found["registries"]:
        return f"{algorithm.value} {version} is not published in {region}"
    return None
