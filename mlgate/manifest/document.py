"""The manifest itself: every section, and the rules that cross sections."""

from __future__ import annotations

import difflib
from pathlib import Path

from pydantic import (
    Field,
    PrivateAttr,
    model_validator,
)

from mlgate.manifest import schedules
from mlgate.manifest.base import ENV_NAMES, EnvName, _CrossFieldErrors, _duplicates, _Model
from mlgate.manifest.catalog import framework_problem
from mlgate.manifest.cost import Cost
from mlgate.manifest.data import NUMERIC_TYPES, Data, _not_a_column
from mlgate.manifest.environments import Environment, Environments, Retention
from mlgate.manifest.gates import Gate, GateKind, GatePlacement, Rice, Risk
from mlgate.manifest.metrics import METRICS_BY_PROBLEM, Metrics
from mlgate.manifest.model import ModelSettings
from mlgate.manifest.product import Contact, Product
from mlgate.manifest.serving import (
    Delivery,
    EnvironmentServing,
    Monitoring,
    MonitoringEngine,
    RolloutPolicy,
    Serving,
    ServingMode,
)
from mlgate.manifest.tracking import Tracking

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
    cost: Cost = Cost()
    """Budget, idle-endpoint alarm, spot training, and the monthly estimate's assumptions."""
    tracking: Tracking | None = None
    """Experiment tracking with MLflow (none: the pipeline logs to no tracking server)."""

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

    def capacity_summary(self, env: EnvName) -> str:
        """The environment's mode and standing capacity: what runs, and is billed, when no
        request arrives."""
        serving = self.env_serving(env)
        if serving.mode is ServingMode.BATCH:
            batch = serving.batch_settings
            return (
                f"batch {serving.instance_count} x {serving.instance_type} while a run scores, "
                f"{batch.trigger()}: 0 between runs"
            )
        component = serving.component_capacity_summary()
        if component is not None:
            return component
        if serving.mode is ServingMode.SERVERLESS:
            assert serving.serverless is not None  # _mode_problems requires it
            warm = serving.serverless.provisioned_concurrency
            standing = (
                f"{warm} provisioned concurrency always warm"
                if warm
                else "0 when idle (cold starts)"
            )
            return (
                f"serverless {serving.serverless.memory_mb} MB, up to "
                f"{serving.serverless.max_concurrency} concurrent: {standing}; not monitored "
                "for drift (serverless endpoints capture no traffic)"
            )
        scaling = serving.autoscaling
        if serving.mode is ServingMode.ASYNC:
            settings = serving.async_settings
            low = 0 if settings.scale_to_zero else scaling.min_instances
            idle = "0 when idle" if low == 0 else f"{low} x {serving.instance_type} always on"
            return (
                f"async {low}..{scaling.max_instances} x {serving.instance_type} on the "
                f"backlog ({settings.backlog_per_instance} queued per instance): {idle}"
            )
        low = scaling.min_instances if scaling.enabled else serving.instance_count
        return f"real-time {low} x {serving.instance_type} always on"

    def rollout_summary(self, env: EnvName) -> str:
        """The environment's mode and standing capacity, then what a release does to its
        traffic, in instances and percent: what SageMaker will do."""
        summary = f"{self.capacity_summary(env)}; release: {self._traffic_summary(env)}"
        shadow = self.env_serving(env).shadow
        if shadow is None:
            return summary
        serving = self.env_serving(env)
        return (
            f"{summary}; before it, a shadow test: {shadow.instance_count} x "
            f"{serving.shadow_instance_type()} answer {shadow.sampling_percent} % of the "
            f"requests for {shadow.minutes} min (billed while they run), added and removed by "
            "two more endpoint updates through the same rollout"
        )

    def _traffic_summary(self, env: EnvName) -> str:
        serving = self.env_serving(env)
        if serving.mode is ServingMode.BATCH:
            rows = serving.batch_settings.sample_rows
            compared = ", and compared with prod's version's on the same rows" * (env == "staging")
            return (
                f"a sample run of {rows} rows with the new version (its output checked"
                f"{compared}), then the next run scores with it; the previous version is one "
                "switch away"
            )
        component = serving.component_rollout_summary()
        if component is not None:
            return component
        rollout = serving.rollout
        count = serving.instance_count
        fleet = f"{count} instance{'s' if count > 1 else ''}"
        bake = f"bakes {rollout.bake_minutes} min while the rollback alarms watch"
        if serving.mode is ServingMode.SERVERLESS:
            return f"all at once to a new serverless fleet, then {bake}"
        if serving.mode is ServingMode.ASYNC and serving.async_settings.scale_to_zero:
            fleet = f"the instances running then (0 to {serving.autoscaling.max_instances})"
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
        for i, kpi in enumerate(self.metrics.business_kpis):
            if kpi.stand_in_file:
                files[f"metrics.business_kpis[{i}].stand_in (KPI {kpi.name})"] = self.path(
                    kpi.stand_in_file
                )
        return files

    def contact(self, contact_id: str) -> Contact:
        return next(c for c in self.product.contacts if c.id == contact_id)

    def environment(self, name: EnvName) -> Environment:
        return getattr(self.environments, name)  # type: ignore[no-any-return]

    def env_serving(self, name: EnvName) -> EnvironmentServing:
        return getattr(self.serving, name)  # type: ignore[no-any-return]

    def monitored(self, name: EnvName) -> bool:
        """Whether monitoring and the drift loop watch the environment: an endpoint's captured
        traffic, or a batch environment's runs (their inputs and predictions). Serverless
        endpoints do not support data capture
        (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html#serverless-endpoints-how-it-works-exclusions),
        so a serverless environment is not monitored and has no drift responder."""
        return self.env_serving(name).mode is not ServingMode.SERVERLESS

    def is_batch(self, name: EnvName) -> bool:
        """Whether the environment scores in batch (no endpoint)."""
        return self.env_serving(name).mode is ServingMode.BATCH

    def is_remote(self, name: EnvName) -> bool:
        """True when the environment lives in another account than staging, the home of the
        product-wide stacks (registry, pipelines, audit trail): it gets its own foundation."""
        return self.environment(name).account != self.environments.staging.account

    @property
    def pipeline_gates(self) -> tuple[Gate, ...]:
        """Gates CodePipeline runs, in manifest order (the registry gate runs in SageMaker)."""
        return tuple(g for g in self.gates if g.placement is not GatePlacement.MODEL_REGISTRY)

    @property
    def rollback_approvers(self) -> tuple[str, ...]:
        """Who may roll an environment back: delivery.rollback_approvers, or else the approvers
        of the last manual gate before prod (every gate precedes the prod deploy)."""
        if self.delivery.rollback_approvers:
            return self.delivery.rollback_approvers
        manual = [g for g in self.gates if g.kind is GateKind.MANUAL]
        return manual[-1].approvers if manual else ()

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
        for i, who in enumerate(self.delivery.rollback_approvers):
            person(f"delivery.rollback_approvers[{i}]", who)

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
        problems.extend(self._mode_problems())
        problems.extend(self._batch_problems())
        problems.extend(self._rollout_problems())
        problems.extend(self._model_problems())
        problems.extend(self._retention_problems())
        problems.extend(self._tracking_problems())
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
        problems += self._image_problems()
        return problems

    def _image_problems(self) -> list[tuple[str, str]]:
        """The algorithm's framework version has an image in every environment's region (the
        SageMaker SDK's image tables, read without importing the SDK: mlgate/infra/ml/images.py),
        so synth never stops on it later with a traceback."""
        found: list[tuple[str, str]] = []
        regions = dict.fromkeys(self.environment(env).region for env in ENV_NAMES)
        for region in regions:
            problem = framework_problem(self.model.algorithm, self.model.version, region)
            if problem and ("model.framework_version", problem) not in found:
                found.append(("model.framework_version", problem))
        return found

    @property
    def experiment(self) -> str:
        """The MLflow experiment the training pipeline's runs go to."""
        tracking = self.tracking
        return (tracking.experiment if tracking else None) or self.product.name

    def _tracking_problems(self) -> list[tuple[str, str]]:
        """An existing SageMaker tracking server lives where the pipeline runs: the jobs sign
        their calls with the pipeline's role, for the server's own region (the sagemaker-mlflow
        plugin builds the endpoint from the ARN's region)."""
        tracking = self.tracking
        if tracking is None or tracking.server_arn is None:
            return []
        _, _, _, region, account, _ = tracking.server_arn.split(":", 5)
        home = self.environments.staging
        if (region, account) != (home.region, home.account):
            return [
                (
                    "tracking.server_arn",
                    f"the server is in account {account}, {region}; the training pipeline runs "
                    f"in staging's account {home.account}, {home.region}: name a server there, "
                    "or create: true",
                )
            ]
        return []

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

    def _mode_problems(self) -> list[tuple[str, str]]:
        """Each serving mode's settings, and the combinations SageMaker refuses."""
        problems: list[tuple[str, str]] = []
        for env in ENV_NAMES:
            serving = self.env_serving(env)
            path = f"serving.{env}"
            given = serving.model_fields_set
            mode = serving.mode
            if mode is not ServingMode.SERVERLESS and "serverless" in given:
                problems.append(
                    (f"{path}.serverless", f"only a serverless environment takes it ({mode})")
                )
            if mode is not ServingMode.ASYNC and "async_" in given:
                problems.append((f"{path}.async", f"only an async environment takes it ({mode})"))
            if mode is ServingMode.SERVERLESS:
                if serving.serverless is None:
                    problems.append(
                        (
                            f"{path}.serverless",
                            "a serverless environment names its memory_mb and "
                            "max_concurrency (and provisioned_concurrency to stay warm)",
                        )
                    )
                # Serverless Inference has no instances to choose, count or scale
                # (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html).
                for field in ("instance_type", "instance_count", "autoscaling"):
                    if field in given:
                        problems.append(
                            (
                                f"{path}.{field}",
                                "a serverless endpoint has no instances: SageMaker scales it "
                                "within serverless.max_concurrency; drop this",
                            )
                        )
                # Canary and linear steps are sized in instances (TrafficRoutingConfig's
                # CanarySize, LinearStepSize: a share of the variant's instance count,
                # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html),
                # and a serverless variant has none: all at once is what SageMaker can do.
                if serving.rollout.policy is not RolloutPolicy.ALL_AT_ONCE:
                    problems.append(
                        (
                            f"{path}.rollout.policy",
                            f"{serving.rollout.policy.value} steps are sized in instances and a "
                            "serverless endpoint has none: use all_at_once (SageMaker shifts "
                            "all traffic to the new fleet, then bakes while the rollback alarms "
                            "watch)",
                        )
                    )
            if mode is ServingMode.ASYNC:
                settings = serving.async_settings
                # Asynchronous endpoints publish no InvocationsPerInstance
                # (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html):
                # they scale on the backlog.
                if "target_invocations_per_instance" in serving.autoscaling.model_fields_set:
                    problems.append(
                        (
                            f"{path}.autoscaling.target_invocations_per_instance",
                            "an async endpoint publishes no InvocationsPerInstance to track: "
                            "it scales on async.backlog_per_instance",
                        )
                    )
                if settings.scale_to_zero and not serving.autoscaling.enabled:
                    problems.append(
                        (
                            f"{path}.async.scale_to_zero",
                            "scaling to zero and waking on new work are autoscaling policies: "
                            "autoscaling.enabled must stay true",
                        )
                    )
                # With no instance running, a canary or linear step has no fleet to take a
                # share of; mlgate does not release onto a fleet it cannot size.
                if (
                    settings.scale_to_zero
                    and serving.rollout.policy is not RolloutPolicy.ALL_AT_ONCE
                ):
                    problems.append(
                        (
                            f"{path}.rollout.policy",
                            f"{serving.rollout.policy.value} steps are a share of the running "
                            "instances, and an async endpoint scaled to zero has none: use "
                            "all_at_once, or async.scale_to_zero: false",
                        )
                    )
        return problems

    def _batch_problems(self) -> list[tuple[str, str]]:
        """Where a batch environment can run, and what an endpoint needs that batch does not."""
        problems: list[tuple[str, str]] = []
        home = self.environments.staging
        endpoints = [env for env in ENV_NAMES if not self.is_batch(env)]
        if endpoints and not self.metrics.slos:
            problems.append(
                (
                    "metrics.slos",
                    f"{' and '.join(endpoints)} serve{'s' if len(endpoints) == 1 else ''} an "
                    "endpoint, whose rollback alarms and on-call pages are its SLOs: declare at "
                    "least one (only a product that scores in batch everywhere has none)",
                )
            )
        for env in ENV_NAMES:
            if not self.is_batch(env):
                continue
            where = self.environment(env)
            # A run reads the curated table where the ETL wrote it, with the product's key of
            # that account and region; mlgate grants no other account or region access to it.
            if (where.account, where.region) != (home.account, home.region):
                problems.append(
                    (
                        f"environments.{env}",
                        f"a batch environment scores the curated data where it lives, in "
                        f"staging's account {home.account} and region {home.region}; {env} is "
                        f"in {where.account} {where.region}: move it there, or serve an "
                        "endpoint in it",
                    )
                )
            if self.monitoring.engine is MonitoringEngine.MODEL_MONITOR:
                problems.append(
                    (
                        "monitoring.engine",
                        f"{env} scores in batch, whose inputs and predictions mlgate's "
                        "Evidently job reads; Model Monitor schedules for batch transform are "
                        "not built in mlgate: use engine evidently",
                    )
                )
        return problems

    def _rollout_problems(self) -> list[tuple[str, str]]:
        """Safety invariants of blue/green traffic shifting, per environment."""
        problems: list[tuple[str, str]] = []
        if not self.metrics.slos:
            return problems  # every environment scores in batch (_batch_problems)
        window = max(s.detection_window_seconds for s in self.metrics.slos)
        for env in ENV_NAMES:
            if self.is_batch(env):
                continue  # a switch between runs, no traffic shifted
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
            if rollout.policy is RolloutPolicy.ALL_AT_ONCE or serving.mode is (
                ServingMode.SERVERLESS
            ):
                if (
                    env == "prod"
                    and not rollout.allow_all_at_once
                    and rollout.policy is RolloutPolicy.ALL_AT_ONCE
                ):
                    problems.append(
                        (
                            f"{path}.policy",
                            "prod never shifts all traffic at once unless the manifest says so: "
                            "use canary or linear, or set allow_all_at_once: true",
                        )
                    )
                continue
            if serving.inference_component is not None:
                # A rolling update of the component's copies, not instance steps
                # (EnvironmentServing._component_fit checks its batch).
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
