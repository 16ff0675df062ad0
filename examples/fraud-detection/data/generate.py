"""A synthetic card-transaction dataset for the default product, deterministic for a seed.

Fraud is rare (about 1.5 %) and learnable: fraudulent transactions are larger than the
customer's usual amount, more often card-not-present and abroad, and come in quick bursts.
Nothing large is shipped: tests, benchmarks and local runs generate what they need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = [
    "transaction_id", "customer_id", "event_time", "amount", "merchant_category",
    "merchant_country", "channel", "card_present", "is_fraud",
]  # fmt: skip
CATEGORIES = np.array(
    ["grocery", "fuel", "restaurant", "travel", "electronics", "fashion", "online"]
)
COUNTRIES = np.array(["DE", "FR", "NL", "ES", "IT", "GB", "US", "BR", "NG", "RU"])
HOME = 6  # the first six countries are where customers live
CHANNELS = np.array(["pos", "ecommerce", "contactless", "atm"])
FRAUD_RATE = 0.015
START = np.datetime64("2026-01-01T00:00:00")


def generate(rows: int, seed: int = 7) -> pd.DataFrame:
    """`rows` transactions over 90 days from about rows / 40 customers."""
    rng = np.random.default_rng(seed)
    customers = max(1, rows // 40)
    usual = rng.lognormal(mean=3.4, sigma=0.6, size=customers)  # a customer's typical spend
    home = rng.integers(0, HOME, size=customers)

    customer = rng.integers(0, customers, size=rows)
    fraud = rng.random(rows) < FRAUD_RATE
    seconds = rng.integers(0, 90 * 24 * 3600, size=rows)
    # Fraud comes in bursts: a compromised card is used again within minutes, so most
    # fraudulent transactions follow another one on the same customer's card.
    frauds = np.flatnonzero(fraud)
    if frauds.size > 1:
        burst = frauds[rng.random(frauds.size) < 0.6]
        leader = rng.choice(frauds, size=burst.size)
        customer[burst] = customer[leader]
        seconds[burst] = seconds[leader] + rng.integers(30, 900, size=burst.size)

    amount = usual[customer] * rng.lognormal(0.0, 0.35, size=rows)
    amount[fraud] *= rng.uniform(3.0, 12.0, size=int(fraud.sum()))
    country = home[customer].copy()
    abroad = np.where(fraud, rng.random(rows) < 0.55, rng.random(rows) < 0.04)
    country[abroad] = rng.integers(HOME, len(COUNTRIES), size=int(abroad.sum()))
    card_present = np.where(fraud, rng.random(rows) < 0.2, rng.random(rows) < 0.7)
    channel = np.where(
        card_present,
        rng.choice([0, 2, 3], size=rows, p=[0.6, 0.35, 0.05]),
        1,
    )
    category = np.where(
        fraud,
        rng.choice([3, 4, 6], size=rows),
        rng.choice(len(CATEGORIES), size=rows, p=[0.3, 0.12, 0.2, 0.05, 0.05, 0.1, 0.18]),
    )
    order = np.argsort(seconds, kind="stable")
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{seed:03d}-{i:09d}" for i in range(rows)],
            "customer_id": np.char.add("c", customer[order].astype(str)),
            "event_time": np.datetime_as_string(
                START + seconds[order].astype("timedelta64[s]"), unit="s"
            ),
            "amount": np.round(amount[order], 2),
            "merchant_category": CATEGORIES[category[order]],
            "merchant_country": COUNTRIES[country[order]],
            "channel": CHANNELS[channel[order]],
            "card_present": card_present[order].astype(int),
            "is_fraud": fraud[order].astype(int),
        },
        columns=COLUMNS,
    )
    frame["event_time"] = frame["event_time"] + "Z"
    return frame


def write_csv(path: str | Path, rows: int, seed: int = 7) -> Path:
    """Write a generated dataset as CSV with a header, as the raw bucket receives it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    generate(rows, seed).to_csv(path, index=False)
    return path


def sources(rows: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """mlgate's entry point: raw data for each of the manifest's sources, by source name, with
    a malformed record as real feeds have (an amount that is not a number)."""
    frame = generate(rows, seed).astype({"amount": object})
    if rows > 7:
        frame.loc[7, "amount"] = "n/a"
    return {"transactions": frame}
