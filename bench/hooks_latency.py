"""Each hook's cold import time, and warm invocation times under moto.

Cold import: a fresh interpreter imports the hook's handler module (what a Lambda cold start
adds on top of the runtime's own start: timed inside the interpreter), median of several runs,
against a bare boto3 function that creates the same clients at import (found by recording the
clients the hook's import creates), the two run interleaved.
Warm invocation: the handler called repeatedly in one process under moto, after one warm-up.
Usage: .venv/bin/python bench/hooks_latency.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, table

LAMBDAS = ROOT / "mlgate" / "lambdas"
HOOKS = sorted(p.name for p in LAMBDAS.iterdir() if (p / "handler.py").exists())


# What the stack sets for every idempotent hook, which builds its store at import.
HOOK_ENV = {"AWS_DEFAULT_REGION": "eu-west-1", "IDEMPOTENCY_TABLE": "i"}

# Lists the boto3 clients a hook's import creates (service names, in order), so the baseline
# can create the same ones.
DISCOVER = """
import json, botocore.session
made = []
create = botocore.session.Session.create_client
def record(self, service_name, *args, **kwargs):
    made.append(service_name)
    return create(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = record
import {0}
print(json.dumps(made))
"""
TIMED = "import time; t = time.perf_counter(); {0}; print(time.perf_counter() - t)"


@functools.cache
def _deployed() -> Path:
    """The hooks' folder as their asset ships it: no bytecode caches (the asset leaves them out,
    as AWS recommends) on a read-only /var/task, so each cold start compiles the hook's modules
    from source; the tests' own __pycache__ folders must not make the hooks look faster."""
    sys.path.insert(0, str(ROOT))
    from mlgate.constructs.hooks import ASSET_EXCLUDES

    target = Path(tempfile.mkdtemp(prefix="mlgate-hooks-")) / "task"
    patterns = [pattern.removeprefix("**/") for pattern in ASSET_EXCLUDES]
    shutil.copytree(LAMBDAS, target, ignore=shutil.ignore_patterns(*patterns))
    atexit.register(shutil.rmtree, target.parent, ignore_errors=True)
    return target


def _run(code: str) -> str:
    env = {**os.environ, **HOOK_ENV, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=_deployed(), capture_output=True, text=True, check=True,
        env=env,
    )  # fmt: skip
    return out.stdout.strip()


def bare_function(hook: str) -> str:
    """The code of a bare boto3 function making the same calls: json, os and boto3 imported,
    the same clients created at import, no Powertools and no shared modules."""
    services = json.loads(_run(DISCOVER.format(f"{hook}.handler")).splitlines()[-1])
    clients = "; ".join(f"boto3.client({s!r})" for s in services)
    return "import json, os, boto3" + (f"; {clients}" if clients else "")


def cold_import(hook: str, repeats: int) -> tuple[float, float, int]:
    """Median cold import of the hook and of its bare boto3 counterpart, run interleaved (so
    load affects both alike), and how many clients both create."""
    bare = bare_function(hook)
    hook_s, bare_s = [], []
    for _ in range(repeats):
        hook_s.append(float(_run(TIMED.format(f"import {hook}.handler"))))
        bare_s.append(float(_run(TIMED.format(bare))))
    return statistics.median(hook_s), statistics.median(bare_s), bare.count("boto3.client(")


def warm(repeats: int) -> dict[str, tuple[float, str]]:
    """Median warm invocation (ms) of every hook, on the rehearsal's offline world: moto where
    it can host the calls, the rehearsal's stand-ins for CodePipeline, the endpoint, CloudWatch
    and Glue Data Quality results (those answer instantly, so the figures are the hooks' own)."""
    import contextlib
    import io

    from moto import mock_aws

    sys.path.insert(0, str(ROOT))
    from mlgate.manifest import load_manifest
    from tools.rehearsal import Rehearsal, offline

    offline()
    results: dict[str, float] = {}
    outcomes: dict[str, str] = {}
    with (
        mock_aws(),
        tempfile.TemporaryDirectory() as tmp,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        import boto3

        world = Rehearsal(
            Path(tmp), load_manifest(ROOT / "examples" / "fraud-detection" / "manifest.yaml")
        )
        world.setup()
        metrics = {
            m.name.value: {"value": 0.97, "standard_deviation": "NaN"}
            for m in world.manifest.metrics.model_metrics
        }
        # Where the training pipeline writes a run's evaluation report and test split (label
        # first, then the payload), which the release hook and the quality gate read.
        s3 = boto3.client("s3")
        s3.put_object(
            Bucket="artifacts",
            Key=f"{world.run_prefix}/evaluation/evaluation.json",
            Body=json.dumps({"binary_classification_metrics": metrics}),
        )
        s3.put_object(
            Bucket="artifacts",
            Key=f"{world.run_prefix}/test/test.csv",
            Body="\n".join(f"0,{world.manifest.sample_record}" for _ in range(20)).encode(),
        )
        arn = world.register({})
        world.approve(arn)
        world.deploy("staging", arn)
        request = world.brief("BusinessSignoff")
        approver = world.manifest.contact(world.manifest.gates[2].approvers[0])
        world.click(request, approver.slack_user_id or "")
        boto3.client("sagemaker").create_pipeline(
            PipelineName="p",
            RoleArn="arn:aws:iam::123456789012:role/r",
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        )
        boto3.client("dynamodb").create_table(
            TableName="cooldown",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        topic = boto3.client("sns").create_topic(Name="on-call")["TopicArn"]
        os.environ.update(
            {"PIPELINE_NAME": "p", "COOLDOWN_TABLE": "cooldown", "OWNERS_TOPIC_ARN": topic,
             "ENDPOINT_NAME": "e", "PRODUCT": "bench", "ENVIRONMENT": "staging"}
        )  # fmt: skip
        from deploy_verifier import handler as verifier
        from deployer import handler as deployer
        from drift_responder import handler as drift
        from gate_notifier import handler as notifier
        from pipeline_starter import handler as starter
        from release import handler as release

        # The quality gate's SageMaker client is made at import: the stand-in endpoint's.
        world.endpoint_mode = True
        from quality_gate import handler as gate

        world.endpoint_mode = False

        starter.sagemaker = boto3.client("sagemaker")
        starter.PIPELINE_NAME = "p"
        world.endpoint_mode = True  # the verifier's DescribeEndpoint answers from the stand-in
        verify = world.job(environment="staging", endpoint="mlgate-fraud-detection-staging")
        world.endpoint_mode = False
        violation = {
            "detail-type": "SageMaker Processing Job State Change",
            "detail": {
                "ProcessingJobName": "j",
                "ProcessingJobStatus": "Completed",
                "ExitMessage": "CompletedWithViolations: 2 violations.",
                "MonitoringScheduleArn": "arn:aws:sagemaker:eu-west-1:1:monitoring-schedule/m",
            },
        }
        stack = "mlgate-fraud-detection-staging-serving"

        def on_endpoint(call: Any) -> Any:
            """DescribeEndpoint answers from the stand-in endpoint during `call`."""
            world.endpoint_mode = True
            try:
                return call()
            finally:
                world.endpoint_mode = False

        def verified() -> Any:
            return on_endpoint(lambda: verifier.handler(verify, None))

        cases: dict[str, Any] = {
            "release (approval delivered again)": lambda: release.handler(
                world.approval_event(arn), None
            ),
            "deployer (version already served)": lambda: deployer.handler(
                world.job(environment="staging", stack=stack), None
            ),
            "deploy_verifier": verified,
            # A new job each time, so every call sends the smoke load and judges it.
            "quality_gate (smoke load judged)": lambda: on_endpoint(
                lambda: gate.handler(world.job(endpoint="mlgate-fraud-detection-staging"), None)
            ),
            # A new approval request each time, so every call builds and posts a brief.
            "gate_notifier (brief posted)": lambda: notifier.handler(
                world.notification("ComplianceReview", f"token-{time.time_ns()}"), None
            ),
            "gate_callback (second click)": lambda: world.click(
                request, approver.slack_user_id or ""
            ),
            "pipeline_starter": lambda: starter.handler(
                {"id": "x", "detail-type": "Scheduled Event", "detail": {}}, None
            ),
            "drift_responder (inside the cool-down)": lambda: drift.handler(violation, None),
        }
        for name, call in cases.items():
            call()  # warm-up
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                answer = call()
                samples.append((time.perf_counter() - start) * 1000)
            results[name] = statistics.median(samples)
            outcomes[name] = outcome(answer)
    return {name: (ms, outcomes[name]) for name, ms in results.items()}


def outcome(answer: Any) -> str:
    """What the last timed call answered, so a figure of a failing call cannot pass for one of
    a working call."""
    answer = dict(answer)
    if "statusCode" in answer:
        said = f"HTTP {answer['statusCode']}: {json.loads(answer['body'])['text']}"
    else:
        key = next((k for k in ("result", "released", "started", "posted") if k in answer), "")
        said = f"{key} {answer.get(key)}: {answer.get('reason', '')}".rstrip(": ")
    return said if len(said) <= 70 else said[:69] + "…"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = []
    for hook in HOOKS:
        hook_s, bare_s, clients = cold_import(hook, args.repeats)
        rows.append([hook, f"{hook_s * 1000:.0f}", f"{bare_s * 1000:.0f}", str(clients),
                     f"{hook_s / bare_s:.2f}"])  # fmt: skip
    print(
        f"Hook cold import (ms, median of {args.repeats}, fresh interpreters, interleaved) against"
        " a bare boto3 function creating the same clients (target: ratio at most 1.3)"
    )
    print(table(["hook", "import ms", "bare boto3 ms", "clients", "ratio"], rows))
    print(f"\nWarm invocation under moto (ms, median of {args.repeats})")
    rows = [[k, f"{ms:.1f}", said] for k, (ms, said) in warm(args.repeats).items()]
    print(table(["hook", "invoke ms", "what it answered"], rows))


if __name__ == "__main__":
    main()
