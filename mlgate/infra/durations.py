"""cdk.Duration values, each made once per process.

A Duration is an immutable value, and each `cdk.Duration.minutes(...)` is a round trip to
jsii's node: the default product's synth asked for 169 of them, nearly all the same few
dashboard, alarm and retention periods. Sharing one Duration between constructs changes no
template (tests/test_snapshots.py).
"""

from __future__ import annotations

from functools import cache

import aws_cdk as cdk


@cache
def _made(unit: str, amount: float) -> cdk.Duration:
    made: cdk.Duration = getattr(cdk.Duration, unit)(amount)
    return made


def seconds(amount: float) -> cdk.Duration:
    return _made("seconds", amount)


def minutes(amount: float) -> cdk.Duration:
    return _made("minutes", amount)


def hours(amount: float) -> cdk.Duration:
    return _made("hours", amount)


def days(amount: float) -> cdk.Duration:
    return _made("days", amount)
