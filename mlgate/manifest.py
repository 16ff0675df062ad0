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
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

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
ScheduleExpression = Annotated[str, StringConstraints(pattern=r"^(cron|rate)\(.+\)$")]
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


class ModelMetricName(StrEnum):
    """Metrics the evaluation step computes on the test split."""

    PRECISION = "precision"
    RECALL = "recall"
    F1 = "f1"
    AUC = "auc"
    ACCURACY = "accuracy"
    FALSE_POSITIVE_RATE = "false_positive_rate"


class ModelMetric(_Model):
    """A model metric: training gates and monitors hold the model to its threshold."""

    name: ModelMetricName
    """One of precision, recall, f1, auc, accuracy, false_positive_rate."""
    description: Text
    """Why this metric matters for the product."""
    owner: Slug
    """Contact id of the metric's owner."""
    threshold: float = Field(ge=0.0, le=1.0)
    """Value on the held-out test split the model must meet (0 to 1)."""
    direction: Direction
    """at_least or at_most."""

    def met_by(self, value: float) -> bool:
        if self.direction is Direction.AT_LEAST:
            return value >= self.threshold
        return value <= self.threshold


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


class DataSource(_Model):
    name: Slug
    """Identifier of the source; names its Glue table."""
    format: Literal["csv", "json", "parquet"]
    """csv, json or parquet."""
    prefix: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_/-]*/$")]
    """Prefix inside the raw bucket, ending in '/'."""


class Data(_Model):
    sources: tuple[DataSource, ...] = Field(min_length=1)
    """Raw data sources the crawler catalogs and the ETL job reads."""
    schedule: ScheduleExpression = "cron(0 2 * * ? *)"
    """When the Glue workflow runs (crawl -> ETL -> quality)."""
    quality_rules: tuple[Text, ...] = Field(min_length=1)
    """Glue Data Quality (DQDL) rules evaluated on the curated table after each ETL run."""
    etl_workers: int = Field(default=2, ge=2, le=100)
    """Glue workers the ETL job starts with (G.1X)."""
    etl_max_workers: int = Field(default=10, ge=2, le=299)
    """Upper bound of Glue auto-scaling."""
    etl_timeout_minutes: int = Field(default=60, ge=5, le=2880)
    """The ETL job is stopped after this long."""

    @model_validator(mode="after")
    def _workers(self) -> Data:
        if self.etl_max_workers < self.etl_workers:
            raise ValueError("etl_max_workers must be at least etl_workers")
        return self


class ModelSettings(_Model):
    algorithm: Literal["xgboost"] = "xgboost"
    """Training algorithm: the SageMaker built-in XGBoost container."""
    framework_version: Text = "1.7-1"
    """Version of the built-in container image."""
    target_column: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*$")] = "is_fraud"
    """Label column in the curated data."""
    hyperparameters: dict[str, str | int | float] = Field(default_factory=dict)
    """Hyper-parameters passed to the training job as they are."""
    training_instance_type: InstanceType = "ml.m5.xlarge"
    """Instance type of the training job."""
    training_instance_count: int = Field(default=1, ge=1, le=20)
    """Instances of the training job."""
    processing_instance_type: InstanceType = "ml.m5.large"
    """Instance type of preprocessing, evaluation and baseline jobs."""
    retrain_schedule: ScheduleExpression = "cron(0 4 ? * MON *)"
    """When the training pipeline runs on a schedule (besides after ETL and on drift)."""


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


class Autoscaling(_Model):
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
    """Share of requests and responses captured for Model Monitor."""
    staging: EnvironmentServing
    """Endpoint settings in staging."""
    prod: EnvironmentServing
    """Endpoint settings in prod."""


class Monitoring(_Model):
    schedule: ScheduleExpression = "cron(0 * ? * * *)"
    """When Model Monitor checks captured traffic against the baseline."""
    drift_threshold: float = Field(default=0.1, gt=0, le=1)
    """Share of features that may violate the baseline before drift is declared."""
    retrain_cooldown_hours: int = Field(default=24, ge=1, le=720)
    """After drift starts retraining, further drift waits this long."""
    ground_truth_s3_uri: Annotated[str, StringConstraints(pattern=r"^s3://\S+/$")] | None = None
    """Where labelled outcomes land; enables the model-quality monitor when set."""


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
    """Algorithm, hyper-parameters, instances."""
    serving: Serving
    """Endpoints per environment."""
    monitoring: Monitoring = Monitoring()
    """Model Monitor schedule and retraining policy."""
    environments: Environments
    """Accounts and regions."""

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

    def _rollout_problems(self) -> list[tuple[str, str]]:
        """Safety invariants of blue/green traffic shifting, per environment."""
        problems: list[tuple[str, str]] = []
        window = max(s.detection_window_seconds for s in self.metrics.slos)
        for env in ENV_NAMES:
            serving = self.env_serving(env)
            rollout = serving.rollout
            path = f"serving.{env}.rollout"
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
            if rollout.bake_minutes * 60 < window:
                problems.append(
                    (
                        f"{path}.bake_minutes",
                        f"{rollout.bake_minutes} min bake is shorter than the rollback alarms' "
                        f"detection window ({window // 60} min: period x evaluation periods of "
                        "the slowest SLO alarm), so a bad canary could pass before its alarm "
                        f"fires; bake at least {-(-window // 60)} min",
                    )
                )
            step = (
                rollout.canary_percent
                if rollout.policy is RolloutPolicy.CANARY
                else (rollout.linear_step_percent)
            )
            shifted = -(-serving.instance_count * step // 100)  # whole instances, rounded up
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


def load_manifest(path: str | Path) -> Manifest:
    """Read, parse and validate one manifest file; raise ManifestError naming every problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
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
    """Validate an already-parsed document; raise ManifestError naming every problem."""
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
            problems.extend(inner.problems)
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
            problems.append((loc, f"{e['input']!r} is not allowed; expected {ctx.get('expected')}"))
        elif kind == "value_error":
            problems.append((loc, str(inner) if inner is not None else e["msg"]))
        else:
            problems.append((loc, f"{e['msg'][0].lower()}{e['msg'][1:]} (got {e['input']!r})"))
    return [(loc, msg) for loc, msg in problems if not (loc in meant and msg == "is required")]


_PATTERN_HELP = {
    r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$": "a lowercase slug (letters, digits, dashes; 3-32 chars)",
    r"^[0-9]{12}$": "a 12-digit AWS account id",
    r"^(cron|rate)\(.+\)$": "an EventBridge schedule such as cron(0 2 * * ? *) or rate(1 day)",
    r"^ml\.[a-z0-9]+\.[a-z0-9]+$": "a SageMaker instance type such as ml.m5.large",
    r"^R[0-9]{1,3}$": "a risk id such as R1",
    r"^[UW][A-Z0-9]{6,}$": "a Slack member id such as U024BE7LH",
    r"^https://\S+$": "an https:// URL",
    r"^s3://\S+/$": "an s3://bucket/prefix/ URI ending in '/'",
    r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$": "an email address",
    r"^[a-z0-9][a-z0-9_/-]*/$": "an S3 prefix ending in '/'",
    r"^[A-Za-z][A-Za-z0-9]{1,100}$": "a CloudWatch metric name (letters and digits)",
    r"^[a-z_][a-z0-9_]*$": "a column name (lowercase letters, digits, underscores)",
}


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


def manifest_paths(target: str | Path) -> list[Path]:
    """A manifest file, or every *.yaml / *.yml file of a folder, sorted."""
    target = Path(target)
    if target.is_dir():
        files = sorted([*target.glob("*.yaml"), *target.glob("*.yml")])
        if not files:
            raise ManifestError(target, [("", "folder holds no *.yaml manifest")])
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
