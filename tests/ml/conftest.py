"""Pipeline settings shared by the ML tests (placeholders: nothing here reaches AWS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from mlgate.manifest import load_manifest

from ..conftest import EXAMPLES, refused_network
from ..spark_session import spark  # noqa: F401  (local Spark, shared with tests/etl)

PRODUCTS = sorted(p.parent.name for p in EXAMPLES.glob("*/manifest.yaml"))


@pytest.fixture(scope="session", params=PRODUCTS)
def manifest(request: pytest.FixtureRequest) -> Any:
    """Each example product in turn: every pipeline check runs for all of them."""
    return load_manifest(EXAMPLES / request.param / "manifest.yaml")


def pipeline_settings(manifest: Any) -> Any:
    from mlgate.infra.ml.pipeline import PipelineSettings, script_mode
    from mlgate.infra.ml.tracking import tracking_uri

    product = manifest.product.name
    return PipelineSettings(
        region=manifest.environments.staging.region,
        role_arn="arn:aws:iam::111111111111:role/training",
        bucket="artifacts-bucket",
        prefix=f"training/{product}",
        kms_key_arn=f"arn:aws:kms:{manifest.environments.staging.region}:111111111111:key/test",
        curated_s3_uri="s3://curated-bucket/curated/",
        preprocess_code_uri="s3://assets-bucket/0a1b.py",
        evaluate_code_uri="s3://assets-bucket/2c3d.py",
        contract_uri="s3://assets-bucket/4e5f.json",
        train_source_uri="s3://assets-bucket/6a7b.tar.gz" if script_mode(manifest) else None,
        model_package_group=f"mlgate-{product}",
        manifest_sha256="0" * 64,
        code_sha256="1" * 64,
        # The manifest's tracking server, and tracking.py's asset, as the training stack gives them.
        tracking_uri=tracking_uri(manifest, manifest.environments.staging.region, "111111111111"),
        tracking_code_uri="s3://assets-bucket/8c9d.py" if manifest.tracking else None,
    )


@pytest.fixture(scope="session")
def settings(manifest: Any) -> Any:
    return pipeline_settings(manifest)


_built: dict[str, dict[str, Any]] = {}
"""Pipeline definitions built in this run, by definition_key (everything a definition is built
from: the manifest, the settings, pipeline.py and the SDK's versions)."""


def build(manifest: Any, settings: Any) -> dict[str, Any]:
    """definition(manifest, settings), built once per distinct input in a run (the SDK takes
    about a second a build; the checks ask for the same product, engine and settings over and
    over), a copy each time. The tests of building itself (offline, deterministic, the cache)
    build their own."""
    import copy

    from mlgate.infra.ml.pipeline import definition, definition_key

    key = definition_key(manifest, settings)
    if key not in _built:
        _built[key] = definition(manifest, settings)
    return copy.deepcopy(_built[key])


@dataclass
class Built:
    body: dict[str, Any]
    attempts: list[Any]
    """What the build and the threads it started tried to reach (refused_network)."""


@pytest.fixture(scope="session")
def built(manifest: Any, settings: Any) -> Built:
    """Each product's pipeline definition, built afresh once with the network refused on every
    thread; the build waits for the threads it started (the SDK sends its telemetry from
    threads of its own), then seeds `build`'s memory."""
    import threading

    from mlgate.infra.ml.pipeline import definition, definition_key

    with refused_network() as attempts:
        before = set(threading.enumerate())
        body = definition(manifest, settings)
        for thread in set(threading.enumerate()) - before:
            thread.join(timeout=30)
    _built[definition_key(manifest, settings)] = body
    return Built(body, list(attempts))


@pytest.fixture(scope="session")
def built_definition(built: Built) -> dict[str, Any]:
    """Each product's pipeline definition, built once for the tests that read it."""
    return built.body


@pytest.fixture
def body(built_definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of the product's built definition, so no test sees another's changes."""
    import copy

    return copy.deepcopy(built_definition)
