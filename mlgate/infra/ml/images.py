"""The container images a product's jobs and endpoints run, read straight from the SageMaker
SDK's bundled region tables (sagemaker/core/image_uri_config/*.json), without importing the
SDK: importing it costs seconds that a synth that serves its pipeline from the cache should not
pay. tests/ml check every URI against the SDK's own `image_uris.retrieve`.
"""

from __future__ import annotations

from typing import Any

from mlgate.manifest import Algorithm, Manifest
from mlgate.manifest.catalog import sdk_table as _table

# Pinned by tag, not by digest: the SDK's tables give each image version a repository, a
# registry account per region and tags, and no digest (no "digest" or "sha256:" in any of
# sagemaker/core/image_uri_config/*.json; tests/ml/test_pipeline_definition.py fails the day
# one appears, so it is pinned then). A digest read from ECR at synth would need the network
# and the registry's credentials, which synth never uses.


def _uri(versions: dict[str, Any], version: str, region: str, tag: str) -> str:
    found = versions.get(version)
    if found is None:
        known = ", ".join(sorted(v for v in versions if v))
        raise ValueError(f"no image version {version!r}; the SDK knows {known}")
    registries = found["registries"]
    if region not in registries:
        raise ValueError(f"{found['repository']} {version} is not published in {region}")
    uri = f"{registries[region]}.dkr.ecr.{region}.amazonaws.com/{found['repository']}"
    return f"{uri}:{tag}" if tag else uri


def image_uris(manifest: Manifest, region: str) -> dict[str, str]:
    """`model` trains, serves and runs the product's scripts; `model-monitor` computes the
    data-quality baseline."""
    model = manifest.model
    if model.algorithm is Algorithm.CUSTOM_IMAGE:
        image = model.image_uri or ""
    elif model.algorithm is Algorithm.SKLEARN:
        versions = _table("sklearn")["training"]["versions"]
        image = _uri(versions, model.version, region, f"{model.version}-cpu-py3")
    else:
        versions = _table("xgboost")["training"]["versions"]
        image = _uri(versions, model.version, region, model.version)
    monitor = _table("model-monitor")["versions"]
    return {"model": image, "model-monitor": _uri(monitor, "", region, "")}


MONITORING_FRAMEWORK = "1.4-2-py312"
"""AWS's prebuilt scikit-learn image on Python 3.12, where the Evidently monitoring job runs
(mlgate/runtime/monitoring_job: its pinned requirements install on 3.12)."""


def monitoring_image(region: str) -> str:
    versions = _table("sklearn")["training"]["versions"]
    return _uri(versions, MONITORING_FRAMEWORK, region, f"{MONITORING_FRAMEWORK}-cpu-py3")
