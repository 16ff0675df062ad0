"""Foundation: the product's KMS key, artifact bucket and on-call topic."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from mlgate.constructs.storage import AccessLogBucket, SecureBucket
from mlgate.manifest import Manifest
from mlgate.stacks.base import ProductStack


class FoundationStack(ProductStack):
    component = "foundation"

    def __init__(self, scope: Construct, *, manifest: Manifest) -> None:
        super().__init__(
            scope, manifest=manifest, description="KMS key, artifact bucket, on-call topic"
        )
        self.key = kms.Key(
            self,
            "ProductKey",
            alias=f"alias/mlgate/{self.product}",
            description=f"Encrypts every data store of the {self.product} ML product",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
            pending_window=Duration.days(30),
        )
        # CloudWatch Logs encrypts the product's log groups (Glue jobs, hooks) with this key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                         "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn":
                            f"arn:aws:logs:{self.region}:{self.account}:log-group:*"
                    }
                },
            )
        )  # fmt: skip
        # CloudWatch alarms and EventBridge rules publish to the product's encrypted topics.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        self.access_logs = AccessLogBucket(self, "AccessLogs").bucket
        self.artifacts = SecureBucket(
            self,
            "Artifacts",
            key=self.key,
            access_logs=self.access_logs,
            log_prefix="artifacts/",
            bucket_name=self.bucket_name("artifacts"),
        ).bucket
        self.on_call_topic = sns.Topic(
            self,
            "OnCallTopic",
            topic_name=self.name("on-call"),
            display_name=f"{manifest.product.display_name} on-call",
            master_key=self.key,
            enforce_ssl=True,
        )
        on_call = manifest.contact(manifest.product.owners.on_call)
        self.on_call_topic.add_subscription(subs.EmailSubscription(on_call.email))
