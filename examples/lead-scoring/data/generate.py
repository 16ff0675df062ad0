"""Synthetic B2B leads, the website visits before each lead's form fill, and the companies they
work for, deterministic for a seed.

The tier is learnable: a sales rep's tier (the stage a lead reached) follows the buyer's
seniority, the company's size, how the lead came in, and above all what the visitor did on the
website before the form fill (pricing pages and demo requests weigh most), with a little
noise. Leads are the rows; each source is in a format of its own (leads CSV, web activity
JSON Lines, firmographics Parquet). A few leads are malformed on purpose (an unreadable
creation time, a stage nobody maps, a company nobody knows, a negative count) so the
transform's quarantine has something to catch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SOURCES = np.array(["web_form", "webinar", "trade_show", "partner", "outbound"])
SOURCE_WEIGHT = np.array([0.6, 0.2, 0.0, 0.5, -0.6])
LEVELS = np.array(["c_level", "vp", "director", "manager", "individual"])
LEVEL_WEIGHT = np.array([0.9, 0.7, 0.4, 0.0, -0.5])
INDUSTRIES = np.array(["software", "finance", "healthcare", "manufacturing", "retail", "education"])
INDUSTRY_WEIGHT = np.array([0.5, 0.3, 0.1, 0.0, -0.2, -0.5])
REGIONS = np.array(["na", "emea", "apac", "latam"])
PAGES = np.array(["blog", "docs", "case_study", "careers", "pricing", "demo_request"])
# Stages a sales rep moves a lead to, by the tier they mean (the transform maps them back).
STAGES = {
    "cold": ["disqualified", "unresponsive"],
    "warm": ["contacted", "nurturing"],
    "hot": ["meeting_booked", "opportunity", "closed_won"],
}
START = np.datetime64("2026-03-02T00:00:00")  # a Monday
DAYS = 182
WINDOW_DAYS = 30  # the transform's default activity window


def firmographics(count: int, seed: int = 7) -> pd.DataFrame:
    """`count` companies: domain, industry, head count, revenue and headquarters region."""
    rng = np.random.default_rng(seed + 1)
    employees = np.clip(rng.lognormal(5.0, 1.4, size=count), 5, 200_000).astype("int64")
    return pd.DataFrame(
        {
            "company_domain": [f"co{seed:02d}-{i:05d}.example" for i in range(count)],
            "industry": INDUSTRIES[rng.choice(len(INDUSTRIES), size=count)],
            "employees": employees,
            "annual_revenue_musd": np.round(employees * rng.lognormal(-2.0, 0.5, size=count), 2),
            "hq_region": REGIONS[rng.choice(len(REGIONS), size=count, p=[0.45, 0.3, 0.15, 0.1])],
        }
    )


def leads_and_activity(
    rows: int, companies: pd.DataFrame, seed: int = 7
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`rows` leads and their visitors' web activity."""
    rng = np.random.default_rng(seed)
    company = rng.integers(0, len(companies), size=rows)
    source = rng.choice(len(SOURCES), size=rows, p=[0.35, 0.2, 0.15, 0.1, 0.2])
    level = rng.choice(len(LEVELS), size=rows, p=[0.05, 0.12, 0.23, 0.3, 0.3])
    industry = pd.Index(INDUSTRIES).get_indexer(companies["industry"])[company]
    employees = companies["employees"].to_numpy()[company]
    created = rng.integers(WINDOW_DAYS * 86400, DAYS * 86400, size=rows)
    interest = rng.gamma(1.5, 1.0, size=rows)  # the buyer's intent, unseen
    email_opens = rng.poisson(0.8 + 1.2 * interest)
    # A lead from outbound or a trade show often has no tracked visitor.
    tracked = rng.random(rows) < np.where(np.isin(source, [2, 4]), 0.4, 0.9)
    visits = np.where(tracked, rng.poisson(1.0 + 3.0 * interest), 0)

    events: list[tuple[int, int, int, int]] = []  # (lead, seconds before creation, page, secs)
    page_bias = np.array([0.3, 0.25, 0.15, 0.1, 0.12, 0.08])
    for lead in np.flatnonzero(visits):
        n = int(visits[lead])
        lean = min(interest[lead] / 4.0, 0.8)  # keen buyers read pricing and ask for demos
        p = page_bias * (1 - lean) + np.array([0, 0.05, 0.15, 0, 0.5, 0.3]) * lean
        pages = rng.choice(len(PAGES), size=n, p=p / p.sum())
        # Most visits in the 30 days before the form fill; some older, outside the window.
        ago = np.where(
            rng.random(n) < 0.85,
            rng.integers(60, WINDOW_DAYS * 86400, size=n),
            rng.integers(WINDOW_DAYS * 86400 + 3600, 90 * 86400, size=n),
        )
        dwell = rng.integers(10, 400, size=n)
        events += [(int(lead), int(a), int(g), int(d))
                   for a, g, d in zip(ago, pages, dwell, strict=True)]  # fmt: skip
    frame = pd.DataFrame(events, columns=["lead", "ago", "page", "dwell"])
    # What the transform will count: the visits in the window before the form fill.
    recent = frame[frame["ago"] < WINDOW_DAYS * 86400]
    counted = (
        recent.assign(views=1, pricing=recent["page"].eq(4), demos=recent["page"].eq(5))
        .groupby("lead")[["views", "pricing", "demos", "dwell"]]
        .sum()
    )
    counted = counted.reindex(range(rows), fill_value=0)
    page_views, pricing, demos = (counted[c].to_numpy() for c in ("views", "pricing", "demos"))
    minutes = counted["dwell"].to_numpy() / 60.0

    # What the rep saw, as a score of what the data shows (plus a little judgement).
    score = (
        SOURCE_WEIGHT[source]
        + LEVEL_WEIGHT[level]
        + INDUSTRY_WEIGHT[industry]
        + 0.35 * np.log10(employees)
        + 0.25 * np.minimum(email_opens, 8)
        + 0.15 * np.minimum(page_views, 12)
        + 0.6 * np.minimum(pricing, 4)
        + 1.4 * np.minimum(demos, 2)
        + 0.05 * np.minimum(minutes, 30)
        + rng.normal(0, 0.35, size=rows)
    )
    cold_below, hot_above = np.quantile(score, [0.5, 0.8])
    tier = np.where(score < cold_below, "cold", np.where(score < hot_above, "warm", "hot"))
    stage = np.array([STAGES[t][rng.integers(0, len(STAGES[t]))] for t in tier])

    order = np.argsort(created, kind="stable")
    visitor = np.where(tracked, [f"v{seed:02d}-{i:07d}" for i in range(rows)], "")
    leads = pd.DataFrame(
        {
            "lead_id": [f"l{seed:03d}-{i:07d}" for i in range(rows)],
            "company_domain": companies["company_domain"].to_numpy()[company[order]],
            "visitor_id": visitor[order],
            "created_at": np.datetime_as_string(
                START + created[order].astype("timedelta64[s]"), unit="s"
            ),
            "lead_source": SOURCES[source[order]],
            "job_level": LEVELS[level[order]],
            "email_opens": email_opens[order].astype("int64"),
            "stage": stage[order],
        }
    )
    leads["created_at"] = leads["created_at"] + "Z"
    when = START + created[frame["lead"].to_numpy()] - frame["ago"].to_numpy()
    activity = pd.DataFrame(
        {
            "event_id": [f"e{seed:02d}-{i:08d}" for i in range(len(frame))],
            "visitor_id": visitor[frame["lead"].to_numpy()],
            "occurred_at": np.char.add(
                np.datetime_as_string(when.astype("datetime64[s]"), unit="s"), "Z"
            ),
            "page": PAGES[frame["page"].to_numpy()],
            "seconds_on_page": frame["dwell"].to_numpy().astype("int64"),
        }
    )
    return _spoil(leads), activity.sort_values("occurred_at", kind="stable").reset_index(drop=True)


def _spoil(leads: pd.DataFrame) -> pd.DataFrame:
    """A handful of malformed leads, at fixed rows, for the quarantine to catch."""
    if len(leads) < 50:
        return leads
    leads = leads.astype({"created_at": object, "email_opens": object})
    leads.loc[5, "created_at"] = "next friday"
    leads.loc[13, "stage"] = "on_hold"
    leads.loc[21, "company_domain"] = "nobody.example"
    leads.loc[29, "email_opens"] = -2
    return leads


def sources(rows: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """mlgate's entry point: raw data for each of the manifest's sources, by source name."""
    companies = firmographics(max(20, rows // 6), seed)
    leads, activity = leads_and_activity(rows, companies, seed)
    return {"leads": leads, "web-activity": activity, "firmographics": companies}
