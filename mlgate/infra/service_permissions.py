"""What AWS services do with an execution role on the product's behalf: the permissions no
call of ours makes, so no hook test sees them missing, yet the service fails without them.

One row per use, each with the documentation page that says so. The stacks grant them; the
test tests/test_service_permissions.py checks every role of every example product against
this table, in the home account and in a prod account of its own. Some uses exist only where
the endpoint captures traffic (`captured_only`): a serverless endpoint captures none, so its
model role writes no capture and its environment has no monitoring stack, hence no monitor role.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlgate.manifest.serving import ServingMode


@dataclass(frozen=True)
class ServiceUse:
    role: str
    """Which execution role: training, model (hosts the endpoint) or monitor."""
    service: str
    """Who acts, and when."""
    actions: tuple[str, ...]
    resource: str
    """Which resources, in words; `marker` is how the test recognises them in a policy."""
    marker: str
    """A text every granted resource contains, with {product}, {env} and {capture} filled in."""
    doc: str
    captured_only: bool = False
    """Only in an environment whose endpoint captures traffic (not serverless)."""


TABLE: tuple[ServiceUse, ...] = (
    ServiceUse(
        role="model",
        service="SageMaker deployment guardrails, during a blue/green update",
        actions=("cloudwatch:DescribeAlarms",),
        resource="the endpoint's rollback alarms",
        marker="alarm:mlgate/{product}/{env}/",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html",
    ),
    ServiceUse(
        role="model",
        service="SageMaker data capture, writing sampled requests and responses",
        actions=("s3:PutObject",),
        resource="the environment's capture prefix",
        marker="{capture}",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html",
        captured_only=True,
    ),
    ServiceUse(
        role="model",
        service="SageMaker data capture, encrypting captured files with the environment's key",
        actions=("kms:GenerateDataKey", "kms:Encrypt"),
        resource="the environment's key",
        marker="Key",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html",
        captured_only=True,
    ),
    ServiceUse(
        role="training",
        service="SageMaker training and processing jobs with VolumeKmsKeyId, attaching volumes",
        actions=("kms:CreateGrant",),
        resource="the product key",
        marker="Key",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html",
    ),
    ServiceUse(
        role="monitor",
        service="SageMaker monitoring jobs with VolumeKmsKeyId, attaching volumes",
        actions=("kms:CreateGrant",),
        resource="the environment's key",
        marker="Key",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html",
        captured_only=True,
    ),
    ServiceUse(
        role="monitor",
        service="SageMaker Processing, uploading the monitoring job's outputs (reports)",
        actions=("s3:PutObject",),
        resource="the environment's monitoring report prefix",
        marker="monitoring/{env}/",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
        captured_only=True,
    ),
    ServiceUse(
        role="monitor",
        service="SageMaker Processing, encrypting outputs with ProcessingOutputConfig.KmsKeyId",
        actions=("kms:GenerateDataKey", "kms:Decrypt"),
        resource="the environment's key",
        marker="Key",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
        captured_only=True,
    ),
    ServiceUse(
        role="monitor",
        service="SageMaker Processing, writing the job's logs to CloudWatch Logs",
        actions=("logs:CreateLogStream", "logs:PutLogEvents"),
        resource="the log groups SageMaker names",
        marker="log-group:/aws/sagemaker/",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
        captured_only=True,
    ),
    ServiceUse(
        role="monitor",
        service="SageMaker Processing, pulling the job's container image from ECR",
        actions=("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
        resource="the image's repository",
        marker=":repository/sagemaker-",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
        captured_only=True,
    ),
)


def uses(role: str) -> tuple[ServiceUse, ...]:
    return tuple(u for u in TABLE if u.role == role)


def captures(mode: ServingMode) -> bool:
    """Whether an endpoint of this mode captures traffic: Serverless Inference does not
    support data capture (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html#serverless-endpoints-how-it-works-exclusions)."""
    return mode is not ServingMode.SERVERLESS


def applies(use: ServiceUse, mode: ServingMode) -> bool:
    """Whether SageMaker makes this use in an environment served in this mode."""
    return captures(mode) or not use.captured_only
