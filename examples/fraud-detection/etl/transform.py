"""Fraud detection's ETL transform: card transactions in, typed transactions with per-customer
history features out. mlgate runs `transform` in its Glue job and in tests on local Spark.

Every step uses Spark-native column expressions and window functions, never Python UDFs:
a UDF ships each row to a Python worker and back (slow, memory-hungry on Glue's workers)
and is opaque to Catalyst, which then cannot push filters down or reorder the plan.

`curate` is the whole job: parse and type raw rows (malformed ones go to quarantine with a
reason, never dropped silently), de-duplicate, fill nulls, and add the fraud features.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

RAW_COLUMNS = (
    "transaction_id",
    "customer_id",
    "event_time",
    "amount",
    "merchant_category",
    "merchant_country",
    "channel",
    "card_present",
    "is_fraud",
)
FEATURES = (
    "amount_zscore",
    "amount_to_customer_mean",
    "seconds_since_previous",
    "transactions_in_window",
)
# The curated columns, in the order of the manifest's data.curated.columns.
CURATED_COLUMNS = (
    *RAW_COLUMNS[:-1],
    *FEATURES,
    "is_fraud",
    "event_date",
)

DEFAULT_WINDOW_SECONDS = 24 * 3600
UNKNOWN = "unknown"
NO_PREVIOUS = -1.0  # seconds_since_previous of a customer's first transaction


def _blank_to_null(column: str) -> Column:
    trimmed = F.trim(F.col(column).cast("string"))
    return F.when(trimmed == "", None).otherwise(trimmed)


def parse(raw: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Type the raw string columns; return (valid rows, quarantined rows with a `reason`).

    A row is malformed when an identifier or the timestamp is missing or unreadable, the
    amount is not a non-negative number, or a flag is not 0/1. Missing descriptive fields
    (category, country, channel) are not malformed: `fill_nulls` handles them.
    """
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"raw data lacks columns {missing}; expected {list(RAW_COLUMNS)}")
    typed = raw.select(
        *[_blank_to_null(c).alias(f"_{c}") for c in RAW_COLUMNS],
    ).select(
        F.col("_transaction_id").alias("transaction_id"),
        F.col("_customer_id").alias("customer_id"),
        F.to_timestamp("_event_time").alias("event_time"),
        F.col("_amount").cast("double").alias("amount"),
        F.lower("_merchant_category").alias("merchant_category"),
        F.upper("_merchant_country").alias("merchant_country"),
        F.lower("_channel").alias("channel"),
        F.col("_card_present").cast("int").alias("card_present"),
        F.col("_is_fraud").cast("int").alias("is_fraud"),
        *[F.col(f"_{c}").alias(f"raw_{c}") for c in RAW_COLUMNS],
    )
    reason = (
        F.when(F.col("transaction_id").isNull(), F.lit("missing transaction_id"))
        .when(F.col("customer_id").isNull(), F.lit("missing customer_id"))
        .when(F.col("event_time").isNull(), F.lit("unreadable event_time"))
        .when(F.col("amount").isNull(), F.lit("amount is not a number"))
        .when(F.col("amount") < 0, F.lit("negative amount"))
        .when(~F.col("card_present").isin(0, 1) | F.col("card_present").isNull(),
              F.lit("card_present is not 0 or 1"))
        .when(~F.col("is_fraud").isin(0, 1) | F.col("is_fraud").isNull(),
              F.lit("is_fraud is not 0 or 1"))
    )  # fmt: skip
    checked = typed.withColumn("reason", reason)
    valid = checked.where(F.col("reason").isNull()).select(*RAW_COLUMNS)
    quarantined = checked.where(F.col("reason").isNotNull()).select(
        *[F.col(f"raw_{c}").alias(c) for c in RAW_COLUMNS], "reason"
    )
    return valid, quarantined


def deduplicate(df: DataFrame) -> DataFrame:
    """One row per transaction_id: the earliest event, ties broken by the remaining columns,
    so the result does not depend on how Spark partitioned the input."""
    order = Window.partitionBy("transaction_id").orderBy(
        "event_time", "customer_id", "amount", "merchant_category", "merchant_country", "channel"
    )
    return df.withColumn("_n", F.row_number().over(order)).where(F.col("_n") == 1).drop("_n")


def fill_nulls(df: DataFrame) -> DataFrame:
    """Descriptive fields that are missing become an explicit 'unknown' category."""
    return df.fillna(
        {"merchant_category": UNKNOWN, "merchant_country": UNKNOWN.upper(), "channel": UNKNOWN}
    )


def add_features(df: DataFrame, window_seconds: int = DEFAULT_WINDOW_SECONDS) -> DataFrame:
    """Per-customer history features, each computed from the customer's earlier transactions:

    - amount_zscore: the amount's deviation from the customer's earlier amounts, in standard
      deviations (0 while there is no spread to compare with);
    - amount_to_customer_mean: the amount over the customer's earlier mean (1 for a first one);
    - seconds_since_previous: time since the customer's previous transaction (-1 for a first);
    - transactions_in_window: the customer's transactions in the trailing window, this one
      included.
    """
    ts = F.col("event_time").cast("long")
    by_customer = Window.partitionBy("customer_id").orderBy(ts, "transaction_id")
    earlier = by_customer.rowsBetween(Window.unboundedPreceding, -1)
    trailing = Window.partitionBy("customer_id").orderBy(ts).rangeBetween(-window_seconds, 0)
    mean = F.avg("amount").over(earlier)
    std = F.stddev_samp("amount").over(earlier)
    previous = F.lag(ts).over(by_customer)
    return df.select(
        "*",
        F.when(std > 0, (F.col("amount") - mean) / std)
        .otherwise(F.lit(0.0))
        .alias("amount_zscore"),
        F.when(mean > 0, F.col("amount") / mean)
        .otherwise(F.lit(1.0))
        .alias("amount_to_customer_mean"),
        F.coalesce((ts - previous).cast("double"), F.lit(NO_PREVIOUS)).alias(
            "seconds_since_previous"
        ),
        F.count(F.lit(1)).over(trailing).cast("int").alias("transactions_in_window"),
    )


def curate(
    raw: DataFrame, window_seconds: int = DEFAULT_WINDOW_SECONDS
) -> tuple[DataFrame, DataFrame]:
    """(curated rows with features and their event date, quarantined rows with a reason)."""
    valid, quarantined = parse(raw)
    curated = add_features(fill_nulls(deduplicate(valid)), window_seconds)
    curated = curated.withColumn("event_date", F.col("event_time").cast("date"))
    return curated.select(*CURATED_COLUMNS), quarantined


def transform(
    spark: SparkSession, sources: dict[str, DataFrame], params: dict[str, Any]
) -> tuple[DataFrame, DataFrame]:
    """mlgate's entry point: the manifest's one source, `transactions`, curated."""
    del spark  # every step is a DataFrame expression
    return curate(
        sources["transactions"], int(params.get("window_seconds", DEFAULT_WINDOW_SECONDS))
    )
