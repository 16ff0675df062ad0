"""Drift responder hook: monitoring declared drift -> retrain, once per cool-down, and tell
the model's owners why.

Events (each checked whole before any AWS call, without pydantic: shared/events.py):
- "CloudWatch Alarm State Change" of the drift alarm into ALARM (monitoring.engine evidently:
  the alarm watches the share of drifted features against the manifest's drift_threshold);
  one drift per state change, keyed on the alarm and the change's timestamp;
- "SageMaker Processing Job State Change" of a Model Monitor execution that completed with
  violations (detail.ExitMessage "CompletedWithViolations: ...").
The cool-down is a conditional write in DynamoDB: the first
violation in a window wins it and starts the pipeline; later ones inside the window only
report that retraining is already under way.

Retraining is paid work, so the responder trusts no delivery rule alone: before any AWS call
it checks that the event comes from CloudWatch (aws.cloudwatch) about this environment's drift
alarm (DRIFT_ALARM), or from SageMaker (aws.sagemaker) about an execution of this endpoint's
data-quality schedule (MONITORING_SCHEDULE), in this function's own account and region (its
ARN in the Lambda context). Anything else, and any malformed event, is refused with one log
line naming the field: no retry changes it, so it is answered, not raised.

Idempotent with Powertools, keyed on the monitoring job (validated: its schedule and exit
message). A run that fails leaves no record and the retry finishes the work: the cool-down it
won stays its own (the claim names the job), the execution it started is found again by its
display name, and the owners' message and the drift metric are idempotent steps of their own.
The drift metric (DriftViolations by Endpoint, which the Model Monitor drift alarm watches) is
Powertools Metrics' embedded metric format in the function's log, not an API call. When
SageMaker refuses the start (the pipeline does not exist: ValidationException or
ResourceNotFound), the cool-down it claimed is given back and the owners are told.

Environment: PIPELINE_NAME, COOLDOWN_TABLE, OWNERS_TOPIC_ARN, ENDPOINT_NAME, PRODUCT,
ENVIRONMENT, IDEMPOTENCY_TABLE, POWERTOOLS_METRICS_NAMESPACE (mlgate/monitoring); DRIFT_ALARM
(the Evidently engine's drift alarm) or MONITORING_SCHEDULE (Model Monitor's data-quality
schedule); COOLDOWN_HOURS (default 24); RETRAIN_ROLE_ARN (set when the endpoint lives in another
account than the pipeline: the home role that may start it); REPORTS_URI (where monitoring
writes its reports, named in the owners' message).
AWS calls: dynamodb:PutItem (cool-down and idempotency records), dynamodb:GetItem,
dynamodb:UpdateItem, dynamodb:DeleteItem (idempotency records; a cool-down given back),
sns:Publish, sts:AssumeRole (optional: only with RETRAIN_ROLE_ARN).
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
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError
from botocore.exceptions import ClientError

from shared import idempotency
from shared.accounts import session
from shared.coldstart import settle
from shared.events import (
    ARN,
    FROM_CONTEXT,
    NAME,
    SHORT,
    TEXT,
    Origin,
    Refused,
    envelope,
    expect,
    from_here,
    kinds,
    read_as,
    resources_within,
)
from shared.fields import Default, Obj, Opt, Seq, Text
from shared.pipelines import start_if_idle
from shared.settings import read

logger = Logger()
# Namespace from POWERTOOLS_METRICS_NAMESPACE, set by the construct to the drift alarm's.
metrics = Metrics()
dynamodb = boto3.client("dynamodb")
sns = boto3.client("sns")
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
    alarm: str = ""
    schedule: str = ""


@cache
def settings() -> Config:
    env = read(
        "drift_responder",
        ("PIPELINE_NAME", "COOLDOWN_TABLE", "OWNERS_TOPIC_ARN", "ENDPOINT_NAME", "PRODUCT",
         "ENVIRONMENT"),
        {"COOLDOWN_HOURS": "24", "RETRAIN_ROLE_ARN": "", "REPORTS_URI": "", "DRIFT_ALARM": "",
         "MONITORING_SCHEDULE": ""},
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
        alarm=env["DRIFT_ALARM"],
        schedule=env["MONITORING_SCHEDULE"],
    )


class EventError(Refused):
    """Not a drift this responder acts on; `field` names what, the message says why."""


# The event shapes as CloudWatch (https://docs.aws.amazon.com/AmazonCloudWatch/latest/
# monitoring/cloudwatch-and-eventbridge.html) and SageMaker (https://docs.aws.amazon.com/
# sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html) document them; only what
# the responder reads is checked, other fields are ignored.
ALARM_STATE = Obj("AlarmState", {"value": SHORT, "reason": TEXT, "timestamp": SHORT})
ALARM_DETAIL = Obj("AlarmDetail", {"alarmName": NAME, "state": ALARM_STATE})
ALARM_EVENT = envelope("AlarmEvent", ALARM_TYPE, ALARM_DETAIL)

S3_LOCATION = Obj("S3Location", {"S3Uri": TEXT})
OUTPUT = Obj("Output", {"S3Output": Opt(S3_LOCATION)})
OUTPUT_CONFIG = Obj("OutputConfig", {"Outputs": Default(Seq(OUTPUT, max_length=20), [])})
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeProcessingJob.html:
# names of 1 to 63 letters, digits and hyphens.
JOB_NAME = Text(63, r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
PROCESSING_DETAIL = Obj(
    "ProcessingDetail",
    {
        "ProcessingJobName": JOB_NAME,
        "ProcessingJobStatus": SHORT,
        "ExitMessage": Opt(TEXT),
        "MonitoringScheduleArn": Opt(ARN),
        "ProcessingOutputConfig": Opt(OUTPUT_CONFIG),
    },
)
PROCESSING_EVENT = envelope("ProcessingEvent", DETAIL_TYPE, PROCESSING_DETAIL)

KINDS = (ALARM_TYPE, DETAIL_TYPE)
DRIFT_EVENT = kinds(ALARM_EVENT, PROCESSING_EVENT)


@dataclass(frozen=True)
class Violation:
    job: str
    schedule: str
    message: str
    report: str


def parse(event: Any) -> Any:
    """The event, checked whole (its fields as attributes); EventError naming the field
    otherwise."""
    return read_as(event, DRIFT_EVENT, EventError, f"a '{ALARM_TYPE}' or '{DETAIL_TYPE}' event",
                   KINDS)  # fmt: skip


def violation_of(event: Any, origin: Origin, config: Config) -> Violation:
    """The drift an event declares, if it comes from this environment's own drift source;
    EventError otherwise, before any AWS call."""
    if event.detail_type == ALARM_TYPE:
        return _alarm(event, origin, config)
    return _monitoring(event, origin, config)


def _alarm(event: Any, origin: Origin, config: Config) -> Violation:
    detail = event.detail
    if not config.alarm:
        raise EventError("detail-type", f"this responder watches Model Monitor's schedule "
                         f"{config.schedule}, not an alarm (DRIFT_ALARM is unset)")  # fmt: skip
    from_here(event, origin, "aws.cloudwatch", EventError)
    expect(EventError, "detail.alarmName", detail.alarmName, config.alarm,
           "this environment's drift alarm, from DRIFT_ALARM")  # fmt: skip
    resources_within(event, origin.arn("cloudwatch", f"alarm:{config.alarm}"),
                     "this environment's drift alarm", EventError)  # fmt: skip
    name, state = detail.alarmName, detail.state
    if state.value != "ALARM":
        raise EventError("detail.state.value", f"alarm {name} went to {state.value}, not ALARM")
    stamp = re.sub(r"[^0-9]", "", state.timestamp)[:14]
    if len(stamp) != 14:
        raise EventError("detail.state.timestamp", f"alarm {name}'s state change has no "
                                                   "timestamp")  # fmt: skip
    # The job id names a pipeline execution's display name and client token: digits and
    # dashes only. One drift alarm per environment: its change time identifies the drift.
    return Violation(
        job=f"drift-alarm-{stamp}",
        schedule=name,
        message=state.reason,
        report=config.reports_uri or "the monitoring reports prefix",
    )


def _monitoring(event: Any, origin: Origin, config: Config) -> Violation:
    detail = event.detail
    if not config.schedule:
        raise EventError("detail-type", f"this responder watches the drift alarm {config.alarm},"
                         " not Model Monitor (MONITORING_SCHEDULE is unset)")  # fmt: skip
    from_here(event, origin, "aws.sagemaker", EventError)
    schedule = detail.MonitoringScheduleArn
    if schedule is None:
        raise EventError("detail.MonitoringScheduleArn", "the processing job is not a Model "
                                                         "Monitor execution")  # fmt: skip
    # SageMaker writes names in ARNs in lower case.
    expect(
        EventError,
        "detail.MonitoringScheduleArn",
        schedule.lower(),
        origin.arn("sagemaker", f"monitoring-schedule/{config.schedule}").lower(),
        f"this endpoint's data-quality schedule, from MONITORING_SCHEDULE and {FROM_CONTEXT}",
    )
    resources_within(event, origin.arn("sagemaker", "processing-job/"),
                     "a processing job of this account and region", EventError,
                     prefix=True)  # fmt: skip
    message = detail.ExitMessage or ""
    status = detail.ProcessingJobStatus
    if status != "Completed" or not message.startswith("CompletedWithViolations"):
        field = "detail.ProcessingJobStatus" if status != "Completed" else "detail.ExitMessage"
        raise EventError(field, f"processing job {detail.ProcessingJobName} did not complete "
                         f"with violations ({status}: {message or 'no exit message'})")  # fmt: skip
    outputs = detail.ProcessingOutputConfig.Outputs if detail.ProcessingOutputConfig else []
    first = outputs[0].S3Output if outputs else None
    return Violation(
        job=detail.ProcessingJobName,
        schedule=schedule,
        message=message,
        report=first.S3Uri if first else "unknown location",
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


def give_back_cooldown(client: Any, config: Config, violation: Violation) -> None:
    """The window this violation claimed, given back when SageMaker refused the start: the
    next drift may retrain."""
    try:
        client.delete_item(
            TableName=config.table,
            Key={"pk": {"S": f"drift#{config.endpoint}"}},
            ConditionExpression="job = :job",
            ExpressionAttributeValues={":job": {"S": violation.job}},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


CONFIG = idempotency.config("job", "[schedule, message]", hours=48)
STEP = idempotency.config("job", hours=48)


@idempotency.once(data="violation", config=STEP, prefix="drift_responder.metric")
def count(*, violation: dict[str, str]) -> dict[str, str]:
    # The alarm watches DriftViolations by Endpoint alone: a dimension set of its own, beside
    # the service set Powertools adds.
    metrics.add_dimensions(Endpoint=settings().endpoint)
    metrics.add_metric(name="DriftViolations", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
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
        if result.get("status") == "refused":
            give_back_cooldown(dynamodb, config, found)
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


def refuse(field: str, reason: str) -> dict[str, str]:
    logger.error("event refused", extra={"field": field, "reason": reason})
    return {"started": "false", "status": "refused", "reason": reason}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
def handler(event: Any, context: Any, now: float | None = None) -> dict[str, str]:
    try:
        violation = violation_of(parse(event), Origin.of(context), settings())
    except EventError as err:
        return refuse(err.field, err.reason)
    CONFIG.register_lambda_context(context)
    STEP.register_lambda_context(context)
    try:
        return respond(violation=asdict(violation), now=time.time() if now is None else now)
    except IdempotencyValidationError:
        return refuse("detail", f"monitoring job {violation.job} was handled already, with "
                                "another outcome")  # fmt: skip


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
