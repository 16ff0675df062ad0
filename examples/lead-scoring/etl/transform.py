"""Lead scoring's ETL transform: CRM leads (CSV) joined with their company's firmographics
(Parquet) and the website visits their visitor made before the form fill (JSON Lines) -> one
typed row per lead with the tier a sales rep gave it. mlgate runs `transform` in its Glue job
and in tests on local Spark.

Spark-native expressions only, no Python UDFs. The tier is the stage the CRM holds, mapped
by the manifest's transform_params (`cold_stages`, `warm_stages`, `hot_stages`: comma lists),
so sales operations can rename a stage without a code change. Every lead either reaches the
curated table or the quarantine with a `reason`. Web visits are not records of the table:
one without a readable time or visitor counts toward no lead.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

LEAD_COLUMNS = (
    "lead_id", "company_domain", "visitor_id", "created_at", "lead_source", "job_level",
    "email_opens", "stage",
)  # fmt: skip
ACTIVITY_COLUMNS = ("visitor_id", "occurred_at", "page", "seconds_on_page")
FIRM_COLUMNS = ("company_domain", "industry", "employees", "annual_revenue_musd", "hq_region")
# The curated columns, in the order of the manifest's data.curated.columns (partition keys
# last: the Glue job writes them as folders).
CURATED_COLUMNS = (
    "lead_id", "company_domain", "created_at", "lead_source", "job_level", "industry",
    "employees", "annual_revenue_musd", "email_opens", "page_views", "pricing_views",
    "demo_requests", "minutes_on_site", "days_since_last_visit", "lead_tier", "hq_region",
    "created_week",
)  # fmt: skip
TIERS = ("cold", "warm", "hot")
DEFAULT_WINDOW_DAYS = 30
NO_VISIT = -1.0  # days_since_last_visit of a lead whose visitor made no visit in the window
UNKNOWN = "unknown"


def _text(column: str) -> Column:
    trimmed = F.trim(F.col(column).cast("string"))
    return F.when(trimmed == "", None).otherwise(trimmed)


def _require(frame: DataFrame, columns: tuple[str, ...], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"source '{source}' lacks columns {missing}; expected {list(columns)}")


def stage_tiers(params: dict[str, Any]) -> dict[str, str]:
    """{CRM stage: tier} from the `<tier>_stages` params; a stage in two tiers is refused."""
    mapping: dict[str, str] = {}
    for tier in TIERS:
        value = params.get(f"{tier}_stages")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"transform_params.{tier}_stages must list the CRM stages of {tier}")
        for stage in (s.strip().lower() for s in value.split(",") if s.strip()):
            if stage in mapping:
                raise ValueError(f"stage '{stage}' is both {mapping[stage]} and {tier}")
            mapping[stage] = tier
    return mapping


def parse_leads(raw: DataFrame, tiers: dict[str, str]) -> DataFrame:
    """Typed leads, each with its raw values (`raw_<column>`) and a `reason` when malformed."""
    _require(raw, LEAD_COLUMNS, "leads")
    text = raw.select(*[_text(c).alias(c) for c in LEAD_COLUMNS])
    tier = F.lit(None).cast("string")
    for stage, name in sorted(tiers.items()):
        tier = F.when(F.lower("stage") == stage, F.lit(name)).otherwise(tier)
    typed = text.select(
        "lead_id",
        F.lower("company_domain").alias("company_domain"),
        "visitor_id",
        F.to_timestamp("created_at").alias("created_at"),
        F.coalesce(F.lower("lead_source"), F.lit(UNKNOWN)).alias("lead_source"),
        F.coalesce(F.lower("job_level"), F.lit(UNKNOWN)).alias("job_level"),
        F.col("email_opens").cast("double").cast("int").alias("email_opens"),
        tier.alias("lead_tier"),
        *[F.col(c).alias(f"raw_{c}") for c in LEAD_COLUMNS],
    )
    opens = F.col("raw_email_opens").cast("double")
    reason = (
        F.when(F.col("lead_id").isNull(), F.lit("missing lead_id"))
        .when(F.col("company_domain").isNull(), F.lit("missing company_domain"))
        .when(F.col("created_at").isNull(), F.lit("unreadable created_at"))
        .when(F.coalesce((opens < 0) | (opens != F.floor(opens)), F.lit(True)),
              F.lit("email_opens is not a whole number >= 0"))
        .when(F.col("lead_tier").isNull(),
              F.concat(F.lit("stage '"), F.coalesce("raw_stage", F.lit("")),
                       F.lit("' is in no tier (transform_params)")))
    )  # fmt: skip
    return typed.withColumn("reason", reason)


def parse_firmographics(raw: DataFrame) -> DataFrame:
    """One row per company domain (the first by industry, then head count, if one repeats)."""
    _require(raw, FIRM_COLUMNS, "firmographics")
    typed = raw.select(
        F.lower(_text("company_domain")).alias("company_domain"),
        F.coalesce(F.lower(_text("industry")), F.lit(UNKNOWN)).alias("industry"),
        F.greatest(F.col("employees").cast("int"), F.lit(1)).alias("employees"),
        F.greatest(F.col("annual_revenue_musd").cast("double"), F.lit(0.0)).alias(
            "annual_revenue_musd"
        ),
        F.coalesce(F.lower(_text("hq_region")), F.lit(UNKNOWN)).alias("hq_region"),
    ).where(F.col("company_domain").isNotNull())
    order = Window.partitionBy("company_domain").orderBy("industry", "employees")
    first = typed.withColumn("_n", F.row_number().over(order))
    return first.where(F.col("_n") == 1).drop("_n").withColumn("_known", F.lit(True))


def activity_before(leads: DataFrame, raw: DataFrame, window_days: int) -> DataFrame:
    """Per lead: its visitor's page views in the `window_days` before the lead was created,
    pricing-page views and demo requests among them, minutes on site, and days from the last
    visit to the form fill (NO_VISIT without one). Leads without a visit get no row."""
    _require(raw, ACTIVITY_COLUMNS, "web-activity")
    visits = raw.select(
        _text("visitor_id").alias("visitor_id"),
        F.to_timestamp(_text("occurred_at")).alias("occurred_at"),
        F.lower(_text("page")).alias("page"),
        F.greatest(
            F.coalesce(F.col("seconds_on_page").cast("double"), F.lit(0.0)), F.lit(0.0)
        ).alias("seconds_on_page"),
    ).where(F.col("visitor_id").isNotNull() & F.col("occurred_at").isNotNull())
    created = F.col("created_at").cast("long")
    occurred = F.col("occurred_at").cast("long")
    joined = leads.select("lead_id", "visitor_id", "created_at").join(
        visits, on="visitor_id", how="inner"
    )
    recent = joined.where((occurred <= created) & (occurred > created - F.lit(window_days * 86400)))
    counted = recent.groupBy("lead_id", "created_at").agg(
        F.count(F.lit(1)).cast("int").alias("page_views"),
        F.sum((F.col("page") == "pricing").cast("int")).cast("int").alias("pricing_views"),
        F.sum((F.col("page") == "demo_request").cast("int")).cast("int").alias("demo_requests"),
        (F.sum("seconds_on_page") / 60.0).alias("minutes_on_site"),
        F.max(occurred).alias("_last"),
    )
    return counted.select(
        "lead_id", "page_views", "pricing_views", "demo_requests", "minutes_on_site",
        ((created - F.col("_last")) / 86400.0).alias("days_since_last_visit"),
    )  # fmt: skip


def deduplicate(leads: DataFrame) -> DataFrame:
    """One row per lead_id: the latest CRM state, ties broken by the other columns, so the
    result does not depend on how Spark partitioned the input."""
    order = Window.partitionBy("lead_id").orderBy(
        F.col("created_at").desc(), "lead_tier", "company_domain", "visitor_id"
    )
    return leads.withColumn("_n", F.row_number().over(order)).where(F.col("_n") == 1).drop("_n")


def curate(
    leads: DataFrame,
    activity: DataFrame,
    firms: DataFrame,
    tiers: dict[str, str],
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> tuple[DataFrame, DataFrame]:
    """(curated leads with their features and tier, quarantined leads with a reason)."""
    parsed = parse_leads(leads, tiers).join(
        F.broadcast(parse_firmographics(firms)), on="company_domain", how="left"
    )
    checked = parsed.withColumn(
        "reason",
        F.coalesce("reason", F.when(F.col("_known").isNull(), F.lit("unknown company_domain"))),
    )
    quarantined = checked.where(F.col("reason").isNotNull()).select(
        *[F.col(f"raw_{c}").alias(c) for c in LEAD_COLUMNS], "reason"
    )
    valid = deduplicate(checked.where(F.col("reason").isNull()))
    visits = activity_before(valid, activity, window_days)
    curated = valid.join(visits, on="lead_id", how="left").select(
        "lead_id",
        "company_domain",
        "created_at",
        "lead_source",
        "job_level",
        "industry",
        "employees",
        "annual_revenue_musd",
        "email_opens",
        F.coalesce("page_views", F.lit(0)).alias("page_views"),
        F.coalesce("pricing_views", F.lit(0)).alias("pricing_views"),
        F.coalesce("demo_requests", F.lit(0)).alias("demo_requests"),
        F.coalesce("minutes_on_site", F.lit(0.0)).alias("minutes_on_site"),
        F.coalesce("days_since_last_visit", F.lit(NO_VISIT)).alias("days_since_last_visit"),
        "lead_tier",
        "hq_region",
        # Spark's week starts on Monday: the sales week the lead came in.
        F.date_trunc("week", "created_at").cast("date").alias("created_week"),
    )
    return curated.select(*CURATED_COLUMNS), quarantined


def transform(
    spark: SparkSession, sources: dict[str, DataFrame], params: dict[str, Any]
) -> tuple[DataFrame, DataFrame]:
    """mlgate's entry point: `leads` joined with `firmographics` and `web-activity`."""
    del spark  # every step is a DataFrame expression
    window_days = int(params.get("activity_window_days", DEFAULT_WINDOW_DAYS))
    if window_days < 1:
        raise ValueError(f"activity_window_days must be at least 1, got {window_days}")
    return curate(
        sources["leads"],
        sources["web-activity"],
        sources["firmographics"],
        stage_tiers(params),
        window_days,
    )
