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
from tools.spark_classes import driver_java_options

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MANIFESTS = sorted((ROOT / "examples").glob("*/manifest.yaml"))
"""Every example product: tests parametrized over these pick up a new one by themselves."""


def example(name: str) -> Manifest:
    return load_manifest(ROOT / "examples" / name / "manifest.yaml")


# The tests' data is a few thousand rows: Spark's costs are its fixed ones. One task thread
# (pytest-xdist already keeps both cores busy), one shuffle partition, no adaptive re-planning,
# no whole-stage code generation (compiling each query's Java takes longer than running it on
# so few rows), partition folders listed by the driver itself (past 32 folders Spark lists
# them with a job of one task per folder: fraud detection's 90 days of curated data took two
# seconds a read), and a JVM that only compiles with C1, collects garbage on one thread and
# maps its classes from the archive tools/spark_classes.py builds (when built).
# The same results at half the CPU time of Spark's defaults here. TUNING reaches the
# rehearsal's own Spark through PYSPARK_SUBMIT_ARGS (tests/test_rehearsal.py).
TUNING = {
    "spark.default.parallelism": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
    "spark.driver.extraJavaOptions": driver_java_options(),
}


def submit_args() -> str:
    """TUNING as PySpark's launcher reads it from the environment (PYSPARK_SUBMIT_ARGS)."""
    import shlex

    confs = " ".join(f"--conf {shlex.quote(f'{k}={v}')}" for k, v in TUNING.items())
    return f"{confs} pyspark-shell"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[1]")
        .appName("mlgate-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
    )
    for key, value in TUNING.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# The sources as the Glue job reads them and the curated data as it writes it: one
# implementation, shared with the rehearsal.
raw_sources = write_sources
__all__ = [
    "EXAMPLE_MANIFESTS",
    "TUNING",
    "example",
    "raw_sources",
    "spark",
    "submit_args",
    "write_curated",
]
