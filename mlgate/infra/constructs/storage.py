"""Buckets that hold product data: encrypted with the product key, never lost with a stack,
kept no longer than the manifest's retention says (S3 lifecycle rules)."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra.constructs.compliance import acknowledge
from mlgate.infra.naming import _cut as cut_name

LOG_DELIVERY = "logging.s3.amazonaws.com"


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


def _cut(name: str) -> str:
    """A bucket name within S3's 63 characters, cut as mlgate cuts every name."""
    return cut_name(name, 63)


def admit_log_delivery(logs: s3.IBucket, *, source_arn: str, account: str, prefix: str) -> None:
    """Let S3 server access logging write `prefix` of `logs` for one source bucket only: the
    service principal with aws:SourceArn (the source bucket) and aws:SourceAccount, as S3
    documents for a bucket policy that admits log delivery
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html).
    CDK adds these conditions only when both buckets share a stack, and an unconditioned
    statement would let any bucket of any account log into the prefix; so mlgate writes every
    such statement itself, with the source's ARN as a literal where it has a fixed name."""
    logs.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(LOG_DELIVERY)],
            actions=["s3:PutObject"],
            resources=[logs.arn_for_objects(f"{prefix}*")],
            conditions={
                "ArnLike": {"aws:SourceArn": source_arn},
                "StringEquals": {"aws:SourceAccount": account},
            },
        )
    )


def expiry_rule(days: int, prefix: str | None = None, *, noncurrent_days: int) -> s3.LifecycleRule:
    """Objects (under `prefix`, else the whole bucket) expire `days` after they were written;
    the noncurrent version an expiry or overwrite leaves behind goes `noncurrent_days` later
    at most (the stacks pass the manifest's rule, mlgate.manifest.Retention). The whole-bucket
    rule also ends abandoned uploads."""
    return s3.LifecycleRule(
        id=f"expire-{prefix.strip('/').replace('/', '-')}" if prefix else "expire",
        prefix=prefix,
        expiration=durations.days(days),
        noncurrent_version_expiration=durations.days(min(days, noncurrent_days)),
        abort_incomplete_multipart_upload_after=None if prefix else durations.days(7),
    )


class SecureBucket(Construct):
    """A product data bucket: KMS with the product key, versioned, SSL only, no public access,
    access-logged, noncurrent versions expired after `noncurrent_days`, retained on delete.

    `expiration_days` expires the whole bucket's objects (a bucket that holds one data class);
    `prefix_expirations` ({prefix: days}) expires the data classes a shared bucket keeps under
    prefixes; under either, a noncurrent version goes `expired_noncurrent_days` later at most
    (required with either). Where rules overlap, S3 honours the shorter expiry
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-conflicts.html)."""

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
        expiration_days: int | None = None,
        prefix_expirations: Mapping[str, int] | None = None,
        expired_noncurrent_days: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        if (expiration_days is not None or prefix_expirations) and expired_noncurrent_days is None:
            raise ValueError(f"{id}: an expiring bucket needs expired_noncurrent_days")
        kept = expired_noncurrent_days or 0  # set (checked above) wherever an expiry rule reads it
        stack = cdk.Stack.of(self)
        if bucket_name is None and cdk.Stack.of(access_logs) is not stack:
            # The log bucket's policy (another stack) must name this bucket, and cannot take a
            # token of this stack without a dependency cycle: give it a fixed, globally unique
            # name (stack, construct, account, region).
            bucket_name = _cut(f"{stack.stack_name}-{id}-{stack.account}-{stack.region}".lower())
        everything = (
            expiry_rule(expiration_days, noncurrent_days=kept)
            if expiration_days is not None
            else s3.LifecycleRule(
                noncurrent_version_expiration=durations.days(noncurrent_days),
                abort_incomplete_multipart_upload_after=durations.days(7),
            )
        )
        rules = [everything] + [
            expiry_rule(days, prefix, noncurrent_days=kept)
            for prefix, days in (prefix_expirations or {}).items()
        ]
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
            removal_policy=cdk.RemovalPolicy.RETAIN,
            event_bridge_enabled=event_bridge,
            lifecycle_rules=rules,
        )
        # Logging is configured on the CloudFormation resource, not through CDK's
        # server_access_logs_bucket, so that CDK adds no unconditioned statement to the log
        # bucket's policy when it sits in another stack: admit_log_delivery writes it instead.
        cfn = self.bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        cfn.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
            destination_bucket_name=access_logs.bucket_name, log_file_prefix=log_prefix
        )
        admit_log_delivery(
            access_logs,
            source_arn=f"arn:aws:s3:::{bucket_name}" if bucket_name else self.bucket.bucket_arn,
            account=stack.account,
            prefix=log_prefix,
        )


def grant_volume_keys(role: iam.IRole, key: kms.IKey) -> None:
    """SageMaker jobs given a VolumeKmsKeyId attach their volumes through a KMS grant made
    with the job's role (mlgate/infra/service_permissions.py), for AWS resources only."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:CreateGrant"],
            resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
    )
