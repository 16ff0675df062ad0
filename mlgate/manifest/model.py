"""Training: the algorithm, its framework version, the product's own code."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from mlgate.manifest.base import (
    IMAGE_URI,
    EventBridgeSchedule,
    InstanceType,
    RelativePath,
    Text,
    _CrossFieldErrors,
    _Model,
)
from mlgate.manifest.data import ColumnName
from mlgate.manifest.metrics import ProblemType


class Algorithm(StrEnum):
    """How the model is trained and served."""

    XGBOOST = "xgboost"
    """SageMaker's built-in XGBoost algorithm (no training script)."""
    XGBOOST_SCRIPT = "xgboost-script"
    """The XGBoost framework container running the product's train.py (script mode)."""
    SKLEARN = "sklearn"
    """The scikit-learn framework container running the product's train.py (script mode)."""
    CUSTOM_IMAGE = "custom-image"
    """The product's own image (model.image_uri) for training and serving."""

    @property
    def script_mode(self) -> bool:
        return self in (Algorithm.XGBOOST_SCRIPT, Algorithm.SKLEARN)


DEFAULT_FRAMEWORK_VERSION = {
    Algorithm.XGBOOST: "1.7-1",
    Algorithm.XGBOOST_SCRIPT: "1.7-1",
    Algorithm.SKLEARN: "1.2-1",
}


class ModelCode(_Model):
    """The product's scripts, relative to the manifest; mlgate's defaults where none is given."""

    train: RelativePath | None = None
    """Script-mode entry point (train.py): trains, saves to SM_MODEL_DIR, and serves through
    model_fn / predict_fn; required for xgboost-script and sklearn."""
    preprocess: RelativePath | None = None
    """Preprocessing script; default: mlgate's tabular preprocess driven by the schema."""
    evaluate: RelativePath | None = None
    """Evaluation script; default: mlgate's, computing the manifest's model metrics."""
    dependencies: tuple[RelativePath, ...] = ()
    """Other files the scripts import, shipped beside them (helpers, requirements.txt)."""


class ModelSettings(_Model):
    problem_type: ProblemType = ProblemType.BINARY_CLASSIFICATION
    """binary_classification, multiclass or regression."""
    algorithm: Algorithm = Algorithm.XGBOOST
    """xgboost (built-in), xgboost-script, sklearn (script mode) or custom-image."""
    framework_version: Text | None = None
    """Version of the framework container (default: 1.7-1 for XGBoost, 1.2-1 for sklearn)."""
    image_uri: Annotated[str, StringConstraints(pattern=IMAGE_URI)] | None = None
    """custom-image only: the ECR image that trains (and serves) the model."""
    code: ModelCode = ModelCode()
    """The product's training, preprocessing and evaluation scripts."""
    features: tuple[ColumnName, ...] = ()
    """Schema columns the default preprocess feeds the model, in payload order (default:
    every column but the id, event time, target and partition keys)."""
    hyperparameters: dict[str, str | int | float] = Field(default_factory=dict)
    """Hyper-parameters passed to the training job as they are."""
    training_instance_type: InstanceType = "ml.m5.xlarge"
    """Instance type of the training job. A type with instance storage (m5d, g4dn, g5, p4d...)
    keeps its volumes there, encrypted by its hardware: SageMaker takes no KMS key for them, so
    none is asked."""
    training_instance_count: int = Field(default=1, ge=1, le=20)
    """Instances of the training job."""
    processing_instance_type: InstanceType = "ml.m5.large"
    """Instance type of preprocessing, evaluation and baseline jobs. A type with instance
    storage (m5d, g4dn, g5, p4d...) keeps its volumes there, encrypted by its hardware:
    SageMaker takes no KMS key for them, so none is asked."""
    retrain_schedule: EventBridgeSchedule = "cron(0 4 ? * MON *)"
    """When the training pipeline runs on a schedule (besides after ETL and on drift): an
    EventBridge cron or rate expression."""

    @property
    def version(self) -> str:
        """The framework container version, defaults applied."""
        return self.framework_version or DEFAULT_FRAMEWORK_VERSION.get(self.algorithm, "")

    @model_validator(mode="after")
    def _code_fits_algorithm(self) -> ModelSettings:
        problems = []
        if self.algorithm.script_mode and not self.code.train:
            problems.append(
                ("code.train", f"{self.algorithm.value} runs the product's train.py: name it")
            )
        if self.algorithm is Algorithm.XGBOOST and self.code.train:
            problems.append(
                ("code.train", "the built-in xgboost algorithm takes no script; "
                 "use algorithm: xgboost-script to run your own train.py")
            )  # fmt: skip
        if self.algorithm is Algorithm.CUSTOM_IMAGE:
            if not self.image_uri:
                problems.append(("image_uri", "custom-image needs the ECR image URI"))
            if not self.code.evaluate:
                problems.append(
                    ("code.evaluate", "mlgate cannot load a custom image's model: give an "
                     "evaluation script that writes the metrics")
                )  # fmt: skip
        elif self.image_uri:
            problems.append(("image_uri", "only algorithm: custom-image takes an image_uri"))
        if self.algorithm is Algorithm.CUSTOM_IMAGE and self.framework_version:
            problems.append(("framework_version", "a custom image has no framework version"))
        if problems:
            raise _CrossFieldErrors(problems)
        return self
