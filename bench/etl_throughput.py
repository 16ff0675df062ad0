"""Rows per second of the whole curation transform on local Spark, for 100k and 1M rows.

The generated dataset is written to CSV first (as the raw bucket holds it) and read back as
strings, so the figure covers parsing, quarantine, de-duplication, null handling and the
window features, ending in a Parquet write. Median of several runs after one warm-up.
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

from mlgate.etl.columns import RAW_COLUMNS
from mlgate.etl.synthetic import write_csv
from mlgate.etl.transforms import curate


def main() -> None:
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    schema = ", ".join(f"{c} string" for c in RAW_COLUMNS)
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            csv = write_csv(Path(tmp) / f"raw-{rows}.csv", rows, seed=11)
            samples = []
            for i in range(args.repeats + 1):
                raw = spark.read.csv(str(csv), header=True, schema=schema)
                start = time.perf_counter()
                curated, quarantined = curate(raw)
                curated.write.mode("overwrite").parquet(f"{tmp}/curated-{rows}")
                quarantined.count()
                if i:  # the first run warms the JVM up
                    samples.append(time.perf_counter() - start)
            seconds = statistics.median(samples)
            rows_out.append([f"{rows:,}", f"{seconds:.2f}", f"{rows / seconds:,.0f}"])
    print(f"Curation transform on local Spark {spark.version} (local[2]), median of {args.repeats}")
    print(table(["rows", "seconds", "rows per second"], rows_out))
    spark.stop()


if __name__ == "__main__":
    main()
