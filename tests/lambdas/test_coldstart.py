"""The collector pauses while a hook loads, in Lambda only (shared/coldstart.py): every hook's
package pauses it and its handler module's last statement settles it, so a hook imported as
Lambda imports it (`<hook>.handler`) ends its import with the collector running and the
import's objects frozen; outside Lambda nothing changes."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from .conftest import LAMBDAS

HOOKS = sorted(p.parent.name for p in LAMBDAS.glob("*/handler.py"))
PROBE = (
    "import gc, json; import {0}.handler; "
    "print(json.dumps([gc.isenabled(), gc.get_freeze_count()]))"
)


def _imported(hook: str, lambda_env: bool) -> tuple[bool, int]:
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "IDEMPOTENCY_TABLE": "i",
        "POWERTOOLS_METRICS_NAMESPACE": "test",
        "PYTHONPATH": str(LAMBDAS),
    }
    env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    if lambda_env:
        env["AWS_LAMBDA_FUNCTION_NAME"] = f"mlgate-{hook}"
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(hook)],
        cwd=LAMBDAS, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    enabled, frozen = json.loads(out.stdout.strip().splitlines()[-1])
    return bool(enabled), int(frozen)


@pytest.mark.parametrize("hook", ["release", "gate_callback"])
def test_in_lambda_the_import_ends_collecting_with_its_objects_frozen(hook: str) -> None:
    enabled, frozen = _imported(hook, lambda_env=True)
    assert enabled
    assert frozen > 10_000, frozen


def test_outside_lambda_nothing_is_frozen() -> None:
    assert _imported("release", lambda_env=False) == (True, 0)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_pauses_in_its_package_and_settles_last(hook: str) -> None:
    package = ast.parse((LAMBDAS / hook / "__init__.py").read_text())
    calls = [
        n.value.func.id
        for n in package.body
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
        and isinstance(n.value.func, ast.Name)
    ]  # fmt: skip
    assert calls == ["pause"], f"{hook}/__init__.py must pause the collector"
    last = ast.parse((LAMBDAS / hook / "handler.py").read_text()).body[-1]
    assert isinstance(last, ast.Expr), f"{hook}/handler.py must end by settling"
    assert isinstance(last.value, ast.Call)
    assert getattr(last.value.func, "id", "") == "settle", f"{hook}/handler.py ends otherwise"
