"""Local Spark for the tests that run products' transforms (tests/etl, tests/ml): one session
for the whole run (starting Spark costs seconds), and the example products' raw data read the
way the Glue job reads it, each source in its manifest format."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlgate.manifest import Manifest, load_manifest

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


def raw_sources(spark: Any, manifest: Manifest, frames: dict[str, Any], folder: Path) -> Any:
    """The generator's pandas frames written in each source's format and read back by Spark as
    Glue reads them: CSV with a header (every column a string), JSON Lines, Parquet."""
    sources = {}
    for source in manifest.data.sources:
        path = folder / source.name
        path.mkdir(parents=True, exist_ok=True)
        frame = frames[source.name]
        if source.format == "csv":
            frame.to_csv(path / "part-0.csv", index=False)
            sources[source.name] = spark.read.option("header", True).csv(str(path))
        elif source.format == "json":
            frame.to_json(path / "part-0.json", orient="records", lines=True)
            sources[source.name] = spark.read.json(str(path))
        else:
            frame.to_parquet(path / "part-0.parquet", index=False)
            sources[source.name] = spark.read.parquet(str(path))
    return sources


def write_curated(curated: Any, manifest: Manifest, folder: Path) -> None:
    """Curated rows cast to the schema's types and written as the Glue job writes them:
    Parquet, partitioned by the schema's partition keys (key=value folders)."""
    from pyspark.sql import functions as F

    schema = manifest.data.curated
    typed = curated.select(*[F.col(c.name).cast(c.type) for c in schema.columns])
    writer = typed.write.mode("overwrite")
    if schema.partition_keys:
        writer = writer.partitionBy(*schema.partition_keys)
    writer.parquet(str(folder))
