"""Experiment tracking's infrastructure, free of CDK: the tracking server's ARN and artifact
store, and exactly what the training pipeline's role may do with it (the Training stack turns
these into its resources and policy statements; tests/ml/test_tracking.py reads them).

A server mlgate creates is a SageMaker managed MLflow tracking server
(AWS::SageMaker::MlflowTrackingServer), not an MLflow App: a tracking server authorizes each
MLflow REST call as its own IAM action (sagemaker-mlflow:CreateRun, LogBatch, ...: "IAM actions
supported for MLflow", https://docs.aws.amazon.com/sagemaker/latest/dg/
mlflow-create-tracking-server-iam.html), so the pipeline's role gets the calls its jobs make
and nothing else (no delete); an MLflow App's data plane has one action,
sagemaker:CallMlflowAppApi, for its whole REST API (https://docs.aws.amazon.com/sagemaker/
latest/dg/mlflow-app-setup-prerequisites-iam.html), which an existing App named by ARN gets.
The tracking server's price is by size and hour, whether or not anything logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlgate.manifest import Manifest

# The MLflow REST calls the jobs make (mlgate/runtime/ml/tracking.py with MlflowClient, and
# mlflow.autolog() in script-mode training), each authorized as its own action on the server:
# experiment by name, or created; runs searched, created, read and ended (UpdateRun); params,
# metrics and tags in batches or one by one (autolog); datasets as run inputs (autolog).
# Artifacts go straight to the artifact store in S3, not through the server.
TRACKING_SERVER_ACTIONS = (
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:SearchRuns",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:UpdateRun",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:LogMetric",
    "sagemaker-mlflow:LogParam",
    "sagemaker-mlflow:SetTag",
    "sagemaker-mlflow:LogInputs",
)
APP_ACTIONS = ("sagemaker:CallMlflowAppApi",)
ARTIFACT_FOLDER = "mlflow"
"""Under the training prefix of the product's artifact bucket: a created server's store."""


@dataclass(frozen=True)
class Statement:
    """One IAM policy statement of the training pipeline's role."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]


def server_name(manifest: Manifest) -> str:
    """A created tracking server's name (letters, digits and hyphens, at most 256)."""
    return f"mlgate-{manifest.product.name}"


def server_arn(manifest: Manifest, region: str, account: str) -> str | None:
    """The ARN the jobs use as MLFLOW_TRACKING_URI (None: a server outside SageMaker)."""
    tracking = manifest.tracking
    if tracking is None:
        return None
    if tracking.create:
        name = server_name(manifest)
        return f"arn:aws:sagemaker:{region}:{account}:mlflow-tracking-server/{name}"
    return tracking.server_arn


def tracking_uri(manifest: Manifest, region: str, account: str) -> str | None:
    """What the jobs log to: the SageMaker server's ARN (the sagemaker-mlflow plugin signs
    calls for it) or the other server's URI."""
    tracking = manifest.tracking
    if tracking is None:
        return None
    return server_arn(manifest, region, account) or tracking.uri


def artifact_store(manifest: Manifest, bucket: str, prefix: str) -> str | None:
    """The server's artifact store: a created one's under the training prefix (which the
    role writes already), an existing one's as the manifest gives it."""
    tracking = manifest.tracking
    if tracking is None:
        return None
    if tracking.create:
        return f"s3://{bucket}/{prefix}/{ARTIFACT_FOLDER}"
    return tracking.artifact_store_uri


def _s3_arns(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    key = key.strip("/")
    return f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{key + '/' if key else ''}*"


def pipeline_statements(manifest: Manifest, region: str, account: str) -> list[Statement]:
    """What the pipeline's role needs to log: the server's actions on its ARN, and for an
    existing server its artifact store (a created one's is under the training prefix)."""
    tracking = manifest.tracking
    arn = server_arn(manifest, region, account)
    if tracking is None or arn is None:
        return []
    actions = APP_ACTIONS if tracking.is_app else TRACKING_SERVER_ACTIONS
    statements = [Statement(actions, (arn,))]
    if tracking.artifact_store_uri:
        bucket, objects = _s3_arns(tracking.artifact_store_uri)
        statements.append(Statement(("s3:PutObject", "s3:GetObject"), (objects,)))
        statements.append(Statement(("s3:ListBucket",), (bucket,)))
    return statements


def server_statements(bucket_arn: str, prefix: str) -> list[Statement]:
    """A created server's own role: its artifact store (the tracking server service role's
    S3 actions of the IAM page above, held to the store; automatic registration to the
    Model Registry is off, so none of its SageMaker actions)."""
    return [
        Statement(
            ("s3:GetObject", "s3:PutObject"),
            (f"{bucket_arn}/{prefix}/{ARTIFACT_FOLDER}/*",),
        ),
        Statement(("s3:ListBucket", "s3:GetBucketLocation"), (bucket_arn,)),
    ]
