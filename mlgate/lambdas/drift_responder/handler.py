"""Drift responder hook: monitoring declared drift -> retrain, once per cool-down, and tell
the model's owners why.

Events (Powertools' EventBridgeEvent):
- "CloudWatch Alarm State Change" of the drift alarm into ALARM (monitoring.engine evidently:
  the alarm watches the share of drifted features against the manifest's drift_threshold);
  one drift per state change, keyed on the alarm and the change's timestamp;
- "SageMaker Processing Job State Change" of a Model Monitor execution that completed with
  violations (detail.ExitMessage "CompletedWithViolations: ...").
The cool-down is a conditional write in DynamoDB: the first
violation in a window wins it and starts the pipeline; later ones inside the window only
report that retraining is already under way.

Idempotent with Powertools, keyed on the monitoring job (validated: its schedule and exit
message). A run that fails leaves no record and the retry finishes the work: the cool-down it
won stays its own (the claim names the job), the execution it started is found again by its
display name, and the owners' message and the drift metric are idempotent steps of their own.

Environment: PIPELINE_NAME, COOLDOWN_TABLE, OWNERS_TOPIC_ARN, ENDPOINT_NAME, PRODUCT,
ENVIRONMENT, IDEMPOTENCY_TABLE; COOLDOWN_HOURS (default 24); RETRAIN_ROLE_ARN (set when the
endpoint lives in another account than the pipeline: the home role that may start it);
REPORTS_URI (where monitoring writes its reports, named in the owners' message).
AWS calls: dynamodb:PutItem (cool-down and idempotency records), dynamodb:GetItem,
dynamodb:UpdateItem, dynamodb:DeleteItem (idempotency records), sns:Publish,
cloudwatch:PutMetricData, sts:AssumeRole (optional: only with RETRAIN_ROLE_ARN).
Under the assumed role when one is set: sagemaker:ListPipelineExecutions,
sagemaker:StartPipelineExecution.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError
from botocore.exceptions import ClientError

from shared import idempotency
from shared.accounts import session
from shared.pipelines import start_if_idle
from shared.settings import read

logger = Logger()
dynamodb = boto3.client("dynamodb")
sns = boto3.client("sns")
cloudwatch = boto3.client("cloudwatch")
sagemaker = boto3.client("sagemaker")
DETAIL_TYPE = "SageMaker Processing Job State Change"
ALARM_TYPE = "CloudWatch Alarm State Change"


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
    reports_uri: str = ""


@cache
def settings() -> Config:
    env = read(
        "drift_responder",
        ("PIPELINE_NAME", "COOLDOWN_TABLE", "OWNERS_TOPIC_ARN", "ENDPOINT_NAME", "PRODUCT",
         "ENVIRONMENT"),
        {"COOLDOWN_HOURS": "24", "RETRAIN_ROLE_ARN": "", "REPORTS_URI": ""},
    )  # fmt: skip
    return Config(
        pipeline=env["PIPELINE_NAME"],
        table=env["COOLDOWN_TABLE"],
        cooldown_hours=int(env["COOLDOWN_HOURS"]),
        topic_arn=env["OWNERS_TOPIC_ARN"],
        endpoint=env["ENDPOINT_NAME"],
        product=env["PRODUCT"],
        environment=env["ENVIRONMENT"],
        retrain_role_arn=env["RETRAIN_ROLE_ARN"],
        reports_uri=env["REPORTS_URI"],
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
    try:
        bridge = EventBridgeEvent(event)
        kind, detail = bridge.detail_type, bridge.get("detail")
    except (KeyError, TypeError, AttributeError, ValueError):
        raise EventError(f"expected a '{DETAIL_TYPE}' event") from None
    if not isinstance(detail, dict):
        raise EventError("the event has no detail")
    if kind == ALARM_TYPE:
        return _alarm(detail)
    if kind != DETAIL_TYPE:
        raise EventError(f"expected a '{DETAIL_TYPE}' or '{ALARM_TYPE}' event")
    message = str(detail.get("ExitMessage", ""))
    if detail.get("ProcessingJobStatus") != "Completed" or not message.startswith(
        "CompletedWithViolations"
    ):
        raise EventError(
            f"processing job {detail.get('ProcessingJobName')} did not complete with "
            f"violations ({detail.get('ProcessingJobStatus')}: {message or 'no exit message'})"
        )
    schedule = detail.get("MonitoringScheduleArn")
    if not schedule or not isinstance(schedule, str):
        raise EventError("the processing job is not a Model Monitor execution")
    job = detail.get("ProcessingJobName")
    if not job or not isinstance(job, str):
        raise EventError("the processing job has no name")
    report = _dig(detail, "ProcessingOutputConfig", "Outputs", 0, "S3Output", "S3Uri")
    return Violation(job=job, schedule=schedule, message=message, report=report)


def _alarm(detail: dict[str, Any]) -> Violation:
    state = detail.get("state")
    name = detail.get("alarmName")
    if not isinstance(state, dict) or not isinstance(name, str) or not name:
        raise EventError("the alarm event has no alarm name or state")
    if state.get("value") != "ALARM":
        raise EventError(f"alarm {name} went to {state.get('value')}, not ALARM")
    stamp = re.sub(r"[^0-9]", "", str(state.get("timestamp", "")))[:14]
    if len(stamp) != 14:
        raise EventError(f"alarm {name}'s state change has no timestamp")
    # The job id names a pipeline execution's display name and client token: digits and
    # dashes only. One drift alarm per environment: its change time identifies the drift.
    return Violation(
        job=f"drift-alarm-{stamp}",
        schedule=name,
        message=str(state.get("reason", "")),
        report=settings().reports_uri or "the monitoring reports prefix",
    )


def claim_cooldown(client: Any, config: Config, violation: Violation, now: float) -> bool:
    """True when this violation opens a new cool-down window (and so may retrain), or opened
    it in an earlier try (a retry keeps what it won)."""
    try:
        client.put_item(
            TableName=config.table,
            Item={
                "pk": {"S": f"drift#{config.endpoint}"},
                "job": {"S": violation.job},
                "expires_at": {"N": str(int(now + config.cooldown_hours * 3600))},
            },
            ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR job = :job",
            ExpressionAttributeValues={
                ":now": {"N": str(int(now))},
                ":job": {"S": violation.job},
            },
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


CONFIG = idempotency.config("job", "[schedule, message]", hours=48)
STEP = idempotency.config("job", hours=48)


@idempotency.once(data="violation", config=STEP, prefix="drift_responder.metric")
def count(*, violation: dict[str, str]) -> dict[str, str]:
    cloudwatch.put_metric_data(
        Namespace="mlgate/monitoring",
        MetricData=[
            {
                "MetricName": "DriftViolations",
                "Dimensions": [{"Name": "Endpoint", "Value": settings().endpoint}],
                "Value": 1,
                "Unit": "Count",
            }
        ],
    )
    return {"counted": violation["job"]}


@idempotency.once(data="violation", config=STEP, prefix="drift_responder.owners")
def tell_owners(*, violation: dict[str, str], outcome: str) -> dict[str, str]:
    config = settings()
    sent = sns.publish(
        TopicArn=config.topic_arn,
        Subject=f"[{config.product}] drift on {config.environment} endpoint"[:100],
        Message=(
            f"Monitoring found the traffic of {config.endpoint} ({config.environment}) "
            f"drifting from the training baseline: {violation['message']}\n"
            f"Report: {violation['report']}\n"
            f"Retraining: {outcome}."
        ),
    )
    return {"message_id": str(sent["MessageId"])}


@idempotency.once(data="violation", config=CONFIG, prefix="drift_responder")
def respond(*, violation: dict[str, str], now: float) -> dict[str, str]:
    config = settings()
    found = Violation(**violation)
    count(violation=violation)
    if claim_cooldown(dynamodb, config, found, now):
        home = (
            session(config.retrain_role_arn, f"mlgate-drift-{config.environment}").client(
                "sagemaker"
            )
            if config.retrain_role_arn
            else sagemaker
        )
        result = start_if_idle(
            home, config.pipeline, f"drift on {config.endpoint}", found.job,
            display=f"drift-{found.job}",
        )  # fmt: skip
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
    tell_owners(violation=violation, outcome=result["reason"])
    logger.info("drift handled", extra=result)
    return result


def handler(event: dict[str, Any], context: Any, now: float | None = None) -> dict[str, str]:
    try:
        violation = parse(event)
    except EventError as err:
        logger.error("event refused", extra={"reason": str(err)})
        return {"started": "false", "reason": str(err)}
    CONFIG.register_lambda_context(context)
    STEP.register_lambda_context(context)
    try:
        return respond(violation=asdict(violation), now=time.time() if now is None else now)
    except IdempotencyValidationError:
        reason = f"monitoring job {violation.job} was handled already, with another outcome"
        logger.error("event refused", extra={"reason": reason})
        return {"started": "false", "reason": reason}
