"""Synthetic raw data for the product, deterministic for a seed: tests, the rehearsal and the
benchmarks use it. Replace it with a generator shaped like your real data."""

from __future__ import annotations

import numpy as np
import pandas as pd

START = np.datetime64("2026-01-01T00:00:00")
SEGMENTS = np.array(["a", "b", "c"])


def sources(rows: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Raw data for each source of the manifest, by source name."""
    rng = np.random.default_rng(seed)
    feature_a = rng.normal(0.0, 1.0, rows)
    feature_b = rng.normal(0.0, 1.0, rows)
    segment = rng.integers(0, len(SEGMENTS), rows)
    # A learnable label: a logistic function of the features and the segment.
    logit = 2.0 * feature_a - 1.5 * feature_b + np.array([-0.5, 0.0, 0.8])[segment] - 1.0
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    seconds = np.sort(rng.integers(0, 30 * 24 * 3600, rows))
    events = pd.DataFrame(
        {
            "record_id": [f"r{seed:03d}-{i:08d}" for i in range(rows)],
            "occurred_at": np.datetime_as_string(START + seconds.astype("timedelta64[s]")),
            "feature_a": feature_a.round(4),
            "feature_b": feature_b.round(4),
            "segment": SEGMENTS[segment],
            "label": label,
        }
    )
    return {"events": events}
