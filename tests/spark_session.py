"""Local Spark for the tests that run products' transforms (tests/etl, tests/ml): one session
for the whole run (starting Spark costs seconds), and the example products' raw data read the
way the Glue job reads it, each source in its manifest format."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlgate.manifest import Manifest, load_manifest
from tools.local_pipeline import write_curated, write_sources

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MANIFESTS = sorted((ROOT / "examples").glob("*/manifest.yaml"))
"""Every example product: tests parametrized over these pick up a new one by themselves."""


def example(name: str) -> Manifest:
    return load_manifest(ROOT / "examples" / name / "manifest.yaml")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("mlgate-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# The sources as the Glue job reads them and the curated data as it writes it: one
# implementation, shared with the rehearsal.
raw_sources = write_sources
__all__ = ["EXAMPLE_MANIFESTS", "example", "raw_sources", "spark", "write_curated"]
