"""The shadow test, measured under moto (mlgate/runtime/hooks/deploy_verifier/shadow.py): each
variant's CloudWatch statistics over the window only, each variant's captured answers only,
malformed capture lines counted and skipped, and the verdict judged from both."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from deploy_verifier.shadow import ShadowPlan, judge_window, measure, predictions
from moto import mock_aws

from shared.shadow import Thresholds

REGION = "eu-west-1"
ENDPOINT = "mlgate-churn-prod"
START = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=60)
CAPTURE = "s3://capture-bucket/datacapture/prod"
PLAN = ShadowPlan(
    variant="Shadow",
    production_variant="AllTraffic",
    minutes=60,
    sampling_percent=30,
    capture_uri=CAPTURE,
    thresholds=Thresholds(
        min_requests=50, max_latency_ratio=1.5, max_error_rate=0.01, max_prediction_shift=0.1
    ),
)


@pytest.fixture
def aws() -> Iterator[tuple[object, object]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="capture-bucket",
                         CreateBucketConfiguration={"LocationConstraint": REGION})  # fmt: skip
        yield boto3.client("cloudwatch", region_name=REGION), s3


def put(cloudwatch: object, variant: str, name: str, value: float, at: datetime) -> None:
    cloudwatch.put_metric_data(  # type: ignore[attr-defined]
        Namespace="AWS/SageMaker",
        MetricData=[{"MetricName": name, "Value": value, "Timestamp": at,
                     "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT},
                                    {"Name": "VariantName", "Value": variant}]}],
    )  # fmt: skip


def traffic(cloudwatch: object, variant: str, calls: int, errors: int, latency: float) -> None:
    for minute in (5, 25, 45):
        at = START + timedelta(minutes=minute)
        put(cloudwatch, variant, "Invocations", calls / 3, at)
        put(cloudwatch, variant, "Invocation5XXErrors", errors / 3, at)
        put(cloudwatch, variant, "ModelLatency", latency, at)
    # Outside the window: must not count.
    put(cloudwatch, variant, "Invocations", 10_000, START - timedelta(hours=3))


def capture(s3: object, variant: str, scores: list[float], *, junk: int = 0) -> None:
    lines = []
    for i, score in enumerate(scores):
        answer = f"{score:.4f}\n"
        encoded = i % 2 == 0  # half of them base64, as SageMaker writes other content types
        lines.append(json.dumps({
            "captureData": {
                "endpointInput": {"data": "1,2,3", "encoding": "CSV", "mode": "INPUT"},
                "endpointOutput": {
                    "data": base64.b64encode(answer.encode()).decode() if encoded else answer,
                    "encoding": "BASE64" if encoded else "CSV", "mode": "OUTPUT"}},
            "eventMetadata": {"eventId": f"e-{i}", "inferenceTime": "2026-12-05T10:10:00Z"},
            "eventVersion": "0"}))  # fmt: skip
    lines += ["{not json"] * junk
    key = f"datacapture/prod/{ENDPOINT}/{variant}/2026/12/05/10/capture.jsonl"
    s3.put_object(Bucket="capture-bucket", Key=key, Body="\n".join(lines).encode())  # type: ignore[attr-defined]


def test_each_variant_is_measured_over_the_window_only(aws: tuple[object, object]) -> None:
    cloudwatch, _ = aws
    traffic(cloudwatch, "AllTraffic", 900, 0, 20_000)
    traffic(cloudwatch, "Shadow", 300, 30, 26_000)
    production = measure(cloudwatch, ENDPOINT, "AllTraffic", START, END)
    shadow = measure(cloudwatch, ENDPOINT, "Shadow", START, END)
    assert production.invocations == pytest.approx(900)
    assert shadow.invocations == pytest.approx(300)
    assert shadow.errors == pytest.approx(30)
    assert shadow.latency_us == pytest.approx(26_000)


def test_captured_answers_are_read_per_variant_and_junk_is_counted(
    aws: tuple[object, object],
) -> None:
    _, s3 = aws
    capture(s3, "AllTraffic", [0.1, 0.2, 0.3], junk=2)
    capture(s3, "Shadow", [0.9])
    ours, bad = predictions(s3, CAPTURE, ENDPOINT, "AllTraffic", START, END)
    assert ours == ["0.1000", "0.2000", "0.3000"]
    assert bad == 2
    theirs, _ = predictions(s3, CAPTURE, ENDPOINT, "Shadow", START, END)
    assert theirs == ["0.9000"]


def test_a_shadow_that_scores_alike_passes_and_one_that_does_not_fails(
    aws: tuple[object, object],
) -> None:
    cloudwatch, s3 = aws
    traffic(cloudwatch, "AllTraffic", 900, 0, 20_000)
    traffic(cloudwatch, "Shadow", 300, 0, 22_000)
    scores = [i / 100 for i in range(100)]
    capture(s3, "AllTraffic", scores)
    capture(s3, "Shadow", scores)
    verdict = judge_window(cloudwatch, s3, ENDPOINT, PLAN, START, END)
    assert verdict.passed, verdict.reasons
    # What SageMaker copied (300 of 900), beside what the manifest asked: judged by nothing.
    assert "copied 33.3 % of production's requests (asked 30 %)" in verdict.reasons
    assert verdict.evidence["copied_share"] == {"asked_percent": 30, "measured_percent": 33.33}
    capture(s3, "Shadow", [s + 0.5 for s in scores])  # the same key, overwritten
    verdict = judge_window(cloudwatch, s3, ENDPOINT, PLAN, START, END)
    assert not verdict.passed
    assert any("prediction shift" in r for r in verdict.reasons)


def test_a_window_without_production_traffic_says_the_share_was_not_measured(
    aws: tuple[object, object],
) -> None:
    cloudwatch, s3 = aws
    verdict = judge_window(cloudwatch, s3, ENDPOINT, PLAN, START, END)
    assert not verdict.passed
    assert verdict.reasons[-1] == (
        "copied share not measured: production answered no requests (asked 30 %)"
    )
    assert verdict.evidence["copied_share"] == {"asked_percent": 30, "measured_percent": None}
