"""Rows per second of each example product's whole transform on local Spark, 100k and 1M rows.

Each product's generated sources are written in their manifest formats first (as the raw
bucket holds them) and read back as the Glue job reads them, so the figure covers parsing,
quarantine, de-duplication, joins and features, ending in the partitioned Parquet write the job
does. Median of several runs after one warm-up.
Usage: .venv/bin/python bench/etl_throughput.py [--rows 100000 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, table

sys.path.insert(0, str(ROOT))

from mlgate.infra.product_code import generator_module, transform_module
from mlgate.manifest import load_manifests
from tools.local_pipeline import local_spark, write_curated, write_sources


def main() -> None:

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spark = local_spark(8, **{"spark.driver.memory": "4g"})
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        for manifest in load_manifests(ROOT / "examples"):
            module = transform_module(manifest)
            for rows in args.rows:
                frames = generator_module(manifest).sources(rows, seed=11)
                folder = Path(tmp) / manifest.product.name / f"raw-{rows}"
                samples = []
                for i in range(args.repeats + 1):
                    sources = write_sources(spark, manifest, frames, folder)
                    start = time.perf_counter()
                    curated, quarantined = module.transform(
                        spark, sources, dict(manifest.data.transform_params)
                    )
                    write_curated(curated, manifest, Path(tmp) / f"curated-{rows}")
                    quarantined.count()
                    if i:  # the first run warms the JVM up
                        samples.append(time.perf_counter() - start)
                seconds = statistics.median(samples)
                rows_out.append(
                    [manifest.product.name, f"{rows:,}", f"{seconds:.2f}", f"{rows / seconds:,.0f}"]
                )
    print(f"Curation transform on local Spark {spark.version} (local[2]), median of {args.repeats}")
    print(table(["product", "rows", "seconds", "rows per second"], rows_out))
    spark.stop()


if __name__ == "__main__":
    main()
