"""Offline stand-ins for the product's business KPIs (manifest: metrics.business_kpis
stand_in): what the rehearsal (make rehearse) publishes for the dashboard's KPI widgets, where
no business data exists. Replace them with your KPIs computed from your own columns.

Each takes a scored batch of held-out rows (a pandas DataFrame: the target column, the payload
columns, and the endpoint's answer in the column named `prediction`) and returns the KPI as a
float (NaN when the batch holds nothing to measure it on).
"""

from __future__ import annotations

import pandas as pd

DECIDE_AT = 0.5
"""The score at which the business acts on the model's decision."""


def decisions_accepted(batch: pd.DataFrame, prediction: str) -> float:
    """Share of the model's decisions the label confirms (the business keeps them)."""
    if batch.empty:
        return float("nan")
    decided = (batch[prediction] >= DECIDE_AT).astype(int)
    return float((decided == batch["label"]).mean())
