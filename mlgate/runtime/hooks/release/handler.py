"""Release hook: a model version was approved in the registry -> its released copy,
release.json -> pipeline.

Event: EventBridge "SageMaker Model Package State Change", read whole before any AWS call
(ModelApproval below, on Powertools' EventBridgeModel). The rule matches this
product's group with status Approved only; the hook trusts no rule alone and checks again,
itself: the source (aws.sagemaker), the detail type, the account and region (the function's
own, from its ARN), the group (MODEL_PACKAGE_GROUP), and that the approved version is a
version of that group in that account and region. Anyone allowed to invoke the function can
write such an event, so the event only names the version: what the hook acts on is what the
registry says of it now (DescribeModelPackage): a version of this product's group, Approved,
approved by whom and when (LastModifiedBy, LastModifiedTime), never the event's detail.

It copies the version's model artifact and registered baselines (Model Monitor's statistics
and constraints, the Evidently baseline dataset) from this product's training runs
(TRAINING_PREFIX) to the version's released folder (RELEASED_PREFIX/<version>/: model.tar.gz,
baseline/statistics.json, baseline/constraints.json, baseline/dataset/<file>) in the home
artifact bucket (ARTIFACT_BUCKET), encrypted by the bucket's default (the product key): the one
place other environments read. CopyObject copies at most 5 GB in one request
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html); a larger artifact is
refused saying so. Then it writes release.json (the model package, its version, the released
copies, its metrics, who approved it and when: the Release model) to the versioned release
bucket, the pipeline's source, and starts the release pipeline.

Answers: anything else (a malformed or foreign event, a version the registry holds in another
group or not Approved, a package SageMaker does not know: ValidationException, an artifact
outside this product's training runs or too large to copy, an evaluation report that is
missing or is not one) is refused with one log line naming the field or the answer, and
released is "false"; nothing is copied or written. Only a throttle or a service error fails
the invocation, for Lambda's retries and then the dead-letter queue.

Idempotent with Powertools (key: the model package ARN; validated: the approval's time): a
version is released once, a redelivered approval answers "already released". A run that fails
half way (StartPipelineExecution throttled) leaves no record, so the retry releases (copying
again to the same keys). StartPipelineExecution keeps its own clientRequestToken (the
package's digest) and the audit event its own key, so a retry after a late failure starts and
records nothing twice.

Environment: MODEL_PACKAGE_GROUP, RELEASE_BUCKET, RELEASE_PIPELINE, AUDIT_TABLE,
ARTIFACT_BUCKET, TRAINING_PREFIX, RELEASED_PREFIX, IDEMPOTENCY_TABLE; RELEASE_KEY (default
release.json); POWERTOOLS_METRICS_NAMESPACE (one EMF count per invocation: Released,
AlreadyReleased or Refused).
AWS calls: sagemaker:DescribeModelPackage, s3:GetObject (the evaluation report, and the
sources CopyObject reads), s3:PutObject (release.json, and the released copies),
dynamodb:PutItem (audit trail and idempotency records), dynamodb:GetItem, dynamodb:UpdateItem,
dynamodb:DeleteItem (idempotency records), codepipeline:StartPipelineExecution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError
from aws_lambda_powertools.utilities.parser.models.event_bridge import EventBridgeModel
from botocore.exceptions import ClientError
from pydantic import Field, model_validator

from shared import idempotency
from shared.audit import AuditTrail, digest
from shared.coldstart import settle
from shared.jobs import TRANSIENT, unapproved
from shared.models import (
    AccountId,
    AwsModel,
    ModelPackageArn,
    Refusal,
    Region,
    Release,
    SageMakerName,
    Text,
    Timestamp,
    Version,
    read,
    utc,
)
from shared.settings import read as read_settings

logger = Logger()
metrics = Metrics()
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")
codepipeline = boto3.client("codepipeline")
dynamodb = boto3.client("dynamodb")


class ModelPackageChange(AwsModel):
    """The detail of "SageMaker Model Package State Change" the release hook reads
    (https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html).
    Only which version, and the approval's time as the idempotency check: who approved it and
    whether it is Approved, the hook asks the registry."""

    ModelPackageGroupName: SageMakerName
    ModelPackageVersion: Version
    ModelPackageArn: ModelPackageArn
    ModelApprovalStatus: Literal["Approved", "Rejected", "PendingManualApproval"]
    LastModifiedTime: Timestamp | None = None
    CreationTime: Timestamp | None = None

    @model_validator(mode="after")
    def _one_version(self) -> ModelPackageChange:
        group, version = self.ModelPackageArn.rsplit(":model-package/", 1)[1].rsplit("/", 1)
        if group != self.ModelPackageGroupName.lower():
            raise ValueError(f"ModelPackageArn is a version of {group}, not of the group named")
        if int(version) != self.ModelPackageVersion:
            raise ValueError(f"ModelPackageArn is version {version}, not ModelPackageVersion")
        return self

    @property
    def account(self) -> str:
        return self.ModelPackageArn.split(":")[4]

    @property
    def region(self) -> str:
        return self.ModelPackageArn.split(":")[3]


class ModelApproval(EventBridgeModel):
    """The whole event, as EventBridge delivers it to the release hook: Powertools' model,
    extended as its docs show, with the fields the hook checks typed."""

    source: Literal["aws.sagemaker"]
    detail_type: Literal["SageMaker Model Package State Change"] = Field(alias="detail-type")
    id: Text
    account: AccountId
    region: Region
    detail: ModelPackageChange


@dataclass(frozen=True)
class Settings:
    group: str
    bucket: str
    key: str
    pipeline: str
    table: str
    artifacts: str
    training: str
    released: str


@cache
def settings() -> Settings:
    env = read_settings(
        "release",
        ("MODEL_PACKAGE_GROUP", "RELEASE_BUCKET", "RELEASE_PIPELINE", "AUDIT_TABLE",
         "ARTIFACT_BUCKET", "TRAINING_PREFIX", "RELEASED_PREFIX"),
        {"RELEASE_KEY": "release.json"},
    )  # fmt: skip
    return Settings(
        group=env["MODEL_PACKAGE_GROUP"],
        bucket=env["RELEASE_BUCKET"],
        key=env["RELEASE_KEY"],
        pipeline=env["RELEASE_PIPELINE"],
        table=env["AUDIT_TABLE"],
        artifacts=env["ARTIFACT_BUCKET"],
        training=env["TRAINING_PREFIX"],
        released=env["RELEASED_PREFIX"],
    )


def own_account_and_region(context: Any) -> tuple[str, str]:
    """The function's own account and region, from its ARN
    (arn:aws:lambda:<region>:<account>:function:<name>)."""
    parts = str(getattr(context, "invoked_function_arn", "")).split(":")
    if len(parts) < 7 or parts[2] != "lambda":
        raise Refusal("the Lambda context names no function ARN: cannot tell the own account")
    return parts[4], parts[3]


def check(approval: ModelApproval, group: str, account: str, region: str) -> None:
    """The delivery rule's filter, again, and the event's account, region and resource: an
    approval of this product's group, here, or a Refusal naming what differs."""
    detail = approval.detail
    for field, got, want in (
        ("account", approval.account, account),
        ("region", approval.region, region),
        ("detail.ModelPackageGroupName", detail.ModelPackageGroupName, group),
        ("detail.ModelPackageArn (account)", detail.account, account),
        ("detail.ModelPackageArn (region)", detail.region, region),
    ):
        if got != want:
            raise Refusal(f"{field}: {got} is not this product's {want}")
    if detail.ModelApprovalStatus != "Approved":
        raise Refusal(
            f"detail.ModelApprovalStatus: version {detail.ModelPackageVersion} is "
            f"{detail.ModelApprovalStatus}, not Approved: nothing to release"
        )


REPORT_SECTIONS = (
    "binary_classification_metrics",
    "multiclass_classification_metrics",
    "regression_metrics",
)


def report_metrics(client: Any, uri: str) -> dict[str, Any]:
    """The metrics of SageMaker's model-quality report: one section per problem type, whichever
    this product's evaluation wrote; a report that is missing or is not one is refused."""
    parts = urlparse(uri)
    try:
        body = client.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
        report = json.loads(body)
    except ClientError as err:
        if err.response["Error"].get("Code") in TRANSIENT:
            raise
        raise Refusal(f"the evaluation report {uri} cannot be read: {err}") from None
    except ValueError as err:
        raise Refusal(f"the evaluation report {uri} is not JSON: {err}") from None
    sections = report if isinstance(report, dict) else {}
    for name in REPORT_SECTIONS:
        section = sections.get(name)
        if isinstance(section, dict):
            return {
                metric: value.get("value") if isinstance(value, dict) else value
                for metric, value in section.items()
            }
    return {}


# The Evidently monitor's baseline dataset, as the training pipeline registers it
# (mlgate/infra/ml/pipeline.py; mlgate/runtime/monitoring_job/sources.py reads the same property).
BASELINE_DATASET = "mlgate:baseline-dataset"
# CopyObject's limit for one request (https://docs.aws.amazon.com/AmazonS3/latest/API/
# API_CopyObject.html); S3 answers InvalidRequest for a larger source.
COPY_LIMIT = "5 GB"


@dataclass(frozen=True)
class Copy:
    """One registered object of the version and where its released copy goes."""

    field: str
    source: str
    name: str
    """Its place in the version's released folder: model.tar.gz, baseline/..."""
    key: str
    uri: str


def copies(package: dict[str, Any], version: int, config: Settings) -> list[Copy]:
    """What the version registered, each from this product's training runs, and its place in
    the version's released folder; a Refusal naming the field for anything else."""
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    drift = (package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}
    meta = package.get("CustomerMetadataProperties") or {}
    folder = f"{config.released}/{version}"
    wanted = [
        ("InferenceSpecification.Containers.0.ModelDataUrl", containers[0].get("ModelDataUrl"),
         "model.tar.gz"),
        ("DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri",
         (drift.get("Statistics") or {}).get("S3Uri"), "baseline/statistics.json"),
        ("DriftCheckBaselines.ModelDataQuality.Constraints.S3Uri",
         (drift.get("Constraints") or {}).get("S3Uri"), "baseline/constraints.json"),
        (f"CustomerMetadataProperties.{BASELINE_DATASET}", meta.get(BASELINE_DATASET),
         "baseline/dataset/"),
    ]  # fmt: skip
    if not wanted[0][1]:
        raise Refusal(f"{wanted[0][0]}: the version registers no model artifact to release")
    found = []
    for field, uri, name in wanted:
        if not uri:
            continue
        training = f"s3://{config.artifacts}/{config.training}/"
        if not isinstance(uri, str) or not uri.startswith(training) or "/../" in uri:
            raise Refusal(f"{field}: {str(uri)[:200]} is not in a training run of this product "
                          f"({training}...): nothing to release")  # fmt: skip
        name = name + uri.rsplit("/", 1)[1] if name.endswith("/") else name
        key = f"{folder}/{name}"
        found.append(Copy(field, uri, name, key, f"s3://{config.artifacts}/{key}"))
    return found


def copy(client: Any, item: Copy, bucket: str) -> None:
    """CopyObject within the artifact bucket; the copy takes the bucket's default encryption
    (SSE-KMS with the product key)."""
    source_bucket, _, source_key = item.source.removeprefix("s3://").partition("/")
    try:
        client.copy_object(
            Bucket=bucket, Key=item.key, CopySource={"Bucket": source_bucket, "Key": source_key}
        )
    except ClientError as err:
        error = err.response["Error"]
        if error.get("Code") in TRANSIENT:
            raise
        if error.get("Code") == "InvalidRequest" and "larger than" in str(error.get("Message")):
            raise Refusal(
                f"{item.field}: {item.source} is larger than {COPY_LIMIT}, the most CopyObject "
                "copies in one request: release it by hand (a multipart copy) or make it smaller"
            ) from None
        raise Refusal(f"{item.field}: {item.source} cannot be copied: {err}") from None


def who(context: Any) -> str | None:
    """The user or IAM identity the registry records (LastModifiedBy / CreatedBy)."""
    if not isinstance(context, dict):
        return None
    identity = context.get("IamIdentity") or {}
    name = context.get("UserProfileName") or identity.get("Arn")
    return str(name) if name else None


def when(value: Any) -> int | str | None:
    """The registry's time (a datetime from boto3), as release.json keeps it."""
    if isinstance(value, datetime):
        return utc(value)
    return value if isinstance(value, int | str) else None


def build_release(
    approval: ModelApproval, package: dict[str, Any], s3: Any, released: list[Copy]
) -> Release:
    """release.json from the registry's description of the version (its approver and time
    included) and its released copies."""
    detail = approval.detail
    quality = (package.get("ModelMetrics") or {}).get("ModelQuality") or {}
    report_uri = (quality.get("Statistics") or {}).get("S3Uri")
    meta = package.get("CustomerMetadataProperties") or {}
    placed = {item.name: item.uri for item in released}
    dataset = [item.uri for item in released if item.name.startswith("baseline/dataset/")]
    document = {
        "model_package_arn": detail.ModelPackageArn,
        "model_package_group": package.get("ModelPackageGroupName"),
        "model_version": detail.ModelPackageVersion,
        "model_data_url": placed.get("model.tar.gz"),
        "approved_by": who(package.get("LastModifiedBy"))
        or who(package.get("CreatedBy"))
        or "unknown",
        "approved_at": when(package.get("LastModifiedTime") or package.get("CreationTime")),
        "metrics": report_metrics(s3, report_uri) if report_uri else {},
        "evaluation_report_uri": report_uri,
        "baseline_statistics_uri": placed.get("baseline/statistics.json"),
        "baseline_constraints_uri": placed.get("baseline/constraints.json"),
        "baseline_dataset_uri": dataset[0] if dataset else None,
        "manifest_sha256": meta.get("mlgate:manifest-sha256"),
        "code_sha256": meta.get("mlgate:code-sha256"),
        "training_execution": meta.get("mlgate:pipeline-execution"),
        # The version's experiment run, as the training pipeline registered it (tracking).
        "mlflow_run_id": meta.get("mlgate:mlflow-run-id"),
        "mlflow_experiment_id": meta.get("mlgate:mlflow-experiment-id"),
        "mlflow_tracking": meta.get("mlgate:mlflow-tracking"),
    }
    # What SageMaker registered is checked like any input: release.json is what every later
    # stage acts on.
    return read(document, Release, "release.json")


def _replayed(response: dict[str, str]) -> dict[str, str]:
    return {"released": "false", "reason": f"{response['model_package_arn']} was already released"}


# A version is released once: the key is the package, kept for 30 days (far beyond
# EventBridge's and Lambda's retries); an approval of the same version at another time is a
# different event with the same key, refused by payload validation.
CONFIG = idempotency.config(
    "detail.ModelPackageArn", "detail.LastModifiedTime", hours=24 * 30, replayed=_replayed
)


@idempotency.once(data="approval", config=CONFIG, prefix="release")
def release_version(*, approval: ModelApproval) -> dict[str, str]:
    config = settings()
    arn = approval.detail.ModelPackageArn
    try:
        package = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as err:
        if err.response["Error"].get("Code") in TRANSIENT:
            raise
        raise Refusal(f"detail.ModelPackageArn: SageMaker refused {arn}: {err}") from None
    # The registry decides, not the event: its group and its status now.
    why = unapproved(package, arn, config.group)
    if why is not None:
        raise Refusal(f"the registry: {why}: nothing to release")
    released = copies(package, approval.detail.ModelPackageVersion, config)
    release = build_release(approval, package, s3, released)
    for item in released:
        copy(s3, item, config.artifacts)
    document = release.document()
    s3.put_object(
        Bucket=config.bucket,
        Key=config.key,
        Body=json.dumps(document, indent=2, sort_keys=True).encode(),
        ContentType="application/json",
    )
    execution = codepipeline.start_pipeline_execution(
        name=config.pipeline, clientRequestToken=digest(arn)[:64]
    )["pipelineExecutionId"]
    AuditTrail(dynamodb, config.table).record(
        pipeline=config.pipeline,
        execution=execution,
        event="released",
        gate="model-registry",
        key=digest(arn)[:16],
        # When the registry says it was approved; the event's own time only if it says none.
        when=release.approved_at if isinstance(release.approved_at, str) else utc(approval.time),
        who=release.approved_by,
        decision="Approved",
        model_version=str(release.model_version),
        evidence_sha256=digest(document),
        detail=f"release.json written for {arn}",
    )
    logger.info("released", extra={"model_package_arn": arn, "execution": execution,
                                   "model_data_url": release.model_data_url})  # fmt: skip
    return {"released": "true", "execution": execution, "model_package_arn": arn}


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    outcome = answer(event, context)
    if outcome["released"] == "true":
        name = "Released"
    else:
        replayed = " was already released" in outcome["reason"]
        name = "AlreadyReleased" if replayed else "Refused"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    return outcome


def answer(event: Any, context: Any) -> dict[str, str]:
    """Read the whole event and check whose it is, then release: no AWS call before."""
    try:
        approval = read(event, ModelApproval)
        check(approval, settings().group, *own_account_and_region(context))
    except Refusal as refusal:
        return refused(str(refusal), keep_correlation=False)
    CONFIG.register_lambda_context(context)
    try:
        return release_version(approval=approval)
    except Refusal as refusal:
        return refused(str(refusal))
    except IdempotencyValidationError:
        arn = approval.detail.ModelPackageArn
        reason = (
            f"{arn} was already released for an earlier approval; this approval "
            f"({approval.detail.LastModifiedTime}) changes nothing"
        )
        logger.warning("not released", extra={"reason": reason})
        return {"released": "false", "reason": reason}


def refused(reason: str, keep_correlation: bool = True) -> dict[str, str]:
    if not keep_correlation:
        # The event's id may be what was refused (unprintable, 200 KB long).
        logger.set_correlation_id(None)
    logger.warning("refused", extra={"reason": reason})
    return {"released": "false", "reason": reason}


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
