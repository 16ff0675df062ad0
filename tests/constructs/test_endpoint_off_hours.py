"""MonitoredEndpoint's off hours alone in a bare stack: the scheduled actions each mode's
scalable target gets, and what the construct refuses (issue 33; the props the Serving stack
builds from each manifest: tests/test_off_hours.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mlgate.infra.constructs.endpoint import END_ACTION, START_ACTION, OffHoursSchedule

from .conftest import Kit, resources
from .test_endpoint import build, endpoint_props
from .test_endpoint_modes import QUEUE, asynchronous, serverless

HOURS = OffHoursSchedule(
    timezone="America/New_York",
    start_cron="cron(30 7 ? * MON,TUE,WED *)",
    end_cron="cron(45 18 ? * MON,TUE,WED *)",
    off_min=1,
    off_max=1,
)


def target_of(k: Kit) -> dict[str, Any]:
    (target,) = resources(k.template(), "AWS::ApplicationAutoScaling::ScalableTarget").values()
    return dict(target["Properties"])


def actions_of(target: dict[str, Any]) -> dict[str, tuple[str, str, int, int]]:
    """{name: (schedule, time zone, min, max)} of the target's scheduled actions."""
    return {
        a["ScheduledActionName"]: (
            a["Schedule"],
            a["Timezone"],
            a["ScalableTargetAction"]["MinCapacity"],
            a["ScalableTargetAction"]["MaxCapacity"],
        )
        for a in target.get("ScheduledActions", [])
    }


def test_a_real_time_endpoint_keeps_its_off_hours_fleet_and_gets_its_bounds_back(
    home: Kit,
) -> None:
    build(home, replace(endpoint_props(home, policy="all_at_once"), off_hours=HOURS))
    target = target_of(home)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)  # Scaling(1, 4, 500)
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert actions_of(target) == {
        END_ACTION: ("cron(45 18 ? * MON,TUE,WED *)", "America/New_York", 1, 1),
        START_ACTION: ("cron(30 7 ? * MON,TUE,WED *)", "America/New_York", 1, 4),
    }


def test_a_serverless_endpoint_schedules_its_provisioned_concurrency(home: Kit) -> None:
    """Its target is the provisioned concurrency, held at the config's 2 (no policy moves it),
    1 outside working hours; without off hours it has no target (test_endpoint_modes)."""
    build(home, replace(serverless(home), off_hours=HOURS))
    target = target_of(home)
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredProvisionedConcurrency"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 2)
    assert {n: a[2:] for n, a in actions_of(target).items()} == {
        END_ACTION: (1, 1),
        START_ACTION: (2, 2),
    }
    assert resources(home.template(), "AWS::ApplicationAutoScaling::ScalingPolicy") == {}


def test_an_async_endpoint_warm_in_working_hours_wakes_from_zero_outside_them(home: Kit) -> None:
    """Kept at 1 instance in working hours, it may go to 0 outside them: the step policy that
    wakes it on new work is there (test_endpoint_modes: none when it never goes to 0)."""
    build(
        home,
        replace(
            asynchronous(home, replace(QUEUE, min_instances=1)),
            off_hours=replace(HOURS, off_min=0, off_max=1),
        ),
    )
    target = target_of(home)
    assert {n: a[2:] for n, a in actions_of(target).items()} == {
        END_ACTION: (0, 1),
        START_ACTION: (1, 3),
    }
    policies = resources(home.template(), "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert sorted(p["Properties"]["PolicyType"] for p in policies.values()) == [
        "StepScaling",
        "TargetTrackingScaling",
    ]


def test_off_hours_without_a_target_to_move_are_refused(home: Kit) -> None:
    with pytest.raises(ValueError, match="a real-time endpoint needs its Scaling"):
        build(home, replace(endpoint_props(home, scaling=None), off_hours=HOURS))
    from .conftest import kit

    cold = kit()
    warmless = replace(serverless(cold).serverless, provisioned_concurrency=None)
    with pytest.raises(ValueError, match="this one has none"):
        build(cold, replace(serverless(cold), serverless=warmless, off_hours=HOURS))
