"""Release hook: a model version was approved in the registry -> release.json -> pipeline.

Event: EventBridge "SageMaker Model Package State Change" (read through Powertools'
EventBridgeEvent). The rule matches this product's group with status Approved only; the
handler checks both again. It writes release.json (the model package, its version, its
metrics, its Model Monitor baseline, who approved it and when) to the versioned release bucket,
the pipeline's source, and starts the release pipeline.

Idempotent with Powertools (key: the model package ARN; validated: the approval's time): a
version is released once, a redelivered approval answers "already released". A run that fails
half way (the evaluation report unreadable, StartPipelineExecution throttled) leaves no record,
so the retry releases. StartPipelineExecution keeps its own clientRequestToken (the package's
digest) and the audit event its own key, so a retry after a late failure starts and records
nothing twice.

Environment: MODEL_PACKAGE_GROUP, RELEASE_BUCKET, RELEASE_PIPELINE, AUDIT_TABLE,
IDEMPOTENCY_TABLE; RELEASE_KEY (default release.json).
AWS calls: sagemaker:DescribeModelPackage, s3:GetObject (the evaluation report), s3:PutObject,
dynamodb:PutItem (audit trail and idempotency records), dynamodb:GetItem, dynamodb:UpdateItem,
dynamodb:DeleteItem (idempotency records), codepipeline:StartPipelineExecution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError

from shared import idempotency
from shared.audit import AuditTrail, digest
from shared.settings import read

logger = Logger()
DETAIL_TYPE = "SageMaker Model Package State Change"
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")
codepipeline = boto3.client("codepipeline")
dynamodb = boto3.client("dynamodb")


@dataclass(frozen=True)
class Settings:
    group: str
    bucket: str
    key: str
    pipeline: str
    table: str


@cache
def settings() -> Settings:
    env = read(
        "release",
        ("MODEL_PACKAGE_GROUP", "RELEASE_BUCKET", "RELEASE_PIPELINE", "AUDIT_TABLE"),
        {"RELEASE_KEY": "release.json"},
    )
    return Settings(
        group=env["MODEL_PACKAGE_GROUP"],
        bucket=env["RELEASE_BUCKET"],
        key=env["RELEASE_KEY"],
        pipeline=env["RELEASE_PIPELINE"],
        table=env["AUDIT_TABLE"],
    )


class EventError(ValueError):
    """Not an approval of this product's model; the message says why."""


def parse(event: Any, group: str) -> dict[str, Any]:
    try:
        bridge = EventBridgeEvent(event)
        kind, detail = bridge.detail_type, bridge.detail
    except (KeyError, TypeError, AttributeError, ValueError):
        raise EventError(f"expected a '{DETAIL_TYPE}' event") from None
    if kind != DETAIL_TYPE:
        raise EventError(f"expected a '{DETAIL_TYPE}' event")
    if not isinstance(detail, dict) or not detail.get("ModelPackageArn"):
        raise EventError("the event's detail has no ModelPackageArn")
    if not isinstance(detail["ModelPackageArn"], str):
        raise EventError("the event's ModelPackageArn is not text")
    if detail.get("ModelPackageGroupName") != group:
        raise EventError(
            f"model package group {detail.get('ModelPackageGroupName')} is not {group}"
        )
    if detail.get("ModelApprovalStatus") != "Approved":
        raise EventError(
            f"version {detail.get('ModelPackageVersion')} is "
            f"{detail.get('ModelApprovalStatus')}, not Approved: nothing to release"
        )
    version = detail.get("ModelPackageVersion") or 0
    if isinstance(version, bool) or not (
        isinstance(version, int) or (isinstance(version, str) and version.isdigit())
    ):
        raise EventError(f"version {version!r} is not a number")
    return detail


def approver(detail: dict[str, Any]) -> str:
    who = detail.get("LastModifiedBy") or detail.get("CreatedBy") or {}
    if not isinstance(who, dict):
        return "unknown"
    identity = who.get("IamIdentity")
    arn = identity.get("Arn") if isinstance(identity, dict) else None
    return str(who.get("UserProfileName") or arn or "unknown")


REPORT_SECTIONS = (
    "binary_classification_metrics",
    "multiclass_classification_metrics",
    "regression_metrics",
)


def read_json(s3: Any, uri: str) -> dict[str, Any]:
    parts = urlparse(uri)
    body = s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
    return dict(json.loads(body))


def build_release(detail: dict[str, Any], package: dict[str, Any], s3: Any) -> dict[str, Any]:
    quality = (package.get("ModelMetrics") or {}).get("ModelQuality") or {}
    report_uri = (quality.get("Statistics") or {}).get("S3Uri")
    metrics: dict[str, float] = {}
    if report_uri:
        report = read_json(s3, report_uri)
        # SageMaker's model-quality layout: one section per problem type, whichever this
        # product's evaluation wrote.
        for name in REPORT_SECTIONS:
            section = report.get(name)
            if isinstance(section, dict):
                metrics = {m: float(v["value"]) for m, v in section.items()}
                break
    drift = (package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}
    meta = package.get("CustomerMetadataProperties") or {}
    return {
        "model_package_arn": detail["ModelPackageArn"],
        "model_package_group": detail["ModelPackageGroupName"],
        "model_version": int(detail.get("ModelPackageVersion") or 0),
        "approved_by": approver(detail),
        "approved_at": detail.get("LastModifiedTime") or detail.get("CreationTime"),
        "metrics": metrics,
        "evaluation_report_uri": report_uri,
        "baseline_statistics_uri": (drift.get("Statistics") or {}).get("S3Uri"),
        "baseline_constraints_uri": (drift.get("Constraints") or {}).get("S3Uri"),
        "manifest_sha256": meta.get("mlgate:manifest-sha256"),
        "code_sha256": meta.get("mlgate:code-sha256"),
        "training_execution": meta.get("mlgate:pipeline-execution"),
    }


def _replayed(response: dict[str, str]) -> dict[str, str]:
    return {"released": "false", "reason": f"{response['model_package_arn']} was already released"}


# A version is released once: the key is the package, kept for 30 days (far beyond
# EventBridge's and Lambda's retries); an approval of the same version at another time is a
# different event with the same key, refused by payload validation.
CONFIG = idempotency.config(
    "detail.ModelPackageArn", "detail.LastModifiedTime", hours=24 * 30, replayed=_replayed
)


@idempotency.once(data="approval", config=CONFIG, prefix="release")
def release_version(*, approval: dict[str, Any]) -> dict[str, str]:
    config = settings()
    detail = approval["detail"]
    arn = detail["ModelPackageArn"]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    release = build_release(detail, package, s3)
    s3.put_object(
        Bucket=config.bucket,
        Key=config.key,
        Body=json.dumps(release, indent=2, sort_keys=True).encode(),
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
        when=approval["time"],
        who=release["approved_by"],
        decision="Approved",
        model_version=str(release["model_version"]),
        evidence_sha256=digest(release),
        detail=f"release.json written for {arn}",
    )
    logger.info("released", extra={"model_package_arn": arn, "execution": execution})
    return {"released": "true", "execution": execution, "model_package_arn": arn}


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    try:
        detail = parse(event, settings().group)
    except EventError as err:
        logger.info("not released", extra={"reason": str(err)})
        return {"released": "false", "reason": str(err)}
    CONFIG.register_lambda_context(context)
    try:
        time = event.get("time")
        return release_version(
            approval={"detail": detail, "time": time if isinstance(time, str) else ""}
        )
    except IdempotencyValidationError:
        arn = detail["ModelPackageArn"]
        reason = (
            f"{arn} was already released for an earlier approval; this approval "
            f"({detail.get('LastModifiedTime')}) changes nothing"
        )
        logger.warning("not released", extra={"reason": reason})
        return {"released": "false", "reason": reason}
