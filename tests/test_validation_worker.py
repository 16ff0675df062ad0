"""CDK's CloudFormation validation engine on a worker thread of jsii's node, and the reports it
keeps (mlgate/synth_tuning/: jsii-preload.cjs part 4, jsii-validation-worker.cjs). Both must
be invisible except in time: the same findings as the engine on node's main thread, for the
default rules and for a plugin's own, and never a report made for other bytes or other rules."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from mlgate.synth_tuning.jsii_node import LAUNCHER

from .conftest import python_code

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.environ.get("JSII_NODE") != str(LAUNCHER),
    reason="jsii's node is not mlgate's here (Windows, or MLGATE_NODE_TUNING=off)",
)

# Three failing synths, each reporting what CloudFormation validation found: a template with
# schema errors and a deprecation error; the same with other bytes; the first template again,
# with a plugin adding a rule of its own (another engine config). Given poisoned reports, the
# script then puts one in each kept entry and synthesizes again (the second template's bytes
# changed), then damages every entry and synthesizes again: all in one process, since each
# report is read from the folder when asked for.
SCRIPT = r'''
import glob, json, os, sys
from pathlib import Path

import aws_cdk as cdk
from jsii._kernel import Kernel

OUT, POISONS = Path(sys.argv[1]), sys.argv[2:]
PLUGIN = []
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
    if custom:  # one plugin, so one engine built for it, as CDK builds one for its default
        if not PLUGIN:
            rule = {"name": "q.rego", "content": RULE}
            PLUGIN.append(cdk.CloudFormationValidatePlugin(rego_rules=[rule]))
        cdk.Validations.of(app).add_plugins(PLUGIN[0])
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


def three(tag, second):
    return {"first": found(f"a{tag}", "not a number"), "second": found(f"b{tag}", second),
            "custom": found(f"c{tag}", "not a number", custom=True)}


pid = Kernel().provider._process._process.pid
results = three("", "seven")
tasks = glob.glob(f"/proc/{pid}/task/*/comm")
results["threads"] = sorted(Path(f).read_text().strip() for f in tasks)
if POISONS:
    entries = sorted(Path(os.environ["MLGATE_VALIDATION_CACHE"], "v1").iterdir())
    results["entries"] = len(entries)
    for entry, poison in zip(entries, POISONS):
        entry.write_bytes(Path(poison).read_bytes())
    results["poisoned"] = three("-poisoned", "eight")
    for entry in entries:
        entry.write_bytes(bytes(32))
    results["damaged"] = three("-damaged", "seven")
    results["remade"] = [entry.stat().st_size > 32 for entry in entries]
print(json.dumps(results))
'''

# Reports the engine never made: "POISON-<n>" for the n-th kept entry (by name).
POISON = """
const [folder, count] = process.argv.slice(1);
for (let n = 0; n < Number(count); n++) {
  const diagnostic = { ruleId: `POISON-${n}`, severity: 'ERROR', message: 'kept',
    propertyPath: 'Properties', entity: { logicalId: 'Queue', entityType: 'Resource' } };
  require('fs').writeFileSync(`${folder}/poison-${n}`,
    require('v8').serialize({ status: 'OK', diagnostics: [diagnostic] }));
}
"""
SYNTHS = ("first", "second", "custom")


def rules(report: dict[str, Any]) -> list[str]:
    return sorted(v["ruleName"] for r in report["pluginReports"] for v in r["violations"])


@pytest.fixture(scope="module")
def worker_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("validation-worker")
    subprocess.run([os.environ["MLGATE_JSII_NODE"], "-e", POISON, str(tmp), "3"], check=True)
    poisons = [str(tmp / f"poison-{n}") for n in range(3)]
    on = python_code(SCRIPT, str(tmp / "on"), *poisons, MLGATE_VALIDATION_CACHE=str(tmp / "kept"))
    off = python_code(SCRIPT, str(tmp / "off"), MLGATE_VALIDATION_WORKER="off")
    return {"on": json.loads(on.stdout), "off": json.loads(off.stdout)}


def test_the_engine_runs_on_a_worker_thread_only_when_on(worker_runs: dict[str, Any]) -> None:
    assert "WorkerThread" in worker_runs["on"]["threads"]
    assert "WorkerThread" not in worker_runs["off"]["threads"]


def test_the_worker_finds_what_the_engine_on_nodes_main_thread_finds(
    worker_runs: dict[str, Any],
) -> None:
    on, off = worker_runs["on"], worker_runs["off"]
    for synth in SYNTHS:
        assert on[synth] == off[synth], synth
    assert rules(on["first"]) == ["E2533", "F3002", "F3012"]
    assert rules(on["custom"]) == ["E2533", "F3002", "F3012", "MLGATE-TEST-001"]


def test_reports_are_kept_by_engine_config_and_template_bytes(
    worker_runs: dict[str, Any],
) -> None:
    on = worker_runs["on"]
    assert on["entries"] == 3  # three configs-and-templates, three reports kept
    poisoned = on["poisoned"]
    # the same bytes and config: the kept report is used, not the engine's
    (first,) = rules(poisoned["first"])
    (custom,) = rules(poisoned["custom"])
    assert first.startswith("POISON-")
    assert custom.startswith("POISON-")
    assert first != custom  # same bytes, other rules: another entry
    # other bytes: validated by the engine, whatever was kept
    changed = poisoned["second"]["pluginReports"][0]["violations"]
    assert any(v["description"].startswith("MessageRetentionPeriod: 'eight'") for v in changed)
    assert rules(poisoned["second"]) == ["E2533", "F3002", "F3012"]


def test_a_damaged_report_is_made_again(worker_runs: dict[str, Any]) -> None:
    on = worker_runs["on"]
    for synth in SYNTHS:
        assert on["damaged"][synth] == on[synth], synth
    assert on["remade"] == [True, True, True]


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
