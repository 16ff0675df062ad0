"""The three metric tiers: business KPIs, model metrics, system SLOs."""

from __future__ import annotations

import ast
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    model_validator,
)

from mlgate.manifest.base import RELATIVE_PATH, Slug, Text, _Model

# --- metrics, in three tiers ---------------------------------------------------------------


class Direction(StrEnum):
    AT_LEAST = "at_least"
    AT_MOST = "at_most"


def _stand_in(value: str) -> str:
    """`path.py:function`: a Python file beside the manifest and a function it defines."""
    path, colon, function = value.partition(":")
    if (
        not colon
        or not path.endswith(".py")
        or not re.match(RELATIVE_PATH, path)
        or not function.isidentifier()
    ):
        raise ValueError(
            f"'{value}' is not a stand-in: write file.py:function, the file relative to the "
            "manifest's folder, such as kpis.py:late_share"
        )
    return value


StandIn = Annotated[str, AfterValidator(_stand_in)]


def defines(source: str, name: str) -> bool:
    """Whether Python `source` binds `name` at its top level (a def, an assignment or an
    import), read without running it."""
    bound: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update(a.asname or a.name.split(".")[0] for a in node.names)
    return name in bound


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
    stand_in: StandIn | None = None
    """Offline only: `file.py:function` beside the manifest that computes the KPI from a scored
    batch, for the rehearsal (make rehearse) and its dashboard previews, where no business data
    exists. It is called as function(batch, prediction): batch is a pandas DataFrame of
    held-out test rows (the target column, the payload columns) with the model's answer to
    each row in the column named `prediction`; it returns the KPI as a float, NaN when the
    batch says nothing of it (no point is written). In production the product publishes the
    KPI itself."""

    @property
    def stand_in_file(self) -> str | None:
        return self.stand_in.partition(":")[0] if self.stand_in else None

    @property
    def stand_in_function(self) -> str | None:
        return self.stand_in.partition(":")[2] if self.stand_in else None


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
    slos: tuple[Slo, ...] = ()
    """Tier 3: system health; alarms page on-call and roll deployments back. At least one
    when an environment serves an endpoint; a product that only scores in batch has none (its
    runs' failed, late and empty alarms stand in for them)."""

    def slo(self, kind: SloKind) -> Slo | None:
        return next((s for s in self.slos if s.name is kind), None)

    def stand_in_problems(self, folder: Path) -> list[tuple[str, str]]:
        """Each KPI stand-in whose file (beside the manifest, in `folder`) exists but does not
        define its function, read without importing it (a missing file is the manifest's
        missing-code check: Manifest.code_files)."""
        problems: list[tuple[str, str]] = []
        for i, kpi in enumerate(self.business_kpis):
            if kpi.stand_in_file is None or kpi.stand_in_function is None:
                continue
            file = folder / kpi.stand_in_file
            if not file.is_file():
                continue
            field = f"metrics.business_kpis[{i}].stand_in"
            try:
                found = defines(file.read_text(encoding="utf-8"), kpi.stand_in_function)
            except (SyntaxError, UnicodeDecodeError, ValueError) as err:
                problems.append((field, f"the stand-in of KPI {kpi.name}: {kpi.stand_in_file} "
                                 f"does not parse as Python: {err}"))  # fmt: skip
                continue
            if not found:
                problems.append((field, f"the stand-in of KPI {kpi.name}: {kpi.stand_in_file} "
                                 f"defines no function {kpi.stand_in_function}(batch, "
                                 "prediction)"))  # fmt: skip
        return problems
