"""Column names and types of the raw and curated data, free of Spark so infrastructure code
(the Glue table, the quality ruleset) can read them without importing pyspark."""

from __future__ import annotations

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
# Curated column -> Glue catalog type, in the order the ETL job writes them.
CURATED_SCHEMA: dict[str, str] = {
    "transaction_id": "string",
    "customer_id": "string",
    "event_time": "timestamp",
    "amount": "double",
    "merchant_category": "string",
    "merchant_country": "string",
    "channel": "string",
    "card_present": "int",
    "amount_zscore": "double",
    "amount_to_customer_mean": "double",
    "seconds_since_previous": "double",
    "transactions_in_window": "int",
    "is_fraud": "int",
}
CURATED_COLUMNS = tuple(CURATED_SCHEMA)
PARTITION_COLUMN = "event_date"
