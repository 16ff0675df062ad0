"""Batch run hook: scores a batch environment's live model with SageMaker Batch Transform, driven
by events (no Step Functions; the layout and names are shared/batch.py's).

Events (each checked whole before any AWS call, without pydantic: shared/events.py):
1. "Scheduled Event" of the schedule rule (SCHEDULE_RULE): starts a scheduled run `s<time>`;
2. "Glue Job State Change" of the ETL job (ETL_JOB) into SUCCEEDED: starts a run `e<run id hash>`
   (kind scheduled);
3. a direct invocation {"action": "start", "kind": "sample", "run": "v...", "rows": N,
   "model_package": arn} (the deploy verifier's): a sample run on the first N rows, scored by
   this environment's live model and, when REFERENCE_MODEL_PARAMETER names one, by prod's;
4. "SageMaker Processing Job State Change" of a run's prepare job: Completed starts the
   transform job(s); Failed or Stopped ends the run Failed with SageMaker's FailureReason;
5. "SageMaker Transform Job State Change" of a run's score or ref job: once every transform job
   of the run has ended, counts the output rows and unparseable predictions (streamed), adds the
   scheduled run's partition to the predictions table (rows only), writes record.json and the
   run's metrics;
6. "Scheduled Event" of the watch rule (WATCH_RULE): a run with a job still in progress
   MAX_RUN_MINUTES after its start counts BatchRunsLate once; nothing is stopped (on-call
   decides).
A start reads the live model name (MODEL_PARAMETER): "none" (nothing released yet) starts
nothing; a sample run then, or one whose requested model package is not the live one, ends
Failed at once so the verifier hears why.

Scoring is paid work, so the hook trusts no delivery rule alone: an EventBridge event must come
from its service in this function's own account and region (its ARN in the Lambda context), name
this environment's rule or ETL job, or a job named with this environment's prefix
(`<product>-<env>-b-`). Anything else, and any malformed event, is answered with one log line
naming the field: no retry changes it, so it is not raised.

Exactly once: Powertools idempotency, keyed on the EventBridge event id (a direct start: on its
run). A try that fails leaves no record and the retry redoes the work, each side effect once:
the run's start (start.json) and record.json are conditional writes (the first wins), a job
whose name exists was started by an earlier try (found with Describe*), a partition that exists
is kept, and the metrics are written right after the record.json write that this try won.

Environment: PRODUCT, ENVIRONMENT, ARTIFACT_BUCKET, KEY_ARN, MODEL_PARAMETER,
MODEL_PACKAGE_PARAMETER, INPUT_URI, PROCESSING_IMAGE, PREPARE_CODE_URI, CONTRACT_URI, PAYLOAD
(encoded | raw), PREPARE_ROLE_ARN, INSTANCE_TYPE, INSTANCE_COUNT, MAX_PAYLOAD_MB,
MAX_RUN_MINUTES, SAMPLE_ROWS (the most rows a sample run may ask for), GLUE_DATABASE,
PREDICTIONS_TABLE, WATCH_RULE, IDEMPOTENCY_TABLE, POWERTOOLS_METRICS_NAMESPACE (mlgate/batch);
SCHEDULE_RULE or ETL_JOB (what starts scheduled runs); REQUEST_COLUMNS (raw payloads);
REFERENCE_MODEL_PARAMETER (staging, when prod is batch too).
AWS calls: ssm:GetParameter (the live model, model package and reference model parameters),
s3:GetObject, s3:PutObject (start.json and record.json of a run; rows.json and the
outputs read), s3:ListBucket (a run's outputs), sagemaker:CreateProcessingJob,
sagemaker:DescribeProcessingJob, sagemaker:ListProcessingJobs, sagemaker:CreateTransformJob,
sagemaker:DescribeTransformJob, sagemaker:ListTransformJobs, sagemaker:AddTags (the tags of each
job it creates), iam:PassRole (PREPARE_ROLE_ARN, to SageMaker: the prepare job's role),
glue:GetTable, glue:CreatePartition (the predictions table), dynamodb:PutItem, dynamodb:GetItem,
dynamodb:UpdateItem, dynamodb:DeleteItem (idempotency records).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from shared import idempotency
from shared.batch import (
    CANDIDATE,
    REFERENCE,
    SAMPLE,
    SCHEDULED,
    etl_run,
    input_prefix,
    job_name,
    job_prefix,
    meta_key,
    output_prefix,
    record_key,
    run_of,
    run_prefix,
    scheduled_run,
)
from shared.batch_run import count, predictions, put_once, read_json, start_key
from shared.coldstart import settle
from shared.events import (
    ARN,
    EMPTY,
    FROM_CONTEXT,
    NAME,
    SHORT,
    Origin,
    Refused,
    envelope,
    excerpt,
    expect,
    from_here,
    kinds,
    read_as,
    resources_within,
)
from shared.fields import Lit, Loc, Obj, Spec, Text
from shared.settings import read

logger = Logger()
# Namespace from POWERTOOLS_METRICS_NAMESPACE (mlgate/batch), set by the construct.
metrics = Metrics()
s3 = boto3.client("s3")
ssm = boto3.client("ssm")
sagemaker = boto3.client("sagemaker")
glue = boto3.client("glue")

SCHEDULED_TYPE = "Scheduled Event"
GLUE_TYPE = "Glue Job State Change"
PROCESSING_TYPE = "SageMaker Processing Job State Change"
TRANSFORM_TYPE = "SageMaker Transform Job State Change"
NONE = "none"  # the live model parameter's value before a release
COMPLETED, FAILED, EMPTY_RUN = "Completed", "Failed", "Empty"
RUNNING = ("InProgress", "Stopping")
BASE = "/opt/ml/processing"
CODE_DIR = f"{BASE}/input/code"
VOLUME_GB = 30
SAMPLE_LIMIT = 1_000_000
VOLUME_ENCRYPTIONS = ("product-key", "instance-storage")


@dataclass(frozen=True)
class Config:
    product: str
    environment: str
    bucket: str
    key_arn: str
    volume_encryption: str
    """product-key: the jobs' volumes take key_arn; instance-storage: the instance type keeps
    them on instance storage, encrypted by its hardware, where SageMaker refuses a key."""
    model_parameter: str
    package_parameter: str
    input_uri: str
    image: str
    code_uri: str
    contract_uri: str
    payload: str
    role_arn: str
    instance_type: str
    instance_count: int
    max_payload_mb: int
    max_run_minutes: int
    sample_rows: int
    database: str
    table: str
    watch_rule: str
    schedule_rule: str = ""
    etl_job: str = ""
    request_columns: str = ""
    reference_parameter: str = ""


def volume_key(config: Config) -> dict[str, str]:
    """The jobs' VolumeKmsKeyId: none on instance storage, where CreateProcessingJob and
    CreateTransformJob refuse one
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformResources.html)."""
    return {"VolumeKmsKeyId": config.key_arn} if config.volume_encryption == "product-key" else {}


@cache
def settings() -> Config:
    env = read(
        "batch_run",
        ("PRODUCT", "ENVIRONMENT", "ARTIFACT_BUCKET", "KEY_ARN", "MODEL_PARAMETER",
         "MODEL_PACKAGE_PARAMETER", "INPUT_URI", "PROCESSING_IMAGE", "PREPARE_CODE_URI",
         "CONTRACT_URI", "PAYLOAD", "PREPARE_ROLE_ARN", "INSTANCE_TYPE", "INSTANCE_COUNT",
         "MAX_PAYLOAD_MB", "MAX_RUN_MINUTES", "SAMPLE_ROWS", "GLUE_DATABASE",
         "PREDICTIONS_TABLE", "WATCH_RULE", "VOLUME_ENCRYPTION"),
        {"SCHEDULE_RULE": "", "ETL_JOB": "", "REQUEST_COLUMNS": "",
         "REFERENCE_MODEL_PARAMETER": ""},
    )  # fmt: skip
    if env["VOLUME_ENCRYPTION"] not in VOLUME_ENCRYPTIONS:
        raise ValueError(
            f"the batch_run hook's VOLUME_ENCRYPTION is '{env['VOLUME_ENCRYPTION']}': one of "
            f"{', '.join(VOLUME_ENCRYPTIONS)}; the stack sets it"
        )
    if env["PAYLOAD"] not in ("encoded", "raw") or (
        env["PAYLOAD"] == "raw" and not env["REQUEST_COLUMNS"]
    ):
        raise ValueError(
            f"the batch_run hook's PAYLOAD is '{env['PAYLOAD']}': encoded, or raw with "
            "REQUEST_COLUMNS; the stack sets them"
        )
    return Config(
        product=env["PRODUCT"],
        environment=env["ENVIRONMENT"],
        bucket=env["ARTIFACT_BUCKET"],
        key_arn=env["KEY_ARN"],
        volume_encryption=env["VOLUME_ENCRYPTION"],
        model_parameter=env["MODEL_PARAMETER"],
        package_parameter=env["MODEL_PACKAGE_PARAMETER"],
        input_uri=env["INPUT_URI"],
        image=env["PROCESSING_IMAGE"],
        code_uri=env["PREPARE_CODE_URI"],
        contract_uri=env["CONTRACT_URI"],
        payload=env["PAYLOAD"],
        role_arn=env["PREPARE_ROLE_ARN"],
        instance_type=env["INSTANCE_TYPE"],
        instance_count=int(env["INSTANCE_COUNT"]),
        max_payload_mb=int(env["MAX_PAYLOAD_MB"]),
        max_run_minutes=int(env["MAX_RUN_MINUTES"]),
        sample_rows=int(env["SAMPLE_ROWS"]),
        database=env["GLUE_DATABASE"],
        table=env["PREDICTIONS_TABLE"],
        watch_rule=env["WATCH_RULE"],
        schedule_rule=env["SCHEDULE_RULE"],
        etl_job=env["ETL_JOB"],
        request_columns=env["REQUEST_COLUMNS"],
        reference_parameter=env["REFERENCE_MODEL_PARAMETER"],
    )


class EventError(Refused):
    """Not an event this hook acts on; `field` names what, the message says why."""


class Rows(Spec):
    """A whole number of rows, 1 to SAMPLE_LIMIT (never a bool, a float or text)."""

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append((loc, "Input should be a valid integer", "int_type"))
            return None
        if not 1 <= value <= SAMPLE_LIMIT:
            errors.append((loc, f"Input should be 1 to {SAMPLE_LIMIT}", "int_range"))
            return None
        return value


# The shapes as the services document them; only what the hook reads is checked. Scheduled
# events: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html
# (empty detail); Glue's: https://docs.aws.amazon.com/glue/latest/dg/
# automating-awsglue-with-cloudwatch-events.html; SageMaker's (processing and transform job
# state changes): https://docs.aws.amazon.com/sagemaker/latest/dg/
# automating-sagemaker-with-eventbridge.html. SageMaker may send several events per change
# (same page): the job's state is read again with Describe*, never taken from the event.
JOB_NAME = Text(63, r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
SCHEDULED_EVENT = envelope("ScheduledEvent", SCHEDULED_TYPE, EMPTY)
GLUE_EVENT = envelope(
    "GlueJobEvent",
    GLUE_TYPE,
    Obj("GlueJobDetail", {"jobName": NAME, "state": SHORT, "jobRunId": NAME}),
)
PROCESSING_EVENT = envelope(
    "ProcessingEvent",
    PROCESSING_TYPE,
    Obj("ProcessingDetail", {"ProcessingJobName": JOB_NAME, "ProcessingJobStatus": SHORT}),
)
TRANSFORM_EVENT = envelope(
    "TransformEvent",
    TRANSFORM_TYPE,
    Obj("TransformDetail", {"TransformJobName": JOB_NAME, "TransformJobStatus": SHORT}),
)
KINDS = (SCHEDULED_TYPE, GLUE_TYPE, PROCESSING_TYPE, TRANSFORM_TYPE)
EVENT = kinds(SCHEDULED_EVENT, GLUE_EVENT, PROCESSING_EVENT, TRANSFORM_EVENT)
START = Obj(
    "SampleStart",
    {
        "action": Lit(("start",)),
        "kind": Lit((SAMPLE,)),
        "run": Text(13, r"^v[0-9a-f]{12}$"),
        "rows": Rows(),
        "model_package": ARN,
    },
)


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def work_of(event: Any, origin: Origin, config: Config) -> dict[str, Any]:
    """What the event asks, if it comes from this environment's own rules and jobs; EventError
    otherwise, before any AWS call."""
    if isinstance(event, dict) and "action" in event:
        start = read_as(event, START, EventError, "a sample run's start")
        if start.rows > config.sample_rows:
            raise EventError("rows", f"a sample run of {start.rows} rows: at most "
                             f"{config.sample_rows} (SAMPLE_ROWS)")  # fmt: skip
        return {"key": f"start#{start.run}", "op": "start", "run": start.run, "kind": SAMPLE,
                "rows": start.rows, "package": start.model_package}  # fmt: skip
    found = read_as(event, EVENT, EventError, f"one of the events {', '.join(KINDS)}", KINDS)
    kind = found.detail_type
    if kind == SCHEDULED_TYPE:
        return _scheduled(found, origin, config)
    if kind == GLUE_TYPE:
        return _etl(found, origin, config)
    return _job(found, origin, config)


def _scheduled(event: Any, origin: Origin, config: Config) -> dict[str, Any]:
    from_here(event, origin, "aws.events", EventError)
    resources = ",".join(event.resources)
    if resources == origin.arn("events", f"rule/{config.watch_rule}"):
        return {"key": event.id, "op": "watch"}
    if not config.schedule_rule:
        raise EventError(
            "resources",
            f"untrusted event: resources {excerpt(resources)!r} is not the watch rule "
            f"{config.watch_rule!r}, and this environment runs after each ETL job "
            "(SCHEDULE_RULE is unset); nothing was done",
        )
    expect(EventError, "resources", resources,
           origin.arn("events", f"rule/{config.schedule_rule}"),
           f"this environment's schedule rule, from SCHEDULE_RULE and {FROM_CONTEXT}")  # fmt: skip
    when = datetime.fromisoformat(event.time.replace("Z", "+00:00"))
    return {"key": event.id, "op": "start", "run": scheduled_run(when), "kind": SCHEDULED,
            "rows": 0, "package": ""}  # fmt: skip


def _etl(event: Any, origin: Origin, config: Config) -> dict[str, Any]:
    if not config.etl_job:
        raise EventError(
            "detail-type",
            f"this environment runs on its schedule {config.schedule_rule}, not after the ETL "
            "job (ETL_JOB is unset)",
        )
    from_here(event, origin, "aws.glue", EventError)
    detail = event.detail
    expect(EventError, "detail.jobName", detail.jobName, config.etl_job,
           "this product's ETL job, from ETL_JOB")  # fmt: skip
    if detail.state != "SUCCEEDED":
        raise EventError("detail.state", f"Glue job {detail.jobName} ended {detail.state}")
    return {"key": event.id, "op": "start", "run": etl_run(detail.jobRunId), "kind": SCHEDULED,
            "rows": 0, "package": ""}  # fmt: skip


def _job(event: Any, origin: Origin, config: Config) -> dict[str, Any]:
    from_here(event, origin, "aws.sagemaker", EventError)
    processing = event.detail_type == PROCESSING_TYPE
    field = "detail.ProcessingJobName" if processing else "detail.TransformJobName"
    name = event.detail.ProcessingJobName if processing else event.detail.TransformJobName
    head = job_prefix(config.product, config.environment)
    found = run_of(name, config.product, config.environment)
    if found is None:
        raise EventError(
            field,
            f"untrusted event: {field} {excerpt(name)!r} is not a job of this environment's "
            f"batch runs ({head}<run>-<step>); nothing was done",
        )
    run, step = found
    if (step == "prep") != processing:
        raise EventError(field, f"{field} {name!r} is a {step} job, which is not a "
                         f"{'processing' if processing else 'transform'} job")  # fmt: skip
    kind = "processing-job" if processing else "transform-job"
    resources_within(event, origin.arn("sagemaker", f"{kind}/{name}"),
                     f"this job, in {FROM_CONTEXT}", EventError)  # fmt: skip
    return {"key": event.id, "op": "prepared" if processing else "scored", "run": run}


# --- AWS -----------------------------------------------------------------------------------


def parameter(name: str) -> str:
    return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])


def uri(key: str) -> str:
    return f"s3://{settings().bucket}/{key}"


def tags(run: str) -> list[dict[str, str]]:
    config = settings()
    return [{"Key": "mlgate:product", "Value": config.product},
            {"Key": "mlgate:environment", "Value": config.environment},
            {"Key": "mlgate:batch-run", "Value": run}]  # fmt: skip


def exists(describe: Any, **name: str) -> bool:
    """Whether SageMaker knows the job (Describe* answers ValidationException for a name it
    does not know)."""
    try:
        describe(**name)
    except ClientError as err:
        if err.response["Error"]["Code"] == "ValidationException":
            return False
        raise
    return True


def create_once(create: Any, describe: Any, name: dict[str, str], **request: Any) -> str | None:
    """Creates the job; None when it exists now (made by this call or an earlier try: a name
    is unique per account and region, a second create is refused), else SageMaker's refusal
    (a model that does not exist, an input it cannot read)."""
    try:
        create(**name, **request)
    except ClientError as err:
        error = err.response["Error"]
        if error["Code"] not in ("ValidationException", "ResourceInUse", "ResourceNotFound"):
            raise
        if exists(describe, **name):
            return None
        return f"{err.operation_name} refused: {error['Code']}: {error.get('Message', '')}"
    return None


def start_prepare(begun: dict[str, Any]) -> str | None:
    """The run's prepare job (preprocess.py --batch-input); SageMaker's refusal, if any."""
    config = settings()
    run = begun["run"]
    arguments = ["--batch-input", "--payload", config.payload]
    if config.payload == "raw":
        arguments += ["--columns", config.request_columns]
    if begun["rows"]:
        arguments += ["--limit", str(begun["rows"])]

    def source(name: str, uri_: str, local: str) -> dict[str, Any]:
        return {"InputName": name, "S3Input": {
            "S3Uri": uri_, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated"}}  # fmt: skip

    def sink(name: str, local: str, prefix: str) -> dict[str, Any]:
        return {"OutputName": name, "S3Output": {
            "S3Uri": uri(prefix), "LocalPath": local, "S3UploadMode": "EndOfJob"}}  # fmt: skip

    env = config.environment
    return create_once(
        sagemaker.create_processing_job,
        sagemaker.describe_processing_job,
        {"ProcessingJobName": job_name(config.product, env, run, "prep")},
        ProcessingResources={"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": config.instance_type,
            "VolumeSizeInGB": VOLUME_GB, **volume_key(config)}},
        AppSpecification={
            "ImageUri": config.image,
            "ContainerEntrypoint": ["python3", f"{CODE_DIR}/{os.path.basename(config.code_uri)}"],
            "ContainerArguments": arguments},
        ProcessingInputs=[
            source("code", config.code_uri, CODE_DIR),
            source("contract", config.contract_uri, f"{BASE}/contract"),
            source("data", config.input_uri, f"{BASE}/input")],
        ProcessingOutputConfig={"Outputs": [
            sink("input", f"{BASE}/output/input", input_prefix(env, run)),
            sink("meta", f"{BASE}/output/meta", f"{run_prefix(env, run)}/meta/")],
            "KmsKeyId": config.key_arn},
        NetworkConfig={"EnableNetworkIsolation": True},
        StoppingCondition={"MaxRuntimeInSeconds": config.max_run_minutes * 60},
        RoleArn=config.role_arn,
        Tags=tags(run),
    )  # fmt: skip


def start_transform(begun: dict[str, Any], side: str) -> str | None:
    """One transform job of the run (the candidate's: score; the reference's: ref)."""
    config = settings()
    run, kind, env = begun["run"], begun["kind"], config.environment
    model = begun["model"] if side == CANDIDATE else begun["reference_model"]
    step = "score" if side == CANDIDATE else "ref"
    # https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html:
    # the id column is kept out of the model's input ($[1:]) and joined back to its output.
    return create_once(
        sagemaker.create_transform_job,
        sagemaker.describe_transform_job,
        {"TransformJobName": job_name(config.product, env, run, step)},
        ModelName=model,
        MaxPayloadInMB=config.max_payload_mb,
        BatchStrategy="MultiRecord",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                            "S3Uri": uri(input_prefix(env, run))}},
            "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": uri(output_prefix(env, run, kind, side)),
                         "Accept": "text/csv", "AssembleWith": "Line",
                         "KmsKeyId": config.key_arn},
        TransformResources={"InstanceType": config.instance_type,
                            "InstanceCount": config.instance_count,
                            **volume_key(config)},
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$"},
        Tags=tags(run),
    )  # fmt: skip


def add_partition(run: str) -> None:
    """The scheduled run's output as partition run=<run> of the predictions table: the table's
    storage descriptor, located at the partition's folder (AlreadyExists: an earlier try's)."""
    config = settings()
    table = glue.get_table(DatabaseName=config.database, Name=config.table)["Table"]
    descriptor = dict(table["StorageDescriptor"])
    descriptor["Location"] = f"{descriptor['Location'].rstrip('/')}/run={run}/"
    try:
        glue.create_partition(
            DatabaseName=config.database,
            TableName=config.table,
            PartitionInput={"Values": [run], "StorageDescriptor": descriptor},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "AlreadyExistsException":
            raise


# --- the run's steps -----------------------------------------------------------------------


def finish(begun: dict[str, Any], status: str, reason: str | None, now: float,
           candidate: dict[str, Any] | None = None, reference: dict[str, Any] | None = None,
           rows_in: int = 0) -> dict[str, Any]:  # fmt: skip
    """The run's end: its partition (a scheduled run with rows), record.json once, and the
    run's metrics by the try whose write made the record."""
    config = settings()
    run = begun["run"]
    if begun["kind"] == SCHEDULED and status == COMPLETED:
        add_partition(run)
    record = {
        "run": run, "kind": begun["kind"], "status": status, "model": begun["model"],
        "model_package": begun["model_package"], "reference_model": begun["reference_model"],
        "rows_in": rows_in, "candidate": candidate, "reference": reference,
        "started_at": begun["started_at"], "finished_at": iso(now), "reason": reason,
    }  # fmt: skip
    if not put_once(s3, config.bucket, record_key(config.environment, run), record):
        logger.info("run already recorded", extra={"run": run})
        return {"status": "recorded", "run": run}
    # No AWS call between the write and the metrics: a retry finds the record and counts none.
    outcome = {COMPLETED: "BatchRunsSucceeded", FAILED: "BatchRunsFailed"}.get(status)
    metrics.add_dimensions(Product=config.product, Environment=config.environment)
    metrics.add_metric(name=outcome or "BatchRunsEmpty", unit=MetricUnit.Count, value=1)
    scored = candidate["rows_out"] if candidate else 0
    metrics.add_metric(name="BatchRowsScored", unit=MetricUnit.Count, value=scored)
    started = datetime.fromisoformat(begun["started_at"].replace("Z", "+00:00")).timestamp()
    minutes = max(now - started, 0.0) / 60
    metrics.add_metric(name="BatchRunMinutes", unit=MetricUnit.NoUnit, value=round(minutes, 2))
    metrics.flush_metrics()
    logger.info("run ended", extra={"run": run, "status": status, "reason": reason,
                                    "rows_in": rows_in, "rows_out": scored})  # fmt: skip
    return {"status": status, "run": run}


def start(work: dict[str, Any], now: float) -> dict[str, Any]:
    config = settings()
    run, kind = work["run"], work["kind"]
    key = start_key(config.environment, run)
    begun = read_json(s3, config.bucket, key)
    if begun is None:
        model = parameter(config.model_parameter)
        package = parameter(config.package_parameter)
        reference = None
        if kind == SAMPLE and config.reference_parameter:
            reference = parameter(config.reference_parameter)
        begun = {"run": run, "kind": kind, "model": model, "model_package": package,
                 "reference_model": None if reference in (None, NONE) else reference,
                 "rows": work["rows"], "started_at": iso(now)}  # fmt: skip
        why = None
        if model == NONE:
            why = "nothing released yet: the live model parameter "
            why += f"{config.model_parameter} is 'none'"
        elif kind == SAMPLE and work["package"] != package:
            why = (f"the live model package is {package}, not the requested "
                   f"{work['package']} ({config.package_parameter})")  # fmt: skip
        if why:
            logger.info("run not started", extra={"run": run, "reason": why})
            if kind == SAMPLE:  # the verifier waits for this record
                return finish(begun, FAILED, why, now)
            return {"status": "skipped", "run": run, "reason": why}
        if not put_once(s3, config.bucket, key, begun):
            begun = read_json(s3, config.bucket, key) or begun  # another delivery's start
    refused = start_prepare(begun)
    if refused:
        return finish(begun, FAILED, refused, now)
    logger.info("run started", extra={"run": run, "kind": kind, "model": begun["model"]})
    return {"status": "started", "run": run}


def begun_of(run: str) -> dict[str, Any] | None:
    """The run's start, None (logged) when this environment never started it."""
    config = settings()
    begun = read_json(s3, config.bucket, start_key(config.environment, run))
    if begun is None:
        logger.error("no such run", extra={"run": run, "reason": "no start.json: this "
                     "environment never started the run"})  # fmt: skip
    return begun


def recorded(run: str) -> bool:
    config = settings()
    return read_json(s3, config.bucket, record_key(config.environment, run)) is not None


def rows_in(run: str) -> int | None:
    config = settings()
    meta = read_json(s3, config.bucket, meta_key(config.environment, run))
    rows = meta.get("rows") if meta else None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None


def open_run(run: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(start.json, {}) of a run still to be recorded; (None, its status) of one this hook
    never started (unknown) or already recorded."""
    begun = begun_of(run)
    if begun is None:
        return None, {"status": "unknown", "run": run}
    if recorded(run):
        return None, {"status": "recorded", "run": run}
    return begun, {}


def sides(begun: dict[str, Any]) -> list[str]:
    return [CANDIDATE, REFERENCE] if begun["reference_model"] else [CANDIDATE]


def prepared(work: dict[str, Any], now: float) -> dict[str, Any]:
    config = settings()
    run = work["run"]
    begun, settled = open_run(run)
    if begun is None:
        return settled
    name = job_name(config.product, config.environment, run, "prep")
    job = sagemaker.describe_processing_job(ProcessingJobName=name)
    status = job["ProcessingJobStatus"]
    if status in RUNNING:
        return {"status": "waiting", "run": run}
    if status != COMPLETED:
        why = job.get("FailureReason") or job.get("ExitMessage") or "no reason given"
        return finish(begun, FAILED, f"prepare job {name} {status}: {why}", now)
    rows = rows_in(run)
    if rows is None:
        return finish(begun, FAILED, f"prepare job {name} wrote no readable "
                      f"{meta_key(config.environment, run)}", now)  # fmt: skip
    if rows == 0:
        return finish(begun, EMPTY_RUN, "the prepared input has no rows", now)
    for side in sides(begun):
        refused = start_transform(begun, side)
        if refused:
            return finish(begun, FAILED, refused, now, rows_in=rows)
    return {"status": "scoring", "run": run}


def summary(job: dict[str, Any]) -> dict[str, Any]:
    """One transform job as the record gives it; its output counted when it completed."""
    status = job["TransformJobStatus"]
    output = job["TransformOutput"]["S3OutputPath"]
    found = count(predictions(s3, output)) if status == COMPLETED else None
    begin, end = job.get("TransformStartTime"), job.get("TransformEndTime")
    return {
        "job": job["TransformJobName"], "status": status,
        "rows_out": found.rows if found else 0,
        "unparseable": found.unparseable if found else 0,
        "seconds": float((end - begin).total_seconds()) if begin and end else None,
        "output_uri": output, "failure_reason": job.get("FailureReason") or None,
    }  # fmt: skip


def scored(work: dict[str, Any], now: float) -> dict[str, Any]:
    config = settings()
    run = work["run"]
    begun, settled = open_run(run)
    if begun is None:
        return settled
    jobs = {}
    for side in sides(begun):
        step = "score" if side == CANDIDATE else "ref"
        name = job_name(config.product, config.environment, run, step)
        jobs[side] = sagemaker.describe_transform_job(TransformJobName=name)
        if jobs[side]["TransformJobStatus"] in RUNNING:
            return {"status": "waiting", "run": run, "job": name}
    done = {side: summary(job) for side, job in jobs.items()}
    rows = rows_in(run) or 0
    failed = [s for s in done.values() if s["status"] != COMPLETED]
    candidate = done[CANDIDATE]
    if failed:
        status = FAILED
        reason = "; ".join(
            f"transform job {s['job']} {s['status']}: {s['failure_reason'] or 'no reason given'}"
            for s in failed
        )
    elif candidate["rows_out"] == 0:
        status, reason = EMPTY_RUN, f"transform job {candidate['job']} wrote no rows"
    else:
        status, reason = COMPLETED, None
    return finish(begun, status, reason, now, candidate, done.get(REFERENCE), rows)


LATE = idempotency.config("run", hours=24 * 7)


@idempotency.once(data="late", config=LATE, prefix="batch_run.late")
def count_late(*, late: dict[str, Any]) -> dict[str, Any]:
    config = settings()
    metrics.add_dimensions(Product=config.product, Environment=config.environment)
    metrics.add_metric(name="BatchRunsLate", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    logger.warning("run late", extra=late)
    return {"late": late["run"]}


def watch(now: float) -> dict[str, Any]:
    """Runs with a job in progress past MAX_RUN_MINUTES from their start (start.json; else the
    earliest of their running jobs' creation)."""
    config = settings()
    head = job_prefix(config.product, config.environment)
    running: dict[str, float] = {}
    for operation, summaries, name_key in (
        ("list_processing_jobs", "ProcessingJobSummaries", "ProcessingJobName"),
        ("list_transform_jobs", "TransformJobSummaries", "TransformJobName"),
    ):
        pages = sagemaker.get_paginator(operation).paginate(NameContains=head,
                                                            StatusEquals="InProgress")  # fmt: skip
        for page in pages:
            for job in page[summaries]:
                found = run_of(job[name_key], config.product, config.environment)
                if found is not None:
                    created = job["CreationTime"].timestamp()
                    running[found[0]] = min(running.get(found[0], created), created)
    late = []
    for run, created in sorted(running.items()):
        begun = read_json(s3, config.bucket, start_key(config.environment, run))
        since = begun["started_at"] if begun else iso(created)
        started = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp()
        if now - started > config.max_run_minutes * 60:
            count_late(late={"run": run, "started_at": since})
            late.append(run)
    return {"status": "watched", "running": len(running), "late": ",".join(late)}


CONFIG = idempotency.config("key", hours=48)


@idempotency.once(data="work", config=CONFIG, prefix="batch_run")
def respond(*, work: dict[str, Any], now: float) -> dict[str, Any]:
    op = work["op"]
    if op == "start":
        return start(work, now)
    if op == "prepared":
        return prepared(work, now)
    if op == "scored":
        return scored(work, now)
    return watch(now)


def refuse(field: str, reason: str) -> dict[str, str]:
    logger.error("event refused", extra={"field": field, "reason": reason})
    return {"status": "refused", "field": field, "reason": reason}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
def handler(event: Any, context: Any, now: float | None = None) -> dict[str, Any]:
    try:
        work = work_of(event, Origin.of(context), settings())
    except EventError as err:
        return refuse(err.field, err.reason)
    CONFIG.register_lambda_context(context)
    LATE.register_lambda_context(context)
    moment = datetime.now(UTC).timestamp() if now is None else now
    return dict(respond(work=work, now=moment))


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
