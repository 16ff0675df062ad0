"""What the job keeps of a window while the capture streams past in chunks, in bounded memory.

- `Stats`: exact per-column counts over every row of the window (rows, missing values, present
  values outside the baseline's range or categories, the window's numeric min/max and
  categories seen), added chunk by chunk; the missing and out-of-range shares come from them.
- `Reservoir`: a uniform sample of at most `size` window rows for Evidently (Algorithm R,
  seeded): every row of the window when it has at most `size` rows, in window order, so a
  window that small is compared exactly as a whole.
- `IdSample`: for model quality, the due window's single-row predictions by inference id,
  the last one of an id winning; at most `size` distinct ids, those with the smallest seeded
  hash (a uniform sample of the ids), so the labels to keep are bounded too.

Sampling error, stated in summary.json and the report. For one feature with n present values in
the sample, the Dvoretzky-Kiefer-Wolfowitz inequality (with Massart's constant) bounds how far
the sample's empirical CDF is from the window's, everywhere at once:
    P(sup_x |F_sample(x) - F_window(x)| > eps) <= 2 exp(-2 n eps^2),
    eps = sqrt(ln(2 / alpha) / (2 n)),  alpha = 0.05 (0.0043 at n = 100,000).
DKW is stated for independent draws; the reservoir draws without replacement from the finite
window, which at each point of the CDF is at least as concentrated (Hoeffding 1963, section 6);
for the supremum the DKW bound is taken as is. It covers one feature's distribution at a time
(not all features jointly), at 95 %. What it implies for the drift scores, each a distance d
with |d(ref, s) - d(ref, w)| <= d(s, w) by the triangle inequality:
- normed Wasserstein (W1 / std of the baseline, over the finite values as Evidently takes
  them): W1(s, w) = integral |F_s - F_w| dx <= eps * (max - min of the window), so the score
  moves by at most eps * range / std(baseline);
- Jensen-Shannon distance (natural log): JS(s, w)^2 <= ln 2 * TV(s, w) and each category's
  share moves by at most 2 eps, so TV <= k * eps for the window's k categories and the score
  moves by at most sqrt(ln 2 * min(1, k * eps)): loose (it can exceed 0.1 for a handful of
  categories at n = 100,000), stated because it is what the inequality gives.
For model quality a metric that is a share of the joined rows (accuracy) is within
sqrt(ln(2 / alpha) / (2 m)) of the due window's, m joined rows in the sample (Hoeffding,
without replacement); precision, recall and false_positive_rate are shares of a subset and
have the same bound with that subset's count; AUC, F1 and the regression metrics have no
bound stated here.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SAMPLE_ROWS = 100_000
"""Rows of the window Evidently compares; model quality keeps as many distinct ids."""
SEED = 20_261_120
"""Seed of the reservoir and of the id hash: the same inputs give the same sample."""
ALPHA = 0.05
"""1 - the confidence of the stated sampling error."""


def dkw_error(n: int, alpha: float = ALPHA) -> float:
    """eps with P(sup |F_n - F| > eps) <= alpha for an empirical CDF of n values (DKW)."""
    return math.sqrt(math.log(2 / alpha) / (2 * n))


@dataclass(frozen=True)
class Bounds:
    """The baseline's range per numeric column and categories per categorical column: what
    out of range means, the same for the exact counts and for Evidently's data checks."""

    ranges: Mapping[str, tuple[float, float]]
    categories: Mapping[str, list[Any]]

    @classmethod
    def of(cls, reference: pd.DataFrame, categorical: Collection[str]) -> Bounds:
        ranges, categories = {}, {}
        for column in reference.columns:
            if column in categorical:
                categories[column] = sorted(reference[column].dropna().unique().tolist())
            else:
                ranges[column] = (float(reference[column].min()), float(reference[column].max()))
        return cls(ranges, categories)


@dataclass
class _Column:
    missing: int = 0
    present: int = 0
    outside: int = 0
    low: float = math.inf
    high: float = -math.inf
    seen: set[Any] = field(default_factory=set)


class Stats:
    """Exact counts over all the window's rows, added a chunk at a time. Shares are taken as
    Evidently takes them: missing among all rows, out of range among the present values
    (inclusive [min, max] for numbers, membership for categories)."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.rows = 0
        self.columns = {c: _Column() for c in [*bounds.ranges, *bounds.categories]}

    def add(self, rows: pd.DataFrame) -> None:
        self.rows += len(rows)
        for name, figures in self.columns.items():
            values = rows[name]
            present = values.dropna()
            figures.missing += len(values) - len(present)
            figures.present += len(present)
            if name in self.bounds.ranges:
                low, high = self.bounds.ranges[name]
                figures.outside += int((~present.between(low, high)).sum())
                # Evidently leaves infinite values out of the drift score: so does the range.
                finite = present[np.isfinite(present.to_numpy(dtype=float))]
                if len(finite):
                    figures.low = min(figures.low, float(finite.min()))
                    figures.high = max(figures.high, float(finite.max()))
            else:
                figures.outside += int((~present.isin(self.bounds.categories[name])).sum())
                figures.seen.update(present.unique().tolist())

    def missing_share(self, column: str) -> float:
        return self.columns[column].missing / self.rows if self.rows else 0.0

    def out_of_range_share(self, column: str) -> float:
        figures = self.columns[column]
        # Evidently's share is NaN for a column with no present value; the job reports 0.
        return figures.outside / figures.present if figures.present else 0.0


class Reservoir:
    """A uniform sample of at most `size` rows of a stream (Algorithm R, Vitter 1985): row t
    (0-based) past the first `size` replaces slot j, j uniform in [0, t], when j < size."""

    def __init__(self, size: int = SAMPLE_ROWS, seed: int = SEED) -> None:
        if size < 1:
            raise ValueError("the sample needs at least one row")
        self.size = size
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._parts: list[pd.DataFrame] = []
        self._columns: dict[str, np.ndarray] = {}
        self._index = np.empty(0, dtype=np.int64)
        self._order = np.empty(0, dtype=np.int64)

    @property
    def full(self) -> bool:
        return bool(self._columns)

    def add(self, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        if not self.full:
            take = min(self.size - self.seen, len(rows))
            self._parts.append(rows.iloc[:take].copy())
            self.seen += take
            rows = rows.iloc[take:]
            if self.seen == self.size:
                whole = pd.concat(self._parts)
                self._parts = []
                self._columns = {c: whole[c].to_numpy(copy=True) for c in whole.columns}
                self._index = whole.index.to_numpy(dtype=np.int64, copy=True)
                self._order = np.arange(self.size, dtype=np.int64)
            if rows.empty:
                return
        numbers = self.seen + np.arange(len(rows), dtype=np.int64)
        slots = self._rng.integers(0, numbers + 1)
        hits = np.flatnonzero(slots < self.size)
        # Rows that draw the same slot replace each other in turn: the last one stays.
        reversed_slots, first = np.unique(slots[hits][::-1], return_index=True)
        positions = hits[::-1][first]
        for column, values in self._columns.items():
            values[reversed_slots] = rows[column].to_numpy()[positions]
        self._index[reversed_slots] = rows.index.to_numpy(dtype=np.int64)[positions]
        self._order[reversed_slots] = numbers[positions]
        self.seen += len(rows)

    def frame(self, columns: Sequence[str]) -> pd.DataFrame:
        """The sample in window order (the window itself when it had at most `size` rows)."""
        if not self.full:
            if not self._parts:
                return pd.DataFrame(columns=list(columns), dtype=object)
            return pd.concat(self._parts)
        order = np.argsort(self._order, kind="stable")
        return pd.DataFrame(
            {c: v[order] for c, v in self._columns.items()}, index=self._index[order]
        )


class IdSample:
    """The due window's usable predictions (single-row requests with an answer), one per
    inference id (the last), kept for at most `size` distinct ids: those with the smallest
    seeded 64-bit hash. An id once dropped hashes above every id kept since, so a later record
    of it is dropped too: the kept ids are a uniform sample of the distinct ids."""

    def __init__(self, size: int = SAMPLE_ROWS, seed: int = SEED) -> None:
        if size < 1:
            raise ValueError("the sample needs at least one id")
        self.size = size
        self.key = f"{seed:016d}"[-16:]
        self.due = 0
        self.usable = 0
        self.sampled = False
        self._kept = pd.DataFrame(
            {
                "inference_id": pd.Series(dtype=object),
                "prediction": pd.Series(dtype=object),
                "hash": pd.Series(dtype=np.uint64),
                "seq": pd.Series(dtype=np.int64),
            }
        )

    def add(self, events: pd.DataFrame) -> None:
        """Events of the due window (capture.Captured.events rows, index = row number)."""
        self.due += len(events)
        usable = events[events["single_row"] & events["prediction"].notna()]
        if usable.empty:
            return
        self.usable += len(usable)
        ids = usable["inference_id"]
        new = pd.DataFrame(
            {
                "inference_id": ids.to_numpy(),
                "prediction": usable["prediction"].to_numpy(),
                "hash": pd.util.hash_pandas_object(ids, index=False, hash_key=self.key).to_numpy(),
                "seq": usable.index.to_numpy(dtype=np.int64),
            }
        )
        kept = pd.concat([self._kept, new], ignore_index=True)
        kept = kept.drop_duplicates("inference_id", keep="last")
        if len(kept) > self.size:
            self.sampled = True
            kept = kept.nsmallest(self.size, "hash")
        self._kept = kept

    def events(self) -> pd.DataFrame:
        """The kept predictions in capture order, as quality.join takes them."""
        kept = self._kept.sort_values("seq", kind="stable")
        return pd.DataFrame(
            {
                "inference_id": kept["inference_id"].to_numpy(),
                "prediction": kept["prediction"].to_numpy(),
                "single_row": np.ones(len(kept), dtype=bool),
            }
        )

    def ids(self) -> set[str]:
        return set(self._kept["inference_id"].tolist())
