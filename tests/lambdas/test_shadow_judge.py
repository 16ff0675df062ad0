"""The deploy verifier in a Shadow stage, under moto (CloudWatch, S3, the audit table; the
endpoint and CodePipeline stood in for): it confirms the shadow variant, waits the test's
minutes through its own token, then judges both variants once and records the verdict; its
job succeeds whatever the verdict (the deployer's next action passes it on)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from .conftest import CONTEXT, EXECUTION, JOB_ID, audit_items
from .test_deploy_checks import Endpoint, Pipeline
from .test_deploy_checks import released as released
from .test_deploy_checks import verifier as verifier
from .test_shadow_measure import ENDPOINT, capture, traffic

START = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
SHADOW = {
    "variant": "Shadow",
    "production_variant": "AllTraffic",
    "minutes": 60,
    "sampling_percent": 30,
    "capture_uri": "s3://capture-bucket/datacapture/prod",
    "thresholds": {"min_requests": 50, "max_latency_ratio": 1.5, "max_error_rate": 0.01,
                   "max_prediction_shift": 0.1},
}  # fmt: skip


class Shadowed(Endpoint):
    """The endpoint with (or without) its shadow variant."""

    def __init__(self, shadow: bool = True) -> None:
        super().__init__("InService", "s3://artifacts/released/fraud-detection/6/model.tar.gz")
        self.shadow = shadow

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        found = super().describe_endpoint(EndpointName)
        if self.shadow:
            found["ShadowProductionVariants"] = [{"VariantName": "Shadow"}]
        return found


@pytest.fixture
def judge(
    verifier: Any,
    released: Pipeline,
    audit_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    handler, _ = verifier
    monkeypatch.setenv("AUDIT_TABLE", audit_table)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="capture-bucket",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})  # fmt: skip
    endpoint = Shadowed()
    real = boto3.client
    monkeypatch.setattr(handler.boto3, "client",
                        lambda name, *a, **k: endpoint if name == "sagemaker"
                        else real(name, *a, **k))  # fmt: skip
    return handler, released, endpoint


def run(judge: Any, monkeypatch: pytest.MonkeyPatch, at: datetime,
        token: dict[str, Any] | None = None) -> dict[str, str]:  # fmt: skip
    handler, pipeline, _ = judge
    monkeypatch.setattr(handler, "now", lambda: at.timestamp())
    params = {"environment": "prod", "endpoint": ENDPOINT, "shadow": SHADOW}
    pipeline.jobs.add(params, revision=pipeline.revision,
                      continuation=json.dumps(token) if token else None)  # fmt: skip
    from .test_deploy_checks import JOB

    return dict(handler.handler(json.loads(json.dumps(JOB)), CONTEXT))


def token_of(judge: Any) -> dict[str, Any]:
    _, pipeline, _ = judge
    return dict(json.loads(pipeline.jobs.reports()[-1][1]["continuationToken"]))


def observed(shadow_latency: float) -> None:
    """What SageMaker publishes over the test: production's 900 requests at 20 ms, the
    shadow's 300 at `shadow_latency` µs, both variants' answers alike."""
    cloudwatch, s3 = boto3.client("cloudwatch"), boto3.client("s3")
    traffic(cloudwatch, "AllTraffic", 900, 0, 20_000)
    traffic(cloudwatch, "Shadow", 300, 0, shadow_latency)
    scores = [i / 100 for i in range(100)]
    capture(s3, "AllTraffic", scores)
    capture(s3, "Shadow", scores)


def shadow_records() -> list[dict[str, str]]:
    return [i for i in audit_items() if i["pk"].startswith("shadow#")]


def test_the_judge_waits_its_minutes_then_records_a_passing_verdict_once(
    judge: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = run(judge, monkeypatch, START)
    assert started["result"] == "in_progress", started
    token = token_of(judge)
    assert token == {"endpoint": ENDPOINT, "since": int(START.timestamp())}
    waiting = run(judge, monkeypatch, START + timedelta(minutes=30), token)
    assert waiting["result"] == "in_progress"
    assert "31 min left" in waiting["reason"]
    assert shadow_records() == []
    observed(shadow_latency=22_000)
    done = run(judge, monkeypatch, START + timedelta(minutes=61), token)
    assert done["result"] == "succeeded", done
    assert done["passed"] == "true"
    (record,) = shadow_records()
    assert record["sk"] == EXECUTION
    assert record["passed"] == "true"
    assert json.loads(record["evidence"])["shadow"]["invocations"] == pytest.approx(300)
    assert json.loads(record["evidence"])["copied_share"]["measured_percent"] == 33.33
    assert "copied 33.3 % of production's requests (asked 30 %)" in done["reason"]
    again = run(judge, monkeypatch, START + timedelta(minutes=62), token)  # a retry
    assert again["reason"] == done["reason"]
    assert len(shadow_records()) == 1


def test_a_shadow_that_misses_a_threshold_is_recorded_failed_and_the_job_still_succeeds(
    judge: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(judge, monkeypatch, START)
    token = token_of(judge)
    observed(shadow_latency=61_000)
    done = run(judge, monkeypatch, START + timedelta(minutes=61), token)
    assert done["result"] == "succeeded"
    assert done["passed"] == "false"
    assert "x3.05 (at most x1.5)" in done["reason"]
    (record,) = shadow_records()
    assert record["passed"] == "false"


def test_an_endpoint_without_its_shadow_variant_fails_the_job(
    judge: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge[2].shadow = False
    result = run(judge, monkeypatch, START)
    assert result["result"] == "failed"
    assert "not InService with Shadow" in result["reason"]
    assert JOB_ID in json.dumps(judge[1].jobs.reports()[-1])


def test_a_token_for_another_endpoint_is_refused(judge: Any, monkeypatch: Any) -> None:
    result = run(judge, monkeypatch, START, {"endpoint": "someone-else", "since": 1})
    assert result["result"] == "refused"
    assert "continuationToken.endpoint" in result["reason"]


def test_a_throttled_measurement_fails_the_invocation_and_the_retry_judges_once(
    judge: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A throttle from CloudWatch is no verdict: the invocation fails for Lambda's retry
    (nothing recorded, no job result), and the retry records the verdict once."""
    from botocore.exceptions import ClientError

    handler, pipeline, endpoint = judge
    run(judge, monkeypatch, START)
    token = token_of(judge)
    observed(shadow_latency=22_000)
    real = boto3.client

    class Throttled:
        def get_metric_data(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}},
                              "GetMetricData")  # fmt: skip

    fakes = {"sagemaker": endpoint, "cloudwatch": Throttled()}
    monkeypatch.setattr(handler.boto3, "client",
                        lambda name, *a, **k: fakes.get(name) or real(name, *a, **k))  # fmt: skip
    reports = len(pipeline.jobs.reports())
    with pytest.raises(ClientError, match="Rate exceeded"):
        run(judge, monkeypatch, START + timedelta(minutes=61), token)
    assert shadow_records() == []
    assert len(pipeline.jobs.reports()) == reports
    monkeypatch.setattr(handler.boto3, "client",
                        lambda name, *a, **k: endpoint if name == "sagemaker"
                        else real(name, *a, **k))  # fmt: skip
    done = run(judge, monkeypatch, START + timedelta(minutes=62), token)
    assert done["passed"] == "true"
    assert len(shadow_records()) == 1
