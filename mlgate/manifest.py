"""The product manifest: one typed, immutable model of a product and its infrastructure.

A manifest is the product's one-pager (objective, owners, tiered metrics, gates, risks) and the
settings every stack reads. `load_manifest` is the only way in: it rejects unknown keys, checks
cross-field rules and reports every problem at once as `ManifestError`, one line per problem.
"""

from __future__ import annotations

import difflib
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from mlgate import schedules

# Regions where SageMaker, Glue and CodePipeline are all generally available.
AWS_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1",
        "sa-east-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2",
        "eu-north-1", "eu-south-1", "eu-south-2", "ap-south-1", "ap-south-2", "ap-southeast-1",
        "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-east-1", "me-south-1", "me-central-1", "il-central-1", "af-south-1",
    }
)  # fmt: skip

Slug = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$", strip_whitespace=True)
]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
GlueSchedule = Annotated[str, AfterValidator(schedules.glue)]
EventBridgeSchedule = Annotated[str, AfterValidator(schedules.eventbridge)]
MonitorSchedule = Annotated[str, AfterValidator(schedules.model_monitor)]
InstanceType = Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, use_attribute_docstrings=True
    )


# --- product -------------------------------------------------------------------------------


class Contact(_Model):
    """A person the manifest can name as an owner or an approver."""

    id: Slug
    """Short handle used everywhere else in the manifest to name this person."""
    name: Text
    """Full name, shown in briefs and dashboards."""
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")]
    """Email address: gate briefs, warnings for metrics this person owns."""
    role: Text
    """Role, shown in the evidence brief (e.g. Compliance officer)."""
    slack_user_id: Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{6,}$")] | None = None
    """Slack member id; required for anyone who approves a gate from chat."""


class Owners(_Model):
    product_manager: Slug
    """Contact id of the product manager (owns business KPIs, signs off releases)."""
    ml_lead: Slug
    """Contact id of the ML lead (owns model metrics, approves model versions)."""
    on_call: Slug
    """Contact id of on-call (owns SLOs; subscribed to the on-call topic)."""


class Product(_Model):
    name: Slug
    """Namespaces every stack and physical name: lowercase letters, digits and dashes."""
    display_name: Text
    """Human name of the product, shown in dashboards and briefs."""
    objective: Text
    """What the product is for, in one or two sentences; heads every brief."""
    owners: Owners
    """Who owns the product, by role."""
    contacts: tuple[Contact, ...] = Field(min_length=1)
    """Everyone the manifest names as an owner or approver."""
    runbook_url: Annotated[str, StringConstraints(pattern=r"^https://\S+$")]
    """Where on-call finds the runbooks; linked from every alarm."""
    chat_channel: Text = "#ml-releases"
    """Chat channel the gate briefs are posted to."""


# --- metrics, in three tiers ---------------------------------------------------------------


class Direction(StrEnum):
    AT_LEAST = "at_least"
    AT_MOST = "at_most"


class BusinessKpi(_Model):
    """A business outcome, published by the product as a CloudWatch custom metric."""

    name: Slug
    """Identifier of the KPI within the product."""
    description: Text
    """What the KPI measures."""
    owner: Slug
    """Contact id of the KPI's owner."""
    target: float
    """The value the business aims for."""
    direction: Direction
    """at_least or at_most: which side of the target is good."""
    unit: Text
    """Unit shown on the dashboard (bps, fraction, EUR, ...)."""
    metric_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9]{1,100}$")]
    """CloudWatch metric name the product publishes the KPI under."""
    namespace: Text = "mlgate/business"
    """CloudWatch namespace of the KPI metric."""


class ProblemType(StrEnum):
    """What the model predicts; decides the metrics, the evaluation and the monitors."""

    BINARY_CLASSIFICATION = "binary_classification"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"

    @property
    def report_section(self) -> str:
        """The section of SageMaker's model-quality JSON layout the evaluation writes."""
        return {
            "binary_classification": "binary_classification_metrics",
            "multiclass": "multiclass_classification_metrics",
            "regression": "regression_metrics",
        }[self.value]


class ModelMetricName(StrEnum):
    """Metrics the evaluation step computes on the test split."""

    PRECISION = "precision"
    RECALL = "recall"
    F1 = "f1"
    AUC = "auc"
    ACCURACY = "accuracy"
    FALSE_POSITIVE_RATE = "false_positive_rate"
    RMSE = "rmse"
    MAE = "mae"
    R2 = "r2"
    MAPE = "mape"


# Which metrics each problem type computes (multiclass precision / recall / f1 are macro
# averages), and which are errors: an error metric is only ever held to a maximum.
METRICS_BY_PROBLEM: dict[ProblemType, tuple[ModelMetricName, ...]] = {
    ProblemType.BINARY_CLASSIFICATION: (
        ModelMetricName.PRECISION, ModelMetricName.RECALL, ModelMetricName.F1,
        ModelMetricName.AUC, ModelMetricName.ACCURACY, ModelMetricName.FALSE_POSITIVE_RATE,
    ),
    ProblemType.MULTICLASS: (
        ModelMetricName.ACCURACY, ModelMetricName.PRECISION, ModelMetricName.RECALL,
        ModelMetricName.F1,
    ),
    ProblemType.REGRESSION: (
        ModelMetricName.RMSE, ModelMetricName.MAE, ModelMetricName.R2, ModelMetricName.MAPE,
    ),
}  # fmt: skip
ERROR_METRICS = frozenset(
    {
        ModelMetricName.FALSE_POSITIVE_RATE,
        ModelMetricName.RMSE,
        ModelMetricName.MAE,
        ModelMetricName.MAPE,
    }
)
UNBOUNDED_METRICS = frozenset({ModelMetricName.RMSE, ModelMetricName.MAE})
"""Metrics in the target's own unit, not a fraction: their threshold is any value >= 0."""


class ModelMetric(_Model):
    """A model metric: training gates and monitors hold the model to its threshold."""

    name: ModelMetricName
    """precision, recall, f1, auc, accuracy, false_positive_rate (classification); rmse, mae,
    r2, mape (regression)."""
    description: Text
    """Why this metric matters for the product."""
    owner: Slug
    """Contact id of the metric's owner."""
    threshold: float
    """Value on the held-out test split the model must meet: 0 to 1 for fractions; rmse and
    mae in the target's unit."""
    direction: Direction
    """at_least or at_most; error metrics (rmse, mae, mape, false_positive_rate) are at_most."""

    def met_by(self, value: float) -> bool:
        if self.direction is Direction.AT_LEAST:
            return value >= self.threshold
        return value <= self.threshold

    @model_validator(mode="after")
    def _threshold_fits_metric(self) -> ModelMetric:
        name = self.name
        if name in ERROR_METRICS and self.direction is not Direction.AT_MOST:
            raise ValueError(
                f"{name.value} is an error metric (lower is better): its direction is at_most"
            )
        if name not in ERROR_METRICS and self.direction is not Direction.AT_LEAST:
            raise ValueError(f"{name.value} is better when higher: its direction is at_least")
        if name in UNBOUNDED_METRICS:
            if self.threshold < 0:
                raise ValueError(f"{name.value} is never negative; got {self.threshold}")
        elif name is ModelMetricName.R2:
            if self.threshold > 1:
                raise ValueError(f"r2 is at most 1; got {self.threshold}")
        elif not 0 <= self.threshold <= 1:
            raise ValueError(
                f"{name.value} is a fraction: its threshold is between 0 and 1, "
                f"got {self.threshold}"
            )
        return self


class SloKind(StrEnum):
    LATENCY_P99_MS = "latency_p99_ms"
    ERROR_RATE_5XX = "error_rate_5xx"
    INVOCATION_ERROR_RATE = "invocation_error_rate"


class Slo(_Model):
    """A system SLO: alarms page on it and blue/green rollback is triggered by it."""

    name: SloKind
    """One of latency_p99_ms, error_rate_5xx, invocation_error_rate."""
    description: Text
    """What the SLO protects."""
    owner: Slug
    """Contact id of the SLO's owner (usually on-call)."""
    threshold: float = Field(gt=0)
    """Milliseconds for latency, a fraction (0.001 = 0.1 %) for rates."""
    period_seconds: Literal[60, 300] = 60
    """Alarm period in seconds (60 or 300)."""
    evaluation_periods: int = Field(default=3, ge=1, le=10)
    """Consecutive breaching periods before the alarm fires."""

    @property
    def detection_window_seconds(self) -> int:
        return self.period_seconds * self.evaluation_periods

    @model_validator(mode="after")
    def _rate_is_a_fraction(self) -> Slo:
        if self.name is not SloKind.LATENCY_P99_MS and self.threshold >= 1:
            raise ValueError(
                f"threshold {self.threshold} of {self.name.value} is a fraction of requests; "
                "write 0.001 for 0.1 %"
            )
        return self


class Metrics(_Model):
    business_kpis: tuple[BusinessKpi, ...] = Field(min_length=1)
    """Tier 1: business outcomes, owned by the PM."""
    model_metrics: tuple[ModelMetric, ...] = Field(min_length=1)
    """Tier 2: model quality, enforced at training, the quality gate and by monitors."""
    slos: tuple[Slo, ...] = Field(min_length=1)
    """Tier 3: system health; alarms page on-call and roll deployments back."""

    def slo(self, kind: SloKind) -> Slo | None:
        return next((s for s in self.slos if s.name is kind), None)


# --- gates ---------------------------------------------------------------------------------


class GateKind(StrEnum):
    MANUAL = "manual"
    AUTOMATED = "automated"


class GatePlacement(StrEnum):
    """Where a gate sits in the release."""

    MODEL_REGISTRY = "model_registry"
    """Approval of the model version in the SageMaker model registry (starts the release)."""
    AFTER_STAGING = "after_staging"
    """In CodePipeline, once staging is deployed and verified."""
    BEFORE_PROD = "before_prod"
    """In CodePipeline, last before prod is deployed."""


class Gate(_Model):
    name: Slug
    """Gate identifier; names the CodePipeline stage and the SNS topic."""
    kind: GateKind
    """manual (people approve) or automated (the quality gate decides)."""
    placement: GatePlacement
    """model_registry, after_staging or before_prod."""
    description: Text
    """What the gate checks, shown to approvers."""
    approvers: tuple[Slug, ...] = ()
    """Contact ids allowed to decide; anyone else is refused."""
    timeout_hours: int = Field(default=72, ge=1, le=168)
    """CodePipeline expires a manual approval after at most 7 days."""

    @model_validator(mode="after")
    def _approvers_match_kind(self) -> Gate:
        if self.kind is GateKind.MANUAL and not self.approvers:
            raise ValueError("a manual gate needs at least one approver")
        if self.kind is GateKind.AUTOMATED and self.approvers:
            raise ValueError("an automated gate has no approvers; make it manual or drop them")
        if self.kind is GateKind.AUTOMATED and self.placement is GatePlacement.MODEL_REGISTRY:
            raise ValueError("the model registry gate is a person's approval; make it manual")
        return self


# --- risks and prioritisation --------------------------------------------------------------


class Risk(_Model):
    id: Annotated[str, StringConstraints(pattern=r"^R[0-9]{1,3}$")]
    """Risk identifier, R1, R2, ..."""
    title: Text
    """What could go wrong."""
    likelihood: int = Field(ge=1, le=5)
    """1 (rare) to 5 (almost certain)."""
    impact: int = Field(ge=1, le=5)
    """1 (negligible) to 5 (severe)."""
    owner: Slug
    """Contact id of the risk's owner."""
    mitigation: Text
    """What reduces the risk."""
    status: Literal["open", "mitigated", "accepted", "closed"] = "open"
    """open, mitigated, accepted or closed; open risks appear in gate briefs."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def score(self) -> int:
        """Likelihood x impact, 1 to 25."""
        return self.likelihood * self.impact


class Rice(_Model):
    reach: int = Field(gt=0)
    """People or transactions affected per quarter."""
    impact: float
    """Intercom's scale: 0.25 minimal, 0.5 low, 1 medium, 2 high, 3 massive."""
    confidence: float = Field(gt=0, le=1)
    """0 to 1."""
    effort: float = Field(gt=0)
    """Person-months."""

    @field_validator("impact")
    @classmethod
    def _impact_scale(cls, value: float) -> float:
        if value not in (0.25, 0.5, 1, 2, 3):
            raise ValueError(f"impact {value} is not on the RICE scale 0.25, 0.5, 1, 2, 3")
        return value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def score(self) -> float:
        return round(float(self.reach * self.impact * self.confidence / self.effort), 1)


# --- data, model, serving, monitoring ------------------------------------------------------


ColumnName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*$")]
# A path inside the product's folder: no absolute path, no `..`.
RELATIVE_PATH = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*(\.[A-Za-z0-9]+)?$"
RelativePath = Annotated[str, StringConstraints(pattern=RELATIVE_PATH)]
IMAGE_URI = r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/\S+$"


class DataSource(_Model):
    name: Slug
    """Identifier of the source; the transform receives it under this name."""
    format: Literal["csv", "json", "parquet"]
    """csv (with a header row), json (JSON Lines) or parquet."""
    prefix: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_/-]*/$")]
    """Prefix inside the raw bucket, ending in '/'."""


ColumnType = Literal["string", "int", "bigint", "double", "float", "boolean", "date", "timestamp"]
NUMERIC_TYPES = frozenset({"int", "bigint", "double", "float", "boolean"})


class Column(_Model):
    """A column of the curated table."""

    name: ColumnName
    """Column name (lowercase letters, digits, underscores), as the transform writes it."""
    type: ColumnType
    """string, int, bigint, double, float, boolean, date or timestamp (Glue catalog types)."""
    description: str = ""
    """What the column holds; shown in the Glue catalog."""
    values: tuple[Text, ...] = ()
    """For a string feature: its categories, in a fixed order (the default preprocess one-hot
    encodes them, with an `other` column for anything else)."""


class Schema(_Model):
    """The curated data contract: what the product's transform writes and training reads."""

    columns: tuple[Column, ...] = Field(min_length=2)
    """Every curated column, partition keys included, in the order the transform writes them."""
    id_column: ColumnName
    """Identifies a record (de-duplication, quality rules, joining ground truth)."""
    target_column: ColumnName
    """The label the model learns."""
    event_time_column: ColumnName | None = None
    """When the record happened; when set, the default preprocess splits by time."""
    partition_keys: tuple[ColumnName, ...] = ()
    """Columns the curated table is partitioned by (written as key=value folders)."""

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def data_columns(self) -> tuple[Column, ...]:
        """Columns stored in the files (the partition keys live in the folder names)."""
        return tuple(c for c in self.columns if c.name not in self.partition_keys)

    @model_validator(mode="after")
    def _roles_are_columns(self) -> Schema:
        names = self.names
        problems = []
        for i, column in enumerate(self.columns):
            if names.index(column.name) != i:
                problems.append((f"columns[{i}].name", f"'{column.name}' is declared twice"))
            if column.values and column.type != "string":
                problems.append((f"columns[{i}].values", "only string columns have categories"))
        roles = [("id_column", self.id_column), ("target_column", self.target_column)]
        if self.event_time_column:
            roles.append(("event_time_column", self.event_time_column))
        roles += [(f"partition_keys[{i}]", key) for i, key in enumerate(self.partition_keys)]
        for path, name in roles:
            if name not in names:
                problems.append((path, _not_a_column(name, names)))
        if self.event_time_column in names and self.column(
            self.event_time_column or ""
        ).type not in ("timestamp", "date"):
            problems.append(("event_time_column", "must name a timestamp or date column"))
        if len(self.partition_keys) >= len(self.columns):
            problems.append(("partition_keys", "at least one column must not be a partition key"))
        if problems:
            raise _CrossFieldErrors(problems)
        return self


def _not_a_column(name: str, names: tuple[str, ...]) -> str:
    near = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{near[0]}'?" if near else f"columns: {', '.join(names)}"
    return f"'{name}' is not a column of data.curated; {hint}"


# The DQDL rule types of AWS Glue Data Quality
# (https://docs.aws.amazon.com/glue/latest/dg/dqdl-rule-types.html).
DQDL_RULE_TYPES = frozenset(
    {
        "AggregateMatch", "ColumnCorrelation", "ColumnCount", "ColumnDataType", "ColumnExists",
        "ColumnLength", "ColumnNamesMatchPattern", "ColumnValues", "Completeness", "CustomSql",
        "DataFreshness", "DatasetMatch", "DetectAnomalies", "DistinctValuesCount", "Entropy",
        "FileFreshness", "FileMatch", "FileSize", "FileUniqueness", "IsComplete",
        "IsPrimaryKey", "IsUnique", "Mean", "ReferentialIntegrity", "RowCount", "RowCountMatch",
        "SchemaMatch", "StandardDeviation", "Sum", "UniqueValueRatio", "Uniqueness",
    }
)  # fmt: skip
_DQDL_RULE = re.compile(r'^\s*(?P<type>[A-Za-z]+)(?P<columns>(?:\s+"[^"]*")*)(?P<rest>.*)$')


def dqdl_columns(rule: str) -> tuple[str, tuple[str, ...]]:
    """(rule type, the columns it names): the quoted arguments right after the rule type, as
    in `IsComplete "id"` or `ColumnCorrelation "a" "b"` (quoted values later in the rule, such
    as `in ["a", "b"]`, are not columns)."""
    match = _DQDL_RULE.match(rule)
    if match is None:
        return "", ()
    return match["type"], tuple(re.findall(r'"([^"]*)"', match["columns"]))


class Data(_Model):
    sources: tuple[DataSource, ...] = Field(min_length=1)
    """Raw data sources: the crawler catalogs each, the ETL job reads them all."""
    curated: Schema
    """The curated table's schema: its columns and the roles of its columns."""
    transform: RelativePath
    """The product's PySpark transform module, relative to the manifest: it defines
    `transform(spark, sources, params) -> (curated, quarantined)` (see
    docs/bring-your-own-product.md)."""
    transform_params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """Settings passed to the transform as they are (window lengths, cut-offs, ...)."""
    generator: RelativePath | None = None
    """The product's synthetic-data module, relative to the manifest: it defines
    `sources(rows, seed) -> {source name: pandas DataFrame}`; tests and the rehearsal use it."""
    schedule: GlueSchedule = "cron(0 2 * * ? *)"
    """When the Glue workflow runs (crawl -> ETL -> quality): a Glue cron expression."""
    quality_rules: tuple[Text, ...] = Field(min_length=1)
    """Glue Data Quality (DQDL) rules evaluated on the curated data after each ETL run; every
    column a rule names must be in the schema."""
    etl_workers: int = Field(default=2, ge=2, le=100)
    """The fewest Glue workers (G.1X) a run needs: equal to etl_max_workers, the job runs at
    that fixed size; below it, Glue auto scaling sizes each run (Glue chooses where a run
    starts)."""
    etl_max_workers: int = Field(default=10, ge=2, le=299)
    """The most Glue workers a run may use: the job's NumberOfWorkers, which Glue reads as the
    upper bound of auto scaling."""
    etl_timeout_minutes: int = Field(default=60, ge=5, le=2880)
    """The ETL job is stopped after this long."""

    @model_validator(mode="after")
    def _workers(self) -> Data:
        if self.etl_max_workers < self.etl_workers:
            raise ValueError("etl_max_workers must be at least etl_workers")
        return self

    @model_validator(mode="after")
    def _rules_name_columns(self) -> Data:
        problems = []
        names = self.curated.names
        for i, rule in enumerate(self.quality_rules):
            kind, columns = dqdl_columns(rule)
            if kind not in DQDL_RULE_TYPES:
                near = difflib.get_close_matches(kind, sorted(DQDL_RULE_TYPES), n=1)
                hint = f"did you mean '{near[0]}'?" if near else "see the DQDL rule type list"
                problems.append(
                    (f"quality_rules[{i}]", f"'{kind}' is not a DQDL rule type; {hint}")
                )
                continue
            for column in columns:
                if column not in names:
                    problems.append(
                        (f"quality_rules[{i}]", f"rule '{rule}': {_not_a_column(column, names)}")
                    )
        if problems:
            raise _CrossFieldErrors(problems)
        return self


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
    """Instance type of the training job."""
    training_instance_count: int = Field(default=1, ge=1, le=20)
    """Instances of the training job."""
    processing_instance_type: InstanceType = "ml.m5.large"
    """Instance type of preprocessing, evaluation and baseline jobs."""
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


class RolloutPolicy(StrEnum):
    CANARY = "canary"
    LINEAR = "linear"
    ALL_AT_ONCE = "all_at_once"


class Rollout(_Model):
    """Blue/green traffic shifting for one environment."""

    policy: RolloutPolicy
    """canary, linear or all_at_once blue/green traffic shifting."""
    canary_percent: int = Field(default=10, ge=1, le=50)
    """canary: share of capacity that takes traffic first."""
    linear_step_percent: int = Field(default=25, ge=5, le=50)
    """linear: share of capacity shifted at each step."""
    bake_minutes: int = Field(default=10, ge=0, le=60)
    """How long each traffic step bakes while rollback alarms watch."""
    termination_wait_minutes: int = Field(default=5, ge=0, le=60)
    """How long the old (blue) fleet is kept after the shift completes."""
    max_execution_timeout_minutes: int = Field(default=120, ge=10, le=480)
    """The whole deployment is rolled back if it takes longer."""
    allow_all_at_once: bool = False
    """Prod refuses all_at_once unless this is set explicitly."""
    max_first_step_percent: int = Field(default=50, ge=1, le=100)
    """The most traffic the first step (canary or linear) may carry once rounded up to whole
    instances: a 10 % canary of 2 instances is 1 instance, 50 % of the traffic."""

    def first_step(self, instances: int) -> tuple[int, float]:
        """(instances, share of traffic in %) of the first step: SageMaker moves traffic in
        whole instances, rounding the step's capacity up."""
        if self.policy is RolloutPolicy.ALL_AT_ONCE:
            return instances, 100.0
        step = (
            self.canary_percent
            if self.policy is RolloutPolicy.CANARY
            else (self.linear_step_percent)
        )
        shifted = -(-instances * step // 100)
        return shifted, round(100 * shifted / instances, 1)


class Autoscaling(_Model):
    enabled: bool = True
    """Off while the instance type changes: SageMaker refuses that update while a scaling
    target is registered (docs/platform-engineer.md, "Changing the instance type")."""
    min_instances: int = Field(default=1, ge=1)
    """Autoscaling lower bound."""
    max_instances: int = Field(default=4, ge=1, le=100)
    """Autoscaling upper bound."""
    target_invocations_per_instance: int = Field(default=500, ge=1)
    """Target tracking value of SageMakerVariantInvocationsPerInstance."""

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.max_instances < self.min_instances:
            raise ValueError("max_instances must be at least min_instances")
        return self


class EnvironmentServing(_Model):
    instance_type: InstanceType = "ml.m5.large"
    """Endpoint instance type."""
    instance_count: int = Field(default=2, ge=1, le=50)
    """Instances the endpoint starts with."""
    autoscaling: Autoscaling = Autoscaling()
    """Target-tracking bounds."""
    rollout: Rollout
    """Blue/green traffic shifting policy for updates."""


class Serving(_Model):
    data_capture_sampling_percent: int = Field(default=20, ge=1, le=100)
    """Share of requests and responses captured for monitoring."""
    sample_request: RelativePath | None = None
    """A CSV file beside the manifest: a header row naming the payload's features, then one
    record the deploy verifier sends; required with a product preprocess (default: built
    from the schema)."""
    smoke_requests: int = Field(default=50, ge=1, le=500)
    """Requests the automated quality gate sends to staging, rows of the version's held-out
    test split, to judge the new fleet's latency and errors against the SLOs."""
    staging: EnvironmentServing
    """Endpoint settings in staging."""
    prod: EnvironmentServing
    """Endpoint settings in prod."""


class MonitoringEngine(StrEnum):
    """What watches the endpoint's captured traffic."""

    EVIDENTLY = "evidently"
    """mlgate's Evidently job (mlgate/monitoring_job) as a SageMaker Processing job, in any
    account."""
    MODEL_MONITOR = "model-monitor"
    """SageMaker Model Monitor schedules, for accounts that already use it: it no longer takes
    new customers."""


class Monitoring(_Model):
    engine: MonitoringEngine = MonitoringEngine.EVIDENTLY
    """evidently (mlgate's job, works in a new account) or model-monitor (SageMaker Model
    Monitor, closed to new customers: only where the account already has it)."""
    schedule: MonitorSchedule = "cron(0 * ? * * *)"
    """When monitoring checks captured traffic against the baseline: hourly, daily at an
    hour, or every N hours (the forms SageMaker accepts); each run looks back one interval."""
    drift_threshold: float = Field(default=0.1, gt=0, le=1)
    """Share of features (0 to 1) that may drift before drift is declared: the drift alarm
    fires, and retraining starts, when a run's share of drifted features is above it."""
    feature_drift_thresholds: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    """Per-feature drift-score thresholds, {feature: score}, for features of the curated
    schema; a feature drifts when its score is at or above its threshold (default 0.1)."""
    retrain_cooldown_hours: int = Field(default=24, ge=1, le=720)
    """After drift starts retraining, further drift waits this long."""
    ground_truth_s3_uri: Annotated[str, StringConstraints(pattern=r"^s3://\S+/$")] | None = None
    """Where labelled outcomes land, as SageMaker's ground-truth records whose eventId is the
    inference id of the captured request (docs/monitoring.md); enables live model metrics."""
    ground_truth_delay_hours: int = Field(default=24, ge=1, le=720)
    """How long after an inference its label has landed; model quality is computed only on
    inferences at least this old."""


class Delivery(_Model):
    """How the release pipeline's hooks run."""

    callback_reserved_concurrency: int | None = Field(default=None, ge=1, le=1000)
    """Concurrent executions reserved for the public gate callback, so a flood of requests
    cannot take the account's concurrency from the other functions. None (the default) reserves
    nothing: Lambda refuses a reservation that leaves fewer than 100 executions unreserved, and
    a new account's limit can be as low as 10. Set it once `mlgate preflight` shows the
    account's limit covers it
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html)."""


class Retention(_Model):
    """How long each class of the product's data is kept, in days. S3 lifecycle rules expire
    it (raw and curated buckets, the capture and reports prefixes of every artifact bucket); an
    object overwritten or expired before that stays as a noncurrent version for at most
    `NONCURRENT_DAYS` more, so a mistaken delete can be undone and nothing outlives its class
    by more. The evidence pack shows each class with where it is enforced."""

    raw: int = Field(default=30, ge=1, le=3650)
    """Raw data as the sources land it, customer ids and all: kept only until the ETL has
    curated it and a re-run could still need it, so short."""
    curated: int = Field(default=365, ge=1, le=3650)
    """Curated data every version is trained on: a year of history covers seasonality;
    longer only when the model needs it."""
    capture: int = Field(default=30, ge=1, le=3650)
    """Captured prod requests and answers (whole customer records): long enough for the
    monitor to judge them (its window, plus the ground-truth delay) and to investigate an
    incident, then gone."""
    reports: int = Field(default=400, ge=1, le=3650)
    """Monitoring reports and summaries (aggregates, no records): a year of drift history for
    the yearly model review, plus a month's margin."""
    audit: int = Field(default=2557, ge=365, le=3653)
    """Gate decisions and approvals (who approved which release, when): seven years, the
    review cycle regulators commonly ask for; never shorter than a year nor than any data
    class it vouches for."""


ARTIFACT_PREFIXES = {"capture": "datacapture/", "reports": "monitoring/"}
"""The data classes every artifact bucket keeps under a prefix: captured traffic (the
endpoint's capture destination, mlgate/constructs/endpoint.py, and the monitor's staged copies
of it) and monitoring reports (Names.monitoring_reports)."""

NONCURRENT_DAYS = 30
"""How long an overwritten or expired object of a data class stays as a noncurrent version:
this, or its class's own days when shorter."""


class Environment(_Model):
    account: Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
    """12-digit AWS account id."""
    region: str
    """AWS region, e.g. eu-west-1."""

    @field_validator("region")
    @classmethod
    def _real_region(cls, value: str) -> str:
        if value not in AWS_REGIONS:
            near = difflib.get_close_matches(value, sorted(AWS_REGIONS), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ValueError(f"'{value}' is not an AWS region mlgate supports{hint}")
        return value


class Environments(_Model):
    staging: Environment
    """Where staging endpoints run; also home of the product-wide stacks."""
    prod: Environment
    """Where prod endpoints run: the staging account or another one (cross-account deploy
    roles), in the staging region."""


EnvName = Literal["staging", "prod"]
ENV_NAMES: tuple[EnvName, ...] = ("staging", "prod")


# --- the manifest --------------------------------------------------------------------------


class Manifest(_Model):
    """A product: its one-pager and everything mlgate deploys for it."""

    product: Product
    """Name, objective, owners and contacts."""
    metrics: Metrics
    """The three metric tiers."""
    gates: tuple[Gate, ...] = Field(min_length=1)
    """Stage gates, in release order."""
    risks: tuple[Risk, ...] = ()
    """The risk register."""
    rice: Rice
    """Prioritisation inputs."""
    data: Data
    """Sources, schedule, data-quality rules, ETL sizing."""
    model: ModelSettings = ModelSettings()
    """Problem type, algorithm, the product's code, hyper-parameters, instances."""
    serving: Serving
    """Endpoints per environment."""
    monitoring: Monitoring = Monitoring()
    """Monitoring engine, schedule, drift thresholds and retraining policy."""
    delivery: Delivery = Delivery()
    """How the release pipeline's hooks run."""
    retention: Retention = Retention()
    """How long each class of data is kept (days): raw, curated, capture, reports, audit."""
    environments: Environments
    """Accounts and regions."""

    _folder: Path = PrivateAttr(default=Path("."))

    @property
    def folder(self) -> Path:
        """The product's folder: the manifest's own, where its code paths start."""
        return self._folder

    def path(self, relative: str) -> Path:
        """A file the manifest references, relative to the manifest."""
        return self._folder / relative

    @property
    def features(self) -> tuple[str, ...]:
        """Schema columns the model reads, in order (model.features, or every column that
        has no other role)."""
        if self.model.features:
            return self.model.features
        schema = self.data.curated
        roles = {schema.id_column, schema.target_column, schema.event_time_column,
                 *schema.partition_keys}  # fmt: skip
        return tuple(c.name for c in schema.columns if c.name not in roles)

    @property
    def payload_columns(self) -> tuple[str, ...]:
        """What the endpoint receives, in order: the header of the product's sample request,
        or the default preprocess's layout (numbers as they are; each string feature one-hot,
        one column per category and one for anything else)."""
        sample = self.sample_request
        if sample is not None:
            return sample[0]
        columns: list[str] = []
        for name in self.features:
            column = self.data.curated.column(name)
            if column.type in NUMERIC_TYPES:
                columns.append(name)
            else:
                columns += [f"{name}={v}" for v in (*column.values, "other")]
        return tuple(columns)

    @property
    def sample_request(self) -> tuple[tuple[str, ...], str] | None:
        """(feature names, one CSV record) from serving.sample_request, when the product
        ships one."""
        if self.serving.sample_request is None:
            return None
        lines = self.path(self.serving.sample_request).read_text(encoding="utf-8").split("\n")
        header, record = lines[0].strip(), lines[1].strip()
        return tuple(h.strip() for h in header.split(",")), record

    @property
    def sample_record(self) -> str:
        """One CSV record the deploy verifier sends: the product's sample, or a neutral one
        built from the schema (zeros; each string feature in its first category)."""
        sample = self.sample_request
        if sample is not None:
            return sample[1]
        values: list[str] = []
        for name in self.features:
            column = self.data.curated.column(name)
            if column.type in NUMERIC_TYPES:
                values.append("0")
            else:
                values += ["1"] + ["0"] * len(column.values)
        return ",".join(values)

    def rollout_summary(self, env: EnvName) -> str:
        """What a release does to the environment's traffic, in instances and percent."""
        serving = self.env_serving(env)
        rollout = serving.rollout
        count = serving.instance_count
        fleet = f"{count} instance{'s' if count > 1 else ''}"
        bake = f"bakes {rollout.bake_minutes} min while the rollback alarms watch"
        if rollout.policy is RolloutPolicy.ALL_AT_ONCE:
            return f"all at once to {fleet}, then {bake}"
        shifted, share = rollout.first_step(count)
        if rollout.policy is RolloutPolicy.CANARY:
            step = f"canary {rollout.canary_percent} % of {fleet} = {shifted} instance(s)"
            return f"{step}, {share:g} % of traffic; {bake}; then the rest"
        step = f"linear {rollout.linear_step_percent} % steps of {fleet} = {shifted} instance(s)"
        return f"{step}, {share:g} % of traffic each; each step {bake}"

    def code_files(self) -> dict[str, Path]:
        """Every file of the product's own code the manifest names, by manifest field."""
        files = {"data.transform": self.path(self.data.transform)}
        if self.data.generator:
            files["data.generator"] = self.path(self.data.generator)
        code = self.model.code
        for field in ("train", "preprocess", "evaluate"):
            value = getattr(code, field)
            if value:
                files[f"model.code.{field}"] = self.path(value)
        for i, dependency in enumerate(code.dependencies):
            files[f"model.code.dependencies[{i}]"] = self.path(dependency)
        if self.serving.sample_request:
            files["serving.sample_request"] = self.path(self.serving.sample_request)
        return files

    def contact(self, contact_id: str) -> Contact:
        return next(c for c in self.product.contacts if c.id == contact_id)

    def environment(self, name: EnvName) -> Environment:
        return getattr(self.environments, name)  # type: ignore[no-any-return]

    def env_serving(self, name: EnvName) -> EnvironmentServing:
        return getattr(self.serving, name)  # type: ignore[no-any-return]

    def is_remote(self, name: EnvName) -> bool:
        """True when the environment lives in another account than staging, the home of the
        product-wide stacks (registry, pipelines, audit trail): it gets its own foundation."""
        return self.environment(name).account != self.environments.staging.account

    @property
    def pipeline_gates(self) -> tuple[Gate, ...]:
        """Gates CodePipeline runs, in manifest order (the registry gate runs in SageMaker)."""
        return tuple(g for g in self.gates if g.placement is not GatePlacement.MODEL_REGISTRY)

    @property
    def data_classes(self) -> dict[str, int]:
        """Retention days by data class, in the order the evidence pack lists them."""
        return self.retention.model_dump()

    @property
    def open_risks(self) -> tuple[Risk, ...]:
        return tuple(
            sorted((r for r in self.risks if r.status == "open"), key=lambda r: (-r.score, r.id))
        )

    @model_validator(mode="after")
    def _cross_field(self) -> Manifest:
        problems: list[tuple[str, str]] = []
        contacts = [c.id for c in self.product.contacts]
        known = set(contacts)

        def person(path: str, who: str) -> None:
            if who not in known:
                near = difflib.get_close_matches(who, contacts, n=1)
                hint = f"did you mean '{near[0]}'?" if near else f"declared: {', '.join(contacts)}"
                problems.append((path, f"'{who}' is not a declared contact; {hint}"))

        for role in ("product_manager", "ml_lead", "on_call"):
            person(f"product.owners.{role}", getattr(self.product.owners, role))
        for tier in ("business_kpis", "model_metrics", "slos"):
            for i, metric in enumerate(getattr(self.metrics, tier)):
                person(f"metrics.{tier}[{i}].owner", metric.owner)
        for i, gate in enumerate(self.gates):
            for j, approver in enumerate(gate.approvers):
                person(f"gates[{i}].approvers[{j}]", approver)
        for i, risk in enumerate(self.risks):
            person(f"risks[{i}].owner", risk.owner)

        for name in self.monitoring.feature_drift_thresholds:
            if name not in self.features:
                near = difflib.get_close_matches(name, self.features, n=1)
                hint = (
                    f"did you mean '{near[0]}'?"
                    if near
                    else f"features: {', '.join(self.features)}"
                )
                problems.append(
                    (
                        "monitoring.feature_drift_thresholds",
                        f"'{name}' is not a feature of the curated schema; {hint}",
                    )
                )
        _duplicates(problems, "product.contacts", [c.id for c in self.product.contacts], "id")
        _duplicates(problems, "gates", [g.name for g in self.gates], "name")
        _duplicates(problems, "risks", [r.id for r in self.risks], "id")
        _duplicates(problems, "data.sources", [s.name for s in self.data.sources], "name")
        for tier in ("business_kpis", "model_metrics", "slos"):
            names = [str(m.name) for m in getattr(self.metrics, tier)]
            _duplicates(problems, f"metrics.{tier}", names, "name")

        order = list(GatePlacement)
        for i in range(1, len(self.gates)):
            before, gate = self.gates[i - 1], self.gates[i]
            if order.index(gate.placement) < order.index(before.placement):
                problems.append(
                    (
                        f"gates[{i}].placement",
                        f"'{gate.name}' ({gate.placement.value}) comes after '{before.name}' "
                        f"({before.placement.value}); order gates as the release runs: "
                        + " -> ".join(p.value for p in order),
                    )
                )
        for i, gate in enumerate(self.gates):
            if gate.kind is GateKind.MANUAL and gate.placement is not GatePlacement.MODEL_REGISTRY:
                for j, approver in enumerate(gate.approvers):
                    if approver in known and self.contact(approver).slack_user_id is None:
                        problems.append(
                            (
                                f"gates[{i}].approvers[{j}]",
                                f"'{approver}' approves from chat and needs "
                                "product.contacts[].slack_user_id",
                            )
                        )
        if not self.pipeline_gates:
            problems.append(("gates", "at least one gate must run in CodePipeline"))
        problems.extend(self._rollout_problems())
        problems.extend(self._model_problems())
        problems.extend(self._retention_problems())
        if self.environments.prod.region != self.environments.staging.region:
            problems.append(
                (
                    "environments.prod.region",
                    f"'{self.environments.prod.region}' differs from staging's "
                    f"'{self.environments.staging.region}'; the model registry, its artifacts "
                    "and the release pipeline are regional, so prod may live in another "
                    f"account but must stay in {self.environments.staging.region}",
                )
            )

        if problems:
            raise _CrossFieldErrors(problems)
        return self

    def _model_problems(self) -> list[tuple[str, str]]:
        """The model fits the data contract and its problem type."""
        problems: list[tuple[str, str]] = []
        problem = self.model.problem_type
        allowed = METRICS_BY_PROBLEM[problem]
        for i, metric in enumerate(self.metrics.model_metrics):
            if metric.name not in allowed:
                problems.append(
                    (
                        f"metrics.model_metrics[{i}].name",
                        f"{metric.name.value} is not a {problem.value} metric; "
                        f"use one of {', '.join(m.value for m in allowed)}",
                    )
                )
        schema = self.data.curated
        roles = {schema.id_column: "id_column", schema.target_column: "target_column"}
        for i, name in enumerate(self.model.features):
            if name not in schema.names:
                problems.append((f"model.features[{i}]", _not_a_column(name, schema.names)))
            elif name in roles:
                problems.append(
                    (f"model.features[{i}]", f"'{name}' is the {roles[name]}, not a feature")
                )
        if not self.features:
            problems.append(("model.features", "the schema leaves the model no feature"))
        if self.model.code.preprocess is None:
            for name in self.features:
                if name not in schema.names:
                    continue
                column = schema.column(name)
                if column.type in ("date", "timestamp"):
                    problems.append(
                        (
                            "model.features",
                            f"'{name}' is a {column.type}: the default preprocess takes "
                            "numbers and categories; derive a number in the transform, or "
                            "leave it out with model.features",
                        )
                    )
                elif column.type == "string" and not column.values:
                    index = schema.names.index(name)
                    problems.append(
                        (
                            f"data.curated.columns[{index}].values",
                            f"'{name}' is a string feature: list its categories so the "
                            "default preprocess can one-hot encode it",
                        )
                    )
        elif self.serving.sample_request is None:
            problems.append(
                (
                    "serving.sample_request",
                    "a product preprocess decides the payload layout: ship a sample request "
                    "(header row of feature names, then one record) and name it here",
                )
            )
        return problems

    def _retention_problems(self) -> list[tuple[str, str]]:
        """Each data class outlasts what reads it; the audit trail outlasts every data class."""
        problems: list[tuple[str, str]] = []
        keep = self.retention
        monitoring = self.monitoring
        # A run judges the last interval, and with ground truth the interval that ended the
        # delay before it: a capture must still exist when its label is due.
        needed = schedules.schedule_interval_hours(monitoring.schedule)
        if monitoring.ground_truth_s3_uri:
            needed += monitoring.ground_truth_delay_hours
        if keep.capture * 24 < needed:
            problems.append(
                (
                    "retention.capture",
                    f"{keep.capture} day(s) expire captured traffic before the monitor judges "
                    f"it ({needed} h: one monitoring interval"
                    + (" plus monitoring.ground_truth_delay_hours" if monitoring.ground_truth_s3_uri
                       else "")
                    + f"); keep it at least {-(-needed // 24)} day(s)",
                )
            )  # fmt: skip
        longest = max(
            ("raw", "curated", "capture", "reports"), key=lambda name: getattr(keep, name)
        )
        if keep.audit < getattr(keep, longest):
            problems.append(
                (
                    "retention.audit",
                    f"{keep.audit} day(s) is shorter than retention.{longest} "
                    f"({getattr(keep, longest)} days): the audit trail must outlast the data "
                    "its decisions were made on",
                )
            )
        return problems

    def _rollout_problems(self) -> list[tuple[str, str]]:
        """Safety invariants of blue/green traffic shifting, per environment."""
        problems: list[tuple[str, str]] = []
        window = max(s.detection_window_seconds for s in self.metrics.slos)
        for env in ENV_NAMES:
            serving = self.env_serving(env)
            rollout = serving.rollout
            path = f"serving.{env}.rollout"
            # Every policy bakes (all at once too: the new fleet serves everything while the old
            # one waits), and only during a bake can the rollback alarms roll a release back.
            if rollout.bake_minutes * 60 < window:
                problems.append(
                    (
                        f"{path}.bake_minutes",
                        f"{rollout.bake_minutes} min bake is shorter than the rollback alarms' "
                        f"detection window ({window // 60} min: period x evaluation periods of "
                        "the slowest SLO alarm), so a bad release could pass before its alarm "
                        f"fires; bake at least {-(-window // 60)} min",
                    )
                )
            if rollout.policy is RolloutPolicy.ALL_AT_ONCE:
                if env == "prod" and not rollout.allow_all_at_once:
                    problems.append(
                        (
                            f"{path}.policy",
                            "prod never shifts all traffic at once unless the manifest says so: "
                            "use canary or linear, or set allow_all_at_once: true",
                        )
                    )
                continue
            step = (
                rollout.canary_percent
                if rollout.policy is RolloutPolicy.CANARY
                else (rollout.linear_step_percent)
            )
            shifted, share = rollout.first_step(serving.instance_count)
            if shifted < serving.instance_count and share > rollout.max_first_step_percent:
                problems.append(
                    (
                        f"{path}.max_first_step_percent",
                        f"a {step} % {rollout.policy.value} step of {serving.instance_count} "
                        f"instances is {shifted} instance(s), {share:g} % of the traffic, above "
                        f"the {rollout.max_first_step_percent} % this rollout allows; add "
                        "instances, or raise max_first_step_percent knowingly",
                    )
                )
            if shifted >= serving.instance_count:
                problems.append(
                    (
                        f"serving.{env}.instance_count",
                        f"{rollout.policy.value} shifts {step} % of {serving.instance_count} "
                        "instance(s), which is the whole fleet: traffic moves in whole "
                        "instances, so a split needs at least 2",
                    )
                )
        return problems


def _duplicates(problems: list[tuple[str, str]], path: str, values: list[str], key: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            problems.append((f"{path}[{i}].{key}", f"'{value}' is used twice; {key}s are unique"))
        seen.add(value)


class _CrossFieldErrors(ValueError):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems


# --- loading and errors --------------------------------------------------------------------


class ManifestError(Exception):
    """Every problem found in one manifest file, one `file: field: message` line each."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(self.lines))

    @property
    def lines(self) -> list[str]:
        return [
            _printable(f"{self.path}: {field or '(top level)'}: {msg}")
            for field, msg in self.problems
        ]


def _printable(line: str) -> str:
    """One problem, one line: control characters in keys or values are shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


class _UniqueKeys:
    """Refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key '{key}' appears twice in one mapping (first on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)  # type: ignore[misc]
        return mapping


class _UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """PyYAML's own parser: its messages say what it found where (libyaml's say less)."""


class _FastUniqueKeyLoader(_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser where PyYAML has it (its wheels do): 8x faster on a manifest, the
    same documents."""


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_FastUniqueKeyLoader)
    except yaml.YAMLError as fast:
        # A broken document: PyYAML's own parser says what is wrong in more words (it raises).
        yaml.load(text, Loader=_UniqueKeyLoader)
        raise fast from None


def load_manifest(path: str | Path) -> Manifest:
    """Read, parse and validate one manifest file; raise ManifestError naming every problem."""
    path = Path(path)
    try:
        raw = _load_yaml(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise ManifestError(path, [("", "file not found")]) from None
    except UnicodeDecodeError as err:
        raise ManifestError(
            path, [("", f"not UTF-8 text (byte {err.start}): save the manifest as UTF-8")]
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        reason = getattr(err, "problem", None) or str(err)
        raise ManifestError(path, [(where, f"not valid YAML: {reason}")]) from None
    return parse_manifest(raw, path)


def parse_manifest(raw: Any, path: Path = Path("<manifest>")) -> Manifest:
    """Validate an already-parsed document; its code paths start at `path`'s folder, and every
    file they name must exist; raise ManifestError naming every problem."""
    manifest = _validate(raw, path)
    manifest._folder = path.resolve().parent
    missing = [
        (field, f"no file {file.relative_to(manifest.folder)} beside the manifest "
         f"(looked for {file})")
        for field, file in manifest.code_files().items()
        if not file.is_file()
    ]  # fmt: skip
    if missing:
        raise ManifestError(path, missing)
    sample = manifest.sample_request
    if sample is not None and len(sample[0]) != len(sample[1].split(",")):
        raise ManifestError(
            path,
            [("serving.sample_request", f"the header names {len(sample[0])} features but the "
              f"record has {len(sample[1].split(','))} values")],
        )  # fmt: skip
    return manifest


def _validate(raw: Any, path: Path) -> Manifest:
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise ManifestError(path, [("", f"expected a mapping of sections, got {got}")])
    try:
        return Manifest.model_validate(raw)
    except ValidationError as err:
        raise ManifestError(path, _describe(err)) from None


def _describe(err: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    meant: set[str] = set()  # keys a misspelling was meant as: "is required" would repeat it
    for e in err.errors():
        loc = _dotted(e["loc"])
        ctx = e.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, _CrossFieldErrors):
            problems.extend((_join(loc, path), message) for path, message in inner.problems)
            continue
        kind = e["type"]
        if kind == "extra_forbidden":
            message, near = _unknown_key(e["loc"])
            problems.append((loc, message))
            if near:
                meant.add(_dotted((*e["loc"][:-1], near)))
        elif kind == "missing":
            problems.append((loc, "is required"))
        elif kind == "string_pattern_mismatch":
            pattern = ctx.get("pattern", "")
            problems.append(
                (
                    loc,
                    f"{e['input']!r} does not match {_PATTERN_HELP.get(pattern, pattern)}",
                )
            )
        elif kind in ("enum", "literal_error"):
            expected = str(ctx.get("expected"))
            close = difflib.get_close_matches(
                str(e["input"]), re.findall(r"'([^']*)'", expected), n=1
            )
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append((loc, f"{e['input']!r} is not allowed; expected {expected}{hint}"))
        elif kind == "too_short":
            have = len(e["input"]) if isinstance(e["input"], (list, tuple, dict)) else 0
            problems.append(
                (loc, f"needs at least {ctx.get('min_length', 1)} item(s), got {have}; see the "
                 "manifest reference in docs/manifest-reference.md for what belongs here")
            )  # fmt: skip
        elif kind == "string_type" and isinstance(e["input"], int | float):
            problems.append(
                (loc, f"{e['input']} reads as a number in YAML: quote it, '{e['input']}' (an "
                 "unquoted account id also loses any leading zero)")
            )  # fmt: skip
        elif kind == "value_error":
            problems.append((loc, str(inner) if inner is not None else e["msg"]))
        else:
            problems.append((loc, f"{e['msg'][0].lower()}{e['msg'][1:]} (got {e['input']!r})"))
    return [(loc, msg) for loc, msg in problems if not (loc in meant and msg == "is required")]


_PATTERN_HELP = {
    r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$": "a lowercase slug (letters, digits, dashes; 3-32 chars)",
    r"^[0-9]{12}$": "a 12-digit AWS account id",
    r"^ml\.[a-z0-9]+\.[a-z0-9]+$": "a SageMaker instance type such as ml.m5.large",
    r"^R[0-9]{1,3}$": "a risk id such as R1",
    r"^[UW][A-Z0-9]{6,}$": "a Slack member id such as U024BE7LH",
    r"^https://\S+$": "an https:// URL",
    r"^s3://\S+/$": "an s3://bucket/prefix/ URI ending in '/'",
    r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$": "an email address",
    r"^[a-z0-9][a-z0-9_/-]*/$": "an S3 prefix ending in '/'",
    r"^[A-Za-z][A-Za-z0-9]{1,100}$": "a CloudWatch metric name (letters and digits)",
    r"^[a-z_][a-z0-9_]*$": "a column name (lowercase letters, digits, underscores)",
    RELATIVE_PATH: "a path relative to the manifest's folder, such as etl/transform.py",
    IMAGE_URI: "an ECR image URI such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/repo:tag",
}


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not re.fullmatch(r"function-after\[.*\]|tagged-union\[.*\]", str(part)):
            out += f".{part}" if out else str(part)
    return out


def _unknown_key(loc: tuple[int | str, ...]) -> tuple[str, str | None]:
    """Name the unknown key and, when one is close, the key that was meant."""
    key = str(loc[-1])
    model: type[BaseModel] | None = Manifest
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_of(field.annotation) if field else None
    allowed = sorted(model.model_fields) if model else []
    near = difflib.get_close_matches(key, allowed, n=1)
    if near:
        return f"unknown key '{key}'; did you mean '{near[0]}'?", near[0]
    return f"unknown key '{key}'; allowed: {', '.join(allowed)}", None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found:
            return found
    return None


MANIFEST_FILE = "manifest.yaml"


def manifest_paths(target: str | Path) -> list[Path]:
    """A manifest file; a product folder (holding manifest.yaml); or a folder of product
    folders (every */manifest.yaml), sorted."""
    target = Path(target)
    if target.is_dir():
        if (target / MANIFEST_FILE).is_file():
            return [target / MANIFEST_FILE]
        files = sorted(target.glob(f"*/{MANIFEST_FILE}"))
        if not files:
            raise ManifestBatchError(
                [
                    f"{target}: holds no product: a product is a folder with a {MANIFEST_FILE} "
                    f"(try `python -m mlgate new NAME` to scaffold one)"
                ]
            )
        return files
    return [target]


def load_manifests(target: str | Path) -> list[Manifest]:
    """Load every manifest under target; raise one ManifestError listing all files' problems."""
    manifests: list[Manifest] = []
    problems: list[str] = []
    for path in manifest_paths(target):
        try:
            manifests.append(load_manifest(path))
        except ManifestError as err:
            problems.extend(err.lines)
    names = [m.product.name for m in manifests]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{target}: product.name: '{name}' is declared by more than one manifest")
    if problems:
        raise ManifestBatchError(problems)
    return manifests


class ManifestBatchError(Exception):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))
