"""Serving (rollout, autoscaling), monitoring and delivery settings."""

from __future__ import annotations

import difflib
import functools
import itertools
import re
import zoneinfo
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from mlgate.manifest.base import (
    EventBridgeSchedule,
    InstanceType,
    MonitorSchedule,
    RelativePath,
    Slug,
    _CrossFieldErrors,
    _Model,
)
from mlgate.manifest.shadow import SHADOW_EXCLUSIONS, ShadowTest


class RolloutPolicy(StrEnum):
    CANARY = "canary"
    LINEAR = "linear"
    ALL_AT_ONCE = "all_at_once"


BLUE_GREEN_LINEAR_MIN_PERCENT = 10
"""The smallest linear step of an endpoint variant's blue/green update (TrafficRoutingConfig's
LinearStepSize: 10 to 50 % of the variant's instances)."""


class Rollout(_Model):
    """Blue/green traffic shifting for one environment."""

    policy: RolloutPolicy
    """canary, linear or all_at_once blue/green traffic shifting."""
    canary_percent: int = Field(default=10, ge=1, le=50)
    """canary: share of capacity that takes traffic first."""
    linear_step_percent: int = Field(default=25, ge=5, le=50)
    """linear: share of capacity shifted at each step (10 to 50 % on an endpoint's variant, 5 to
    50 % of an inference component's copies)."""
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


class ServingMode(StrEnum):
    """How an environment's endpoint serves: each mode has the same release path (gates,
    verifier, alarms, dashboard)."""

    REAL_TIME = "real-time"
    """Instances always on, answering InvokeEndpoint."""
    SERVERLESS = "serverless"
    """SageMaker Serverless Inference: no instances, billed per request, 0 when idle."""
    ASYNC = "async"
    """SageMaker Asynchronous Inference: requests queued in S3, instances scaled on the
    backlog, down to 0 when idle."""
    BATCH = "batch"
    """SageMaker Batch Transform over the curated data, on a schedule or after each ETL run:
    no endpoint; instances only while a run scores."""


SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
"""ServerlessConfig.MemorySizeInMB's values (https://docs.aws.amazon.com/sagemaker/latest/
APIReference/API_ProductionVariantServerlessConfig.html)."""


class Serverless(_Model):
    """A serverless endpoint's capacity (ProductionVariantServerlessConfig)."""

    memory_mb: int = 2048
    """Memory of each concurrent copy of the model: 1024 to 6144 in steps of 1024; vCPUs grow
    with it."""
    max_concurrency: int = Field(default=20, ge=1, le=200)
    """Concurrent invocations the endpoint serves; more are throttled."""
    provisioned_concurrency: int | None = Field(default=None, ge=1, le=200)
    """Invocations kept warm (no cold start), billed while provisioned; at most
    max_concurrency. None: 0 when idle."""

    @model_validator(mode="after")
    def _capacity(self) -> Serverless:
        if self.memory_mb not in SERVERLESS_MEMORY_MB:
            raise ValueError(
                f"memory_mb {self.memory_mb} is not one SageMaker offers: "
                f"{', '.join(map(str, SERVERLESS_MEMORY_MB))}"
            )
        if (
            self.provisioned_concurrency is not None
            and self.provisioned_concurrency > self.max_concurrency
        ):
            raise ValueError(
                f"provisioned_concurrency {self.provisioned_concurrency} is above "
                f"max_concurrency {self.max_concurrency}: SageMaker needs it at most that"
            )
        return self


class AsyncServing(_Model):
    """An asynchronous endpoint's queue (AsyncInferenceConfig) and its scaling on the backlog.

    https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html"""

    max_concurrent_invocations_per_instance: int | None = Field(default=None, ge=1, le=1000)
    """Requests SageMaker sends each instance's container at once (None: SageMaker picks)."""
    backlog_per_instance: int = Field(default=5, ge=1, le=1000)
    """Target tracking value of ApproximateBacklogSizePerInstance: queued requests per
    instance before scaling out."""
    scale_to_zero: bool = True
    """Idle: 0 instances (autoscaling's minimum is 0), woken by the first queued request;
    False keeps autoscaling.min_instances always on."""


class BatchScoring(_Model):
    """A batch environment's runs (SageMaker Batch Transform): when they start, what they
    score, and how a release's sample run is judged.

    Each run prepares the curated rows as the model's payload (a SageMaker Processing job),
    scores them with the environment's live model version (a Batch Transform job), and
    registers its predictions as a partition of the environment's Glue `predictions` table
    (docs/platform-engineer.md, "Batch scoring")."""

    schedule: EventBridgeSchedule | None = None
    """When runs start: an EventBridge cron(...) or rate(...) expression, in UTC. Give this
    or after_etl."""
    after_etl: bool = False
    """Start a run after each successful run of the product's ETL job, on the data it has just
    curated. Give this or schedule."""
    input_prefix: (
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9/_=.-]{0,900}/$")] | None
    ) = None
    """A prefix of the curated bucket to score (ends with /); None: the whole curated table."""
    sample_rows: int = Field(default=500, ge=10, le=100_000)
    """Rows of a release's sample run: the deploy verifier scores them with the new version,
    and in staging the quality gate compares its predictions with prod's version's on the same
    rows."""
    max_run_minutes: int = Field(default=180, ge=10, le=2880)
    """A run still going after this long is late (its alarm pages on-call); its jobs stop
    after it (MaxRuntimeInSeconds)."""
    max_payload_mb: int = Field(default=6, ge=1, le=100)
    """The largest mini-batch sent to the model at once (MaxPayloadInMB)."""
    max_prediction_shift: float = Field(default=0.1, gt=0, le=1)
    """Quality gate: the most the sample's predictions may move from prod's version's on the
    same rows (normalized Wasserstein distance for scores, Jensen-Shannon for labels)."""
    max_failure_rate: float = Field(default=0.0, ge=0, le=1)
    """Quality gate: the share of sample rows the new version may leave without a prediction."""
    max_run_time_ratio: float = Field(default=3.0, gt=1, le=100)
    """Quality gate: how many times prod's version's scoring time the new version may take on
    the sample."""

    @model_validator(mode="after")
    def _one_trigger(self) -> BatchScoring:
        if (self.schedule is None) == (not self.after_etl):
            raise _CrossFieldErrors(
                [
                    (
                        "schedule",
                        "a batch environment starts its runs either on a schedule or after "
                        "each ETL run: give schedule, or after_etl: true, not both"
                        if self.after_etl
                        else "a batch environment starts its runs either on a schedule or "
                        "after each ETL run: give schedule, or after_etl: true",
                    )
                ]
            )
        return self

    def trigger(self) -> str:
        """When runs start, in words."""
        return f"on {self.schedule} (UTC)" if self.schedule else "after each successful ETL run"


BATCH_IGNORES = ("shadow", "inference_component", "off_hours", "autoscaling", "rollout")
"""What a batch environment has no use for: it has no endpoint, no traffic to shift or copy,
and no instances between runs."""


ROLLING_BATCH_PERCENT = (5, 50)
"""A rolling update's batch, in % of the inference component's copies
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceComponentRollingUpdatePolicy.html)."""


class InferenceComponent(_Model):
    """The model as an inference component: its copies and what each reserves (real-time).

    The endpoint config holds the instances, the component the model, its copies and what each
    copy reserves (ComputeResourceRequirements)
    (https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints-deploy-models.html).
    When to choose it: EnvironmentServing.inference_component."""

    copies: int = Field(default=1, ge=1, le=100)
    """Copies of the model the component starts with (RuntimeConfig.CopyCount)."""
    min_copies: int = Field(default=1, ge=0, le=100)
    """Autoscaling lower bound of the copies; 0 scales the endpoint to zero instances when
    idle (needs autoscaling.enabled)."""
    max_copies: int = Field(default=4, ge=1, le=100)
    """Autoscaling upper bound of the copies."""
    cpus: float = Field(default=1.0, ge=0.25)
    """CPU cores each copy reserves (NumberOfCpuCoresRequired)."""
    memory_mb: int = Field(default=1024, ge=128)
    """Memory each copy reserves, in MB (MinMemoryRequiredInMb)."""
    target_invocations_per_copy: int = Field(default=500, ge=1)
    """Target tracking value of SageMakerInferenceComponentInvocationsPerCopy."""

    @model_validator(mode="after")
    def _copy_bounds(self) -> InferenceComponent:
        if not self.min_copies <= self.copies <= self.max_copies:
            raise ValueError(
                f"copies {self.copies} is not within min_copies {self.min_copies} and "
                f"max_copies {self.max_copies}"
            )
        return self

    def batch_percent(self, rollout: Rollout) -> int:
        """The rolling update's batch, in % of the copies, for the manifest's rollout."""
        if rollout.policy is RolloutPolicy.CANARY:
            return rollout.canary_percent
        if rollout.policy is RolloutPolicy.LINEAR:
            return rollout.linear_step_percent
        return ROLLING_BATCH_PERCENT[1]

    def rollout_summary(self, rollout: Rollout) -> str:
        """What a release does to the component's copies, as SageMaker's rolling update will."""
        percent = self.batch_percent(rollout)
        batch = -(-self.copies * percent // 100)
        batches = -(-self.copies // batch)
        how = f"{rollout.policy.value} maps to a rolling update of the inference component's copies"
        if rollout.policy is RolloutPolicy.ALL_AT_ONCE:
            how += " (50 %, the largest batch a rolling update takes)"
        return (
            f"{how}: batches of {percent} % = {batch} of {self.copies} copies ({batches} "
            f"batch{'es' if batches > 1 else ''}), each bakes {rollout.bake_minutes} min while "
            "the rollback alarms watch; all of it within "
            f"{rollout.max_execution_timeout_minutes} min; no fleet doubled"
        )

    def capacity_summary(self, instance_type: str, scaling: Autoscaling) -> str:
        """The component's copies and the instances they run on."""
        low = 0 if self.min_copies == 0 else scaling.min_instances
        idle = "0 when idle (scales to zero)" if low == 0 else f"{low} x {instance_type} always on"
        return (
            f"real-time inference component {self.min_copies}..{self.max_copies} copies of "
            f"{self.cpus:g} CPU / {self.memory_mb} MB on {low}..{scaling.max_instances} x "
            f"{instance_type}: {idle}"
        )


WEEK = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
"""AWS cron's day-of-week names, in the order the manifest's days are written and printed."""
CLOCK = re.compile(r"^(?P<hour>[01]?[0-9]|2[0-3]):(?P<minute>[0-5][0-9])$")
"""A 24-hour H:MM or HH:MM time."""


_zones = functools.cache(zoneinfo.available_timezones)
"""The IANA time zones this machine knows (read once: it walks the time zone database)."""


def _minutes(clock: str) -> int:
    """Minutes after midnight of a valid HH:MM time."""
    match = CLOCK.match(clock)
    assert match is not None  # OffHours refused it first
    return int(match["hour"]) * 60 + int(match["minute"])


def _days(text: str) -> tuple[str, ...]:
    """The days `text` names (MON-FRI, MON,WED,FRI, SUN-THU: a range may run through the
    week's end), in WEEK's order; ValueError naming what is wrong."""
    found: set[str] = set()
    for part in text.upper().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        for day in (first, last) if last else (first,):
            if day not in WEEK:
                raise ValueError(
                    f"'{day or part}' in '{text}' is not a day: {', '.join(WEEK)}, as a range "
                    "(MON-FRI) or a list (MON,WED,FRI)"
                )
        low, high = WEEK.index(first), WEEK.index(last or first)
        found.update(WEEK[(low + i) % 7] for i in range((high - low) % 7 + 1))
    return tuple(day for day in WEEK if day in found)


class OffHours(_Model):
    """Staging's working hours; outside them its endpoint scales down.

    Working hours run from `start` to `end` on `days`, in `timezone`. Application Auto Scaling
    runs two scheduled actions on the endpoint's scalable target, in that time zone (daylight
    saving time included): at `end` on each working day the capacity goes down, at `start` it
    comes back to the manifest's
    (https://docs.aws.amazon.com/autoscaling/application/userguide/scheduled-scaling-using-cron-expressions.html)."""

    days: str = "MON-FRI"
    """Working days: a range (MON-FRI, SUN-THU) or a list (MON,TUE,THU) of MON TUE WED THU FRI
    SAT SUN. The other days are off all day."""
    start: str
    """When working hours begin, 24-hour "HH:MM" in quotes (YAML reads 19:00 unquoted as a
    number)."""
    end: str
    """When working hours end, "HH:MM", after `start` on the same day."""
    timezone: str
    """The IANA time zone the hours are in, e.g. Europe/Paris, America/New_York, UTC."""
    instances: int | None = Field(default=None, ge=1, le=100)
    """Capacity outside working hours (default 1, the least that still answers): real-time,
    the instances it keeps (autoscaling's minimum and maximum, at least 1 per SageMaker);
    async, the most instances it wakes (it goes to 0 when idle); serverless, its provisioned
    concurrency."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            hours, minutes = divmod(value, 60)
            raise ValueError(
                f"YAML read this time as the number {value} (it reads {hours}:{minutes:02d} "
                f'unquoted in base 60): write it in quotes, "{hours:02d}:{minutes:02d}"'
            )
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not CLOCK.match(value):
            raise ValueError(f"'{value}' is not a 24-hour time: HH:MM from 00:00 to 23:59")
        return value

    @field_validator("days")
    @classmethod
    def _known_days(cls, value: str) -> str:
        _days(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            close = difflib.get_close_matches(value, _zones(), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"'{value}' is not an IANA time zone (Region/City, e.g. Europe/Paris, or UTC){hint}"
            ) from None
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> OffHours:
        if _minutes(self.end) <= _minutes(self.start):
            raise _CrossFieldErrors(
                [
                    (
                        "end",
                        f"{self.end} is not after start {self.start}: working hours start and "
                        "end on the same day (the hours outside them, overnight included, are "
                        "the off hours)",
                    )
                ]
            )
        return self

    @property
    def working_days(self) -> tuple[str, ...]:
        return _days(self.days)

    def _cron(self, clock: str) -> str:
        hours, minutes = divmod(_minutes(clock), 60)
        return f"cron({minutes} {hours} ? * {','.join(self.working_days)} *)"

    @property
    def start_cron(self) -> str:
        """When working hours begin on each working day, as Application Auto Scaling's
        six-field cron (minutes hours day-of-month month day-of-week year), in `timezone`."""
        return self._cron(self.start)

    @property
    def end_cron(self) -> str:
        """When working hours end on each working day, in `timezone`."""
        return self._cron(self.end)

    @property
    def working_hours_per_week(self) -> float:
        return len(self.working_days) * (_minutes(self.end) - _minutes(self.start)) / 60

    @property
    def longest_off_hours(self) -> float:
        """The longest stretch outside working hours, in hours (a weekend: Friday's end to
        Monday's start)."""
        week = 7 * 24 * 60
        spans = sorted(
            (WEEK.index(d) * 24 * 60 + _minutes(self.start), WEEK.index(d) * 24 * 60
             + _minutes(self.end))
            for d in self.working_days
        )  # fmt: skip
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(spans)]
        gaps.append(spans[0][0] + week - spans[-1][1])
        return max(gaps) / 60

    def describe(self) -> str:
        return f"{self.start}-{self.end} {self.days.upper()} {self.timezone}"


@dataclass(frozen=True)
class OffHoursPlan:
    """What an environment's off-hours schedule moves: `what` (instances or provisioned
    concurrency) between the (minimum, maximum) it has in working hours and outside them."""

    what: str
    working: tuple[int, int]
    off: tuple[int, int]


class EnvironmentServing(_Model):
    mode: ServingMode = ServingMode.REAL_TIME
    """real-time (instances always on), serverless (0 when idle, billed per request), async
    (queued requests, instances scaled on the backlog, 0 when idle) or batch (no endpoint:
    Batch Transform runs, instances only while one scores)."""
    instance_type: InstanceType = "ml.m5.large"
    """Endpoint instance type (real-time and async); a batch run's instances (batch). A type
    with instance storage (m5d, g4dn, g5, p4d...) keeps its volumes there, encrypted by its
    hardware: SageMaker takes no KMS key for them, so none is asked."""
    instance_count: int = Field(default=2, ge=1, le=50)
    """Instances the endpoint starts with (real-time and async); a batch run's (batch)."""
    autoscaling: Autoscaling = Autoscaling()
    """Target-tracking bounds (real-time and async: async tracks the backlog)."""
    serverless: Serverless | None = None
    """Memory and concurrency; serverless mode only (required there)."""
    async_: AsyncServing | None = Field(default=None, alias="async")
    """Queue and backlog scaling; async mode only (default settings when left out)."""
    batch: BatchScoring | None = None
    """When runs start and how a release's sample run is judged; batch mode only (required
    there)."""
    rollout: Rollout
    """Blue/green traffic shifting policy for updates (with inference_component, the rolling
    update it maps to). Not in batch mode: a release switches the version the next run uses."""
    inference_component: InferenceComponent | None = None
    """Host the model as a SageMaker inference component (real-time only). Choose it to share
    the instances between several models or versions, to scale a real-time endpoint to zero
    when idle (min_copies: 0; the first request after an idle spell fails while an instance
    and a copy start, minutes), or to release without doubling the fleet: a release is then a
    rolling update of the copies instead of a blue/green copy of every instance. The rollout
    maps to it: canary_percent or linear_step_percent is the batch (5 to 50 % of the copies,
    AWS's range), all_at_once the largest batch (50 %), bake_minutes each batch's wait while
    the same rollback alarms watch, max_execution_timeout_minutes the update's timeout;
    termination_wait_minutes does not apply (no old fleet is kept). autoscaling's instance
    bounds become the endpoint's managed instance scaling, and the copies scale on
    invocations per copy. Not with off_hours. The gates, verifier and monitoring are the same.
    None: the model in the endpoint's variant, released blue/green."""
    shadow: ShadowTest | None = None
    """A shadow test before each release reaches this environment (real-time only, without
    an inference component): the new version runs as the endpoint's shadow variant on a copy
    of live traffic for `minutes`, and the release stops, before any traffic moves, unless its
    latency, errors and predictions stay within the thresholds of production's. Each release
    then updates the endpoint twice more (adding and removing the shadow variant, each through
    the rollout), and the shadow's instances are billed while it runs. None: no shadow test."""
    off_hours: OffHours | None = None
    """Working hours outside which the endpoint scales down (staging only): real-time to
    off_hours.instances, async to 0 when idle and at most off_hours.instances, serverless with
    provisioned concurrency to off_hours.instances of it. None: the same capacity at every
    hour."""

    @model_validator(mode="before")
    @classmethod
    def _batch_switches(cls, data: Any) -> Any:
        """A batch environment shifts no traffic: its release is a switch of the version the
        next run uses, written here as an all-at-once rollout that nothing reads (the manifest
        gives none: `_batch_fit` refuses one)."""
        if isinstance(data, dict) and data.get("mode") == ServingMode.BATCH.value:
            if "rollout" in data:
                raise _CrossFieldErrors(
                    [
                        (
                            "rollout",
                            "a batch environment shifts no traffic: a release switches the "
                            "version its next run scores with, after the sample run and the "
                            "gates; drop rollout",
                        )
                    ]
                )
            data = {**data, "rollout": {"policy": "all_at_once", "allow_all_at_once": True}}
        return data

    @model_validator(mode="after")
    def _batch_fit(self) -> EnvironmentServing:
        """A batch environment names its runs and nothing an endpoint needs; only it takes
        `batch`."""
        if self.mode is not ServingMode.BATCH:
            if self.batch is not None:
                raise _CrossFieldErrors(
                    [("batch", f"only a batch environment takes it ({self.mode.value})")]
                )
            return self
        problems: list[tuple[str, str]] = []
        if self.batch is None:
            problems.append(
                (
                    "batch",
                    "a batch environment says when its runs start: batch.schedule (a cron or "
                    "rate expression) or batch.after_etl: true",
                )
            )
        for name in BATCH_IGNORES:
            if name != "rollout" and name in self.model_fields_set:
                problems.append(
                    (
                        name,
                        "a batch environment has no endpoint (nothing to shadow, host as a "
                        "component, scale or scale down: its instances run only while a run "
                        "scores): drop this",
                    )
                )
        if problems:
            raise _CrossFieldErrors(problems)
        return self

    @property
    def batch_settings(self) -> BatchScoring:
        """The batch settings of a batch environment (`_batch_fit` requires them)."""
        if self.batch is None:
            raise ValueError(f"a {self.mode.value} environment has no batch settings")
        return self.batch

    @property
    def async_settings(self) -> AsyncServing:
        """The async settings, defaults when the manifest gives none."""
        return self.async_ or AsyncServing()

    @model_validator(mode="after")
    def _shadow_fit(self) -> EnvironmentServing:
        """The endpoints SageMaker gives no shadow variant (SHADOW_EXCLUSIONS)."""
        if self.shadow is None:
            return self
        if self.mode is not ServingMode.REAL_TIME:
            raise _CrossFieldErrors(
                [
                    (
                        "shadow",
                        f"SageMaker runs shadow variants on real-time endpoints only, not "
                        f"{self.mode.value} ones ({SHADOW_EXCLUSIONS}): drop shadow here",
                    )
                ]
            )
        if self.inference_component is not None:
            raise _CrossFieldErrors(
                [
                    (
                        "shadow",
                        "a shadow variant holds a model in the endpoint config, and an "
                        "endpoint hosting an inference component has no model in its variants: "
                        "drop shadow, or inference_component",
                    )
                ]
            )
        return self

    def shadow_instance_type(self) -> str:
        """The shadow variant's instance type (the environment's unless the test names one)."""
        return (self.shadow.instance_type if self.shadow else None) or self.instance_type

    @model_validator(mode="after")
    def _component_fit(self) -> EnvironmentServing:
        """The combinations SageMaker refuses with an inference component, and the manifest's
        settings a component makes meaningless."""
        component = self.inference_component
        if component is None:
            return self
        problems: list[tuple[str, str]] = []
        # Inference components are deployed to real-time endpoints
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints-deploy-models.html).
        if self.mode is not ServingMode.REAL_TIME:
            problems.append(
                (
                    "inference_component",
                    f"only a real-time endpoint hosts inference components ({self.mode.value} "
                    "does not): use mode real-time, or drop inference_component",
                )
            )
        rollout = self.rollout
        low, high = ROLLING_BATCH_PERCENT
        if rollout.policy is RolloutPolicy.CANARY and rollout.canary_percent < low:
            problems.append(
                (
                    "rollout.canary_percent",
                    f"{rollout.canary_percent} % is below the smallest batch of an inference "
                    f"component's rolling update ({low} to {high} % of its copies)",
                )
            )
        if component.min_copies == 0 and not self.autoscaling.enabled:
            # https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html
            problems.append(
                (
                    "inference_component.min_copies",
                    "scaling to zero and waking on the first request are autoscaling policies "
                    "on the component's copies: autoscaling.enabled must stay true",
                )
            )
        if "target_invocations_per_instance" in self.autoscaling.model_fields_set:
            problems.append(
                (
                    "autoscaling.target_invocations_per_instance",
                    "with an inference component the copies scale on invocations per copy: "
                    "set inference_component.target_invocations_per_copy instead",
                )
            )
        if self.off_hours is not None:
            problems.append(
                (
                    "off_hours",
                    "the off-hours schedule moves the variant's instance bounds, which an "
                    "inference component's managed instance scaling owns: scale to zero "
                    "when idle instead (inference_component.min_copies: 0)",
                )
            )
        if problems:
            raise _CrossFieldErrors(problems)
        return self

    @model_validator(mode="after")
    def _blue_green_fit(self) -> EnvironmentServing:
        """A blue/green linear step of an endpoint's variant is 10 to 50 % of its instances
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html,
        LinearStepSize); 5 % is only an inference component's rolling batch. Batch mode has no
        endpoint, so no traffic shift."""
        rollout = self.rollout
        if (
            self.inference_component is None
            and self.mode is not ServingMode.BATCH
            and rollout.policy is RolloutPolicy.LINEAR
            and rollout.linear_step_percent < BLUE_GREEN_LINEAR_MIN_PERCENT
        ):
            raise _CrossFieldErrors(
                [
                    (
                        "rollout.linear_step_percent",
                        f"{rollout.linear_step_percent} % is below the smallest linear step "
                        f"SageMaker's blue/green update takes ({BLUE_GREEN_LINEAR_MIN_PERCENT} "
                        "to 50 % of the variant's instances): raise it, or host the model as "
                        "an inference component (5 % batches)",
                    )
                ]
            )
        return self

    def component_rollout_summary(self) -> str | None:
        """What a release does with an inference component (the rolling update its rollout
        maps to), None without one."""
        component = self.inference_component
        return component.rollout_summary(self.rollout) if component else None

    def component_capacity_summary(self) -> str | None:
        """The inference component's copies and instances, None without one."""
        component = self.inference_component
        if component is None:
            return None
        return component.capacity_summary(self.instance_type, self.autoscaling)

    @model_validator(mode="after")
    def _off_hours_fit(self) -> EnvironmentServing:
        hours = self.off_hours
        if hours is None:
            return self
        problems: list[tuple[str, str]] = []
        off = hours.instances or 1
        scaling = self.autoscaling
        rollout = self.rollout
        if self.mode is ServingMode.REAL_TIME:
            if not scaling.enabled:
                problems.append(
                    (
                        "off_hours",
                        "the schedule moves the variant's autoscaling bounds: "
                        "autoscaling.enabled must stay true",
                    )
                )
            if off > scaling.min_instances:
                problems.append(
                    (
                        "off_hours.instances",
                        f"{off} instances outside working hours is more than "
                        f"autoscaling.min_instances ({scaling.min_instances}) in them",
                    )
                )
            # A release outside working hours runs on the off-hours fleet: its first step is
            # sized on that fleet, in whole instances (Rollout.first_step).
            if rollout.policy is not RolloutPolicy.ALL_AT_ONCE:
                shifted, share = rollout.first_step(off)
                if shifted >= off or share > rollout.max_first_step_percent:
                    problems.append(
                        (
                            "rollout.policy",
                            f"a release outside working hours runs on {off} instance(s), where "
                            f"the {rollout.policy.value} first step is {shifted} instance(s), "
                            f"{share:g} % of the traffic: use all_at_once here, or keep more "
                            "instances off hours (off_hours.instances)",
                        )
                    )
        elif self.mode is ServingMode.ASYNC:
            if off > scaling.max_instances:
                problems.append(
                    (
                        "off_hours.instances",
                        f"{off} instances outside working hours is more than "
                        f"autoscaling.max_instances ({scaling.max_instances}) in them",
                    )
                )
            # Off hours take an async endpoint to 0 when idle; scale_to_zero's own rule (the
            # manifest's serving checks) already says this when it is set.
            if (
                not self.async_settings.scale_to_zero
                and rollout.policy is not RolloutPolicy.ALL_AT_ONCE
            ):
                problems.append(
                    (
                        "rollout.policy",
                        f"{rollout.policy.value} steps are a share of the running instances, "
                        "and outside working hours this async endpoint may have none: use "
                        "all_at_once",
                    )
                )
        elif self.serverless is not None and self.serverless.provisioned_concurrency:
            warm = self.serverless.provisioned_concurrency
            if off > warm:
                problems.append(
                    (
                        "off_hours.instances",
                        f"{off} provisioned concurrency outside working hours is more than "
                        f"serverless.provisioned_concurrency ({warm}) in them",
                    )
                )
        if problems:
            raise _CrossFieldErrors(problems)
        return self

    def off_hours_plan(self) -> OffHoursPlan | None:
        """What the off-hours schedule moves, or None when it has nothing to move
        (off_hours_summary says why)."""
        plan = self._off_hours_bounds()
        return plan if plan is not None and plan.off != plan.working else None

    def _off_hours_bounds(self) -> OffHoursPlan | None:
        """The bounds in and outside working hours, equal or not; None without off_hours or
        for a serverless endpoint without provisioned concurrency (nothing to schedule).

        Application Auto Scaling keeps a variant at 1 instance at least unless it serves
        asynchronous inference
        (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-policy.html,
        https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html), and
        provisioned concurrency is 1 at least
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantServerlessConfig.html).
        An async endpoint may still wake an instance outside working hours: with none allowed,
        queued requests would wait for working hours and expire after their RequestTTLSeconds,
        6 hours at most
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpointAsync.html),
        and the endpoint's oldest-request alarm would page on-call."""
        if self.off_hours is None:
            return None
        off = self.off_hours.instances or 1
        scaling = self.autoscaling
        if self.mode is ServingMode.SERVERLESS:
            warm = self.serverless.provisioned_concurrency if self.serverless else None
            return (
                OffHoursPlan("provisioned concurrency", (warm, warm), (off, off)) if warm else None
            )
        if self.mode is ServingMode.ASYNC:
            low = 0 if self.async_settings.scale_to_zero else scaling.min_instances
            return OffHoursPlan("instances", (low, scaling.max_instances), (0, off))
        return OffHoursPlan("instances", (scaling.min_instances, scaling.max_instances), (off, off))

    def off_hours_summary(self) -> str | None:
        """What happens outside working hours, in a line (the synth summary's estimate prints
        it); None without off_hours."""
        hours = self.off_hours
        if hours is None:
            return None
        head = f"off hours (outside {hours.describe()})"
        plan = self._off_hours_bounds()
        if plan is None:
            return (
                f"{head}: nothing to scale down: a serverless endpoint without provisioned "
                "concurrency is 0 when idle"
            )
        if plan.what == "provisioned concurrency":
            words = [f"provisioned concurrency {low}" for low, _ in (plan.off, plan.working)]
        else:
            words = [
                f"{low if low == high else f'{low}..{high}'} x {self.instance_type}"
                for low, high in (plan.off, plan.working)
            ]
        if plan.off == plan.working:
            return f"{head}: nothing to scale down: {words[1]} at every hour already"
        return f"{head}: {words[0]} instead of {words[1]} (scheduled scaling)"


class ProdServing(EnvironmentServing):
    """Prod's endpoint settings: staging's, without off_hours."""

    off_hours: OffHours | None = None
    """Not in prod: only staging scales down outside working hours."""

    @field_validator("off_hours", mode="before")
    @classmethod
    def _staging_only(cls, value: Any) -> Any:
        # Prod's capacity is what its SLOs and its rollout are sized on, and releases (a
        # version retrained after drift too) reach prod at any hour: a canary on an off-hours
        # fleet of 1 would be all of it.
        if value is not None:
            raise ValueError(
                "only staging scales down outside working hours: prod keeps the capacity its "
                "SLOs and rollout are sized on at every hour (lower "
                "serving.prod.autoscaling.min_instances if its traffic allows)"
            )
        return value


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
    prod: ProdServing
    """Endpoint settings in prod."""


class MonitoringEngine(StrEnum):
    """What watches the endpoint's captured traffic."""

    EVIDENTLY = "evidently"
    """mlgate's Evidently job (mlgate/runtime/monitoring_job) as a SageMaker Processing job, in any
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
    rollback_approvers: tuple[Slug, ...] = ()
    """Contact ids who may roll an environment back (`python -m mlgate rollback ... --by`).
    Empty (the default): the approvers of the last manual gate before prod."""
