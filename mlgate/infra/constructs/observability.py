"""ProductMonitoring: one facade for a product environment's dashboard and alarms.

The dashboard reads top to bottom like the manifest's metric tiers: business KPIs, model
metrics, system health, then the state of every alarm. Every graph names its owner. Alarms are
made by the environment's AlarmFactory (mlgate/infra/constructs/alarms.py), which names, describes
and routes them: critical to on-call, warning to the owner of the metric.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra.constructs.alarms import CRITICAL, WARNING, AlarmFactory, Owner, hook_alarm
from mlgate.infra.constructs.batch import BATCH_RUN_COUNTS, batch_metric
from mlgate.infra.constructs.drift import DRIFT_METRICS_NAMESPACE
from mlgate.infra.naming import PREFIX, EnvName, Names, pascal

WIDTH = 24
# A graph stays readable, and within CloudWatch's per-widget limit, with this many lines.
MAX_DRIFT_LINES = 25
TOP_FEATURES = 10
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
EVIDENTLY = "evidently"
"""The monitoring engine (the manifest's monitoring.engine) whose metrics mlgate publishes;
the other, model-monitor, is SageMaker Model Monitor's."""


@dataclass(frozen=True)
class Kpi:
    """A business KPI: its metric (`namespace`, `metric_name`), `target`, reached from below
    (`at_least`) or above, its `unit`, `description` and `owner`."""

    name: str
    description: str
    owner: Owner
    target: float
    at_least: bool
    unit: str
    metric_name: str
    namespace: str


@dataclass(frozen=True)
class ModelMetric:
    """A model metric held to `threshold`, at least (`at_least`) or at most; its owner."""

    name: str
    description: str
    owner: Owner
    threshold: float
    at_least: bool


@dataclass(frozen=True)
class Owners:
    """Who owns the product: its product manager, ML lead (drift) and on-call (system)."""

    product_manager: Owner
    ml_lead: Owner
    on_call: Owner


@dataclass(frozen=True)
class ProductMonitoringProps:
    """What one environment's dashboard and alarms know of the product: its `names` (the
    environment's), how it presents itself, its owners, its monitoring `engine` (EVIDENTLY or
    model-monitor) and the hours between two monitoring runs, its metric tiers, whether
    ground truth is declared, its drift thresholds and payload columns, and its p99 latency
    SLO in ms (None: none)."""

    names: Names
    display_name: str
    objective: str
    runbook_url: str
    owners: Owners
    engine: str
    run_hours: int
    kpis: tuple[Kpi, ...]
    model_metrics: tuple[ModelMetric, ...]
    ground_truth: bool
    retrain_cooldown_hours: int
    drift_threshold: float
    feature_drift_thresholds: tuple[float, ...]
    payload_columns: tuple[str, ...]
    latency_slo_ms: float | None
    mode: str = "real-time"
    batch_late_minutes: int | None = None
    """A batch environment's max_run_minutes: its run-time panel's line (the late alarm)."""
    """The endpoint's serving mode: real-time, serverless (no capture, so no drift panels or
    alarm; cold starts instead of instances) or async (backlog size and age instead of
    invocations and instances)."""


def s3_console_url(uri: str, region: str) -> str:
    """The S3 console's page of a prefix, listing its objects."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return (
        f"https://s3.console.aws.amazon.com/s3/buckets/{bucket}?region={region}"
        f"&prefix={prefix.rstrip('/')}/&showversions=false"
    )


@dataclass(frozen=True)
class Hook:
    """A Lambda hook to watch: its name on the dashboard and its function."""

    name: str
    function: lambda_.IFunction
    failure_alarm_name: str | None = None
    """Its dead-letter queue's alarm (made with the hook, in the hook's stack), by name."""


class ProductMonitoring(Construct):
    """Dashboard and alarms of one product environment (keyword-only inputs, see __init__)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: ProductMonitoringProps,
        key: kms.IKey,
        alarms: AlarmFactory,
        endpoint: str,
        variant: str,
        glue_jobs: list[str],
        training_pipeline: str | None,
        hooks: list[Hook],
        model_alarms: list[str],
        external_alarms: list[str],
        reports_uri: str | None,
        event_rules: list[str],
        component: str | None = None,
    ) -> None:
        """`reports_uri`: where monitoring writes its reports (linked from the header; None
        where nothing monitors the traffic);
        `event_rules`: the EventBridge rules of this environment's account whose failed
        deliveries page on-call; `alarms` the environment's alarm factory."""
        super().__init__(scope, id)
        self.reports_uri = reports_uri
        if props.names.env is None:
            raise ValueError("a dashboard's names are those of its environment")
        self.props, self.endpoint, self.variant = props, endpoint, variant
        self.component = component
        """The inference component the endpoint hosts (None: its model is the variant's)."""
        self.env: EnvName = props.names.env
        self.product = props.names.product
        self.names = props.names
        self.glue_jobs = glue_jobs
        self.factory = alarms.with_owner_topics(self.owner_topic)
        self.alarms: list[cw.AlarmBase] = []
        # Picked by the tier they were made for, never by parsing a name (a name can still be
        # a token when the composite is built).
        self.model_tier: list[cw.AlarmBase] = []
        self.owner_topics: dict[str, sns.Topic] = {}
        self._key = key
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.names.dashboard(),
            default_interval=durations.hours(24),
        )
        self._header()
        self._business_tier()
        self._model_tier()
        self._system_tier(glue_jobs, training_pipeline, hooks)
        self._event_rules(event_rules)
        # The hooks' dead-letter alarms (critical) live in the hooks' stacks: listed by name.
        failed = [h.failure_alarm_name for h in hooks if h.failure_alarm_name]
        # An external alarm is named, or given by ARN when it lives in another Region.
        imported = {
            name: cw.Alarm.from_alarm_arn(self, f"External{i}", name)
            if name.startswith("arn:")
            else cw.Alarm.from_alarm_name(self, f"External{i}", name)
            for i, name in enumerate([*model_alarms, *external_alarms, *failed])
        }
        self.model_unhealthy = self._composite([imported[n] for n in model_alarms])
        self.dashboard.add_widgets(cw.TextWidget(markdown="## Alarms", width=WIDTH, height=1))
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(
                title="Every alarm of this environment (rollback and drift alarms included)",
                alarms=[*self.alarms, *imported.values()],
                width=WIDTH,
                height=6,
            )
        )

    # --- owners and alarms -------------------------------------------------------------------

    def owner_topic(self, contact: Owner) -> sns.Topic:
        """One warning topic per owner, mailed to them."""
        if contact.id not in self.owner_topics:
            topic = sns.Topic(
                self,
                f"Owner{pascal(contact.id)}",
                topic_name=self.names.resource("owner", contact.id),
                display_name=f"{self.props.display_name} warnings for {contact.name}",
                master_key=self._key,
                enforce_ssl=True,
            )
            topic.add_subscription(subs.EmailSubscription(contact.email))
            self.owner_topics[contact.id] = topic
        return self.owner_topics[contact.id]

    def _held_to(
        self,
        *,
        title: str,
        line: str,
        tier: str,
        what: str,
        owner: Owner,
        metric: cw.IMetric,
        value: float,
        at_least: bool,
        missing: cw.TreatMissingData,
        meaning: str,
        checks: tuple[str, str, str],
        periods: int = 1,
    ) -> cw.IWidget:
        """A metric held to a value (a KPI's target, a model metric's threshold): its graph
        with the line, and the warning its owner gets when it is on the wrong side."""
        self.add_alarm(
            tier=tier,
            what=what,
            severity=WARNING,
            owner=owner,
            metric=metric,
            threshold=value,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD
            if at_least
            else cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            missing=missing,
            meaning=meaning,
            checks=checks,
            periods=periods,
        )
        return cw.GraphWidget(
            title=f"{title} — owner: {owner.name}",
            left=[metric],
            left_annotations=[cw.HorizontalAnnotation(value=value, label=line)],
            width=8,
            height=6,
        )

    def add_alarm(
        self,
        *,
        tier: str,
        what: str,
        severity: str,
        owner: Owner,
        metric: cw.IMetric,
        threshold: float,
        comparison: cw.ComparisonOperator,
        missing: cw.TreatMissingData,
        meaning: str,
        checks: tuple[str, str, str],
        periods: int = 1,
    ) -> cw.Alarm:
        """An alarm of this dashboard, through the environment's factory; shown in the alarm
        status widget, and a model-tier one in the composite "model unhealthy"."""
        alarm = self.factory.alarm(
            self,
            f"{pascal(tier)}{pascal(what)}",
            tier=tier,
            what=what,
            severity=severity,
            owner=owner,
            metric=metric,
            threshold=threshold,
            comparison=comparison,
            missing=missing,
            meaning=meaning,
            checks=checks,
            periods=periods,
        )
        self.alarms.append(alarm)
        if tier == "model":
            self.model_tier.append(alarm)
        return alarm

    # --- tiers -------------------------------------------------------------------------------

    def _header(self) -> None:
        p, o = self.props, self.props.owners
        engine = p.engine
        owners = (
            f"PM {o.product_manager.name} · ML lead {o.ml_lead.name} · on-call {o.on_call.name}"
        )
        if self.reports_uri is None:
            monitoring = f"**Monitoring:** none — a {p.mode} endpoint captures no traffic"
        else:
            reports = s3_console_url(self.reports_uri, Stack.of(self).region)
            monitoring = f"**Monitoring reports** ({engine}): [latest runs]({reports})"
        self.dashboard.add_widgets(
            cw.TextWidget(
                markdown=(
                    f"# {p.display_name} — {self.env}\n{p.objective}\n\n"
                    f"**Owners:** {owners} · **Runbooks:** [{p.runbook_url}]({p.runbook_url})"
                    f" · {monitoring} · **Mode:** {p.mode}"
                ),
                width=WIDTH,
                height=3,
            )
        )

    def _business_tier(self) -> None:
        self.dashboard.add_widgets(
            cw.TextWidget(markdown="## Tier 1 — Business KPIs", width=WIDTH, height=1)
        )
        widgets: list[cw.IWidget] = []
        model_metrics = ", ".join(x.name for x in self.props.model_metrics)
        for kpi in self.props.kpis:
            owner = kpi.owner
            metric = cw.Metric(
                namespace=kpi.namespace,
                metric_name=kpi.metric_name,
                dimensions_map={"Product": self.product, "Environment": self.env},
                statistic="Average",
                period=durations.hours(1),
            )
            word = "at least" if kpi.at_least else "at most"
            widgets.append(
                self._held_to(
                    title=f"{kpi.name} ({kpi.unit})",
                    line=f"target {word} {kpi.target}",
                    tier="business",
                    what=kpi.name,
                    owner=owner,
                    metric=metric,
                    value=kpi.target,
                    at_least=kpi.at_least,
                    # KPIs arrive in batches; a quiet hour says nothing about the business.
                    missing=cw.TreatMissingData.MISSING,
                    meaning=f"{kpi.description} It is off its target ({word} {kpi.target} "
                    f"{kpi.unit}).",
                    checks=(
                        f"the model metrics tier below ({model_metrics}) for one off its threshold",
                        "recent releases in the release pipeline and its audit trail",
                        "upstream business changes (campaigns, pricing, new markets)",
                    ),
                    periods=3,
                )
            )
        self.dashboard.add_widgets(*widgets)

    def _model_tier(self) -> None:
        self.dashboard.add_widgets(
            cw.TextWidget(markdown="## Tier 2 — Model metrics", width=WIDTH, height=1)
        )
        evidently = self.props.engine == EVIDENTLY
        if self.reports_uri is None:
            # Serverless: no captured traffic, so no live model metrics and no drift.
            widgets: list[cw.IWidget] = [
                cw.TextWidget(
                    markdown="**Live model metrics and drift:** none — serverless endpoints "
                    "do not support data capture, so this environment's traffic is not "
                    "monitored. The thresholds are held at training and at the release gates.",
                    width=8,
                    height=6,
                )
            ]
        else:
            widgets = self._live_model_metrics(evidently)
            widgets += self._evidently_drift() if evidently else self._model_monitor_drift()
        if not self.glue_jobs:
            # Glue runs in the home account; its data-quality result is shown there.
            self.dashboard.add_widgets(*widgets)
            return
        ml_lead = self.props.owners.ml_lead
        widgets.append(
            cw.GraphWidget(
                # Metric names Glue Data Quality publishes with CloudWatch metrics enabled, as
                # documented; not observable offline.
                title=f"Latest data-quality result (Glue) — owner: {ml_lead.name}",
                left=[
                    cw.Metric(
                        namespace="Glue Data Quality",
                        metric_name=f"glue.data.quality.rules.{outcome}",
                        statistic="Maximum",
                        period=durations.days(1),
                    )
                    for outcome in ("passed", "failed")
                ],
                width=8,
                height=6,
            )
        )
        self.dashboard.add_widgets(*widgets)

    def _monitoring_metric(self, name: str, statistic: str = "Maximum") -> cw.Metric:
        """A metric of mlgate's Evidently job (docs/monitoring.md), one value per run."""
        return cw.Metric(
            namespace=self.names.monitoring_namespace(),
            metric_name=name,
            dimensions_map={"Product": self.product, "Environment": self.env},
            statistic=statistic,
            period=self._run_period,
        )

    @property
    def _run_period(self) -> Duration:
        """One monitoring run per period: the schedule's interval."""
        return durations.hours(self.props.run_hours)

    def _live_model_metrics(self, evidently: bool) -> list[cw.IWidget]:
        """Live model metrics against ground truth, with their thresholds and alarms; none
        without ground truth."""
        if not self.props.ground_truth:
            # No ground truth: live model quality cannot be measured, so no panel or alarm
            # pretends to; the thresholds are held at training and at the quality gate.
            return [
                cw.TextWidget(
                    markdown="**Live model metrics:** none — this product declares no ground "
                    "truth (`monitoring.ground_truth_s3_uri`). Its thresholds are enforced by "
                    "the training pipeline's checks and at the release gates.",
                    width=8,
                    height=6,
                )
            ]
        schedule = self.names.monitoring_schedule("model-quality")
        source = "Evidently" if evidently else "Model Monitor"
        widgets: list[cw.IWidget] = []
        for m in self.props.model_metrics:
            owner = m.owner
            metric = (
                self._monitoring_metric(f"model_{m.name}", "Average")
                if evidently
                else cw.Metric(
                    namespace=MODEL_METRICS_NAMESPACE,
                    metric_name=m.name,
                    dimensions_map={"Endpoint": self.endpoint, "MonitoringSchedule": schedule},
                    statistic="Average",
                    period=durations.hours(1),
                )
            )
            word = "at least" if m.at_least else "at most"
            widgets.append(
                self._held_to(
                    title=f"Live {m.name} ({source})",
                    line=f"threshold {word} {m.threshold}",
                    tier="model",
                    what=m.name,
                    owner=owner,
                    metric=metric,
                    value=m.threshold,
                    at_least=m.at_least,
                    # Model quality needs ground truth, which lands late; no report is not a
                    # breach.
                    missing=cw.TreatMissingData.NOT_BREACHING,
                    meaning=f"Live {m.name} against ground truth fell short of {word} "
                    f"{m.threshold}: {m.description}",
                    checks=(
                        "the drift graph and the latest monitoring report (dashboard header)",
                        "whether ground truth labels arrived complete",
                        "the retraining pipeline's last execution and its evaluation report",
                    ),
                )
            )
        return widgets

    def _drift_alarm(self, metric: cw.IMetric, threshold: float, meaning: str) -> None:
        ml_lead = self.props.owners.ml_lead
        # A warning for the ML lead, who owns drift; on-call hears of it through the composite
        # "model unhealthy" alarm, which watches every model-tier alarm. Its ALARM state is
        # what starts the drift responder with the Evidently engine (stacks/serving.py).
        self.add_alarm(
            tier="model",
            what="data-drift",
            severity=WARNING,
            owner=ml_lead,
            metric=metric,
            threshold=threshold,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # Monitoring runs on a schedule; an hour without a report is no evidence of drift.
            missing=cw.TreatMissingData.NOT_BREACHING,
            meaning=f"{meaning} Retraining starts by itself (once per "
            f"{self.props.retrain_cooldown_hours} h).",
            checks=(
                "the latest monitoring report (linked in the dashboard header)",
                "upstream data changes in the ETL quality results",
                "the retraining pipeline's execution",
            ),
        )

    def _evidently_drift(self) -> list[cw.IWidget]:
        """Drift as the Evidently job measures it: the share of drifted features against
        drift_threshold (the alarm), and the features that drift most."""
        monitoring = self.props
        ml_lead = self.props.owners.ml_lead
        share = self._monitoring_metric("drifted_feature_share")
        self._drift_alarm(
            share,
            monitoring.drift_threshold,
            f"The share of drifted features in {self.endpoint}'s traffic is above "
            f"{monitoring.drift_threshold}.",
        )
        namespace = self.names.monitoring_namespace()
        # Metrics Insights ranks the per-feature series the job publishes, whatever their
        # number (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
        # query_with_cloudwatch-metrics-insights.html).
        top = cw.MathExpression(
            expression=(
                f'SELECT MAX(feature_drift_score) FROM SCHEMA("{namespace}", Environment, '
                f"Feature, Product) WHERE Product = '{self.product}' AND Environment = "
                f"'{self.env}' GROUP BY Feature ORDER BY MAX() DESC LIMIT {TOP_FEATURES}"
            ),
            label="",
            period=self._run_period,
        )
        thresholds = sorted({0.1, *monitoring.feature_drift_thresholds})
        return [
            cw.GraphWidget(
                title=f"Share of drifted features per run — owner: {ml_lead.name}",
                left=[share],
                left_annotations=[
                    cw.HorizontalAnnotation(
                        value=monitoring.drift_threshold,
                        label=f"drift_threshold {monitoring.drift_threshold}",
                    )
                ],
                left_y_axis=cw.YAxisProps(min=0, max=1),
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title=f"Top {TOP_FEATURES} feature drift scores — owner: {ml_lead.name}",
                left=[top],
                left_annotations=[
                    cw.HorizontalAnnotation(value=t, label=f"feature threshold {t:g}")
                    for t in thresholds
                ],
                width=8,
                height=6,
            ),
        ]

    def _model_monitor_drift(self) -> list[cw.IWidget]:
        """Drift as Model Monitor reports it: per-column distances, and violating runs."""
        ml_lead = self.props.owners.ml_lead
        violations = cw.Metric(
            namespace=DRIFT_METRICS_NAMESPACE,
            metric_name="DriftViolations",
            dimensions_map={"Endpoint": self.endpoint},
            statistic="Sum",
            period=durations.hours(1),
        )
        self._drift_alarm(
            violations,
            0,
            f"Model Monitor found the traffic of {self.endpoint} violating the training baseline.",
        )
        return [
            cw.GraphWidget(
                title=f"Data drift: violations per monitoring run — owner: {ml_lead.name}",
                left=[violations],
                # Model Monitor publishes one drift distance per payload column, named after
                # the baseline's header: https://docs.aws.amazon.com/sagemaker/latest/dg/
                # model-monitor-interpreting-cloudwatch.html
                right=[
                    cw.Metric(
                        namespace=DATA_METRICS_NAMESPACE,
                        metric_name=f"feature_baseline_drift_{column}",
                        dimensions_map={
                            "Endpoint": self.endpoint,
                            "MonitoringSchedule": self.names.monitoring_schedule("data-quality"),
                        },
                        statistic="Maximum",
                        period=durations.hours(1),
                        label=column,
                    )
                    for column in self.props.payload_columns[:MAX_DRIFT_LINES]
                ],
                right_annotations=[
                    cw.HorizontalAnnotation(
                        value=self.props.drift_threshold, label="drift threshold"
                    )
                ],
                width=8,
                height=6,
            )
        ]

    def _endpoint(self, name: str, statistic: str, namespace: str = "AWS/SageMaker") -> cw.Metric:
        return cw.Metric(
            namespace=namespace,
            metric_name=name,
            # An inference component's invocation metrics are published per component, as
            # its rollback alarms read them (mlgate/infra/constructs/endpoint.py).
            dimensions_map=(
                {"InferenceComponentName": self.component}
                if self.component and namespace == "AWS/SageMaker"
                else {"EndpointName": self.endpoint, "VariantName": self.variant}
            ),
            statistic=statistic,
            period=durations.minutes(1),
        )

    def _system_tier(self, glue_jobs: list[str], pipeline: str | None, hooks: list[Hook]) -> None:
        self.dashboard.add_widgets(
            cw.TextWidget(markdown="## Tier 3 — System health", width=WIDTH, height=1)
        )
        on_call = self.props.owners.on_call
        latency_slo = self.props.latency_slo_ms
        annotations = (
            [
                cw.HorizontalAnnotation(
                    value=latency_slo * 1000,
                    label=f"SLO p99 {latency_slo:g} ms",
                )
            ]
            if latency_slo is not None
            else []
        )
        owner = f" — owner: {on_call.name}"
        host = "/aws/sagemaker/Endpoints"
        widgets: list[cw.IWidget] = (
            self._batch_panels(owner)
            if self.props.mode == "batch"
            else self._async_panels(owner, annotations)
            if self.props.mode == "async"
            else self._serverless_panels(owner, annotations)
            if self.props.mode == "serverless"
            else self._real_time_panels(owner, annotations, host)
        )
        if pipeline:  # None where the pipeline runs in another account (the home dashboard has it)
            widgets.append(self._pipeline_panel(pipeline, owner))
        self._system_rest(widgets, glue_jobs, hooks, owner)

    def _request_panels(
        self, owner: str, annotations: list[cw.HorizontalAnnotation]
    ) -> list[cw.IWidget]:
        """What an endpoint that answers requests shows first (real-time and serverless):
        invocations, latency with the SLO line, errors."""
        return [
            cw.GraphWidget(
                title=f"Invocations{owner}",
                left=[self._endpoint("Invocations", "Sum")],
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title=f"Model latency p50 / p90 / p99 (µs){owner}",
                left=[self._endpoint("ModelLatency", p) for p in ("p50", "p90", "p99")],
                left_annotations=annotations,
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title=f"4xx / 5xx / model errors{owner}",
                left=[
                    self._endpoint(n, "Sum")
                    for n in ("Invocation4XXErrors", "Invocation5XXErrors", "InvocationModelErrors")
                ],
                width=8,
                height=6,
            ),
        ]

    def _real_time_panels(
        self, owner: str, annotations: list[cw.HorizontalAnnotation], host: str
    ) -> list[cw.IWidget]:
        return [
            *self._request_panels(owner, annotations),
            cw.GraphWidget(
                title=f"CPU, memory and disk per instance (%){owner}",
                left=[
                    self._endpoint(n, "Average", host)
                    for n in ("CPUUtilization", "MemoryUtilization", "DiskUtilization")
                ],
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title=f"Instances (invocations per instance, scaling signal){owner}",
                left=[self._endpoint("InvocationsPerInstance", "Sum")],
                right=[self._endpoint("CPUUtilization", "SampleCount", host)],
                width=8,
                height=6,
            ),
        ]

    def _batch_panels(self, owner: str) -> list[cw.IWidget]:
        """No endpoint: the runs (succeeded, failed, empty, late), the rows they scored and how
        long they took (the batch_run hook's metrics, mlgate/infra/constructs/batch.py)."""
        day = 24 * 60

        def runs(name: str) -> cw.Metric:
            return batch_metric(self.names, name, "Sum", day)

        return [
            cw.GraphWidget(
                title=f"Batch runs: succeeded / failed / empty / late per day{owner}",
                left=[runs(n) for n in BATCH_RUN_COUNTS],
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title=f"Rows scored per run{owner}",
                left=[batch_metric(self.names, "BatchRowsScored", "Sum", day)],
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title=f"Run time (minutes, longest per day){owner}",
                left=[batch_metric(self.names, "BatchRunMinutes", "Maximum", day)],
                left_annotations=[
                    cw.HorizontalAnnotation(
                        value=late, label=f"late after {late} min (batch-run-late)"
                    )
                    for late in [self.props.batch_late_minutes]
                    if late is not None
                ],
                width=8,
                height=6,
            ),
        ]

    def _serverless_panels(
        self, owner: str, annotations: list[cw.HorizontalAnnotation]
    ) -> list[cw.IWidget]:
        """No instances: invocations, latency, errors, and cold starts (ModelSetupTime:
        https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-monitoring.html)."""
        return [
            *self._request_panels(owner, annotations),
            cw.GraphWidget(
                title=f"Cold starts: model setup time (µs) and how many{owner}",
                left=[self._endpoint("ModelSetupTime", "Maximum")],
                right=[self._endpoint("ModelSetupTime", "SampleCount")],
                width=8,
                height=6,
            ),
        ]

    def _queue(self, name: str, statistic: str) -> cw.Metric:
        """An async queue metric: per endpoint, no VariantName
        (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html)."""
        return cw.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint},
            statistic=statistic,
            period=durations.minutes(1),
        )

    def _async_panels(
        self, owner: str, annotations: list[cw.HorizontalAnnotation]
    ) -> list[cw.IWidget]:
        """The queue instead of request latency: backlog size and age, requests processed and
        failed, instances; and an alarm when the oldest request waits too long."""
        on_call = self.props.owners.on_call
        age = self._queue("ApproximateAgeOfOldestRequest", "Maximum")
        # A request older than this has waited through a wake from zero and more: the queue is
        # stuck (no capacity, or every instance failing). 15 min: AWS's default invocation
        # timeout (InvokeEndpointAsync's InvocationTimeoutSeconds).
        stuck = 15 * 60
        self.add_alarm(
            tier="system",
            what="async-oldest-request-age",
            severity=CRITICAL,
            owner=on_call,
            metric=age,
            threshold=stuck,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # No queue metric: nothing queued.
            missing=cw.TreatMissingData.NOT_BREACHING,
            meaning=f"The oldest request queued on {self.endpoint} has waited over {stuck // 60} "
            "min: the queue is not draining.",
            checks=(
                "the instance count and scaling activities (did it wake from zero?)",
                "InvocationFailures and the failure prefix in S3",
                "the endpoint's CloudWatch logs (data-log streams name each inference id)",
            ),
            periods=3,
        )
        return [
            cw.GraphWidget(
                title=f"Backlog: queued requests (total and per instance){owner}",
                left=[self._queue("ApproximateBacklogSize", "Maximum")],
                right=[self._queue("ApproximateBacklogSizePerInstance", "Average")],
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title=f"Age of the oldest queued request (s){owner}",
                left=[age],
                left_annotations=[
                    cw.HorizontalAnnotation(value=stuck, label=f"stuck after {stuck // 60} min")
                ],
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title=f"Requests processed / failed, 5xx{owner}",
                left=[
                    self._endpoint(n, "Sum")
                    for n in ("InvocationsProcessed", "InvocationFailures", "Invocation5XXErrors")
                ],
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title=f"Model latency p50 / p99 (µs), time in backlog p99 (µs){owner}",
                left=[self._endpoint("ModelLatency", p) for p in ("p50", "p99")],
                right=[self._endpoint("TimeInBacklog", "p99")],
                left_annotations=annotations,
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title=f"Instances (0 when idle) and backlog without capacity{owner}",
                left=[self._endpoint("CPUUtilization", "SampleCount", "/aws/sagemaker/Endpoints")],
                right=[self._queue("HasBacklogWithoutCapacity", "Maximum")],
                width=8,
                height=6,
            ),
        ]

    def _pipeline_panel(self, pipeline: str, owner: str) -> cw.IWidget:
        return cw.GraphWidget(
            title=f"Training pipeline executions{owner}",
            left=[
                cw.Metric(
                    namespace="AWS/Sagemaker/ModelBuildingPipeline",
                    metric_name=name,
                    dimensions_map={"PipelineName": pipeline},
                    statistic="Sum",
                    period=durations.hours(1),
                )
                for name in ("ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed")
            ],
            width=8,
            height=6,
        )

    def _system_rest(
        self, widgets: list[cw.IWidget], glue_jobs: list[str], hooks: list[Hook], owner: str
    ) -> None:
        on_call = self.props.owners.on_call
        self.dashboard.add_widgets(*widgets)
        self.dashboard.add_widgets(
            *[
                cw.GraphWidget(
                    title=f"Glue {job}: failed tasks and duration (s){owner}",
                    left=[
                        cw.Metric(
                            namespace="Glue",
                            metric_name="glue.driver.aggregate.numFailedTasks",
                            dimensions_map={"JobName": job, "JobRunId": "ALL", "Type": "count"},
                            statistic="Sum",
                            period=durations.hours(1),
                        )
                    ],
                    right=[
                        cw.Metric(
                            namespace="Glue",
                            metric_name="glue.driver.aggregate.elapsedTime",
                            dimensions_map={"JobName": job, "JobRunId": "ALL", "Type": "count"},
                            statistic="Maximum",
                            period=durations.hours(1),
                        )
                    ],
                    width=12,
                    height=6,
                )
                for job in glue_jobs
            ]
        )
        hook_widgets: list[cw.IWidget] = []
        for hook in hooks:
            errors = hook.function.metric_errors(period=durations.minutes(5))
            hook_widgets.append(
                cw.GraphWidget(
                    title=f"Hook {hook.name}: errors and throttles{owner}",
                    left=[errors, hook.function.metric_throttles(period=durations.minutes(5))],
                    width=6,
                    height=5,
                )
            )
            self.add_alarm(
                tier="system",
                what=hook_alarm(hook.name, "errors"),
                severity=WARNING,
                owner=on_call,
                metric=errors,
                threshold=0,
                comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                # A hook that did not run has not failed.
                missing=cw.TreatMissingData.NOT_BREACHING,
                meaning=f"The {hook.name} hook raised errors; releases or gates may be stuck.",
                checks=(
                    f"the {hook.name} function's log group",
                    "the release pipeline's current execution",
                    "recent changes to the manifest or the stack",
                ),
            )
        self.dashboard.add_widgets(*hook_widgets)

    def _event_rules(self, rules: list[str]) -> None:
        """A rule that could not deliver an event (its retries spent) drops it, and only its
        FailedInvocations metric says so
        (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html): each
        rule pages on-call, as its notice, approval or start would have."""
        if not rules:
            return
        on_call = self.props.owners.on_call
        prefix = f"{PREFIX}-{self.product}-"
        metrics = []
        for rule in rules:
            failed = cw.Metric(
                namespace="AWS/Events",
                metric_name="FailedInvocations",
                dimensions_map={"RuleName": rule},
                statistic="Sum",
                period=durations.minutes(5),
            )
            metrics.append(failed)
            self.add_alarm(
                tier="system",
                what=f"rule-{rule.removeprefix(prefix)}-failed-invocations",
                severity=CRITICAL,
                owner=on_call,
                metric=failed,
                threshold=0,
                comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                # A rule that matched nothing has dropped nothing.
                missing=cw.TreatMissingData.NOT_BREACHING,
                meaning=f"EventBridge could not deliver an event of rule {rule} after its "
                "retries and dropped it: a notice, approval or start never arrived.",
                checks=(
                    f"the rule's target and its resource policy (aws events list-targets-by-"
                    f"rule --rule {rule})",
                    "the target's KMS key policy and the topic or function policy",
                    "replay the event from the source once the target accepts it",
                ),
            )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="EventBridge rules: events dropped after retries (FailedInvocations)"
                f" — owner: {on_call.name}",
                left=metrics,
                width=WIDTH,
                height=5,
            )
        )

    def _composite(self, model_alarms: list[cw.IAlarm]) -> cw.CompositeAlarm:
        """Model unhealthy: drift, a model-quality alarm or a rollback SLO alarm is firing."""
        rules = [
            cw.AlarmRule.from_alarm(a, cw.AlarmState.ALARM)
            for a in [*self.model_tier, *model_alarms]
        ]
        composite = self.factory.composite(
            self,
            "ModelUnhealthy",
            tier="model",
            what="model-unhealthy",
            severity=CRITICAL,
            rule=cw.AlarmRule.any_of(*rules),
            meaning="The model is unhealthy: drift, a live model-quality breach or an SLO alarm "
            "is firing.",
            checks=(
                "which child alarm fired (alarm status widget)",
                "whether a deployment is rolling out or rolled back",
                "the drift report and the retraining pipeline",
            ),
        )
        self.alarms.append(composite)
        return composite
