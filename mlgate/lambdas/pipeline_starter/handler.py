"""Pipeline starter hook: starts the product's training pipeline unless a run is under way.

Invoked by EventBridge: the Data stack's ETL-succeeded event and the retraining schedule (and,
through `start_if_idle`, by the drift responder). A second trigger while an execution is
Executing starts nothing and says why, so the same data is never trained on twice at once.
The EventBridge event id is the start request's idempotency token: a retried delivery of
the same event cannot start a second execution.

Environment: PIPELINE_NAME. AWS calls: sagemaker:ListPipelineExecutions,
sagemaker:StartPipelineExecution.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from shared.pipelines import start_if_idle

logger = Logger()
sagemaker = boto3.client("sagemaker")
PIPELINE_NAME = os.environ.get("PIPELINE_NAME", "")


class EventError(ValueError):
    """The event is not one this hook acts on; the message says what is wrong."""


def describe(event: Any) -> tuple[str, str]:
    """(why to train, idempotency token) from an EventBridge event."""
    if not isinstance(event, dict) or not event.get("id") or not event.get("detail-type"):
        raise EventError("not an EventBridge event: it needs 'id' and 'detail-type'")
    raw = event.get("detail")
    detail: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if event["detail-type"] == "Scheduled Event":
        return "scheduled retraining", str(event["id"])
    if event["detail-type"] == "Glue Job State Change":
        if detail.get("state") != "SUCCEEDED":
            raise EventError(f"Glue job {detail.get('jobName')} ended {detail.get('state')}")
        return f"new curated data ({detail.get('jobName')} run {detail.get('jobRunId')})", str(
            event["id"]
        )
    raise EventError(f"unexpected event type '{event['detail-type']}'")


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    try:
        reason, token = describe(event)
    except EventError as err:
        logger.error("event refused", extra={"reason": str(err)})
        return {"started": "false", "reason": str(err)}
    result = start_if_idle(sagemaker, PIPELINE_NAME, reason, token)
    logger.info("pipeline trigger", extra=result)
    return result
