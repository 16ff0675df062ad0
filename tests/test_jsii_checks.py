"""jsii's runtime type checks: off in `cdk synth` (app.py), on in the tests, which build every
stack of every example with them (mlgate/synth_tuning/jsii_checks.py)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from mlgate.synth_tuning.jsii_checks import skip_jsii_type_checks

from .conftest import ROOT, python_code

# A wrong type: typeguard names the argument before the call leaves Python; without it, node's
# jsii kernel refuses the value.
WRONG = """
import sys
from mlgate.synth_tuning.jsii_checks import skip_jsii_type_checks
print("skipped" if skip_jsii_type_checks() else "kept")
import aws_cdk as cdk
stack = cdk.Stack(cdk.App(), "S")
try:
    cdk.CfnOutput(stack, "Out", value="x", description=42)
    print("accepted")
except TypeError as err:
    print("typeguard", "argument description" in str(err))
except Exception as err:
    print("node", "Value is not a string" in str(err))
print("typeguard" in sys.modules)
"""


def run(**env: str) -> list[str]:
    # no synth, so no validation engine to build for it
    return python_code(WRONG, CDK_VALIDATION="false", **env).stdout.split("\n")[:3]


def test_the_tests_keep_jsiis_type_checks() -> None:
    with pytest.raises(TypeError, match="argument description"):
        cdk.CfnOutput(cdk.Stack(cdk.App(), "S"), "Out", value="x", description=42)  # type: ignore[arg-type]


def test_synth_skips_them_and_the_switch_keeps_them() -> None:
    assert run() == ["skipped", "node True", "False"]
    assert run(MLGATE_JSII_TYPE_CHECKS="on") == ["kept", "typeguard True", "True"]


def test_too_late_once_aws_cdk_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLGATE_JSII_TYPE_CHECKS", raising=False)
    with pytest.raises(RuntimeError, match="before aws_cdk is imported"):
        skip_jsii_type_checks()


def test_app_py_skips_them_before_importing_aws_cdk() -> None:
    app = (ROOT / "app.py").read_text()
    assert app.index("synth_tuning.tune()") < app.index("import aws_cdk")
    tuning = (ROOT / "mlgate" / "synth_tuning" / "__init__.py").read_text()
    body = tuning[tuning.index("def tune(") :]
    assert body.index("skip_jsii_type_checks()") < body.index("\n    import aws_cdk")
