"""Drift responder hook: a Model Monitor execution found violations -> retrain, once per
cool-down, and tell the model's owners why.

Event: EventBridge "SageMaker Processing Job State Change" of a monitoring execution that
completed with violations (detail.ExitMessage "CompletedWithViolations: ..."). The cool-down is
a conditional write in DynamoDB: the first violation in a window wins it and starts the
pipeline; later ones inside the window only report that retraining is already under way.

Environment: PIPELINE_NAME, COOLDOWN_TABLE, COOLDOWN_HOURS, OWNERS_TOPIC_ARN, ENDPOINT_NAME,
PRODUCT, ENVIRONMENT, RETRAIN_ROLE_ARN (set when the endpoint lives in another account than the
pipeline: the home role that may start it).
AWS calls: dynamodb:PutItem, dynamodb:GetItem, sns:Publish, cloudwatch:PutMetricData,
sts:AssumeRole (optional: only with RETRAIN_ROLE_ARN).
Under the assumed role when one is set: sagemaker:ListPipelineExecutions,
sagemaker:StartPipelineExecution.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from shared.accounts import session
from shared.pipelines import start_if_idle

logger = Logger()


@dataclass(frozen=True)
class Config:
    pipeline: str
    table: str
    cooldown_hours: int
    topic_arn: str
    endpoint: str
    product: str
    environment: str
    retrain_role_arn: str = ""

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        return cls(
            pipeline=env.get("PIPELINE_NAME", ""),
            table=env.get("COOLDOWN_TABLE", ""),
            cooldown_hours=int(env.get("COOLDOWN_HOURS", "24")),
            topic_arn=env.get("OWNERS_TOPIC_ARN", ""),
            endpoint=env.get("ENDPOINT_NAME", ""),
            product=env.get("PRODUCT", ""),
            environment=env.get("ENVIRONMENT", ""),
            retrain_role_arn=env.get("RETRAIN_ROLE_ARN", ""),
        )


class EventError(ValueError):
    """Not a monitoring execution with violations; the message says what is wrong."""


@dataclass(frozen=True)
class Violation:
    job: str
    schedule: str
    message: str
    report: str


def _dig(node: Any, *path: str | int) -> str:
    """A nested value of an event, or 'unknown location' when the event lacks it."""
    for key in path:
        if isinstance(key, int) and isinstance(node, list) and len(node) > key:
            node = node[key]
            continue
        if isinstance(key, str) and isinstance(node, dict) and key in node:
            node = node[key]
            continue
        return "unknown location"
    return str(node)


def parse(event: Any) -> Violation:
    if not isinstance(event, dict) or event.get("detail-type") != (
        "SageMaker Processing Job State Change"
    ):
        raise EventError("expected a 'SageMaker Processing Job State Change' event")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise EventError("the event has no detail")
    message = str(detail.get("ExitMessage", ""))
    if detail.get("ProcessingJobStatus") != "Completed" or not message.startswith(
        "CompletedWithViolations"
    ):
        raise EventError(
            f"processing job {detail.get('ProcessingJobName')} did not complete with "
            f"violations ({detail.get('ProcessingJobStatus')}: {message or 'no exit message'})"
        )
    schedule = str(detail.get("MonitoringScheduleArn", ""))
    if not schedule:
        raise EventError("the processing job is not a Model Monitor execution")
    report = _dig(detail, "ProcessingOutputConfig", "Outputs", 0, "S3Output", "S3Uri")
    return Violation(
        job=str(detail.get("ProcessingJobName")), schedule=schedule, message=message, report=report
    )


def claim_cooldown(dynamodb: Any, config: Config, violation: Violation, now: float) -> bool:
    """True when this violation opens a new cool-down window (and so may retrain)."""
    try:
        dynamodb.put_item(
            TableName=config.table,
            Item={
                "pk": {"S": f"drift#{config.endpoint}"},
                "job": {"S": violation.job},
                "expires_at": {"N": str(int(now + config.cooldown_hours * 3600))},
            },
            ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
            ExpressionAttributeValues={":now": {"N": str(int(now))}},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def handler(event: dict[str, Any], context: Any, now: float | None = None) -> dict[str, str]:
    config = Config.from_env()
    try:
        violation = parse(event)
    except EventError as err:
        logger.error("event refused", extra={"reason": str(err)})
        return {"started": "false", "reason": str(err)}
    now = time.time() if now is None else now
    dynamodb = boto3.client("dynamodb")
    boto3.client("cloudwatch").put_metric_data(
        Namespace="mlgate/monitoring",
        MetricData=[
            {
                "MetricName": "DriftViolations",
                "Dimensions": [{"Name": "Endpoint", "Value": config.endpoint}],
                "Value": 1,
                "Unit": "Count",
            }
        ],
    )
    if claim_cooldown(dynamodb, config, violation, now):
        home = session(config.retrain_role_arn, f"mlgate-drift-{config.environment}")
        result = start_if_idle(
            home.client("sagemaker"),
            config.pipeline,
            f"drift on {config.endpoint}",
            violation.job,
        )
    else:
        held = dynamodb.get_item(
            TableName=config.table, Key={"pk": {"S": f"drift#{config.endpoint}"}}
        ).get("Item", {})
        until = time.strftime(
            "%Y-%m-%d %H:%M UTC", time.gmtime(int(held.get("expires_at", {}).get("N", now)))
        )
        result = {
            "started": "false",
            "reason": f"retraining already started for drift found by "
            f"{held.get('job', {}).get('S', 'an earlier run')}; cool-down of "
            f"{config.cooldown_hours} h lasts until {until}",
        }
    boto3.client("sns").publish(
        TopicArn=config.topic_arn,
        Subject=f"[{config.product}] drift on {config.environment} endpoint"[:100],
        Message=(
            f"Model Monitor found the traffic of {config.endpoint} ({config.environment}) "
            f"drifting from the training baseline: {violation.message}\n"
            f"Violations report: {violation.report}\n"
            f"Retraining: {result['reason']}."
        ),
    )
    logger.info("drift handled", extra=result)
    return result
