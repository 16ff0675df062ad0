"""What AWS services do with an execution role on the product's behalf: the permissions no
call of ours makes, so no hook test sees them missing, yet the service fails without them.

One row per use, each with the documentation page that says so. The stacks grant them; the
test tests/test_service_permissions.py checks every role of every example product against
this table, in the home account and in a prod account of its own. Each use exists only where
the environment's serving mode makes it (`where`): an endpoint's guardrails read its rollback
alarms; only an endpoint that captures traffic (not serverless) writes captures; a monitored
environment (an endpoint that captures, or a batch environment's runs) has a monitor role; a
batch environment's model role runs its prepare (Processing) and transform jobs instead of
hosting an endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlgate.manifest.serving import ServingMode

ANY, ENDPOINT, CAPTURED, MONITORED, BATCH = "any", "endpoint", "captured", "monitored", "batch"
PROCESSING_ROLE = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html"
    "#sagemaker-roles-createprocessingjob-perms"
)
"""CreateProcessingJob's execution role: reads the inputs (ListBucket on their bucket), writes
the outputs, its logs and image; kms:Encrypt for an output key, kms:CreateGrant for a volume
key."""
TRANSFORM_OUTPUT = (
    "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html"
)
"""A transform job has no role of its own: it runs as its model's (CreateModel's
ExecutionRoleArn), which the output key's policy must allow."""


@dataclass(frozen=True)
class ServiceUse:
    role: str
    """Which execution role: training, model (hosts the endpoint, or runs a batch
    environment's jobs) or monitor."""
    service: str
    """Who acts, and when."""
    actions: tuple[str, ...]
    resource: str
    """Which resources, in words; `marker` is how the test recognises them in a policy."""
    marker: str
    """A text every granted resource contains, with {product}, {env} and {capture} filled in."""
    doc: str
    where: str = ANY
    """In which environments SageMaker makes the use, by serving mode: ANY, ENDPOINT (every
    endpoint mode), CAPTURED (an endpoint that captures traffic: not serverless), MONITORED
    (captured traffic or batch runs: `Manifest.monitored`) or BATCH."""


TABLE: tuple[ServiceUse, ...] = (
    ServiceUse(
        role="model",
        service="SageMaker deployment guardrails, during a blue/green update",
        actions=("cloudwatch:DescribeAlarms",),
        resource="the endpoint's rollback alarms",
        marker="alarm:mlgate/{product}/{env}/",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html",
        where=ENDPOINT,
    ),
    ServiceUse(
        role="model",
        service="SageMaker data capture, writing sampled requests and responses",
        actions=("s3:PutObject",),
        resource="the environment's capture prefix",
        marker="{capture}",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html",
        where=CAPTURED,
    ),
    ServiceUse(
        role="model",
        service="SageMaker data capture, encrypting captured files with the environment's key",
        actions=("kms:GenerateDataKey", "kms:Encrypt"),
        resource="the environment's key",
        marker="Key",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html",
        where=CAPTURED,
    ),
    ServiceUse(
        role="model",
        service="SageMaker Processing (a batch run's prepare job), reading the data it scores",
        actions=("s3:GetObject", "s3:ListBucket"),
        resource="the curated data's bucket and objects",
        marker="mlgate-{product}-curated-",
        doc=PROCESSING_ROLE,
        where=BATCH,
    ),
    ServiceUse(
        role="model",
        service="SageMaker Processing and Batch Transform, uploading a run's prepared input and "
        "predictions",
        actions=("s3:PutObject",),
        resource="the environment's batch prefix",
        marker="batch/{env}/",
        doc=TRANSFORM_OUTPUT,
        where=BATCH,
    ),
    ServiceUse(
        role="model",
        service="SageMaker Batch Transform, reading the run's prepared input",
        actions=("s3:GetObject",),
        resource="the environment's batch prefix",
        marker="batch/{env}/",
        doc=TRANSFORM_OUTPUT,
        where=BATCH,
    ),
    ServiceUse(
        role="model",
        service="SageMaker Processing and Batch Transform, encrypting outputs with the "
        "jobs' KmsKeyId",
        actions=("kms:GenerateDataKey", "kms:Encrypt"),
        resource="the environment's key",
        marker="Key",
        doc=TRANSFORM_OUTPUT,
        where=BATCH,
    ),
    ServiceUse(
        role="model",
        service="SageMaker Processing and Batch Transform with VolumeKmsKeyId, attaching volumes",
        actions=("kms:CreateGrant",),
        resource="the environment's key",
        marker="Key",
        doc=PROCESSING_ROLE,
        where=BATCH,
    ),
    ServiceUse(
        role="model",
        service="SageMaker Processing and Batch Transform, writing the jobs' logs",
        actions=("logs:CreateLogStream", "logs:PutLogEvents"),
        resource="the log groups SageMaker names per job kind",
        marker="log-group:/aws/sagemaker/ProcessingJobs",
        doc=PROCESSING_ROLE,
        where=BATCH,
    ),
    ServiceUse(
        role="model",
        service="SageMaker Batch Transform, writing the model container's logs",
        actions=("logs:CreateLogStream", "logs:PutLogEvents"),
        resource="the log group SageMaker names for transform jobs",
        marker="log-group:/aws/sagemaker/TransformJobs",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html"
        "#sagemaker-roles-createmodel-perms",
        where=BATCH,
    ),
    ServiceUse(
        role="model",
        service="SageMaker Processing and Batch Transform, pulling the serving image from ECR",
        actions=("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
        resource="the image's repository",
        marker=":repository/",
        doc=PROCESSING_ROLE,
        where=BATCH,
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
        where=MONITORED,
    ),
    ServiceUse(
        role="monitor",
        service="SageMaker Processing, uploading the monitoring job's outputs (reports)",
        actions=("s3:PutObject",),
        resource="the environment's monitoring report prefix",
        marker="monitoring/{env}/",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
        where=MONITORED,
    ),
    ServiceUse(
        role="monitor",
        service="SageMaker Processing, encrypting outputs with ProcessingOutputConfig.KmsKeyId",
        actions=("kms:GenerateDataKey", "kms:Decrypt"),
        resource="the environment's key",
        marker="Key",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
        where=MONITORED,
    ),
    ServiceUse(
        role="monitor",
        service="SageMaker Processing, writing the job's logs to CloudWatch Logs",
        actions=("logs:CreateLogStream", "logs:PutLogEvents"),
        resource="the log groups SageMaker names",
        marker="log-group:/aws/sagemaker/",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
        where=MONITORED,
    ),
    ServiceUse(
        role="monitor",
        service="SageMaker Processing, pulling the job's container image from ECR",
        actions=("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
        resource="the image's repository",
        marker=":repository/sagemaker-",
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
        where=MONITORED,
    ),
)


def uses(role: str) -> tuple[ServiceUse, ...]:
    return tuple(u for u in TABLE if u.role == role)


def captures(mode: ServingMode) -> bool:
    """Whether an endpoint of this mode captures traffic (a batch environment has no endpoint):
    Serverless Inference does not support data capture (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html#serverless-endpoints-how-it-works-exclusions)."""
    return mode not in (ServingMode.SERVERLESS, ServingMode.BATCH)


def applies(use: ServiceUse, mode: ServingMode) -> bool:
    """Whether SageMaker makes this use in an environment served in this mode."""
    batch = mode is ServingMode.BATCH
    return {
        ANY: True,
        ENDPOINT: not batch,
        CAPTURED: captures(mode),
        # Manifest.monitored: captured traffic, or a batch environment's runs.
        MONITORED: captures(mode) or batch,
        BATCH: batch,
    }[use.where]
