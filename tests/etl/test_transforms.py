"""ETL transforms on local Spark 3.5 (the version Glue 5.0 runs), with exact expected rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from mlgate.etl.synthetic import generate
from mlgate.etl.transforms import (
    CURATED_COLUMNS,
    RAW_COLUMNS,
    add_features,
    curate,
    deduplicate,
    fill_nulls,
    parse,
)

pytestmark = pytest.mark.spark


def raw(spark: Any, rows: list[tuple[Any, ...]]) -> Any:
    return spark.createDataFrame(rows, schema=", ".join(f"{c} string" for c in RAW_COLUMNS))


def row(
    tid: str,
    cid: str = "c1",
    when: str = "2026-01-01T10:00:00Z",
    amount: str | None = "10.0",
    category: str | None = "grocery",
    country: str | None = "DE",
    channel: str | None = "pos",
    present: str | None = "1",
    fraud: str | None = "0",
) -> tuple[Any, ...]:
    return (tid, cid, when, amount, category, country, channel, present, fraud)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def test_parse_types_the_columns_and_normalises_text(spark: Any) -> None:
    valid, quarantined = parse(raw(spark, [row(" t1 ", category=" Grocery ", country="de")]))
    assert quarantined.count() == 0
    (only,) = valid.collect()
    assert only.asDict() == {
        "transaction_id": "t1",
        "customer_id": "c1",
        "event_time": ts("2026-01-01T10:00:00Z"),
        "amount": 10.0,
        "merchant_category": "grocery",
        "merchant_country": "DE",
        "channel": "pos",
        "card_present": 1,
        "is_fraud": 0,
    }


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (row(""), "missing transaction_id"),
        (row("t1", cid="  "), "missing customer_id"),
        (row("t1", when="yesterday"), "unreadable event_time"),
        (row("t1", amount="ten"), "amount is not a number"),
        (row("t1", amount="-3"), "negative amount"),
        (row("t1", present="yes"), "card_present is not 0 or 1"),
        (row("t1", fraud="2"), "is_fraud is not 0 or 1"),
        (row("t1", fraud=None), "is_fraud is not 0 or 1"),
    ],
)
def test_malformed_rows_go_to_quarantine_with_their_reason(
    spark: Any, bad: tuple[Any, ...], reason: str
) -> None:
    valid, quarantined = parse(raw(spark, [bad, row("ok")]))
    assert [r.transaction_id for r in valid.collect()] == ["ok"]
    (q,) = quarantined.collect()
    assert q.reason == reason
    # The quarantined row keeps what arrived, so it can be inspected and replayed.
    assert q.amount == (bad[3].strip() if bad[3] else None)


def test_missing_columns_are_named(spark: Any) -> None:
    frame = spark.createDataFrame([("t1",)], "transaction_id string")
    with pytest.raises(ValueError, match="raw data lacks columns \\['customer_id'"):
        parse(frame)


def test_deduplicate_keeps_the_earliest_event_of_each_transaction(spark: Any) -> None:
    valid, _ = parse(
        raw(
            spark,
            [
                row("t1", when="2026-01-01T10:05:00Z", amount="11"),
                row("t1", when="2026-01-01T10:00:00Z", amount="10"),
                row("t1", when="2026-01-01T10:00:00Z", amount="10"),
                row("t2"),
            ],
        )
    )
    out = sorted((r.transaction_id, r.amount) for r in deduplicate(valid).collect())
    assert out == [("t1", 10.0), ("t2", 10.0)]


def test_fill_nulls_marks_missing_descriptions_unknown(spark: Any) -> None:
    valid, _ = parse(raw(spark, [row("t1", category=None, country="", channel=None)]))
    (only,) = fill_nulls(valid).collect()
    assert (only.merchant_category, only.merchant_country, only.channel) == (
        "unknown",
        "UNKNOWN",
        "unknown",
    )


def test_features_use_only_the_customer_s_earlier_history(spark: Any) -> None:
    valid, _ = parse(
        raw(
            spark,
            [
                row("a1", "c1", "2026-01-01T10:00:00Z", "10"),
                row("a2", "c1", "2026-01-01T10:10:00Z", "20"),
                row("a3", "c1", "2026-01-01T12:00:00Z", "60"),
                row("a4", "c1", "2026-01-03T12:00:00Z", "15"),
                row("b1", "c2", "2026-01-01T10:00:00Z", "5"),
            ],
        )
    )
    got = {r.transaction_id: r for r in add_features(valid).collect()}
    # a1: the customer's first transaction.
    assert (got["a1"].amount_zscore, got["a1"].amount_to_customer_mean) == (0.0, 1.0)
    assert got["a1"].seconds_since_previous == -1.0
    assert got["a1"].transactions_in_window == 1
    # a2: one earlier amount (10): no spread yet, twice the mean, 600 s later.
    assert (got["a2"].amount_zscore, got["a2"].amount_to_customer_mean) == (0.0, 2.0)
    assert got["a2"].seconds_since_previous == 600.0
    assert got["a2"].transactions_in_window == 2
    # a3: earlier 10 and 20 -> mean 15, sample std 7.071...
    assert math.isclose(got["a3"].amount_zscore, (60 - 15) / math.sqrt(50))
    assert got["a3"].amount_to_customer_mean == 4.0
    assert got["a3"].seconds_since_previous == 6600.0
    assert got["a3"].transactions_in_window == 3
    # a4: two days later, alone in its 24 h window.
    assert got["a4"].transactions_in_window == 1
    assert got["a4"].seconds_since_previous == 48 * 3600.0
    # Another customer's history never leaks in.
    assert got["b1"].transactions_in_window == 1
    assert got["b1"].seconds_since_previous == -1.0


def test_curate_on_empty_input_gives_empty_outputs_with_the_curated_schema(spark: Any) -> None:
    curated, quarantined = curate(raw(spark, []))
    assert curated.count() == 0
    assert quarantined.count() == 0
    assert tuple(curated.columns) == CURATED_COLUMNS


def test_curate_accounts_for_every_input_row(spark: Any) -> None:
    data = generate(3000, seed=3).astype(str)
    data.loc[5, "amount"] = "oops"
    data.loc[9, "customer_id"] = ""
    data = pd.concat([data, data.iloc[[20, 21]]])  # two exact duplicates
    frame = spark.createDataFrame(
        data.values.tolist(), ", ".join(f"{c} string" for c in RAW_COLUMNS)
    )
    curated, quarantined = curate(frame)
    assert quarantined.count() == 2
    assert curated.count() == 3000 - 2
    assert curated.select("transaction_id").distinct().count() == curated.count()
    fraud_rate = curated.agg({"is_fraud": "avg"}).first()[0]
    assert 0.005 < fraud_rate < 0.03
