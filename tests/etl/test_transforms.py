"""Products' ETL transforms on local Spark 3.5 (the version Glue 5.0 runs): every example
product's transform holds to its manifest's curated schema and quarantines what it cannot
curate; then fraud detection's and delivery time's own behaviour, with exact expected rows."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import functions as F

from mlgate.infra.product_code import generator_module, transform_module
from mlgate.manifest import load_manifest

from ..spark_session import EXAMPLE_MANIFESTS, Curation, example, example_curation

FRAUD = example("fraud-detection")
_fraud = transform_module(FRAUD)
CURATED_COLUMNS = _fraud.CURATED_COLUMNS
RAW_COLUMNS = _fraud.RAW_COLUMNS
add_features = _fraud.add_features
curate = _fraud.curate
deduplicate = _fraud.deduplicate
fill_nulls = _fraud.fill_nulls
parse = _fraud.parse
generate = generator_module(FRAUD).generate

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


MALFORMED = [
    (row(""), "missing transaction_id"),
    (row("t1", cid="  "), "missing customer_id"),
    (row("t1", when="yesterday"), "unreadable event_time"),
    (row("t1", amount="ten"), "amount is not a number"),
    (row("t1", amount="-3"), "negative amount"),
    (row("t1", present="yes"), "card_present is not 0 or 1"),
    (row("t1", fraud="2"), "is_fraud is not 0 or 1"),
    (row("t1", fraud=None), "is_fraud is not 0 or 1"),
]


@pytest.fixture(scope="module")
def malformed_parsed(spark: Any) -> tuple[list[Any], list[Any]]:
    """Every malformed row of MALFORMED and one good row, parsed in one Spark job: `parse`
    judges each row on its own (column expressions, no window or join), so each row's
    verdict is the one it gets alone beside the good row, at two Spark actions instead of
    sixteen. (valid rows, quarantined rows), collected."""
    valid, quarantined = parse(raw(spark, [*(bad for bad, _ in MALFORMED), row("ok")]))
    return valid.collect(), quarantined.collect()


def _as_kept(value: str | None) -> str | None:
    """A raw value as the quarantine keeps it: trimmed, blank as missing."""
    return (value.strip() or None) if value is not None else None


@pytest.mark.parametrize(("bad", "reason"), MALFORMED)
def test_malformed_rows_go_to_quarantine_with_their_reason(
    malformed_parsed: tuple[list[Any], list[Any]], bad: tuple[Any, ...], reason: str
) -> None:
    valid, quarantined = malformed_parsed
    assert [r.transaction_id for r in valid] == ["ok"]
    assert len(quarantined) == len(MALFORMED)
    (q,) = [q for q in quarantined if tuple(q[c] for c in RAW_COLUMNS) == tuple(map(_as_kept, bad))]
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
    # One pass over the curated rows: their number, their distinct ids, the fraud rate.
    rows, ids, fraud_rate = curated.agg(
        F.count(F.lit(1)), F.count_distinct("transaction_id"), F.avg("is_fraud")
    ).first()
    assert rows == 3000 - 2
    assert ids == rows
    assert 0.005 < fraud_rate < 0.03


# --- every example product: the curated contract -----------------------------------------

PRODUCTS = [pytest.param(p, id=p.parent.name) for p in EXAMPLE_MANIFESTS]


@pytest.fixture(scope="module")
def curation(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Curation]:
    """The product's transform run on its generator's data with one id blanked per source
    (tests/spark_session.py: example_curation, the data tests/ml trains on)."""
    return lambda path: example_curation(spark, load_manifest(path), tmp_path_factory)


@pytest.mark.parametrize("path", PRODUCTS)
def test_curated_has_exactly_the_schema_columns_in_order(
    curation: Callable[[Path], Curation], path: Path
) -> None:
    run = curation(path)
    assert tuple(run.curated.columns) == run.manifest.data.curated.names


@pytest.mark.parametrize("path", PRODUCTS)
def test_curated_values_cast_to_the_schema_types(
    curation: Callable[[Path], Curation], path: Path
) -> None:
    run = curation(path)
    columns = run.manifest.data.curated.columns
    # The Glue job casts to the declared types: a value that does not survive the cast
    # would silently become null in the curated table. One pass: the rows, then each
    # column's lost values.
    rows, *lost = run.curated.select(
        F.count(F.lit(1)),
        *[
            F.sum((F.col(c.name).isNotNull() & F.col(c.name).cast(c.type).isNull()).cast("int"))
            for c in columns
        ],
    ).first()
    assert {c.name: n for c, n in zip(columns, lost, strict=True) if n} == {}
    assert rows > 1000


@pytest.mark.parametrize("path", PRODUCTS)
def test_malformed_rows_are_quarantined_with_a_reason(
    curation: Callable[[Path], Curation], path: Path
) -> None:
    run = curation(path)
    id_column = run.manifest.data.curated.id_column
    assert "reason" in run.quarantined.columns
    quarantined = run.quarantined.collect()
    reasons = [r.reason for r in quarantined]
    assert reasons, "the blanked id went nowhere"
    assert all(r and r.strip() for r in reasons)
    assert any(r[id_column] is None for r in quarantined)
    # Never dropped silently: every row that arrived is curated or quarantined.
    assert run.curated.count() + len(reasons) == run.ids_in


@pytest.mark.parametrize("path", PRODUCTS)
def test_curated_ids_are_unique(curation: Callable[[Path], Curation], path: Path) -> None:
    run = curation(path)
    id_column = F.col(run.manifest.data.curated.id_column)
    rows, distinct, missing = run.curated.select(
        F.count(F.lit(1)), F.count_distinct(id_column), F.count(F.when(id_column.isNull(), 1))
    ).first()
    assert missing == 0
    assert distinct == rows


@pytest.mark.parametrize("path", PRODUCTS)
def test_generator_is_deterministic_for_a_seed_and_covers_every_source(path: Path) -> None:
    manifest = load_manifest(path)
    make = generator_module(manifest).sources
    first, again, other = make(300, seed=4), make(300, seed=4), make(300, seed=5)
    assert sorted(first) == sorted(s.name for s in manifest.data.sources)
    for name, frame in first.items():
        pd.testing.assert_frame_equal(frame, again[name])
    assert any(not frame.equals(other[name]) for name, frame in first.items())


# --- delivery time ------------------------------------------------------------------------

DELIVERY = example("delivery-time")


def test_delivery_orders_join_their_courier_and_get_their_features(spark: Any) -> None:
    transform = transform_module(DELIVERY).transform
    order = {
        "order_id": "o1", "courier_id": "k1", "city": " Boston ",
        "ordered_at": "2026-03-07T19:05:00Z", "pickup_lat": 42.0, "pickup_lon": -71.0,
        "dropoff_lat": 42.1, "dropoff_lon": -71.0, "prep_minutes": 12.0, "items": 2,
        "delivery_minutes": 31.5,
    }  # fmt: skip
    orders = spark.createDataFrame(
        pd.DataFrame(
            [order, {**order, "order_id": "o2", "courier_id": "k9"},
             {**order, "order_id": "o3", "delivery_minutes": 0.0}]
        )
    )  # fmt: skip
    couriers = spark.createDataFrame(
        pd.DataFrame({"courier_id": ["k1"], "vehicle": ["Scooter"], "experience_months": [7]})
    )
    curated, quarantined = transform(spark, {"orders": orders, "couriers": couriers}, {})
    (only,) = curated.collect()
    assert only.order_id == "o1"
    assert (only.city, only.vehicle, only.courier_experience_months) == ("boston", "scooter", 7)
    # 0.1 degree of latitude along a meridian: 0.1 * pi / 180 * 6371.0088 km.
    assert math.isclose(only.distance_km, 0.1 * math.pi / 180 * 6371.0088, rel_tol=1e-9)
    assert (only.hour_of_day, only.weekday) == (19, 6)  # 2026-03-07 is a Saturday
    assert str(only.order_date) == "2026-03-07"
    assert sorted((r.order_id, r.reason) for r in quarantined.collect()) == [
        ("o2", "unknown courier_id"),
        ("o3", "delivery_minutes is not a positive number"),
    ]
