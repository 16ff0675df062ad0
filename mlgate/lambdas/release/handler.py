"""Release hook: a model version was approved in the registry -> release.json -> pipeline.

Event: EventBridge "SageMaker Model Package State Change". The rule matches this product's
group with status Approved only; the handler checks both again. It writes release.json (the
model package, its version, its metrics, its Model Monitor baseline, who approved it and when)
to the versioned release bucket, the pipeline's source, and starts the release pipeline.
Idempotent: a version is released once (a conditional write in the audit table); a retried or
repeated event changes nothing.

Environment: MODEL_PACKAGE_GROUP, RELEASE_BUCKET, RELEASE_KEY, RELEASE_PIPELINE, AUDIT_TABLE.
AWS calls: sagemaker:DescribeModelPackage, s3:GetObject (the evaluation report), s3:PutObject,
dynamodb:PutItem, codepipeline:StartPipelineExecution.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger

from shared.audit import AuditTrail, digest

logger = Logger()
DETAIL_TYPE = "SageMaker Model Package State Change"


@dataclass(frozen=True)
class Config:
    group: str
    bucket: str
    key: str
    pipeline: str
    table: str

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        return cls(
            group=env.get("MODEL_PACKAGE_GROUP", ""),
            bucket=env.get("RELEASE_BUCKET", ""),
            key=env.get("RELEASE_KEY", "release.json"),
            pipeline=env.get("RELEASE_PIPELINE", ""),
            table=env.get("AUDIT_TABLE", ""),
        )


class EventError(ValueError):
    """Not an approval of this product's model; the message says why."""


def parse(event: Any, group: str) -> dict[str, Any]:
    if not isinstance(event, dict) or event.get("detail-type") != DETAIL_TYPE:
        raise EventError(f"expected a '{DETAIL_TYPE}' event")
    detail = event.get("detail")
    if not isinstance(detail, dict) or not detail.get("ModelPackageArn"):
        raise EventError("the event's detail has no ModelPackageArn")
    if detail.get("ModelPackageGroupName") != group:
        raise EventError(
            f"model package group {detail.get('ModelPackageGroupName')} is not {group}"
        )
    if detail.get("ModelApprovalStatus") != "Approved":
        raise EventError(
            f"version {detail.get('ModelPackageVersion')} is "
            f"{detail.get('ModelApprovalStatus')}, not Approved: nothing to release"
        )
    return detail


def approver(detail: dict[str, Any]) -> str:
    who = detail.get("LastModifiedBy") or detail.get("CreatedBy") or {}
    return str(who.get("UserProfileName") or (who.get("IamIdentity") or {}).get("Arn") or "unknown")


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
        section = report.get("binary_classification_metrics", {})
        metrics = {name: float(v["value"]) for name, v in section.items()}
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


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    config = Config.from_env()
    try:
        detail = parse(event, config.group)
    except EventError as err:
        logger.info("not released", extra={"reason": str(err)})
        return {"released": "false", "reason": str(err)}
    arn = detail["ModelPackageArn"]
    audit = AuditTrail(boto3.client("dynamodb"), config.table)
    # Claim the release first: a repeated event stops here, before anything is written.
    if not audit.open_request(f"release-{arn}", {"model_package_arn": arn}):
        return {"released": "false", "reason": f"{arn} was already released"}
    s3 = boto3.client("s3")
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=arn)
    release = build_release(detail, package, s3)
    s3.put_object(
        Bucket=config.bucket,
        Key=config.key,
        Body=json.dumps(release, indent=2, sort_keys=True).encode(),
        ContentType="application/json",
    )
    execution = boto3.client("codepipeline").start_pipeline_execution(
        name=config.pipeline, clientRequestToken=digest(arn)[:64]
    )["pipelineExecutionId"]
    audit.record(
        pipeline=config.pipeline,
        execution=execution,
        event="released",
        gate="model-registry",
        who=release["approved_by"],
        decision="Approved",
        model_version=str(release["model_version"]),
        evidence_sha256=digest(release),
        detail=f"release.json written for {arn}",
    )
    logger.info("released", extra={"model_package_arn": arn, "execution": execution})
    return {"released": "true", "execution": execution, "model_package_arn": arn}
