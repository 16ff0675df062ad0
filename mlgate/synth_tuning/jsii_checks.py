"""jsii's runtime type checks, skipped in `cdk synth` (app.py) and kept everywhere else.

Every jsii-generated CDK method checks its arguments' Python types with typeguard before the
call goes to node (`if __debug__: check_type(...)` in aws_cdk's modules, through
jsii._type_checking). Those checks are for callers no type checker has seen: jsii skips them
itself under `python -O` (jsii/_type_checking.py says so). mlgate's CDK calls are all in
mlgate's own stacks, which mypy --strict checks against aws_cdk's annotations (`make lint`),
and the test suite builds every stack of every example with the checks on (tests never call
this); node's jsii kernel still refuses a value it cannot take as the declared type, naming
the property (tests/test_jsii_checks.py). A synth then pays for checks that find nothing new:
importing typeguard and about 9,000 checks, 0.3 to 0.4 s of Python on the critical path of the
default product's synth (bench/synth_time.py measures it).

`skip_jsii_type_checks()` does what `-O` does for these checks only, so mlgate's own asserts
and every other library's `__debug__` code run as before. `MLGATE_JSII_TYPE_CHECKS=on` keeps
them (a bug hunt in a stack: typeguard names the argument, node's error does not).
"""

from __future__ import annotations

import os
import sys
from typing import Any


class _NoHints:
    """What the generated code reads its expected types from: any name, no type."""

    def __getitem__(self, name: str) -> None:
        return None


_NO_HINTS = _NoHints()


def _no_hints(stub: Any) -> _NoHints:
    return _NO_HINTS


def _no_check(argname: str, value: object, expected_type: Any) -> None:
    return None


def skip_jsii_type_checks() -> bool:
    """Before the first `import aws_cdk`: generated modules import the two helpers by name.
    Returns whether the checks are off (False: switched on, or a jsii without these helpers)."""
    if os.environ.get("MLGATE_JSII_TYPE_CHECKS") == "on":
        return False
    if "aws_cdk" in sys.modules:
        raise RuntimeError("skip_jsii_type_checks() must run before aws_cdk is imported")
    try:
        import jsii._type_checking as checking
    except ImportError:  # another jsii: its checks stay
        return False
    if not (hasattr(checking, "check_type") and hasattr(checking, "cached_type_hints")):
        return False
    checking.check_type = _no_check
    checking.cached_type_hints = _no_hints  # type: ignore[assignment]
    return True
