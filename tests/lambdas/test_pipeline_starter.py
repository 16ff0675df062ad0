"""Pipeline starter under moto: starts once, refuses while a run is under way, says why; acts
only on its own quality job's success and its own schedule, in its own account and region."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from .conftest import context_in, context_of, moto

EVENTS = Path(__file__).parents[1] / "events"
PIPELINE = "mlgate-fraud-detection-training"


def event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


@pytest.fixture
def starter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto():
        from pipeline_starter import handler

        client = boto3.client("sagemaker")
        client.create_pipeline(
            PipelineName=PIPELINE,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn="arn:aws:iam::123456789012:role/training",
        )
        monkeypatch.setattr(handler, "sagemaker", client)
        monkeypatch.setenv("PIPELINE_NAME", PIPELINE)
        # The names AWS's sample events carry, as the stack would set this product's.
        monkeypatch.setenv("QUALITY_JOB", "MyJob")
        monkeypatch.setenv("SCHEDULE_RULE", "my-scheduled-rule")
        handler.settings.cache_clear()
        yield handler
        handler.settings.cache_clear()


def executions() -> list[dict[str, Any]]:
    return list(
        boto3.client("sagemaker").list_pipeline_executions(PipelineName=PIPELINE)[
            "PipelineExecutionSummaries"
        ]
    )


def start(starter: Any, name: str) -> dict[str, str]:
    """The starter invoked with an AWS sample event, in the account and region it names."""
    sample = event(name)
    return dict(starter.handler(sample, context_of(sample)))


def test_new_curated_data_starts_the_pipeline(starter: Any) -> None:
    result = start(starter, "glue_job_succeeded.json")
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
    start(starter, "glue_job_succeeded.json")
    still_running()
    result = start(starter, "scheduled_event.json")
    assert result["started"] == "false"
    assert "is already running" in result["reason"]
    assert "scheduled retraining waits for the next trigger" in result["reason"]
    assert len(executions()) == 1


def test_a_finished_run_does_not_block_the_next(starter: Any) -> None:
    start(starter, "glue_job_succeeded.json")
    result = start(starter, "scheduled_event.json")
    assert result["started"] == "true"
    assert len(executions()) == 2


GLUE = event("glue_job_succeeded.json")
SCHEDULE = event("scheduled_event.json")


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({}, "not a 'Glue Job State Change' or 'Scheduled Event' event: detail-type"),
        ({**SCHEDULE, "detail-type": "Object Created"}, "detail-type: Input tag 'Object Created'"),
        ({**GLUE, "detail": {**GLUE["detail"], "state": "FAILED"}}, "Glue job MyJob ended FAILED"),
        ({**GLUE, "detail": {**GLUE["detail"], "jobName": 7}}, "detail.jobName: Input should be"),
        ({**GLUE, "id": ""}, "id: String should have at least 1 character"),
    ],
)
def test_other_events_start_nothing(starter: Any, broken: dict[str, Any], message: str) -> None:
    result = starter.handler(broken, context_in("123456789012", "us-west-2"))
    assert result == {"started": "false", "status": "refused", "reason": result["reason"]}
    assert message in result["reason"]
    assert executions() == []


@pytest.mark.parametrize(
    ("sample", "change", "named"),
    [
        # Another product's quality job, another account, another region, another source.
        (GLUE, {"detail": {**GLUE["detail"], "jobName": "mlgate-other-quality"}},
         "detail.jobName 'mlgate-other-quality' is not 'MyJob' (this product's quality job, "
         "from QUALITY_JOB)"),
        (GLUE, {"account": "999999999999"}, "account '999999999999' is not '123456789012' "
         "(this function's, from its ARN in the Lambda context)"),
        (GLUE, {"region": "eu-west-3"}, "region 'eu-west-3' is not 'us-west-2'"),
        (GLUE, {"source": "custom.glue"}, "source 'custom.glue' is not 'aws.glue'"),
        # Another rule's schedule, or none named.
        (SCHEDULE, {"resources": ["arn:aws:events:us-east-1:123456789012:rule/other"]},
         "resources 'arn:aws:events:us-east-1:123456789012:rule/other' is not "
         "'arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule'"),
        (SCHEDULE, {"resources": []}, "resources '' is not"),
        (SCHEDULE, {"source": "aws.scheduler"}, "source 'aws.scheduler' is not 'aws.events'"),
    ],
)  # fmt: skip
def test_an_event_from_elsewhere_starts_nothing_and_makes_no_aws_call(
    starter: Any, faults: Any, sample: dict[str, Any], change: dict[str, Any], named: str
) -> None:
    """The rules would not deliver these; the starter refuses them itself, naming the field and
    where the value it expected comes from, before any AWS call."""
    result = starter.handler({**sample, **change}, context_of(sample))
    assert result["status"] == "refused"
    assert f"untrusted event: {named}" in result["reason"]
    assert faults.seen == []
    assert executions() == []


def test_a_start_sagemaker_refuses_is_answered_not_raised(
    starter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline that does not exist: SageMaker's ResourceNotFound is no failure a retry
    fixes, so the starter answers it (refused) instead of raising into its dead-letter queue."""
    monkeypatch.setenv("PIPELINE_NAME", "mlgate-no-such-product-training")
    starter.settings.cache_clear()
    result = start(starter, "glue_job_succeeded.json")
    assert result["status"] == "refused"
    assert result["reason"].startswith(
        "SageMaker refused to start mlgate-no-such-product-training for new curated data"
    )


@pytest.mark.parametrize("index", range(2))
def test_a_transient_fault_then_the_retry_starts_exactly_once(
    starter: Any, faults: Any, index: int
) -> None:
    """ListPipelineExecutions or StartPipelineExecution fails once; Lambda's retry of the same
    event starts one execution (the event id is the start's ClientRequestToken)."""
    from .conftest import fail_then_retry

    answer = fail_then_retry(faults, index, lambda: start(starter, "glue_job_succeeded.json"))
    assert faults.failed == ["sagemaker.list_pipeline_executions",
                             "sagemaker.start_pipeline_execution"][index]  # fmt: skip
    assert answer["started"] == "true"
    assert len(executions()) == 1
