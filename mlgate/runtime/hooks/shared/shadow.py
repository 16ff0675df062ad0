"""The shadow test's verdict: the shadow variant against the production variant on the same
copied requests (mlgate/manifest/shadow.py says what the manifest's thresholds mean).

Pure Python (the hooks' layer has no numpy): what the shadow gate hook measured goes in
(each variant's invocations, errors and average model latency from CloudWatch, and the
predictions both answered, from the endpoint's data capture), the verdict and its evidence come
out. No evidence is no pass: a shadow that answered fewer than `min_requests` requests fails.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

QUANTILES = 200
"""Points of the quantile functions the Wasserstein distance is integrated over."""


@dataclass(frozen=True)
class Thresholds:
    min_requests: int
    max_latency_ratio: float
    max_error_rate: float
    max_prediction_shift: float


@dataclass(frozen=True)
class Variant:
    """One variant's measurements over the test's window."""

    invocations: float
    errors: float
    latency_us: float | None
    """Average ModelLatency (microseconds), None when CloudWatch has no data point."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.invocations if self.invocations else 0.0


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        head = "shadow test passed" if self.passed else "shadow test failed"
        return f"{head}: {'; '.join(self.reasons)}"


def _quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile of sorted `values` (linear interpolation)."""
    at = q * (len(values) - 1)
    low = math.floor(at)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (at - low)


def wasserstein(a: Sequence[float], b: Sequence[float]) -> float:
    """The 1-Wasserstein distance of two samples: the mean gap of their quantile functions."""
    sa, sb = sorted(a), sorted(b)
    steps = [(i + 0.5) / QUANTILES for i in range(QUANTILES)]
    return sum(abs(_quantile(sa, q) - _quantile(sb, q)) for q in steps) / QUANTILES


def jensen_shannon(a: Sequence[str], b: Sequence[str]) -> float:
    """The Jensen-Shannon distance (base 2, 0..1) of two label samples."""
    ca, cb = Counter(a), Counter(b)
    labels = set(ca) | set(cb)
    pa = {k: ca[k] / len(a) for k in labels}
    pb = {k: cb[k] / len(b) for k in labels}
    mid = {k: (pa[k] + pb[k]) / 2 for k in labels}

    def kl(p: dict[str, float]) -> float:
        return sum(p[k] * math.log2(p[k] / mid[k]) for k in labels if p[k] > 0)

    return math.sqrt(max(0.0, (kl(pa) + kl(pb)) / 2))


def _floats(values: Sequence[str]) -> list[float] | None:
    try:
        found = [float(v) for v in values]
    except ValueError:
        return None
    return found if all(math.isfinite(v) for v in found) else None


def prediction_shift(production: Sequence[str], shadow: Sequence[str]) -> tuple[float, str]:
    """(distance, how it was measured) of the two variants' predictions."""
    numbers, others = _floats(production), _floats(shadow)
    if numbers is not None and others is not None:
        mean = sum(numbers) / len(numbers)
        spread = math.sqrt(sum((v - mean) ** 2 for v in numbers) / len(numbers))
        distance = wasserstein(numbers, others)
        if spread == 0:
            return (0.0 if distance == 0 else math.inf), "Wasserstein / production's std"
        return distance / spread, "Wasserstein / production's std"
    return jensen_shannon(production, shadow), "Jensen-Shannon distance of the labels"


def judge(
    production: Variant,
    shadow: Variant,
    production_predictions: Sequence[str],
    shadow_predictions: Sequence[str],
    limits: Thresholds,
) -> Verdict:
    """Every threshold checked; each one missed is a reason, and so is missing evidence."""
    verdict = Verdict(passed=True)
    evidence: dict[str, Any] = {
        "production": {**asdict(production), "error_rate": round(production.error_rate, 6)},
        "shadow": {**asdict(shadow), "error_rate": round(shadow.error_rate, 6)},
        "thresholds": asdict(limits),
        "predictions": {"production": len(production_predictions),
                        "shadow": len(shadow_predictions)},
    }  # fmt: skip
    fails: list[str] = []
    oks: list[str] = []
    if shadow.invocations < limits.min_requests:
        fails.append(
            f"the shadow answered {shadow.invocations:g} requests, fewer than min_requests "
            f"{limits.min_requests}: no evidence"
        )
    extra = shadow.error_rate - production.error_rate
    (fails if extra > limits.max_error_rate else oks).append(
        f"error rate {shadow.error_rate:.2%} against production's {production.error_rate:.2%} "
        f"(at most {limits.max_error_rate:.2%} more)"
    )
    if shadow.latency_us is None or production.latency_us is None:
        fails.append("no model latency for a variant in CloudWatch: no evidence")
    else:
        ratio = shadow.latency_us / production.latency_us if production.latency_us else math.inf
        evidence["latency_ratio"] = round(ratio, 4)
        (fails if ratio > limits.max_latency_ratio else oks).append(
            f"model latency {shadow.latency_us / 1000:.1f} ms against production's "
            f"{production.latency_us / 1000:.1f} ms, x{ratio:.2f} (at most "
            f"x{limits.max_latency_ratio:g})"
        )
    if not production_predictions or not shadow_predictions:
        fails.append("no captured predictions for a variant: no evidence")
    else:
        shift, measure = prediction_shift(production_predictions, shadow_predictions)
        evidence["prediction_shift"] = {"value": round(shift, 6), "measure": measure}
        (fails if shift > limits.max_prediction_shift else oks).append(
            f"prediction shift {shift:.3f} ({measure}; at most {limits.max_prediction_shift:g})"
        )
    verdict.passed = not fails
    verdict.reasons = fails or oks
    verdict.evidence = evidence
    return verdict
