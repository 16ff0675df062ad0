"""The product's ETL transform: raw events in, the curated table out (data.curated).

mlgate runs `transform` in its Glue job (every module in this folder ships with it) and in
tests on local Spark. Keep to Spark-native column expressions: no Python UDFs.
Malformed rows go to `quarantined` with a `reason`, never silently dropped.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

CURATED_COLUMNS = (
    "record_id", "occurred_at", "feature_a", "feature_b", "segment", "label", "occurred_on",
)  # fmt: skip
RAW_COLUMNS = CURATED_COLUMNS[:-1]


def transform(
    spark: SparkSession, sources: dict[str, DataFrame], params: dict[str, Any]
) -> tuple[DataFrame, DataFrame]:
    """(curated rows, quarantined rows with a reason) from the `events` source."""
    del spark, params
    raw = sources["events"]
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"raw events lack columns {missing}")
    typed = raw.select(
        F.trim(F.col("record_id").cast("string")).alias("record_id"),
        F.to_timestamp(F.col("occurred_at").cast("string")).alias("occurred_at"),
        F.col("feature_a").cast("double").alias("feature_a"),
        F.col("feature_b").cast("double").alias("feature_b"),
        F.lower(F.trim(F.col("segment").cast("string"))).alias("segment"),
        F.col("label").cast("int").alias("label"),
        *[F.col(c).cast("string").alias(f"raw_{c}") for c in RAW_COLUMNS],
    )
    reason = (
        F.when(F.col("record_id").isNull() | (F.col("record_id") == ""), F.lit("missing record_id"))
        .when(F.col("occurred_at").isNull(), F.lit("unreadable occurred_at"))
        .when(F.col("feature_a").isNull(), F.lit("feature_a is not a number"))
        .when(F.col("feature_b").isNull(), F.lit("feature_b is not a number"))
        .when(~F.col("label").isin(0, 1) | F.col("label").isNull(), F.lit("label is not 0 or 1"))
    )
    checked = typed.withColumn("reason", reason)
    quarantined = checked.where(F.col("reason").isNotNull()).select(
        *[F.col(f"raw_{c}").alias(c) for c in RAW_COLUMNS], "reason"
    )
    valid = checked.where(F.col("reason").isNull()).fillna({"segment": "unknown"})
    # One row per record: the earliest, ties broken by the values, whatever the partitioning.
    first = Window.partitionBy("record_id").orderBy("occurred_at", "feature_a", "feature_b")
    curated = (
        valid.withColumn("_n", F.row_number().over(first))
        .where(F.col("_n") == 1)
        .withColumn("occurred_on", F.col("occurred_at").cast("date"))
    )
    return curated.select(*CURATED_COLUMNS), quarantined
