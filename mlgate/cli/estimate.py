"""A monthly estimate of what a manifest deploys, at public on-demand prices (prices.json).

Pure arithmetic over the manifest and the price file: endpoints, training and processing
runs, Glue DPU-hours, monitoring jobs. Every figure states its basis, and every assumption is
listed; a price the file lacks is named, never guessed. `make synth`'s summary and the
evidence pack print it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgate.manifest import ENV_NAMES, Manifest, MonitoringEngine, schedules

PRICES = Path(__file__).with_name("prices.json")
HOURS_PER_MONTH = 730
"""AWS's pricing pages count a month as 730 hours; a day is 24 of them, a month 730 / 24 days."""
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
HOURS_PER_WEEK = 7 * 24
TRAINING_PROCESSING_JOBS = 3
"""Processing jobs of one training run (mlgate/infra/ml/pipeline.py): preprocess, evaluate,
and the data-quality baseline, each on model.processing_instance_type."""
EVIDENTLY_JOBS = 3
"""Processing jobs of one Evidently monitoring run (mlgate/infra/constructs/evidently.py):
stage, monitor, publish."""
MONITOR_INSTANCE = "ml.m5.large"
"""The monitoring jobs' instance (mlgate/cli/preflight.py's MONITOR_INSTANCE)."""
QUALITY_JOB_WORKERS = 2
"""The Glue data-quality job's G.1X workers (1 DPU each), run after each ETL run."""


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(path.read_text())
    return found


# --- how often a schedule runs --------------------------------------------------------------

_NAMES = {
    **{d: i + 1 for i, d in enumerate(schedules.DAYS.split("|"))},
    **{m: i + 1 for i, m in enumerate(schedules.MONTHS.split("|"))},
}


def _values(field_: str, low: int, high: int) -> set[int] | None:
    """The values one cron field matches; None for '?', 'L', 'W' or '#' forms (one a month)."""
    if field_ == "?":
        return None
    found: set[int] = set()
    for part in field_.split(","):
        if re.fullmatch(r"L|LW|\d+[LW]|\d#\d", part):  # last, weekday, nth: once a month
            return None
        base, _, step = part.partition("/")
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            a, b = base.split("-")
            start, stop = int(_NAMES.get(a, a)), int(_NAMES.get(b, b))
        else:
            start = int(_NAMES.get(base, base))
            stop = high if step else start
        found.update(range(start, stop + 1, int(step) if step else 1))
    return found


def runs_per_month(expression: str) -> float:
    """Average runs in a 730-hour month of an AWS cron or rate expression: runs a day times
    matching days (day-of-week: matching weekdays x 730/24/7; day-of-month: matching dates,
    '*' every day) times the share of months matched. The year field is ignored."""
    rate = schedules.RATE.match(expression)
    if rate:
        value, unit = int(rate["value"]), rate["unit"].rstrip("s")
        interval = {"minute": value / 60, "hour": value, "day": value * 24}[unit]
        return HOURS_PER_MONTH / interval
    match = re.fullmatch(r"cron\((.*)\)", expression.strip())
    if match is None:
        raise ValueError(f"'{expression}' is neither cron(...) nor rate(...)")
    minutes, hours, dom, month, dow, _ = match[1].split()
    per_day = len(_values(minutes, 0, 59) or {0}) * len(_values(hours, 0, 23) or {0})
    weekdays = _values(dow, 1, 7)
    dates = _values(dom, 1, 31)
    if dow != "?":
        days = len(weekdays) * DAYS_PER_MONTH / 7 if weekdays is not None else 1.0
    elif dom == "*":
        days = DAYS_PER_MONTH
    else:
        days = float(len(dates)) if dates is not None else 1.0
    months = _values(month, 1, 12)
    share = len(months) / 12 if months is not None else 1.0
    return per_day * days * share


# --- the estimate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    item: str
    basis: str
    monthly: float | None
    """USD a month; None when it cannot be priced (the basis says why)."""


@dataclass
class Estimate:
    product: str
    region: str
    lines: list[Line] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    spot_saving: float = 0.0
    """USD a month training saves on spot, against on-demand (0 without use_spot)."""
    off_hours_saving: float = 0.0
    """USD a month the endpoints' off hours save, against the same fleet at every hour."""

    @property
    def total(self) -> float:
        return round(sum(line.monthly or 0.0 for line in self.lines), 2)

    @property
    def unpriced(self) -> list[Line]:
        return [line for line in self.lines if line.monthly is None]


def _off_hours(serving: Any) -> str:
    """The environment's off-hours line, "" without off_hours (read defensively: older
    manifests have none)."""
    summary = getattr(serving, "off_hours_summary", None)
    return (summary() or "") if summary is not None else ""


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _rate(value: float) -> str:
    return f"${value:g}"


def _batch_lines(
    m: Manifest,
    env: str,
    price: Callable[[str, str], float | None],
    missing: Callable[[str], str],
) -> list[Line]:
    """A batch environment: each run's transform on its instances and its prepare job on the
    processing instance, for cost.batch_hours_per_run each; nothing between runs. SageMaker
    prices Batch Transform instance-hours as real-time hosting's
    (https://aws.amazon.com/sagemaker/pricing/: "Real-Time Inference" and "Batch Transform"
    list the same instance prices), so the hosting price is used."""
    serving = m.env_serving(env)  # type: ignore[arg-type]
    batch = serving.batch_settings
    runs = runs_per_month(batch.schedule or m.data.schedule)
    hours = m.cost.batch_hours_per_run
    when = batch.schedule or f"after each ETL run ({m.data.schedule})"
    lines: list[Line] = []
    for item, kind, count, instance in (
        (f"batch {env} transform", "hosting", serving.instance_count, serving.instance_type),
        (f"batch {env} prepare", "processing", 1, m.model.processing_instance_type),
    ):
        basis = f"{runs:.2f} runs ({when}) x {count} x {instance} x {hours:g} h; 0 between runs"
        hourly = price(kind, instance)
        lines.append(
            Line(item, f"{basis}: {missing(instance)}", None)
            if hourly is None
            else Line(item, f"{basis} x {_rate(hourly)}/h", round(runs * count * hours * hourly, 2))
        )
    return lines


def estimate(m: Manifest, prices: dict[str, Any] | None = None) -> Estimate:
    """The month's estimate of `m` at `prices` (prices.json by default)."""
    prices = prices if prices is not None else load_prices()
    region = m.environments.staging.region
    table = prices["regions"].get(region)
    cost = m.cost
    e = Estimate(m.product.name, region)

    def price(kind: str, instance: str) -> float | None:
        return None if table is None else table.get(kind, {}).get(instance)

    def missing(what: str) -> str:
        return f"no {what} price for {region} in mlgate/cli/prices.json"

    # Endpoints: the fleet they start with, every hour of the month; outside working hours
    # the off-hours fleet where the manifest schedules one.
    for env in ENV_NAMES:
        serving = m.env_serving(env)
        mode = str(getattr(serving, "mode", "real-time"))
        if mode == "batch":
            e.lines += _batch_lines(m, env, price, missing)
            continue
        item = f"endpoint {env}"
        off_hours = _off_hours(serving)
        if mode == "serverless":
            basis = "serverless: billed per request, 0 when idle"
            e.lines.append(Line(item, f"{basis}{off_hours and f'; {off_hours}'}", None))
            continue
        count = serving.instance_count
        component = getattr(serving, "inference_component", None)
        if component is not None and component.min_copies == 0:
            # Managed instance scaling takes the endpoint to 0 instances when idle.
            basis = "inference component scaling to 0 when idle: billed per use"
            e.lines.append(Line(item, f"{basis}{off_hours and f'; {off_hours}'}", None))
            continue
        if mode == "async":
            settings = getattr(serving, "async_settings", None)
            if settings is None or getattr(settings, "scale_to_zero", True):
                basis = "async: scales to 0 when idle, billed per use"
                e.lines.append(Line(item, f"{basis}{off_hours and f'; {off_hours}'}", None))
                continue
            count = serving.autoscaling.min_instances
        hourly = price("hosting", serving.instance_type)
        plan = serving.off_hours_plan() if hasattr(serving, "off_hours_plan") else None
        if plan is None:
            basis = f"{count} x {serving.instance_type} x {HOURS_PER_MONTH} h"
            if hourly is None:
                e.lines.append(Line(item, f"{basis}: {missing(serving.instance_type)}", None))
            else:
                monthly = round(count * HOURS_PER_MONTH * hourly, 2)
                e.lines.append(Line(item, f"{basis} x {_rate(hourly)}/h", monthly))
            continue
        # Working hours a week, spread over the month's 730 hours; outside them the
        # off-hours fleet: an async endpoint 0 when idle, a real-time one its off maximum.
        # Each working day starts at autoscaling's minimum at least.
        schedule = serving.off_hours
        assert schedule is not None  # a plan needs one
        count = max(count, serving.autoscaling.min_instances)
        working = HOURS_PER_MONTH * schedule.working_hours_per_week / HOURS_PER_WEEK
        off = HOURS_PER_MONTH - working
        kept = 0 if mode == "async" else plan.off[1]
        basis = (
            f"{count} x {serving.instance_type} x {working:.1f} h of working hours + {kept} x "
            f"{off:.1f} h outside them ({schedule.describe()})"
        )
        if hourly is None:
            e.lines.append(Line(item, f"{basis}: {missing(serving.instance_type)}", None))
            continue
        saving = round((count - kept) * off * hourly, 2)
        e.off_hours_saving = round(e.off_hours_saving + saving, 2)
        e.lines.append(
            Line(
                item,
                f"{basis} x {_rate(hourly)}/h (off hours save {_usd(saving)})",
                round((count * working + kept * off) * hourly, 2),
            )
        )
    # ETL: each scheduled run curates at etl_max_workers, then the quality job.
    etl_runs = runs_per_month(m.data.schedule)
    dpus = m.data.etl_max_workers + QUALITY_JOB_WORKERS
    dpu_hours = etl_runs * dpus * cost.etl_hours_per_run
    glue = None if table is None else table.get("glue_dpu_hour")
    basis = (
        f"{etl_runs:.2f} runs x ({m.data.etl_max_workers} + {QUALITY_JOB_WORKERS}) DPU x "
        f"{cost.etl_hours_per_run:g} h = {dpu_hours:.2f} DPU-h"
    )
    e.lines.append(
        Line("Glue ETL", f"{basis} x {_rate(glue)}/DPU-h", round(dpu_hours * glue, 2))
        if glue is not None
        else Line("Glue ETL", f"{basis}: {missing('Glue DPU-hour')}", None)
    )
    # Training: after each ETL run, on its own schedule, and on drift.
    model = m.model
    retrains = runs_per_month(model.retrain_schedule)
    runs = etl_runs + retrains + cost.drift_retrains_per_month
    hours = runs * cost.training_hours_per_run * model.training_instance_count
    hourly = price("training", model.training_instance_type)
    basis = (
        f"({etl_runs:.2f} after ETL + {retrains:.2f} scheduled + {cost.drift_retrains_per_month} "
        f"drift) runs x {model.training_instance_count} x {model.training_instance_type} x "
        f"{cost.training_hours_per_run:g} h"
    )
    if hourly is None:
        e.lines.append(Line("training", f"{basis}: {missing(model.training_instance_type)}", None))
    else:
        on_demand = hours * hourly
        if cost.use_spot:
            share = float(prices.get("spot_saving", 0.0))
            e.spot_saving = round(on_demand * share, 2)
            e.lines.append(
                Line(
                    "training (spot)",
                    f"{basis} x {_rate(hourly)}/h, less {share:.0%} on spot "
                    f"(saves {_usd(e.spot_saving)})",
                    round(on_demand - e.spot_saving, 2),
                )
            )
        else:
            e.lines.append(Line("training", f"{basis} x {_rate(hourly)}/h", round(on_demand, 2)))
    hourly = price("processing", model.processing_instance_type)
    basis = (
        f"{runs:.2f} runs x {TRAINING_PROCESSING_JOBS} jobs x {model.processing_instance_type} x "
        f"{cost.processing_hours_per_job:g} h"
    )
    jobs_hours = runs * TRAINING_PROCESSING_JOBS * cost.processing_hours_per_job
    e.lines.append(
        Line("training processing", f"{basis} x {_rate(hourly)}/h", round(jobs_hours * hourly, 2))
        if hourly is not None
        else Line("training processing", f"{basis}: {missing(model.processing_instance_type)}",
                  None)
    )  # fmt: skip
    # Shadow tests: at most one release per training run, each running the shadow's fleet for
    # the test's minutes (the two endpoint updates it adds are the rollout's, not priced here).
    for env in ENV_NAMES:
        test = getattr(m.env_serving(env), "shadow", None)
        if test is None:
            continue
        kind = m.env_serving(env).shadow_instance_type()
        hourly = price("hosting", kind)
        basis = (
            f"up to {runs:.2f} releases x {test.instance_count} x {kind} x "
            f"{test.minutes / 60:g} h of shadow test"
        )
        e.lines.append(
            Line(f"shadow test {env}", f"{basis} x {_rate(hourly)}/h",
                 round(runs * test.instance_count * test.minutes / 60 * hourly, 2))
            if hourly is not None
            else Line(f"shadow test {env}", f"{basis}: {missing(kind)}", None)
        )  # fmt: skip
    # Monitoring: each environment's runs, each a few processing jobs.
    mon = m.monitoring
    evidently = mon.engine is MonitoringEngine.EVIDENTLY
    jobs = EVIDENTLY_JOBS if evidently else (2 if mon.ground_truth_s3_uri else 1)
    monitor_runs = HOURS_PER_MONTH / schedules.schedule_interval_hours(mon.schedule)
    hourly = price("processing", MONITOR_INSTANCE)
    for env in ENV_NAMES:
        basis = (
            f"{monitor_runs:.2f} runs x {jobs} jobs x {MONITOR_INSTANCE} x "
            f"{cost.monitoring_hours_per_run:g} h"
        )
        job_hours = monitor_runs * jobs * cost.monitoring_hours_per_run
        e.lines.append(
            Line(f"monitoring {env}", f"{basis} x {_rate(hourly)}/h", round(job_hours * hourly, 2))
            if hourly is not None
            else Line(f"monitoring {env}", f"{basis}: {missing(MONITOR_INSTANCE)}", None)
        )
    # Experiment tracking: a tracking server mlgate creates bills per hour it runs, whatever it
    # logs; one given by ARN or URI is someone else's bill.
    tracking = getattr(m, "tracking", None)
    if tracking is not None and tracking.create:
        server = f"MLflow tracking server {tracking.size.value}"
        hourly = price("mlflow", tracking.size.value)
        e.lines.append(
            Line("experiment tracking", f"{server} x {HOURS_PER_MONTH} h x {_rate(hourly)}/h",
                 round(HOURS_PER_MONTH * hourly, 2))
            if hourly is not None
            else Line("experiment tracking", f"{server}, every hour: {missing(server)}", None)
        )  # fmt: skip
    e.assumptions = [
        f"prices: {prices.get('source', '?')}, as of {prices.get('as_of', '?')}, {region}, USD, "
        "on-demand",
        f"a month is {HOURS_PER_MONTH} hours; schedules are counted over it (cron, rate)",
        "endpoints run their starting instance_count all month (autoscaling adds to it); "
        "with off_hours, in working hours only, and outside them the off-hours fleet (async: "
        "0, as when idle)",
        f"each run's hours: training {cost.training_hours_per_run:g}, processing job "
        f"{cost.processing_hours_per_job:g}, ETL {cost.etl_hours_per_run:g}, monitoring job "
        f"{cost.monitoring_hours_per_run:g}, batch run {cost.batch_hours_per_run:g} (the "
        "manifest's cost section)",
        "not counted: S3 storage and requests, data transfer, CloudWatch, KMS, Lambda, "
        "CodePipeline, support plan",
    ]
    return e


def summary_lines(e: Estimate) -> list[str]:
    """The estimate as the synth summary prints it."""
    lines = [f"Monthly estimate of {e.product} ({e.region}, USD, on-demand list prices):"]
    for line in e.lines:
        figure = _usd(line.monthly) if line.monthly is not None else "not estimated"
        lines.append(f"  {line.item:22} {figure:>12}  {line.basis}")
    lines.append(f"  {'total':22} {_usd(e.total):>12}")
    if e.spot_saving:
        lines.append(f"  spot training saves about {_usd(e.spot_saving)} a month")
    if e.off_hours_saving:
        lines.append(f"  off hours save about {_usd(e.off_hours_saving)} a month")
    lines += [f"  assumes: {a}" for a in e.assumptions]
    return lines
