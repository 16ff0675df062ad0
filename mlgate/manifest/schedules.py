"""Schedule expressions, each checked in the dialect of the service that will run it, so a bad
one fails validation naming the field, not a deployment 13 seconds into synth.

- EventBridge: cron(minutes hours day-of-month month day-of-week year) or rate(value unit)
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html
- Glue triggers: the same cron, and no rate()
  https://docs.aws.amazon.com/glue/latest/dg/monitor-data-warehouse-schedule.html
- SageMaker monitoring schedules: hourly, daily at an hour, or every N hours only
  https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-schedule-expression.html
"""

from __future__ import annotations

import re

MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
# (name, lowest, highest, extra tokens) per cron field, in order.
FIELDS = (
    ("minutes", 0, 59, ""),
    ("hours", 0, 23, ""),
    ("day-of-month", 1, 31, "?LW"),
    ("month", 1, 12, MONTHS),
    ("day-of-week", 1, 7, DAYS + "|?L#"),
    ("year", 1970, 2199, ""),
)
RATE = re.compile(r"^rate\((?P<value>[1-9][0-9]*) (?P<unit>minutes?|hours?|days?)\)$")


def _cron_fields(expression: str) -> list[str]:
    match = re.fullmatch(r"cron\((.*)\)", expression.strip())
    if match is None:
        raise ValueError(f"'{expression}' is not a cron(...) expression")
    fields = match[1].split()
    if len(fields) != 6:
        raise ValueError(
            f"'{expression}' has {len(fields)} fields; AWS cron takes six: minutes hours "
            "day-of-month month day-of-week year, e.g. cron(0 2 * * ? *)"
        )
    return fields


def _check_field(value: str, name: str, low: int, high: int, words: str) -> None:
    allowed = set(words.split("|")) if "|" in words else set()
    specials = set(words) if "|" not in words else set(words.split("|")[-1])
    for part in value.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            raise ValueError(f"{name} '{value}': the step after '/' must be a number")
        for token in base.split("-"):
            token = token.split("#")[0] if "#" in specials else token
            if token in ("*",) or token in allowed or (token and set(token) <= specials):
                continue
            if token.rstrip("LW").isdigit() and low <= int(token.rstrip("LW")) <= high:
                continue
            raise ValueError(f"{name} '{value}' is not valid: {low}-{high}, *, ranges, lists")


def cron(expression: str) -> str:
    """An AWS six-field cron; one of day-of-month and day-of-week must be '?'."""
    fields = _cron_fields(expression)
    for value, (name, low, high, words) in zip(fields, FIELDS, strict=True):
        _check_field(value, name, low, high, words)
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ValueError(
            f"'{expression}': AWS cron needs '?' in exactly one of day-of-month and "
            "day-of-week, e.g. cron(0 2 * * ? *) or cron(0 4 ? * MON *)"
        )
    return expression


def eventbridge(expression: str) -> str:
    """An EventBridge schedule: cron(...) or rate(value unit), singular for 1."""
    if expression.startswith("rate("):
        match = RATE.match(expression)
        if match is None:
            raise ValueError(
                f"'{expression}' is not an EventBridge rate: rate(5 minutes), rate(1 hour), "
                "rate(7 days)"
            )
        value, unit = int(match["value"]), match["unit"]
        if (value == 1) == unit.endswith("s"):
            right = unit.rstrip("s") if value == 1 else unit + "s"
            raise ValueError(f"'{expression}': write rate({value} {right})")
        return expression
    return cron(expression)


def glue(expression: str) -> str:
    """A Glue trigger schedule: cron only."""
    if expression.startswith("rate("):
        raise ValueError(
            f"'{expression}': Glue schedules take cron expressions only, e.g. cron(0 2 * * ? *)"
        )
    return cron(expression)


MONITOR = re.compile(r"^cron\(0 (?P<hour>\*|[0-9]{1,2})(/(?P<every>[0-9]{1,2}))? \? \* \* \*\)$")


def model_monitor(expression: str) -> str:
    """The few crons SageMaker monitoring schedules accept."""
    match = MONITOR.match(expression)
    ok = match is not None and (
        (match["hour"] == "*" and match["every"] is None)
        or (
            match["hour"] != "*"
            and int(match["hour"]) <= 23
            and (match["every"] is None or 1 <= int(match["every"]) <= 24)
        )
    )
    if not ok:
        raise ValueError(
            f"'{expression}' is not a monitoring schedule SageMaker accepts: hourly "
            "cron(0 * ? * * *), daily at an hour cron(0 3 ? * * *), or every N hours "
            "cron(0 0/6 ? * * *)"
        )
    return expression


def schedule_interval_hours(expression: str) -> int:
    """Hours between two runs of a monitoring schedule: 1 hourly, N every N hours, 24 daily."""
    match = MONITOR.match(model_monitor(expression))
    assert match is not None
    if match["hour"] == "*":
        return 1
    return int(match["every"] or 24)
