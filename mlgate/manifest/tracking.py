"""Experiment tracking: the MLflow tracking server the training pipeline's jobs log to."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints, model_validator

from mlgate.manifest.base import _CrossFieldErrors, _Model

# A SageMaker managed MLflow tracking server's or MLflow App's ARN, as DescribeMlflowTrackingServer
# and DescribeMlflowApp return it (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
# API_DescribeMlflowTrackingServer.html, .../API_DescribeMlflowApp.html).
MLFLOW_ARN = (
    r"^arn:aws:sagemaker:[a-z0-9-]+:[0-9]{12}:"
    r"(mlflow-tracking-server/[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}|mlflow-app/[A-Za-z0-9-]{1,256})$"
)
S3_PREFIX = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$"


class TrackingServerSize(StrEnum):
    """The sizes SageMaker offers a tracking server (CreateMlflowTrackingServer's
    TrackingServerSize)."""

    SMALL = "Small"
    MEDIUM = "Medium"
    LARGE = "Large"


class Tracking(_Model):
    """The MLflow tracking server the training pipeline's steps log to.

    Preprocess, training and evaluation log their parameters, metrics, data-quality summary
    and evaluation report to one MLflow run per pipeline execution, which the registered
    version links."""

    create: bool = False
    """mlgate creates a SageMaker managed MLflow tracking server for the product, its
    artifacts under the product's artifact bucket."""
    server_arn: Annotated[str, StringConstraints(pattern=MLFLOW_ARN)] | None = None
    """An existing SageMaker MLflow tracking server (mlflow-tracking-server/<name>) or MLflow
    App (mlflow-app/<id>), in the account and region of staging, where the pipeline runs."""
    uri: Annotated[str, StringConstraints(pattern=r"^https://\S+$")] | None = None
    """An existing MLflow server outside SageMaker, by its https URL (its own authentication:
    mlgate grants no permission for it)."""
    artifact_store_uri: Annotated[str, StringConstraints(pattern=S3_PREFIX)] | None = None
    """Where an existing server keeps artifacts (its ArtifactStoreUri): the jobs upload the
    evaluation report there themselves, and are allowed to write under it. Required with
    server_arn; not with create (mlgate chooses)."""
    experiment: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    """The MLflow experiment the runs go to (default: the product's name)."""
    size: TrackingServerSize = TrackingServerSize.SMALL
    """create only: the tracking server's size (Small, Medium or Large); billed per hour it
    runs, whatever it logs."""

    @property
    def kind(self) -> str:
        """create, server_arn or uri: which of the three the manifest chose."""
        return "create" if self.create else "server_arn" if self.server_arn else "uri"

    @property
    def is_app(self) -> bool:
        """The existing server is an MLflow App (its data plane has one IAM action)."""
        return bool(self.server_arn and ":mlflow-app/" in self.server_arn)

    @model_validator(mode="after")
    def _one_server(self) -> Tracking:
        problems: list[tuple[str, str]] = []
        chosen = [k for k in ("create", "server_arn", "uri") if getattr(self, k)]
        if len(chosen) != 1:
            problems.append(
                (
                    "create",
                    "name one tracking server: create: true (mlgate creates one), server_arn "
                    f"(an existing SageMaker one) or uri (another MLflow server); got "
                    f"{', '.join(chosen) or 'none'}",
                )
            )
        if self.server_arn and not self.artifact_store_uri:
            problems.append(
                (
                    "artifact_store_uri",
                    "the jobs upload artifacts to the server's artifact store themselves: give "
                    "its ArtifactStoreUri (aws sagemaker describe-mlflow-tracking-server)",
                )
            )
        if self.create and self.artifact_store_uri:
            problems.append(
                ("artifact_store_uri", "mlgate chooses the store of a server it creates: drop it")
            )
        if not self.create and "size" in self.model_fields_set:
            problems.append(("size", "only a server mlgate creates takes a size"))
        if problems:
            raise _CrossFieldErrors(problems)
        return self
