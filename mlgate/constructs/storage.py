"""Buckets that hold product data: encrypted with the product key, never lost with a stack."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlgate import durations
from mlgate.constructs.compliance import acknowledge


class AccessLogBucket(Construct):
    """Target of S3 server access logs for the product's data buckets.

    S3 log delivery writes only with S3-managed keys, so this bucket uses SSE-S3; it holds
    access records, not product data.
    """

    def __init__(self, scope: Construct, id: str, *, retention_days: int = 365) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=durations.days(retention_days),
                    noncurrent_version_expiration=durations.days(30),
                )
            ],
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "This is the access-log target bucket itself; logging it into itself would loop.",
        )


class SecureBucket(Construct):
    """A product data bucket: KMS with the product key, versioned, SSL only, no public access,
    access-logged, noncurrent versions expired after `noncurrent_days`, retained on delete."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        access_logs: s3.IBucket,
        log_prefix: str,
        bucket_name: str | None = None,
        noncurrent_days: int = 90,
        event_bridge: bool = False,
    ) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=log_prefix,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            event_bridge_enabled=event_bridge,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=durations.days(noncurrent_days),
                    abort_incomplete_multipart_upload_after=durations.days(7),
                )
            ],
        )


def grant_volume_keys(role: iam.IRole, key: kms.IKey) -> None:
    """SageMaker jobs given a VolumeKmsKeyId attach their volumes through a KMS grant made
    with the job's role (mlgate/service_permissions.py), for AWS resources only."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:CreateGrant"],
            resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
    )
