"""Offline stand-ins for fraud detection's business KPIs (manifest: metrics.business_kpis
stand_in), for the rehearsal, where no settled card volume or chargebacks exist.

Each takes a scored batch of held-out transactions (a pandas DataFrame: is_fraud, the payload
columns, and the endpoint's fraud score in the column named `prediction`) and returns the KPI;
NaN when the batch holds nothing it could be measured on. A transaction is declined when its
score reaches DECLINE_AT, as the checkout would decide it.
"""

from __future__ import annotations

import pandas as pd

DECLINE_AT = 0.5
"""The score at which the checkout declines a transaction."""
HIGH_VALUE_QUANTILE = 0.9
"""High-value customers: the top 10 % of the batch by their usual spend."""


def _declined(batch: pd.DataFrame, prediction: str) -> pd.Series:
    return batch[prediction] >= DECLINE_AT


def fraud_loss_bps(batch: pd.DataFrame, prediction: str) -> float:
    """Fraud let through (the amount of fraudulent transactions not declined) in basis points
    of the batch's card volume."""
    volume = float(batch["amount"].sum())
    if volume <= 0:
        return float("nan")
    missed = batch["is_fraud"].eq(1) & ~_declined(batch, prediction)
    return 1e4 * float(batch.loc[missed, "amount"].sum()) / volume


def high_value_false_declines(batch: pd.DataFrame, prediction: str) -> float:
    """Share of high-value customers' legitimate transactions declined. A customer's usual
    spend is the amount over amount_to_customer_mean (the ETL's ratio to the customer's mean)."""
    ratio = batch["amount_to_customer_mean"]
    usual = (batch["amount"] / ratio).where(ratio > 0)
    high_value = usual >= usual.quantile(HIGH_VALUE_QUANTILE)
    legitimate = high_value & batch["is_fraud"].eq(0)
    if not legitimate.any():
        return float("nan")
    return float(_declined(batch, prediction)[legitimate].mean())


def fraud_caught(batch: pd.DataFrame, prediction: str) -> float:
    """Share of the batch's fraud amount declined before settlement."""
    fraud = batch["is_fraud"].eq(1)
    amount = float(batch.loc[fraud, "amount"].sum())
    if amount <= 0:
        return float("nan")
    caught = fraud & _declined(batch, prediction)
    return float(batch.loc[caught, "amount"].sum()) / amount
