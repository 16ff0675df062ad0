"""The shadow test's verdict (mlgate/runtime/hooks/shared/shadow.py): each threshold passes
and fails on its own, missing evidence fails, and the distances are the ones the monitoring job
uses (checked against scipy's on the same samples)."""

from __future__ import annotations

import random

import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from shared.shadow import Thresholds, Variant, jensen_shannon, judge, prediction_shift, wasserstein

LIMITS = Thresholds(min_requests=100, max_latency_ratio=1.5, max_error_rate=0.01,
                    max_prediction_shift=0.1)  # fmt: skip
PROD = Variant(invocations=1000, errors=2, latency_us=20_000)
rng = random.Random(7)
SCORES = [f"{rng.betavariate(2, 8):.6f}" for _ in range(800)]


def test_a_shadow_like_production_passes_with_its_evidence() -> None:
    shadow = Variant(invocations=990, errors=3, latency_us=24_000)
    verdict = judge(PROD, shadow, SCORES, SCORES[::-1], LIMITS)
    assert verdict.passed, verdict.reasons
    assert verdict.evidence["latency_ratio"] == 1.2
    assert verdict.evidence["prediction_shift"]["value"] == 0
    assert len(verdict.reasons) == 3


@pytest.mark.parametrize(
    ("shadow", "predictions", "reason"),
    [
        (Variant(990, 3, 40_000), SCORES, "x2.00 (at most x1.5)"),
        (Variant(990, 40, 24_000), SCORES, "error rate 4.04%"),
        (Variant(990, 3, 24_000), [f"{float(s) + 0.2:.6f}" for s in SCORES], "prediction shift"),
        (Variant(40, 0, 24_000), SCORES, "fewer than min_requests 100: no evidence"),
        (Variant(990, 3, None), SCORES, "no model latency"),
        (Variant(990, 3, 24_000), [], "no captured predictions"),
    ],
)
def test_each_threshold_missed_fails_the_test_and_says_which(
    shadow: Variant, predictions: list[str], reason: str
) -> None:
    verdict = judge(PROD, shadow, SCORES, predictions, LIMITS)
    assert not verdict.passed
    assert any(reason in r for r in verdict.reasons), verdict.reasons
    assert verdict.summary().startswith("shadow test failed: ")


def test_the_distances_are_scipys() -> None:
    a = [rng.gauss(0, 1) for _ in range(500)]
    b = [rng.gauss(0.3, 1.2) for _ in range(700)]
    assert wasserstein(a, b) == pytest.approx(wasserstein_distance(a, b), rel=0.03)
    labels_a = rng.choices("xyz", weights=[5, 3, 2], k=600)
    labels_b = rng.choices("xyz", weights=[2, 3, 5], k=400)
    expected = jensenshannon([labels_a.count(k) / 600 for k in "xyz"],
                             [labels_b.count(k) / 400 for k in "xyz"], base=2)  # fmt: skip
    assert jensen_shannon(labels_a, labels_b) == pytest.approx(expected, rel=1e-9)


def test_labels_are_compared_as_labels_and_scores_on_production_s_scale() -> None:
    shift, measure = prediction_shift(["a", "b", "a"], ["a", "a", "a"])
    assert "Jensen-Shannon" in measure
    assert shift > 0
    wide = [str(v * 100) for v in range(100)]
    moved = [str(v * 100 + 50) for v in range(100)]
    shift, measure = prediction_shift(wide, moved)
    assert "std" in measure
    assert shift == pytest.approx(50 / 2886.6, rel=0.02)  # 50 over the std of 0..9900
