"""Drift responder under moto: the first violation retrains, a second inside the cool-down does
not and says why, a malformed event or one from anywhere but this environment's own drift
alarm or monitoring schedule starts nothing and makes no AWS call."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from .conftest import (
    Faults,
    context_of,
    create_idempotency_table,
    create_retraining_target,
    emf,
    fail_then_retry,
    moto,
)

EVENT = json.loads(
    (Path(__file__).parents[1] / "events" / "monitoring_violations.json").read_text()
)
ALARM = json.loads(
    (Path(__file__).parents[1] / "events" / "drift_alarm_state_change.json").read_text()
)
PIPELINE = "mlgate-fraud-detection-training"
NOW = 1_795_514_800.0


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with moto():
        create_retraining_target(PIPELINE)
        create_idempotency_table(boto3.client("dynamodb"))
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
            # What the stack names as this environment's drift source, per engine: the samples'.
            "DRIFT_ALARM": ALARM["detail"]["alarmName"],
            "MONITORING_SCHEDULE": "mlgate-fraud-detection-prod-data-quality",
        }.items():
            monkeypatch.setenv(key, value)
        from drift_responder import handler

        # The stack sets POWERTOOLS_METRICS_NAMESPACE; read at import, as in Lambda.
        monkeypatch.setattr(handler.metrics, "namespace", "mlgate/monitoring")
        handler.settings.cache_clear()
        yield {"handler": handler, "queue": queue}
        handler.settings.cache_clear()


def executions() -> int:
    return len(
        boto3.client("sagemaker").list_pipeline_executions(PipelineName=PIPELINE)[
            "PipelineExecutionSummaries"
        ]
    )


def respond(aws: dict[str, Any], event: dict[str, Any], now: float = NOW) -> dict[str, str]:
    """The responder invoked with `event`, in the account and region the event names."""
    return dict(aws["handler"].handler(event, context_of(event), now=now))


def drifts(out: str) -> float:
    """DriftViolations data points written for the drift alarm: its namespace, the Endpoint
    dimension set alone (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
    CloudWatch_Embedded_Metric_Format_Specification.html)."""
    wanted = {"Endpoint": "mlgate-fraud-detection-prod"}
    return sum(
        m["value"]
        for m in emf(out)
        if (m["namespace"], m["name"]) == ("mlgate/monitoring", "DriftViolations")
        and wanted in m["dimensions"]
    )


def messages(queue: str) -> list[str]:
    got = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [json.loads(m["Body"])["Message"] for m in got.get("Messages", [])]


def test_first_violation_starts_retraining_and_tells_the_owners(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    result = respond(aws, EVENT)
    assert result["started"] == "true"
    assert executions() == 1
    (message,) = messages(aws["queue"])
    assert "CompletedWithViolations: Job completed successfully with 3 violations." in message
    assert "monitoring/prod/data-quality" in message
    assert drifts(capsys.readouterr().out) == 1


def test_second_violation_inside_the_cooldown_starts_nothing_and_says_why(
    aws: dict[str, Any],
) -> None:
    respond(aws, EVENT)
    later = copy.deepcopy(EVENT)
    later["detail"]["ProcessingJobName"] = "model-monitoring-202611241100-later"
    result = respond(aws, later, now=NOW + 3600)
    assert result["started"] == "false"
    assert result["reason"] == (
        "retraining already started for drift found by "
        "model-monitoring-202611241000-1a2b3c4d5e6f7a8b9c0d1e2f; cool-down of 24 h lasts "
        "until 2026-11-25 10:06 UTC"
    )
    assert executions() == 1
    assert len(messages(aws["queue"])) == 2


def test_after_the_cooldown_drift_retrains_again(aws: dict[str, Any]) -> None:
    respond(aws, EVENT)
    later = copy.deepcopy(EVENT)
    later["detail"]["ProcessingJobName"] = "model-monitoring-202611251100-next-day"
    result = respond(aws, later, now=NOW + 25 * 3600)
    assert result["started"] == "true"
    assert executions() == 2


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.update({"detail-type": "Scheduled Event"}), "detail-type: Input tag"),
        (lambda e: e.pop("detail"), "detail: Field required"),
        (
            lambda e: e["detail"].update(
                ExitMessage="Completed: Job completed successfully with no violations."
            ),
            "did not complete with violations",
        ),
        (lambda e: e["detail"].pop("MonitoringScheduleArn"), "not a Model Monitor execution"),
        (lambda e: e["detail"].update(ProcessingJobName=["a"]), "detail.ProcessingJobName: Input"),
        (lambda e: e["detail"].update(ExitMessage="Completed\u202eWithViolations"),
         "detail.ExitMessage: has a control or format character (U+202E)"),
    ],
)  # fmt: skip
def test_malformed_or_clean_events_start_nothing(
    aws: dict[str, Any], faults: Faults, mutate: Any, reason: str
) -> None:
    event = copy.deepcopy(EVENT)
    mutate(event)
    result = respond(aws, event)
    assert result["started"] == "false"
    assert result["status"] == "refused"
    assert reason in result["reason"]
    assert faults.seen == [], "refused before any AWS call"
    assert executions() == 0
    assert messages(aws["queue"]) == []
    assert boto3.client("dynamodb").scan(TableName="drift")["Items"] == []


def schedule_of(account: str, name: str = "mlgate-fraud-detection-prod-data-quality") -> str:
    return f"arn:aws:sagemaker:eu-west-1:{account}:monitoring-schedule/{name}"


@pytest.mark.parametrize(
    ("sample", "change", "named"),
    [
        # The alarm of another product, of another environment, of another account.
        (ALARM, {"detail": {**ALARM["detail"], "alarmName": "mlgate/other/prod/model/data-drift/"
                            "warning"}}, "detail.alarmName 'mlgate/other/prod/model/data-drift"),
        (ALARM, {"detail": {**ALARM["detail"], "alarmName": "mlgate/fraud-detection/staging/"
                            "model/data-drift/warning"}}, "detail.alarmName"),
        (ALARM, {"account": "999999999999"}, "account '999999999999' is not '123456789012' "
         "(this function's, from its ARN in the Lambda context)"),
        (ALARM, {"region": "us-east-1"}, "region 'us-east-1' is not 'eu-west-1'"),
        (ALARM, {"source": "aws.events"}, "source 'aws.events' is not 'aws.cloudwatch'"),
        (ALARM, {"resources": ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:other"]},
         "resources[0] 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:other' is not"),
        # Another schedule, or this schedule's name in another account.
        (EVENT, {"detail": {**EVENT["detail"], "MonitoringScheduleArn": schedule_of(
            "111111111111", "mlgate-other-prod-data-quality")}}, "detail.MonitoringScheduleArn"),
        (EVENT, {"detail": {**EVENT["detail"], "MonitoringScheduleArn": schedule_of(
            "222222222222")}}, "(this endpoint's data-quality schedule, from MONITORING_SCHEDULE "
         "and this function's, from its ARN in the Lambda context)"),
        (EVENT, {"source": "aws.cloudwatch"}, "source 'aws.cloudwatch' is not 'aws.sagemaker'"),
        (EVENT, {"account": "222222222222"}, "account '222222222222' is not '111111111111'"),
    ],
)  # fmt: skip
def test_drift_from_anywhere_else_starts_nothing_and_makes_no_aws_call(
    aws: dict[str, Any], faults: Faults, sample: dict[str, Any], change: dict[str, Any],
    named: str,
) -> None:  # fmt: skip
    """Retraining is paid work: the responder checks the source, account, region and resource
    of its event itself (the rule would not deliver these), and names what it expected and
    where that comes from."""
    result = aws["handler"].handler({**sample, **change}, context_of(sample), now=NOW)
    assert result["status"] == "refused", result
    assert "untrusted event: " in result["reason"]
    assert named in result["reason"]
    assert faults.seen == []
    assert executions() == 0


def test_an_event_of_the_engine_this_environment_does_not_run_is_refused(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFT_ALARM")
    aws["handler"].settings.cache_clear()
    result = respond(aws, ALARM)
    assert result["status"] == "refused"
    assert "not an alarm (DRIFT_ALARM is unset)" in result["reason"]
    assert executions() == 0


def test_a_start_sagemaker_refuses_gives_the_cooldown_back_and_tells_the_owners(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No training pipeline of that name (SageMaker: ResourceNotFound): answered, not raised;
    the owners hear why, and the next drift may retrain."""
    monkeypatch.setenv("PIPELINE_NAME", "mlgate-fraud-detection-missing")
    aws["handler"].settings.cache_clear()
    result = respond(aws, EVENT)
    assert (result["started"], result["status"]) == ("false", "refused")
    assert "SageMaker refused to start mlgate-fraud-detection-missing" in result["reason"]
    assert boto3.client("dynamodb").scan(TableName="drift")["Items"] == []
    (message,) = messages(aws["queue"])
    assert "Retraining: SageMaker refused to start" in message


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
    result = respond(aws, EVENT)
    assert result["started"] == "true"
    assert result["execution"].startswith(f"arn:aws:sagemaker:eu-west-1:{HOME}:pipeline/")
    started = home.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert len(started) == 1
    assert executions() == 0  # nothing ran in the endpoint's own account
    (message,) = messages(aws["queue"])  # the owners hear of it in the endpoint's account
    assert "drift on" in message or "drifting" in message


@pytest.mark.parametrize("index", range(12))
def test_a_transient_fault_in_any_call_then_the_retry_retrains_exactly_once(
    aws: dict[str, Any], faults: Faults, index: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each AWS call (the idempotency store's included) fails once in turn; the retry starts
    one execution, tells the owners once and counts the violation once (but where the step's
    own record is lost right after its side effect, which has no idempotency token: then that
    step happens again, see test_gates)."""
    answer = fail_then_retry(faults, index, lambda: respond(aws, EVENT))
    if not faults.failed:
        pytest.skip(f"a drift response makes fewer than {index + 1} AWS calls")
    assert answer["started"] == "true", (faults.failed, answer)
    assert executions() == 1, faults.failed
    told = 2 if faults.failed == "dynamodb.update_item[drift_responder.owners]" else 1
    assert len(messages(aws["queue"])) == told, faults.failed
    counted = 2 if faults.failed == "dynamodb.update_item[drift_responder.metric]" else 1
    assert drifts(capsys.readouterr().out) == counted, faults.failed


def test_the_drift_alarm_entering_alarm_retrains_once_and_names_the_report(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORTS_URI", "s3://artifacts/monitoring/prod/evidently")
    aws["handler"].settings.cache_clear()
    result = respond(aws, ALARM)
    assert result["started"] == "true"
    assert respond(aws, copy.deepcopy(ALARM))["started"] == "true"
    assert executions() == 1
    (message,) = messages(aws["queue"])
    assert "was greater than the threshold (0.1)" in message
    assert "s3://artifacts/monitoring/prod/evidently" in message


def test_the_drift_alarm_returning_to_ok_starts_nothing(aws: dict[str, Any]) -> None:
    calm = copy.deepcopy(ALARM)
    calm["detail"]["state"]["value"] = "OK"
    result = respond(aws, calm)
    assert result == {
        "started": "false",
        "status": "refused",
        "reason": "alarm mlgate/fraud-detection/prod/model/data-drift/warning went to OK, not "
        "ALARM",
    }
    assert executions() == 0
