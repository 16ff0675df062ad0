"""Delivery time's ETL transform: food orders (JSON Lines) joined with the couriers who carry
them (Parquet) -> one typed row per order with the features the ETA model learns from.
mlgate runs `transform` in its Glue job and in tests on local Spark.

Spark-native expressions only, no Python UDFs: the haversine distance is plain column
arithmetic, so Catalyst keeps the whole plan (and the couriers join stays a broadcast join).
Every order either reaches the curated table or the quarantine with a `reason`; none is
dropped silently, except exact re-deliveries of an order already kept.
"""

from __future__ import annotations

import math
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

ORDER_COLUMNS = (
    "order_id", "courier_id", "city", "ordered_at", "pickup_lat", "pickup_lon", "dropoff_lat",
    "dropoff_lon", "prep_minutes", "items", "delivery_minutes",
)  # fmt: skip
COURIER_COLUMNS = ("courier_id", "vehicle", "experience_months")
# The curated columns, in the order of the manifest's data.curated.columns.
CURATED_COLUMNS = (
    "order_id", "courier_id", "city", "ordered_at", "distance_km", "hour_of_day", "weekday",
    "prep_minutes", "items", "vehicle", "courier_experience_months", "delivery_minutes",
    "order_date",
)  # fmt: skip
EARTH_RADIUS_KM = 6371.0088
DEFAULT_MAX_DELIVERY_MINUTES = 240
UNKNOWN = "unknown"


def _text(column: str) -> Column:
    trimmed = F.trim(F.col(column).cast("string"))
    return F.when(trimmed == "", None).otherwise(trimmed)


def _require(frame: DataFrame, columns: tuple[str, ...], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"source '{source}' lacks columns {missing}; expected {list(columns)}")


def parse_orders(raw: DataFrame, max_minutes: float) -> DataFrame:
    """Typed orders, each with its raw values (`raw_<column>`) and a `reason` when malformed."""
    _require(raw, ORDER_COLUMNS, "orders")
    text = raw.select(*[_text(c).alias(c) for c in ORDER_COLUMNS])
    typed = text.select(
        F.col("order_id"),
        F.col("courier_id"),
        F.lower("city").alias("city"),
        F.to_timestamp("ordered_at").alias("ordered_at"),
        *[F.col(c).cast("double").alias(c) for c in ORDER_COLUMNS[4:9]],
        F.col("items").cast("double").alias("items"),
        F.col("delivery_minutes").cast("double").alias("delivery_minutes"),
        *[F.col(c).alias(f"raw_{c}") for c in ORDER_COLUMNS],
    )
    latitudes_ok = F.abs("pickup_lat") <= 90.0
    latitudes_ok &= F.abs("dropoff_lat") <= 90.0
    longitudes_ok = F.abs("pickup_lon") <= 180.0
    longitudes_ok &= F.abs("dropoff_lon") <= 180.0
    reason = (
        F.when(F.col("order_id").isNull(), F.lit("missing order_id"))
        .when(F.col("courier_id").isNull(), F.lit("missing courier_id"))
        .when(F.col("ordered_at").isNull(), F.lit("unreadable ordered_at"))
        .when(~F.coalesce(latitudes_ok & longitudes_ok, F.lit(False)),
              F.lit("coordinates missing or off the globe"))
        .when(F.coalesce(F.col("prep_minutes") < 0, F.lit(True)),
              F.lit("prep_minutes is not a non-negative number"))
        .when(F.coalesce((F.col("items") < 1) | (F.col("items") != F.floor("items")), F.lit(True)),
              F.lit("items is not a positive whole number"))
        .when(F.coalesce(F.col("delivery_minutes") <= 0, F.lit(True)),
              F.lit("delivery_minutes is not a positive number"))
        .when(F.col("delivery_minutes") > max_minutes,
              F.lit(f"delivery_minutes above {max_minutes:g}"))
    )  # fmt: skip
    return typed.withColumn("reason", reason)


def parse_couriers(raw: DataFrame) -> DataFrame:
    """One row per courier (the first by vehicle, then experience, if a courier repeats)."""
    _require(raw, COURIER_COLUMNS, "couriers")
    typed = raw.select(
        _text("courier_id").alias("courier_id"),
        F.coalesce(F.lower(_text("vehicle")), F.lit(UNKNOWN)).alias("vehicle"),
        F.greatest(F.col("experience_months").cast("int"), F.lit(0)).alias(
            "courier_experience_months"
        ),
    ).where(F.col("courier_id").isNotNull())
    order = Window.partitionBy("courier_id").orderBy("vehicle", "courier_experience_months")
    first = typed.withColumn("_n", F.row_number().over(order))
    return first.where(F.col("_n") == 1).drop("_n").withColumn("_known", F.lit(True))


def distance_km(lat1: str, lon1: str, lat2: str, lon2: str) -> Column:
    """Great-circle (haversine) distance between two points, in km."""
    phi1, phi2 = F.radians(lat1), F.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = (F.radians(lon2) - F.radians(lon1)) / 2
    a = F.sin(half_dphi) ** 2 + F.cos(phi1) * F.cos(phi2) * F.sin(half_dlambda) ** 2
    return F.lit(2 * EARTH_RADIUS_KM) * F.asin(F.sqrt(F.least(a, F.lit(1.0))))


def deduplicate(orders: DataFrame) -> DataFrame:
    """One row per order_id: the earliest, ties broken by the other columns, so the result does
    not depend on how Spark partitioned the input."""
    order = Window.partitionBy("order_id").orderBy(
        "ordered_at", "courier_id", "delivery_minutes", "prep_minutes", "items"
    )
    return orders.withColumn("_n", F.row_number().over(order)).where(F.col("_n") == 1).drop("_n")


def curate(
    orders: DataFrame, couriers: DataFrame, max_minutes: float = DEFAULT_MAX_DELIVERY_MINUTES
) -> tuple[DataFrame, DataFrame]:
    """(curated orders with their features, quarantined orders with a reason)."""
    parsed = parse_orders(orders, max_minutes).join(
        F.broadcast(parse_couriers(couriers)), on="courier_id", how="left"
    )
    checked = parsed.withColumn(
        "reason",
        F.coalesce("reason", F.when(F.col("_known").isNull(), F.lit("unknown courier_id"))),
    )
    quarantined = checked.where(F.col("reason").isNotNull()).select(
        *[F.col(f"raw_{c}").alias(c) for c in ORDER_COLUMNS], "reason"
    )
    valid = deduplicate(checked.where(F.col("reason").isNull()))
    curated = valid.select(
        "order_id",
        "courier_id",
        F.coalesce(F.col("city"), F.lit(UNKNOWN)).alias("city"),
        "ordered_at",
        distance_km("pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon").alias("distance_km"),
        F.hour("ordered_at").alias("hour_of_day"),
        # ISO weekday: Monday 1 ... Sunday 7 (Spark's dayofweek starts on Sunday).
        ((F.dayofweek("ordered_at") + 5) % 7 + 1).alias("weekday"),
        "prep_minutes",
        F.col("items").cast("int").alias("items"),
        "vehicle",
        "courier_experience_months",
        "delivery_minutes",
        F.to_date("ordered_at").alias("order_date"),
    )
    return curated.select(*CURATED_COLUMNS), quarantined


def transform(
    spark: SparkSession, sources: dict[str, DataFrame], params: dict[str, Any]
) -> tuple[DataFrame, DataFrame]:
    """mlgate's entry point: the `orders` source joined with `couriers`, curated."""
    del spark  # every step is a DataFrame expression
    max_minutes = float(params.get("max_delivery_minutes", DEFAULT_MAX_DELIVERY_MINUTES))
    if not math.isfinite(max_minutes) or max_minutes <= 0:
        raise ValueError(f"max_delivery_minutes must be a positive number, got {max_minutes}")
    return curate(sources["orders"], sources["couriers"], max_minutes)
