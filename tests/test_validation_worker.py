"""CDK's CloudFormation validation engine on a worker thread of jsii's node, and the reports it
keeps (mlgate/jsii-preload.cjs part 4, mlgate/jsii-validation-worker.cjs). Both must be
invisible except in time: the same findings as the engine on node's main thread, for the
default rules and for a plugin's own, and never a report made for other bytes or other rules."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlgate.jsii_node import LAUNCHER

from .conftest import python_code

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.environ.get("JSII_NODE") != str(LAUNCHER),
    reason="jsii's node is not mlgate's here (Windows, or MLGATE_NODE_TUNING=off)",
)

# Three failing synths, each reporting what CloudFormation validation found: a template with
# schema errors and a deprecation error; the same with other bytes; the first template again,
# with a plugin adding a rule of its own (another engine config).
SCRIPT = r'''
import glob, json, sys
from pathlib import Path

import aws_cdk as cdk
from jsii._kernel import Kernel

OUT, SECOND = Path(sys.argv[1]), sys.argv[2]
RULE = """package mlgate_test
import rego.v1
violation contains v if {
	some name in resources_of_type("AWS::SQS::Queue")
	v := make_diag_at("MLGATE-TEST-001", "ERROR", name, "Properties", "a queue")
}
"""


def found(name, period, custom=False):
    outdir = OUT / name
    app = cdk.App(outdir=str(outdir), context={"@aws-cdk/core:validateAgainstDefaultRules": True})
    if custom:
        plugin = cdk.CloudFormationValidatePlugin(rego_rules=[{"name": "q.rego", "content": RULE}])
        cdk.Validations.of(app).add_plugins(plugin)
    env = cdk.Environment(account="123456789012", region="eu-west-1")
    stack = cdk.Stack(app, "Broken", env=env)
    cdk.CfnResource(stack, "Queue", type="AWS::SQS::Queue",
                    properties={"Bogus": 1, "MessageRetentionPeriod": period})
    cdk.CfnResource(stack, "Fn", type="AWS::Lambda::Function", properties={
        "Runtime": "python2.7", "Handler": "index.handler", "Code": {"ZipFile": "x"},
        "Role": "arn:aws:iam::123456789012:role/x"})
    try:
        app.synth()
    except RuntimeError as err:
        assert "ValidationFailed" in str(err), err
    return json.loads((outdir / "validation-report.json").read_text().replace(str(outdir), "OUT"))


pid = Kernel().provider._process._process.pid
print(json.dumps({
    "first": found("a", "not a number"),
    "second": found("b", SECOND),
    "custom": found("c", "not a number", custom=True),
    "threads": sorted(Path(f).read_text().strip() for f in glob.glob(f"/proc/{pid}/task/*/comm")),
}))
'''


def synth(tmp: Path, second: str = "seven", **env: str) -> dict[str, Any]:
    out = tmp / f"out-{len(list(tmp.glob('out-*')))}"
    result = python_code(SCRIPT, str(out), second, **env)
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def rules(report: dict[str, Any]) -> list[str]:
    return sorted(v["ruleName"] for r in report["pluginReports"] for v in r["violations"])


def poison(entry: Path) -> None:
    """A report the engine never made, naming the entry it was put in."""
    fake = {
        "status": "OK",
        "diagnostics": [
            {
                "ruleId": f"POISON-{entry.name[:12]}",
                "severity": "ERROR",
                "message": "kept",
                "entity": {"logicalId": "Queue", "entityType": "Resource"},
                "propertyPath": "Properties",
            }
        ],
    }
    script = "process.stdout.write(require('v8').serialize(JSON.parse(process.argv[1])))"
    node = os.environ["MLGATE_JSII_NODE"]
    made = subprocess.run([node, "-e", script, json.dumps(fake)], capture_output=True, check=True)
    entry.write_bytes(made.stdout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("validation-worker")
    cache = tmp / "kept"
    on = synth(tmp, MLGATE_VALIDATION_CACHE=str(cache))
    entries = sorted((cache / "v1").iterdir())
    off = synth(tmp, MLGATE_VALIDATION_WORKER="off")
    for entry in entries:
        poison(entry)
    poisoned = synth(tmp, second="eight", MLGATE_VALIDATION_CACHE=str(cache))
    for entry in (cache / "v1").iterdir():
        entry.write_bytes(b"\0" * 32)
    damaged = synth(tmp, MLGATE_VALIDATION_CACHE=str(cache))
    return {"on": on, "off": off, "entries": entries, "poisoned": poisoned, "damaged": damaged}


def test_the_engine_runs_on_a_worker_thread_only_when_on(runs: dict[str, Any]) -> None:
    assert "WorkerThread" in runs["on"]["threads"]
    assert "WorkerThread" not in runs["off"]["threads"]


def test_the_worker_finds_what_the_engine_on_nodes_main_thread_finds(
    runs: dict[str, Any],
) -> None:
    on, off = runs["on"], runs["off"]
    for synth_ in ("first", "second", "custom"):
        assert on[synth_] == off[synth_], synth_
    assert rules(on["first"]) == ["E2533", "F3002", "F3012"]
    assert rules(on["custom"]) == ["E2533", "F3002", "F3012", "MLGATE-TEST-001"]


def test_reports_are_kept_by_engine_config_and_template_bytes(runs: dict[str, Any]) -> None:
    assert len(runs["entries"]) == 3  # three configs-and-templates, three reports kept
    poisoned = runs["poisoned"]
    # the same bytes and config: the kept report is used, not the engine's
    (first,) = rules(poisoned["first"])
    (custom,) = rules(poisoned["custom"])
    assert first.startswith("POISON-")
    assert custom.startswith("POISON-")
    assert first != custom  # same bytes, other rules: another entry
    # other bytes: validated by the engine, whatever was kept
    assert poisoned["second"]["pluginReports"][0]["violations"][1]["description"].startswith(
        "MessageRetentionPeriod: 'eight'"
    )
    assert rules(poisoned["second"]) == ["E2533", "F3002", "F3012"]


def test_a_damaged_report_is_made_again(runs: dict[str, Any]) -> None:
    damaged, on = runs["damaged"], runs["on"]
    for synth_ in ("first", "second", "custom"):
        assert damaged[synth_] == on[synth_], synth_
    assert all(entry.stat().st_size > 32 for entry in runs["entries"])  # made again


NO_APP = """
import glob, time
from pathlib import Path
import aws_cdk as cdk
from jsii._kernel import Kernel
assert cdk.Duration.minutes(2).to_seconds() == 120  # node answers: it is up and running
time.sleep(0.5)
pid = Kernel().provider._process._process.pid
print(sorted(Path(f).read_text().strip() for f in glob.glob(f"/proc/{pid}/task/*/comm")))
"""


def test_a_program_that_builds_no_app_builds_no_engine() -> None:
    """The engine is built for a program that makes a `cdk.App`, not one that imports CDK."""
    assert "WorkerThread" not in python_code(NO_APP).stdout
