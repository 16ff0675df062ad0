"""Pipeline starter hook: starts the product's training pipeline unless a run is under way.

Invoked by EventBridge (read through Powertools' EventBridgeEvent): the Data stack's
ETL-succeeded event and the retraining schedule (and, through `start_if_idle`, by the drift
responder). A second trigger while an execution is Executing starts nothing and says why, so
the same data is never trained on twice at once.

Its one side effect has an idempotency token of its own: the EventBridge event id is the start
request's ClientRequestToken, so a retried delivery of the same event cannot start a second
execution; no idempotency record is needed on top.

Environment: PIPELINE_NAME. AWS calls: sagemaker:ListPipelineExecutions,
sagemaker:StartPipelineExecution.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from shared.pipelines import start_if_idle
from shared.settings import read

logger = Logger()
sagemaker = boto3.client("sagemaker")


@cache
def pipeline_name() -> str:
    return read("pipeline_starter", ("PIPELINE_NAME",))["PIPELINE_NAME"]


class EventError(ValueError):
    """The event is not one this hook acts on; the message says what is wrong."""


def describe(event: Any) -> tuple[str, str]:
    """(why to train, idempotency token) from an EventBridge event."""
    try:
        bridge = EventBridgeEvent(event)
        event_id, kind, raw = bridge.get("id"), bridge.get("detail-type"), bridge.get("detail")
    except (TypeError, AttributeError, ValueError):
        event_id = kind = raw = None
    if not event_id or not kind or not isinstance(event_id, str) or not isinstance(kind, str):
        raise EventError("not an EventBridge event: it needs 'id' and 'detail-type'")
    detail: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind == "Scheduled Event":
        return "scheduled retraining", event_id
    if kind == "Glue Job State Change":
        if detail.get("state") != "SUCCEEDED":
            raise EventError(f"Glue job {detail.get('jobName')} ended {detail.get('state')}")
        return f"new curated data ({detail.get('jobName')} run {detail.get('jobRunId')})", event_id
    raise EventError(f"unexpected event type '{kind}'")


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    try:
        reason, token = describe(event)
    except EventError as err:
        logger.error("event refused", extra={"reason": str(err)})
        return {"started": "false", "reason": str(err)}
    result = start_if_idle(sagemaker, pipeline_name(), reason, token)
    logger.info("pipeline trigger", extra=result)
    return result
