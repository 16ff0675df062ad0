"""Offline stand-ins for delivery time's business KPIs (manifest: metrics.business_kpis
stand_in), for the rehearsal, where no delivered orders or support tickets exist.

Each takes a scored batch of held-out orders (a pandas DataFrame: delivery_minutes, the payload
columns, and the endpoint's ETA in minutes in the column named `prediction`) and returns the
KPI. The promised time is the ETA the model gave the customer.
"""

from __future__ import annotations

import pandas as pd

LATE_AFTER_MINUTES = 10.0
"""An order is late when delivered more than this long after its promised time (the KPI's
own definition)."""
CONTACT_AFTER_MINUTES = 5.0
"""The stand-in's assumption for eta-contacts: a customer whose food is more than this long
past its ETA contacts support about it once."""


def _minutes_past_eta(batch: pd.DataFrame, prediction: str) -> pd.Series:
    return batch["delivery_minutes"] - batch[prediction]


def late_delivery_share(batch: pd.DataFrame, prediction: str) -> float:
    """Share of orders delivered more than LATE_AFTER_MINUTES after their promised time."""
    return float((_minutes_past_eta(batch, prediction) > LATE_AFTER_MINUTES).mean())


def eta_contacts_per_thousand(batch: pd.DataFrame, prediction: str) -> float:
    """Support contacts about a late order per 1,000 orders: one for each order more than
    CONTACT_AFTER_MINUTES past its ETA."""
    return 1000.0 * float((_minutes_past_eta(batch, prediction) > CONTACT_AFTER_MINUTES).mean())
