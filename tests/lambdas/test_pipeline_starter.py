"""Pipeline starter under moto: starts once, refuses while a run is under way, says why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

EVENTS = Path(__file__).parents[1] / "events"
PIPELINE = "mlgate-fraud-detection-training"


def event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


@pytest.fixture
def starter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_aws():
        from pipeline_starter import handler

        client = boto3.client("sagemaker")
        client.create_pipeline(
            PipelineName=PIPELINE,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn="arn:aws:iam::123456789012:role/training",
        )
        monkeypatch.setattr(handler, "sagemaker", client)
        monkeypatch.setenv("PIPELINE_NAME", PIPELINE)
        handler.pipeline_name.cache_clear()
        yield handler


def executions() -> list[dict[str, Any]]:
    return list(
        boto3.client("sagemaker").list_pipeline_executions(PipelineName=PIPELINE)[
            "PipelineExecutionSummaries"
        ]
    )


def test_new_curated_data_starts_the_pipeline(starter: Any) -> None:
    result = starter.handler(event("glue_job_succeeded.json"), None)
    assert result["started"] == "true"
    assert result["reason"].startswith("new curated data (MyJob run jr_abcdef")
    assert len(executions()) == 1


def still_running() -> None:
    """moto finishes executions at once; a real training run takes an hour."""
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends["123456789012"]["eu-west-1"]
    for pipeline in backend.pipelines.values():
        for execution in pipeline.pipeline_executions.values():
            execution.pipeline_execution_status = "Executing"


def test_a_second_trigger_while_running_starts_nothing_and_says_why(starter: Any) -> None:
    starter.handler(event("glue_job_succeeded.json"), None)
    still_running()
    result = starter.handler(event("scheduled_event.json"), None)
    assert result["started"] == "false"
    assert "is already running" in result["reason"]
    assert "scheduled retraining waits for the next trigger" in result["reason"]
    assert len(executions()) == 1


def test_a_finished_run_does_not_block_the_next(starter: Any) -> None:
    starter.handler(event("glue_job_succeeded.json"), None)
    result = starter.handler(event("scheduled_event.json"), None)
    assert result["started"] == "true"
    assert len(executions()) == 2


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({}, "not an EventBridge event"),
        ({"id": "1", "detail-type": "Object Created"}, "unexpected event type 'Object Created'"),
        (
            {
                "id": "1",
                "detail-type": "Glue Job State Change",
                "detail": {"jobName": "j", "state": "FAILED"},
            },
            "Glue job j ended FAILED",
        ),
    ],
)
def test_other_events_start_nothing(starter: Any, broken: dict[str, Any], message: str) -> None:
    result = starter.handler(broken, None)
    assert result == {"started": "false", "reason": result["reason"]}
    assert message in result["reason"]
    assert executions() == []


@pytest.mark.parametrize("index", range(2))
def test_a_transient_fault_then_the_retry_starts_exactly_once(
    starter: Any, faults: Any, index: int
) -> None:
    """ListPipelineExecutions or StartPipelineExecution fails once; Lambda's retry of the same
    event starts one execution (the event id is the start's ClientRequestToken)."""
    from .conftest import fail_then_retry

    answer = fail_then_retry(
        faults, index, lambda: starter.handler(event("glue_job_succeeded.json"), None)
    )
    assert faults.failed == ["sagemaker.list_pipeline_executions",
                             "sagemaker.start_pipeline_execution"][index]  # fmt: skip
    assert answer["started"] == "true"
    assert len(executions()) == 1
