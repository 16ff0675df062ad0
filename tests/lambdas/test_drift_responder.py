"""Drift responder under moto: the first violation retrains, a second inside the cool-down does
not and says why, a malformed event starts nothing."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from .conftest import CONTEXT, Faults, fail_then_retry

EVENT = json.loads(
    (Path(__file__).parents[1] / "events" / "monitoring_violations.json").read_text()
)
PIPELINE = "mlgate-fraud-detection-training"
NOW = 1_795_514_800.0


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_pipeline(
            PipelineName=PIPELINE,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn="arn:aws:iam::123456789012:role/training",
        )
        boto3.client("dynamodb").create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        boto3.client("dynamodb").create_table(
            TableName="drift",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        topic = boto3.client("sns").create_topic(Name="on-call")["TopicArn"]
        sqs = boto3.client("sqs")
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        for key, value in {
            "PIPELINE_NAME": PIPELINE,
            "COOLDOWN_TABLE": "drift",
            "COOLDOWN_HOURS": "24",
            "OWNERS_TOPIC_ARN": topic,
            "ENDPOINT_NAME": "mlgate-fraud-detection-prod",
            "PRODUCT": "fraud-detection",
            "ENVIRONMENT": "prod",
        }.items():
            monkeypatch.setenv(key, value)
        from drift_responder import handler

        handler.settings.cache_clear()
        yield {"handler": handler, "queue": queue}


def executions() -> int:
    return len(
        boto3.client("sagemaker").list_pipeline_executions(PipelineName=PIPELINE)[
            "PipelineExecutionSummaries"
        ]
    )


def messages(queue: str) -> list[str]:
    got = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [json.loads(m["Body"])["Message"] for m in got.get("Messages", [])]


def test_first_violation_starts_retraining_and_tells_the_owners(aws: dict[str, Any]) -> None:
    result = aws["handler"].handler(EVENT, CONTEXT, now=NOW)
    assert result["started"] == "true"
    assert executions() == 1
    (message,) = messages(aws["queue"])
    assert "CompletedWithViolations: Job completed successfully with 3 violations." in message
    assert "monitoring/prod/data-quality" in message
    metrics = boto3.client("cloudwatch").list_metrics(Namespace="mlgate/monitoring")["Metrics"]
    assert [m["MetricName"] for m in metrics] == ["DriftViolations"]


def test_second_violation_inside_the_cooldown_starts_nothing_and_says_why(
    aws: dict[str, Any],
) -> None:
    aws["handler"].handler(EVENT, CONTEXT, now=NOW)
    later = copy.deepcopy(EVENT)
    later["detail"]["ProcessingJobName"] = "model-monitoring-202611241100-later"
    result = aws["handler"].handler(later, CONTEXT, now=NOW + 3600)
    assert result["started"] == "false"
    assert result["reason"] == (
        "retraining already started for drift found by "
        "model-monitoring-202611241000-1a2b3c4d5e6f7a8b9c0d1e2f; cool-down of 24 h lasts "
        "until 2026-11-25 10:06 UTC"
    )
    assert executions() == 1
    assert len(messages(aws["queue"])) == 2


def test_after_the_cooldown_drift_retrains_again(aws: dict[str, Any]) -> None:
    aws["handler"].handler(EVENT, CONTEXT, now=NOW)
    later = copy.deepcopy(EVENT)
    later["detail"]["ProcessingJobName"] = "model-monitoring-202611251100-next-day"
    result = aws["handler"].handler(later, CONTEXT, now=NOW + 25 * 3600)
    assert result["started"] == "true"
    assert executions() == 2


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda e: e.update({"detail-type": "Scheduled Event"}),
            "expected a 'SageMaker Processing",
        ),
        (lambda e: e.pop("detail"), "the event has no detail"),
        (
            lambda e: e["detail"].update(
                ExitMessage="Completed: Job completed successfully with no violations."
            ),
            "did not complete with violations",
        ),
        (lambda e: e["detail"].pop("MonitoringScheduleArn"), "not a Model Monitor execution"),
    ],
)
def test_malformed_or_clean_events_start_nothing(
    aws: dict[str, Any], mutate: Any, reason: str
) -> None:
    event = copy.deepcopy(EVENT)
    mutate(event)
    result = aws["handler"].handler(event, CONTEXT, now=NOW)
    assert result["started"] == "false"
    assert reason in result["reason"]
    assert executions() == 0
    assert messages(aws["queue"]) == []
    assert boto3.client("dynamodb").scan(TableName="drift")["Items"] == []


HOME = "111111111111"
RETRAIN = f"arn:aws:iam::{HOME}:role/mlgate-fraud-detection-prod-retrain"


def in_account(role_arn: str) -> Any:
    """A session in another account, as STS (here moto) hands it out for an assumed role."""
    creds = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="test")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="eu-west-1",
    )


def test_prod_in_another_account_starts_the_home_pipeline_through_the_retrain_role(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = in_account(RETRAIN).client("sagemaker")
    home.create_pipeline(
        PipelineName=PIPELINE,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn=f"arn:aws:iam::{HOME}:role/training",
    )
    monkeypatch.setenv("RETRAIN_ROLE_ARN", RETRAIN)
    result = aws["handler"].handler(EVENT, CONTEXT, now=NOW)
    assert result["started"] == "true"
    assert result["execution"].startswith(f"arn:aws:sagemaker:eu-west-1:{HOME}:pipeline/")
    started = home.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert len(started) == 1
    assert executions() == 0  # nothing ran in the endpoint's own account
    (message,) = messages(aws["queue"])  # the owners hear of it in the endpoint's account
    assert "drift on" in message or "drifting" in message


def drift_datapoints() -> float:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    stats = boto3.client("cloudwatch").get_metric_statistics(
        Namespace="mlgate/monitoring",
        MetricName="DriftViolations",
        Dimensions=[{"Name": "Endpoint", "Value": "mlgate-fraud-detection-prod"}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1),
        Period=7200,
        Statistics=["SampleCount"],
    )["Datapoints"]
    return sum(d["SampleCount"] for d in stats)


@pytest.mark.parametrize("index", range(16))
def test_a_transient_fault_in_any_call_then_the_retry_retrains_exactly_once(
    aws: dict[str, Any], faults: Faults, index: int
) -> None:
    """Each AWS call (the idempotency store's included) fails once in turn; the retry starts
    one execution, tells the owners once and counts the violation once (but where the step's
    own record is lost right after its side effect, which has no idempotency token: then that
    step happens again, see test_gates)."""
    answer = fail_then_retry(faults, index, lambda: aws["handler"].handler(EVENT, CONTEXT, now=NOW))
    if not faults.failed:
        pytest.skip(f"a drift response makes fewer than {index + 1} AWS calls")
    assert answer["started"] == "true", (faults.failed, answer)
    assert executions() == 1, faults.failed
    told = 2 if faults.failed == "dynamodb.update_item[drift_responder.owners]" else 1
    assert len(messages(aws["queue"])) == told, faults.failed
    counted = 2 if faults.failed == "dynamodb.update_item[drift_responder.metric]" else 1
    assert drift_datapoints() == counted, faults.failed


ALARM = json.loads(
    (Path(__file__).parents[1] / "events" / "drift_alarm_state_change.json").read_text()
)


def test_the_drift_alarm_entering_alarm_retrains_once_and_names_the_report(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORTS_URI", "s3://artifacts/monitoring/prod/evidently")
    aws["handler"].settings.cache_clear()
    result = aws["handler"].handler(ALARM, CONTEXT, now=NOW)
    assert result["started"] == "true"
    assert aws["handler"].handler(copy.deepcopy(ALARM), CONTEXT, now=NOW)["started"] == "true"
    assert executions() == 1
    (message,) = messages(aws["queue"])
    assert "was greater than the threshold (0.1)" in message
    assert "s3://artifacts/monitoring/prod/evidently" in message


def test_the_drift_alarm_returning_to_ok_starts_nothing(aws: dict[str, Any]) -> None:
    calm = copy.deepcopy(ALARM)
    calm["detail"]["state"]["value"] = "OK"
    result = aws["handler"].handler(calm, CONTEXT, now=NOW)
    assert result == {
        "started": "false",
        "reason": "alarm mlgate/fraud-detection/prod/model/data-drift/warning went to OK, not "
        "ALARM",
    }
    assert executions() == 0
