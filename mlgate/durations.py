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
def seconds(amount: float) -> cdk.Duration:
    return cdk.Duration.seconds(amount)


@cache
def minutes(amount: float) -> cdk.Duration:
    return cdk.Duration.minutes(amount)


@cache
def hours(amount: float) -> cdk.Duration:
    return cdk.Duration.hours(amount)


@cache
def days(amount: float) -> cdk.Duration:
    return cdk.Duration.days(amount)
