"""Offline stand-ins for lead scoring's business KPIs (manifest: metrics.business_kpis stand_in),
for the rehearsal, where no sales outcomes exist.

Each takes a scored batch of held-out leads (a pandas DataFrame: lead_tier, the payload
columns, and the model's tier in the column named `prediction`) and returns the KPI; NaN when
the batch holds nothing it could be measured on. The label arrives as the test split holds it
(the tier's index in TIERS); the prediction as the model serves it (a tier name), or as an
index. Sales works the batch as the weekly list tells it: a rep calls every lead scored hot
CALLS_PER_HOT times and emails every warm one once; cold ones get the newsletter only.
"""

from __future__ import annotations

import pandas as pd

TIERS = ("cold", "warm", "hot")
"""The manifest's target_values, in label order."""
CALLS_PER_HOT = 3
"""The stand-in's assumption: contacts a rep makes on a lead the list scores hot."""
CONTACTS = {"cold": 0, "warm": 1, "hot": CALLS_PER_HOT}


def _tier(values: pd.Series) -> pd.Series:
    """Tier names from names or label indices."""
    names = values.map(lambda v: v if isinstance(v, str) else TIERS[round(float(v))])
    unknown = sorted(set(names) - set(TIERS))
    if unknown:
        raise ValueError(f"tiers {unknown} are not among {list(TIERS)}")
    return names


def hot_lead_share(batch: pd.DataFrame, prediction: str) -> float:
    """Share of the batch the list scores hot: the load on the sales team."""
    if batch.empty:
        return float("nan")
    return float((_tier(batch[prediction]) == "hot").mean())


def contacts_per_conversion(batch: pd.DataFrame, prediction: str) -> float:
    """Sales contacts spent per lead that converts (a lead whose real tier is hot, reached
    through the list: scored warm or hot)."""
    scored, real = _tier(batch[prediction]), _tier(batch["lead_tier"])
    converted = int(((real == "hot") & scored.isin(["warm", "hot"])).sum())
    if converted == 0:
        return float("nan")
    return float(scored.map(CONTACTS).sum()) / converted


def hot_leads_missed(batch: pd.DataFrame, prediction: str) -> float:
    """Share of the really hot leads the list scores cold: buyers nobody calls."""
    scored, real = _tier(batch[prediction]), _tier(batch["lead_tier"])
    hot = real == "hot"
    if not hot.any():
        return float("nan")
    return float((scored[hot] == "cold").mean())
