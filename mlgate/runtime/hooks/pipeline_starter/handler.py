"""Pipeline starter hook: starts the product's training pipeline unless a run is under way.

Invoked by EventBridge (each event checked whole before any AWS call, without pydantic:
shared/events.py): the Data stack's ETL-succeeded event (Glue Job State Change of the
product's quality job) and the retraining schedule (Scheduled Event of its own rule); and,
through `start_if_idle`, by the drift responder. A second trigger while an execution is
Executing starts nothing and says why, so the same data is never trained on twice at once.

Training is paid work, so the starter trusts no delivery rule alone: before any AWS call it
checks that a Glue event comes from aws.glue about this product's quality job (QUALITY_JOB),
a scheduled one from aws.events naming this product's schedule rule (SCHEDULE_RULE), both in
this function's own account and region (its ARN in the Lambda context). Anything else, and any
malformed event, is refused with one log line naming the field: no retry changes it, so it is
answered, not raised. So is a start SageMaker refuses (the pipeline does not exist).

Its one side effect has an idempotency token of its own: the EventBridge event id is the start
request's ClientRequestToken, so a retried delivery of the same event cannot start a second
execution; no idempotency record is needed on top.

Environment: PIPELINE_NAME, QUALITY_JOB, SCHEDULE_RULE. AWS calls:
sagemaker:ListPipelineExecutions, sagemaker:StartPipelineExecution.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from shared.coldstart import settle
from shared.events import (
    EMPTY,
    FROM_CONTEXT,
    NAME,
    SHORT,
    Origin,
    Refused,
    envelope,
    expect,
    from_here,
    kinds,
    read_as,
)
from shared.fields import Obj
from shared.pipelines import start_if_idle
from shared.settings import read

logger = Logger()
sagemaker = boto3.client("sagemaker")
GLUE_JOB = "Glue Job State Change"
SCHEDULED = "Scheduled Event"


@dataclass(frozen=True)
class Settings:
    pipeline: str
    quality_job: str
    schedule_rule: str


@cache
def settings() -> Settings:
    env = read("pipeline_starter", ("PIPELINE_NAME", "QUALITY_JOB", "SCHEDULE_RULE"))
    return Settings(
        pipeline=env["PIPELINE_NAME"],
        quality_job=env["QUALITY_JOB"],
        schedule_rule=env["SCHEDULE_RULE"],
    )


class EventError(Refused):
    """The event is not one this hook acts on; `field` names what, the message says why."""


# As Glue documents its events (https://docs.aws.amazon.com/glue/latest/dg/
# automating-awsglue-with-cloudwatch-events.html); only what the starter reads is checked.
GLUE_JOB_DETAIL = Obj("GlueJobDetail", {"jobName": NAME, "state": SHORT, "jobRunId": NAME})
GLUE_JOB_EVENT = envelope("GlueJobEvent", GLUE_JOB, GLUE_JOB_DETAIL)
# A schedule's event carries nothing but its rule (https://docs.aws.amazon.com/eventbridge/
# latest/userguide/eb-run-lambda-schedule.html): `detail` is empty.
SCHEDULED_EVENT = envelope("ScheduledEvent", SCHEDULED, EMPTY)

KINDS = (GLUE_JOB, SCHEDULED)
TRIGGER = kinds(GLUE_JOB_EVENT, SCHEDULED_EVENT)


def describe(event: Any) -> Any:
    """The event, checked whole (its fields as attributes); EventError naming the field
    otherwise."""
    return read_as(event, TRIGGER, EventError, f"a '{GLUE_JOB}' or '{SCHEDULED}' event", KINDS)


def reason_of(trigger: Any, origin: Origin, config: Settings) -> str:
    """Why to train, if the event comes from this product's own trigger; EventError
    otherwise, before any AWS call."""
    if trigger.detail_type == SCHEDULED:
        from_here(trigger, origin, "aws.events", EventError)
        rule = origin.arn("events", f"rule/{config.schedule_rule}")
        expect(EventError, "resources", ",".join(trigger.resources), rule,
               f"this product's schedule rule, from SCHEDULE_RULE and {FROM_CONTEXT}")  # fmt: skip
        return "scheduled retraining"
    detail = trigger.detail
    from_here(trigger, origin, "aws.glue", EventError)
    expect(EventError, "detail.jobName", detail.jobName, config.quality_job,
           "this product's quality job, from QUALITY_JOB")  # fmt: skip
    if detail.state != "SUCCEEDED":
        raise EventError("detail.state", f"Glue job {detail.jobName} ended {detail.state}")
    return f"new curated data ({detail.jobName} run {detail.jobRunId})"


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
def handler(event: Any, context: Any) -> dict[str, str]:
    config = settings()
    try:
        trigger = describe(event)
        reason = reason_of(trigger, Origin.of(context), config)
    except EventError as err:
        logger.error("event refused", extra={"field": err.field, "reason": err.reason})
        return {"started": "false", "status": "refused", "reason": err.reason}
    result = start_if_idle(sagemaker, config.pipeline, reason, trigger.id)
    if result.get("status") == "refused":
        logger.error("start refused", extra=result)
    else:
        logger.info("pipeline trigger", extra=result)
    return result


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
