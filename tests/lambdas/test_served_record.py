"""The deploy verifier records what each environment serves once it has verified it (the
"served" records `python -m mlgate rollback` reads), under moto with the audit table, driven by
the same jobs as tests/lambdas/test_deploy_checks.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from .conftest import EXECUTION, PIPELINE, Faults, audit_items, fail_then_retry
from .test_deploy_checks import (  # fixtures and stand-ins, no tests
    RELEASE,
    RELEASED,
    RELEASED_ARN,
    AsyncEndpoint,
    AsyncRuntime,
    Endpoint,
    Pipeline,
    released,
    run_async,
    run_verifier,
    verifier,
    verify_job,
    write,
)

__all__ = ["released", "verifier"]  # fixtures, used by name
MODIFIED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
KEY = ("served#" + PIPELINE + "#staging", "2026-12-01T09:30:00Z#7")


class Dated(Endpoint):
    """DescribeEndpoint with its LastModifiedTime, as SageMaker always answers it."""

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {**super().describe_endpoint(EndpointName), "LastModifiedTime": MODIFIED}


class DatedAsync(AsyncEndpoint, Dated):
    pass


@pytest.fixture
def audited(verifier: Any, audit_table: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AUDIT_TABLE", audit_table)
    monkeypatch.setenv("AUDIT_RETENTION_DAYS", "30")
    return verifier


def served() -> list[dict[str, str]]:
    return [i for i in audit_items() if i["pk"].startswith("served#")]


def test_a_verified_environment_records_the_version_it_serves(
    audited: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_verifier(audited, monkeypatch, Dated("InService", RELEASED))
    assert result["result"] == "succeeded"
    ((item,),) = [served()]
    assert (item["pk"], item["sk"]) == KEY
    assert item["model_package_arn"] == RELEASED_ARN
    assert item["model_data_url"] == RELEASED
    assert item["baseline_statistics_uri"] == RELEASE["baseline_statistics_uri"]
    assert item["execution"] == EXECUTION
    assert item["model_version"] == "7"


def test_the_same_deploy_verified_again_keeps_one_record(
    audited: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):
        assert run_verifier(audited, monkeypatch, Dated("InService", RELEASED))["result"] == (
            "succeeded"
        )
    assert len(served()) == 1


def test_a_silent_rollback_records_nothing(audited: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = RELEASED.replace("/7/", "/6/")
    assert run_verifier(audited, monkeypatch, Dated("InService", previous))["result"] == "failed"
    assert served() == []


def test_a_throttled_record_fails_the_invocation_and_the_retry_records_and_reports_once(
    audited: Any, monkeypatch: pytest.MonkeyPatch, faults: Faults
) -> None:
    """The record is written before success is reported: a throttle on it fails the
    invocation (not the job); Lambda's retry writes it once and reports once."""
    _, pipeline = audited
    run = lambda: run_verifier(audited, monkeypatch, Dated("InService", RELEASED))  # noqa: E731
    run()
    index = faults.seen.index("dynamodb.put_item")
    assert faults.seen[index + 1] == "recorder.put_job_success_result", "recorded first"
    for item in audit_items():  # start again from an empty trail and a fresh job
        boto3.client("dynamodb").delete_item(
            TableName="audit", Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}}
        )
    pipeline.calls.clear()
    faults.seen.clear()
    answer = fail_then_retry(faults, index, run)
    assert faults.failed == "dynamodb.put_item"
    assert answer["result"] == "succeeded"
    assert pipeline.names() == ["put_job_success_result"]
    assert len(served()) == 1


def test_an_async_environment_is_recorded_once_its_sample_answers(
    audited: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = AsyncRuntime("later")
    verify_job(released)
    first = run_async(audited, monkeypatch, runtime, DatedAsync("InService", RELEASED))
    assert first["result"] == "in_progress"
    assert served() == [], "not verified yet"
    token = audited[1].calls[-1][1]["continuationToken"]
    write(json.loads(token)["output"], "0.0132")
    verify_job(released, token)
    again = run_async(audited, monkeypatch, runtime, DatedAsync("InService", RELEASED))
    assert again["result"] == "succeeded", again
    ((item,),) = [served()]
    assert (item["pk"], item["sk"]) == KEY
