"""Staging's off hours (issue 33): the manifest's schedule and its refusals, the scheduled
actions' crons read back as Application Auto Scaling runs them (local time in the manifest's
time zone), the capacity they set, the estimate's saving, for every example product."""

from __future__ import annotations

import copy
import functools
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from mlgate.cli import estimate as E
from mlgate.manifest import Manifest, ManifestError
from mlgate.manifest.loading import parse_manifest
from mlgate.manifest.serving import OffHours

from .conftest import EXAMPLES, PRODUCTS

WEEK = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
PARIS = {"days": "MON-FRI", "start": "08:00", "end": "19:00", "timezone": "Europe/Paris"}


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifest `python -m mlgate new` writes."""
    from mlgate.cli.scaffold import new_product

    return new_product("churn-risk", tmp_path_factory.mktemp("off-hours")) / "manifest.yaml"


@pytest.fixture(params=[*PRODUCTS, "scaffold"])
def base(request: pytest.FixtureRequest) -> Path:
    """Each example product's manifest, and the scaffold's (these tests need no synthesis)."""
    if request.param == "scaffold":
        return Path(request.getfixturevalue("scaffolded"))
    return EXAMPLES / request.param / "manifest.yaml"


@functools.cache
def _read(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(
        path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )
    return loaded


def raw(path: Path) -> dict[str, Any]:
    """A fresh copy of the manifest at `path`, as YAML reads it."""
    return copy.deepcopy(_read(path))


def staging_as(doc: dict[str, Any], mode: str, **settings: Any) -> dict[str, Any]:
    """`doc` with a staging endpoint of `mode` (all at once) and `settings`. A product that
    scores in batch everywhere declares no SLO, which an endpoint needs (its rollback alarms):
    it gets one, owned by its on-call."""
    serving = {"mode": mode, "rollout": {"policy": "all_at_once", "termination_wait_minutes": 0}}
    if mode != "serverless":
        serving.update(instance_type="ml.m5.large", instance_count=2)
    doc["serving"]["staging"] = copy.deepcopy({**serving, **settings})
    metrics = doc.setdefault("metrics", {})
    if not metrics.get("slos"):
        metrics["slos"] = [{
            "name": "error_rate_5xx", "description": "Share of invocations answered 5xx.",
            "owner": doc["product"]["owners"]["on_call"], "threshold": 0.01,
        }]  # fmt: skip
    return doc


def load(path: Path, doc: dict[str, Any]) -> Manifest:
    return parse_manifest(doc, path)


def problems(path: Path, doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc, path)
    return [line.removeprefix(f"{path}: ") for line in caught.value.lines]


# --- the manifest ---------------------------------------------------------------------------


def test_a_bad_schedule_is_refused_naming_each_field(base: Path) -> None:
    doc = raw(base)
    doc["serving"]["staging"]["off_hours"] = {
        "days": "MON-FRI-SUN", "start": 1140, "end": "7h", "timezone": "Europe/Pariss",
    }  # fmt: skip
    at = "serving.staging.off_hours"
    assert sorted(problems(base, doc)) == sorted([
        f"{at}.days: 'FRI-SUN' in 'MON-FRI-SUN' is not a day: MON, TUE, WED, THU, FRI, SAT, "
        "SUN, as a range (MON-FRI) or a list (MON,WED,FRI)",
        f"{at}.start: YAML read this time as the number 1140 (it reads 19:00 unquoted in base "
        '60): write it in quotes, "19:00"',
        f"{at}.end: '7h' is not a 24-hour time: HH:MM from 00:00 to 23:59",
        f"{at}.timezone: 'Europe/Pariss' is not an IANA time zone (Region/City, e.g. "
        "Europe/Paris, or UTC); did you mean 'Europe/Paris'?",
    ])  # fmt: skip
    doc["serving"]["staging"]["off_hours"] = {**PARIS, "start": "19:00", "end": "08:00"}
    assert problems(base, doc) == [
        f"{at}.end: 08:00 is not after start 19:00: working hours start and end on the same day "
        "(the hours outside them, overnight included, are the off hours)"
    ]
    doc["serving"]["staging"]["off_hours"] = {**PARIS, "days": "MON,FUN", "timezone": "Mars/Base"}
    assert problems(base, doc) == [
        f"{at}.days: 'FUN' in 'MON,FUN' is not a day: MON, TUE, WED, THU, FRI, SAT, SUN, as a "
        "range (MON-FRI) or a list (MON,WED,FRI)",
        f"{at}.timezone: 'Mars/Base' is not an IANA time zone (Region/City, e.g. Europe/Paris, or "
        "UTC)",
    ]


def test_prod_never_scales_down_on_a_clock(base: Path) -> None:
    doc = raw(base)
    doc["serving"]["prod"]["off_hours"] = PARIS
    assert problems(base, doc) == [
        "serving.prod.off_hours: only staging scales down outside working hours: prod keeps the "
        "capacity its SLOs and rollout are sized on at every hour (lower "
        "serving.prod.autoscaling.min_instances if its traffic allows)"
    ]


def test_the_off_hours_capacity_must_fit_the_endpoint(base: Path) -> None:
    at = "serving.staging"
    real_time = staging_as(
        raw(base),
        "real-time",
        off_hours={**PARIS, "instances": 3},
        autoscaling={"min_instances": 2, "max_instances": 4, "enabled": False},
    )
    assert problems(base, real_time) == [
        f"{at}.off_hours: the schedule moves the variant's autoscaling bounds: "
        "autoscaling.enabled must stay true",
        f"{at}.off_hours.instances: 3 instances outside working hours is more than "
        "autoscaling.min_instances (2) in them",
    ]
    # A canary on the off-hours fleet of 1 instance would be all of it.
    canary = staging_as(
        raw(base),
        "real-time",
        off_hours=PARIS,
        autoscaling={"min_instances": 4, "max_instances": 4},
        rollout={"policy": "canary", "canary_percent": 10, "bake_minutes": 10},
    )
    assert problems(base, canary) == [
        f"{at}.rollout.policy: a release outside working hours runs on 1 instance(s), where the "
        "canary first step is 1 instance(s), 100 % of the traffic: use all_at_once here, or keep "
        "more instances off hours (off_hours.instances)"
    ]
    canary["serving"]["staging"]["off_hours"]["instances"] = 2
    assert load(base, canary).serving.staging.off_hours_plan() is not None  # 1 of 2: 50 %
    warm = staging_as(raw(base), "async", off_hours={**PARIS, "instances": 3},
                      autoscaling={"min_instances": 1, "max_instances": 2},
                      rollout={"policy": "linear", "bake_minutes": 10},
                      **{"async": {"scale_to_zero": False}})  # fmt: skip
    assert problems(base, warm) == [
        f"{at}.off_hours.instances: 3 instances outside working hours is more than "
        "autoscaling.max_instances (2) in them",
        f"{at}.rollout.policy: linear steps are a share of the running instances, and outside "
        "working hours this async endpoint may have none: use all_at_once",
    ]
    serverless = staging_as(
        raw(base),
        "serverless",
        off_hours={**PARIS, "instances": 5},
        serverless={"max_concurrency": 10, "provisioned_concurrency": 4},
    )
    assert problems(base, serverless) == [
        f"{at}.off_hours.instances: 5 provisioned concurrency outside working hours is more "
        "than serverless.provisioned_concurrency (4) in them"
    ]


Expected = tuple[str, tuple[int, int], tuple[int, int]]


def mode_cases(base: Path) -> dict[str, tuple[Manifest, Expected]]:
    """`base` with staging in each mode that has something to schedule, and what the schedule
    moves: (what, bounds in working hours, bounds outside them)."""
    cases = {
        "real-time": (staging_as(raw(base), "real-time", off_hours=PARIS,
                                 autoscaling={"min_instances": 2, "max_instances": 5}),
                      ("instances", (2, 5), (1, 1))),
        "async kept warm": (staging_as(raw(base), "async",
                                       off_hours={**PARIS, "instances": 2},
                                       autoscaling={"min_instances": 1, "max_instances": 3},
                                       **{"async": {"scale_to_zero": False}}),
                            ("instances", (1, 3), (0, 2))),
        "async to zero": (staging_as(raw(base), "async", off_hours=PARIS,
                                     autoscaling={"min_instances": 1, "max_instances": 3}),
                          ("instances", (0, 3), (0, 1))),
        "serverless warm": (staging_as(raw(base), "serverless", off_hours=PARIS,
                                       serverless={"max_concurrency": 10,
                                                   "provisioned_concurrency": 4}),
                            ("provisioned concurrency", (4, 4), (1, 1))),
    }  # fmt: skip
    return {name: (load(base, doc), expected) for name, (doc, expected) in cases.items()}


def idle_cases(base: Path) -> list[tuple[Manifest, str]]:
    """`base` with off hours that have nothing to move, and what the summary says."""
    head = "off hours (outside 08:00-19:00 MON-FRI Europe/Paris): nothing to scale down: "
    cold = staging_as(raw(base), "serverless", off_hours=PARIS, serverless={"max_concurrency": 10})
    small = staging_as(raw(base), "async", off_hours=PARIS,
                       autoscaling={"min_instances": 1, "max_instances": 1})  # fmt: skip
    return [
        (load(base, cold), f"{head}a serverless endpoint without provisioned concurrency is 0 "
         "when idle"),
        (load(base, small), f"{head}0..1 x ml.m5.large at every hour already"),
    ]  # fmt: skip


def test_each_mode_moves_the_manifest_s_capacity(base: Path) -> None:
    """What the schedule sets in and outside working hours, from the manifest's own bounds
    (tests/constructs/test_endpoint_off_hours.py: the Serving stack's props carry the same)."""
    for name, (m, (what, working, off)) in mode_cases(base).items():
        plan = m.serving.staging.off_hours_plan()
        assert plan is not None, name
        assert (plan.what, plan.working, plan.off) == (what, working, off), name
        # The broken form: the same endpoint without off hours schedules nothing.
        bare = m.serving.staging.model_copy(update={"off_hours": None})
        assert bare.off_hours_plan() is None, name


def test_nothing_to_scale_down_is_said_not_scheduled(base: Path) -> None:
    """A serverless endpoint without provisioned concurrency is 0 when idle already, and an
    async one that scales to zero with one instance at most has nothing to cap: the manifest
    is accepted, nothing is scheduled, and the summary's estimate says so."""
    for m, line in idle_cases(base):
        assert m.serving.staging.off_hours_plan() is None
        assert m.serving.staging.off_hours_summary() == line
        summary = "\n".join(E.summary_lines(E.estimate(m)))
        assert line in summary


def test_the_longest_stretch_outside_working_hours() -> None:
    def longest(**kw: str) -> float:
        return OffHours.model_validate({**PARIS, **kw}).longest_off_hours

    assert longest() == 61  # Friday 19:00 to Monday 08:00
    assert longest(days="MON,WED,FRI", start="09:00", end="17:00") == 64
    assert longest(days="MON-SUN") == 13
    assert longest(days="WED", start="10:30", end="12:00") == 7 * 24 - 1.5


# --- the crons, read back as Application Auto Scaling runs them -------------------------------


def fires_at(cron: str) -> set[tuple[str, int, int]]:
    """(day, hour, minute) at which a cron of the form the schedule writes fires, in the
    scheduled action's own time zone: minutes and hours as numbers or lists, day-of-month
    '?', every month, day-of-week as names, ranges or lists, every year (the six fields of
    https://docs.aws.amazon.com/autoscaling/application/userguide/scheduled-scaling-using-cron-expressions.html)."""
    found = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)", cron)
    assert found, cron
    minutes, hours, dom, month, dow, year = found.groups()
    assert (dom, month, year) == ("?", "*", "*"), cron
    days: list[str] = []
    for part in dow.split(","):
        first, _, last = part.partition("-")
        days += WEEK[WEEK.index(first) : WEEK.index(last or first) + 1]
    return {(d, int(h), int(m)) for d in days for h in hours.split(",") for m in minutes.split(",")}


def week_of_capacity(
    actions: dict[str, tuple[str, tuple[int, int]]],
) -> list[tuple[int, int]]:
    """The bounds the scalable target holds at each minute of a week from Monday 00:00, local
    time, from its scheduled actions {name: (cron, bounds)}: each action's bounds hold from
    when it fires until the next action, around the week (Monday starts as the last action of
    the week before left it)."""
    events = sorted(
        (WEEK.index(day) * 24 * 60 + hour * 60 + minute, bounds)
        for cron, bounds in actions.values()
        for day, hour, minute in fires_at(cron)
    )
    week = 7 * 24 * 60
    held: list[tuple[int, int]] = [events[-1][1]] * week
    for (at, bounds), (until, _) in zip(events, [*events[1:], (week, None)], strict=True):
        held[at:until] = [bounds] * (until - at)
    return held


def check_week(
    actions: dict[str, tuple[str, tuple[int, int]]],
    hours: dict[str, str],
    working: tuple[int, int],
    off: tuple[int, int],
) -> None:
    """Every minute of the week holds the working bounds inside the manifest's hours on its
    days, the off ones everywhere else."""
    spec = OffHours.model_validate(hours)
    start, end = (int(t.split(":")[0]) * 60 + int(t.split(":")[1]) for t in (spec.start, spec.end))
    held = week_of_capacity(actions)
    days = spec.working_days
    assert len(held) == 7 * 24 * 60
    for at, bounds in enumerate(held):
        day, minute = WEEK[at // (24 * 60)], at % (24 * 60)
        inside = day in days and start <= minute < end
        assert bounds == (working if inside else off), (day, divmod(minute, 60), bounds)


def utc_firing(cron: str, zone: str, on: date) -> list[datetime]:
    """When a cron fires on the day `on` in UTC, the scheduled action's time zone being `zone`."""
    day = WEEK[on.weekday()]
    local = ZoneInfo(zone)
    return sorted(
        datetime(on.year, on.month, on.day, h, m, tzinfo=local).astimezone(ZoneInfo("UTC"))
        for d, h, m in fires_at(cron)
        if d == day
    )


SCHEDULES = [
    PARIS,
    {"days": "MON,WED,THU", "start": "07:30", "end": "18:45", "timezone": "America/New_York"},
    {"days": "SUN-THU", "start": "9:00", "end": "17:00", "timezone": "Asia/Dubai"},
    {"days": "MON-SUN", "start": "00:00", "end": "23:59", "timezone": "UTC"},
]


@pytest.mark.parametrize("hours", SCHEDULES, ids=lambda h: f"{h['days']}-{h['timezone']}")
def test_the_crons_hold_working_hours_on_their_days_and_nothing_else(hours: dict[str, str]) -> None:
    spec = OffHours.model_validate(hours)
    actions = {
        "end": (spec.end_cron, (0, 1)),
        "start": (spec.start_cron, (2, 5)),
    }
    check_week(actions, hours, (2, 5), (0, 1))
    # The broken forms: the two crons swapped, or working hours one hour late.
    swapped = {"end": (spec.start_cron, (0, 1)), "start": (spec.end_cron, (2, 5))}
    with pytest.raises(AssertionError):
        check_week(swapped, hours, (2, 5), (0, 1))
    late = re.sub(r"cron\((\d+) (\d+)", lambda x: f"cron({x[1]} {int(x[2]) + 1}", spec.start_cron)
    with pytest.raises(AssertionError):
        check_week({**actions, "start": (late, (2, 5))}, hours, (2, 5), (0, 1))


def test_the_crons_follow_local_time_through_daylight_saving() -> None:
    """The crons are local hours with the manifest's Timezone: Paris's 08:00 start is 07:00
    UTC in January and 06:00 UTC in July; the same cron read in UTC (the broken form: no
    Timezone) would start working hours two hours late in summer."""
    spec = OffHours.model_validate(PARIS)
    winter, summer = date(2027, 1, 11), date(2027, 7, 12)  # Mondays
    assert utc_firing(spec.start_cron, spec.timezone, winter) == [
        datetime(2027, 1, 11, 7, 0, tzinfo=ZoneInfo("UTC"))
    ]
    assert utc_firing(spec.start_cron, spec.timezone, summer) == [
        datetime(2027, 7, 12, 6, 0, tzinfo=ZoneInfo("UTC"))
    ]
    broken = utc_firing(spec.start_cron, "UTC", summer)
    assert broken[0] - timedelta(hours=2) == utc_firing(spec.start_cron, spec.timezone, summer)[0]


# --- the synthesized app: every example product ----------------------------------------------


def scheduled(template: dict[str, Any]) -> dict[str, Any]:
    """The scalable target's scheduled actions {name: action} (none: {})."""
    targets = [r for r in template["Resources"].values()
               if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"]  # fmt: skip
    assert len(targets) <= 1
    actions = targets[0]["Properties"].get("ScheduledActions", []) if targets else []
    return {a["ScheduledActionName"]: a for a in actions}


def test_each_serving_stack_schedules_what_its_manifest_says(synth: Any, product: Any) -> None:
    """Per environment: no scheduled action without an off-hours plan; with one, the end of
    working hours sets the off-hours bounds and their start the manifest's, at the manifest's
    hours on its days in its time zone. fraud-detection's staging has one."""
    m = product.manifest
    seen = 0
    for env in ("staging", "prod"):
        template = synth.template(product.extra[f"serving-{env}"]).to_json()
        actions = scheduled(template)
        serving = m.env_serving(env)
        plan = serving.off_hours_plan()
        if plan is None:
            assert actions == {}, env
            continue
        seen += 1
        hours = serving.off_hours
        assert set(actions) == {"working-hours-start", "working-hours-end"}
        for name, bounds in (
            ("working-hours-start", plan.working),
            ("working-hours-end", plan.off),
        ):
            action = actions[name]
            assert action["Timezone"] == hours.timezone
            got = action["ScalableTargetAction"]
            assert (got["MinCapacity"], got["MaxCapacity"]) == bounds, name
        check_week(
            {n: (a["Schedule"], (a["ScalableTargetAction"]["MinCapacity"],
                                 a["ScalableTargetAction"]["MaxCapacity"]))
             for n, a in actions.items()},
            hours.model_dump(), plan.working, plan.off,
        )  # fmt: skip
    if m.product.name == "fraud-detection":
        assert seen == 1  # the example that uses it (staging)


def test_the_serving_stack_schedules_each_mode_from_the_manifest(product: Any) -> None:
    """The Serving stack's props of each mode (mode_cases) on each example product: the
    manifest's time zone and crons, the off-hours bounds; none when there is nothing to move
    (on the synthesis' worker, which has the stacks imported)."""
    from mlgate.infra.constructs.endpoint import OffHoursSchedule
    from mlgate.infra.stacks.serving import off_hours_schedule

    base = product.manifest.folder / "manifest.yaml"
    for name, (m, (_what, _working, off)) in mode_cases(base).items():
        assert off_hours_schedule(m.serving.staging) == OffHoursSchedule(
            timezone=PARIS["timezone"],
            start_cron="cron(0 8 ? * MON,TUE,WED,THU,FRI *)",
            end_cron="cron(0 19 ? * MON,TUE,WED,THU,FRI *)",
            off_min=off[0],
            off_max=off[1],
        ), name
        bare = m.serving.staging.model_copy(update={"off_hours": None})
        assert off_hours_schedule(bare) is None  # the broken form: no off hours
    for m, _line in idle_cases(base):
        assert off_hours_schedule(m.serving.staging) is None


# --- the estimate ---------------------------------------------------------------------------

FRAUD = EXAMPLES / "fraud-detection" / "manifest.yaml"
PRICES: dict[str, Any] = {
    "source": "test",
    "as_of": "2026-01-01",
    "regions": {
        "eu-west-1": {
            "glue_dpu_hour": 0.5,
            "hosting": {"ml.m5.large": 0.1, "ml.c5.xlarge": 0.2},
            "training": {"ml.m5.xlarge": 0.3, "ml.m5.large": 0.1},
            "processing": {"ml.m5.large": 0.1, "ml.m5.xlarge": 0.2},
        }
    },
}


def test_the_estimate_shows_what_off_hours_save_as_computed_by_hand() -> None:
    doc = staging_as(raw(FRAUD), "real-time", off_hours=PARIS,
                     autoscaling={"min_instances": 2, "max_instances": 4})  # fmt: skip
    e = E.estimate(load(FRAUD, doc), PRICES)
    staging = next(x for x in e.lines if x.item == "endpoint staging")
    # Working hours: 5 days x 11 h = 55 h a week, of 168: 730 x 55 / 168 = 238.988 h a month;
    # outside them 491.012 h. 2 instances in them, 1 outside, at $0.1:
    # (2 x 238.988 + 1 x 491.012) x 0.1 = 96.90; against 2 x 730 x 0.1 = 146.00 at every hour,
    # off hours save 1 x 491.012 x 0.1 = 49.10.
    assert staging.monthly == 96.90
    assert e.off_hours_saving == 49.10
    assert "2 x ml.m5.large x 239.0 h of working hours + 1 x 491.0 h outside them" in staging.basis
    assert "off hours save about $49.10 a month" in "\n".join(E.summary_lines(e))
    # An async endpoint kept warm in working hours is 0 when idle outside them:
    # 1 x 238.988 x 0.1 = 23.90, saving 1 x 491.012 x 0.1 = 49.10.
    warm = staging_as(raw(FRAUD), "async", off_hours=PARIS,
                      autoscaling={"min_instances": 1, "max_instances": 3},
                      **{"async": {"scale_to_zero": False}})  # fmt: skip
    e = E.estimate(load(FRAUD, warm), PRICES)
    assert next(x for x in e.lines if x.item == "endpoint staging").monthly == 23.90
    assert e.off_hours_saving == 49.10
    # The broken form: the same endpoint at every hour, nothing saved.
    doc["serving"]["staging"].pop("off_hours")
    e = E.estimate(load(FRAUD, doc), PRICES)
    assert next(x for x in e.lines if x.item == "endpoint staging").monthly == 146.00
    assert e.off_hours_saving == 0.0


def test_the_examples_say_their_off_hours() -> None:
    """Each example's estimate names its off hours where it has them (fraud-detection's
    async staging: at most one instance outside working hours)."""
    from mlgate.manifest import load_manifest

    for name in PRODUCTS:
        m = load_manifest(EXAMPLES / name / "manifest.yaml")
        text = "\n".join(E.summary_lines(E.estimate(m)))
        for env in ("staging", "prod"):
            line = m.env_serving(env).off_hours_summary()
            assert (line is None) or (line in text), (name, env)
    fraud = load_manifest(EXAMPLES / "fraud-detection" / "manifest.yaml").serving.staging
    assert fraud.off_hours_summary() == (
        "off hours (outside 08:00-19:00 MON-FRI Europe/Paris): 0..1 x ml.m5.large instead of "
        "0..2 x ml.m5.large (scheduled scaling)"
    )


def test_the_idle_alarm_waits_out_the_longest_off_hours(base: Path) -> None:
    """A real-time staging endpoint scaled down outside working hours (Friday 19:00 to Monday
    08:00: 61 h) gets its idle alarm after 62 idle hours, not after the manifest's shorter
    cost.idle_endpoint_hours, which would warn every weekend; prod keeps the manifest's."""
    from mlgate.infra.stacks.foundation import idle_alarm_hours

    path = base
    doc = staging_as(raw(path), "real-time", off_hours=PARIS)
    doc.setdefault("cost", {})["idle_endpoint_hours"] = 24
    m = load(path, doc)
    assert idle_alarm_hours(m, "staging") == 62
    assert idle_alarm_hours(m, "prod") == 24
    doc["cost"]["idle_endpoint_hours"] = 100  # already longer than any weekend: kept
    assert idle_alarm_hours(load(path, doc), "staging") == 100
    del doc["serving"]["staging"]["off_hours"]  # no off hours: the manifest's hours
    doc["cost"]["idle_endpoint_hours"] = 24
    assert idle_alarm_hours(load(path, doc), "staging") == 24
