"""Local Spark for the tests that run products' transforms (tests/etl, tests/ml): one session
for the whole run (starting Spark costs seconds), the example products' raw data read the
way the Glue job reads it, each source in its manifest format, and each example's local
pipeline run, made once for the tests that read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlgate.infra.product_code import generator_module
from mlgate.manifest import Manifest, load_manifest
from tools.local_pipeline import Run, train_locally, transform_locally, write_curated
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


PIPELINE_ROWS = {"fraud-detection": 30_000}
"""Raw rows of an example's curation and pipeline run, 10,000 unless named here: every check of
tests/ml/test_scripts.py but the thresholds holds at any size. Fraud detection's precision floor
(0.95) is judged on its test split's predicted frauds (about 70 at 30,000 rows, fraud being
1.5 %): with fewer, a false positive or two fails it. Delivery time meets its own (rmse 5, mae
4 minutes) at 3.3 and 2.6 from 10,000 rows."""
PIPELINE_SEED = 5


@dataclass
class Curation:
    """An example product's transform run on its generator's data, one id blanked per source,
    and its curated rows written under base/input as the Glue job writes them."""

    manifest: Manifest
    curated: Any  # the transform's curated rows (cached)
    quarantined: Any  # its quarantined rows, each with its reason (read once: not cached)
    ids_in: int  # rows of the sources that carry the id column
    base: Path  # a Processing container's /opt/ml/processing, with the curated data as input


_curations: dict[str, Curation] = {}
_runs: dict[str, Run] = {}


def blank_one_id(manifest: Manifest, frames: dict[str, Any]) -> int:
    """Blank the id of one row of each source that carries the id column, as a malformed
    record the transform must quarantine; the number of rows of those sources."""
    id_column = manifest.data.curated.id_column
    ids_in = 0
    for name, frame in frames.items():
        if id_column in frame.columns:
            frame = frame.astype({id_column: object})
            frame.loc[frame.index[1], id_column] = None
            frames[name] = frame
            ids_in += len(frame)
    return ids_in


def example_curation(
    spark: Any, manifest: Manifest, tmp_path_factory: pytest.TempPathFactory
) -> Curation:
    """The example product's ETL, as tools/local_pipeline.py runs it for the rehearsal: its
    generator's raw data (one id blanked per source), its transform on local Spark, the
    curated rows written as Parquet. Made once per test process (curating an example takes
    seconds of Spark) for every test that reads it: tests/etl/test_transforms.py holds the
    transform's output to the manifest, tests/ml/test_scripts.py trains on the Parquet
    (pipeline_run), tests/test_rehearsal_serving.py's broken copies of the product too."""
    name = manifest.product.name
    if name not in _curations:
        base = tmp_path_factory.mktemp(f"pipeline-{name}")
        rows = PIPELINE_ROWS.get(name, 10_000)
        frames = generator_module(manifest).sources(rows, seed=PIPELINE_SEED)
        ids_in = blank_one_id(manifest, frames)
        curated, quarantined = transform_locally(spark, manifest, frames, base / "raw")
        # Cached: written once here, then read by each check of the curated contract.
        curated = curated.cache()
        write_curated(curated, manifest, base / "input")
        _curations[name] = Curation(manifest, curated, quarantined, ids_in, base)
    return _curations[name]


def pipeline_run(spark: Any, manifest: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The example product's ETL (example_curation), then preprocess, training (`quick`) and
    evaluate as tools/local_pipeline.py runs them; made once per test process."""
    name = manifest.product.name
    if name not in _runs:
        _runs[name] = train_locally(
            manifest, example_curation(spark, manifest, tmp_path_factory).base
        )
    return _runs[name]


__all__ = [
    "EXAMPLE_MANIFESTS",
    "TUNING",
    "Curation",
    "example",
    "example_curation",
    "pipeline_run",
    "spark",
    "submit_args",
    "write_curated",
]
