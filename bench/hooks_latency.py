"""Each hook's cold import time, and warm invocation times under moto.

Cold import: a fresh interpreter imports the hook's handler module (what a Lambda cold start
adds on top of the runtime's own start: timed inside the interpreter), median of several runs,
against a bare boto3 function that creates the same clients at import (found by recording the
clients the hook's import creates), the two run interleaved. Every hook reads its event whole
(the job hooks with Powertools' parser, the others with shared/fields.py): the same interpreter
then reads a well-formed event of the hook's as its first invocation does (the models a hook
defers are built on first use): the "first parse" column, part of the cold start too.
Warm invocation: the handler called repeatedly in one process under moto, after one warm-up,
each with the Lambda context and the event its trigger gives it (the rehearsal's world:
tools/rehearsal.py); a call its hook refuses stops the benchmark.
Usage: .venv/bin/python bench/hooks_latency.py [--repeats 7] [--hooks release ...]
[--cold-only] [--source DIR]; a quick run: --repeats 1. --source measures another copy of the
hooks' folder (e.g. an earlier version's, for a before/after under the same conditions).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _common import ROOT, table

LAMBDAS = ROOT / "mlgate" / "runtime" / "hooks"
SOURCE = [LAMBDAS]
"""The hooks' folder measured (main() may choose another: --source)."""
HOOKS = sorted(p.name for p in LAMBDAS.iterdir() if (p / "handler.py").exists())


# What the stack sets (mlgate/infra/constructs/hooks.py): every idempotent hook builds its store at
# import, Powertools' Metrics reads its namespace, pydantic is told it has no plugins to find.
HOOK_ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "IDEMPOTENCY_TABLE": "i",
    "POWERTOOLS_METRICS_NAMESPACE": "bench",
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
    # Lambda sets it in every function: the hooks pause the collector while they load
    # (mlgate/runtime/hooks/shared/coldstart.py).
    "AWS_LAMBDA_FUNCTION_NAME": "bench-hook",
}
# The first parse of each job hook: the job id of its event, GetJobDetails' answer for it
# (its UserParameters read with the hook's model) and a release.json, read with its models.
JOB = (
    "import json; from shared import jobs, models; e = json.load(open({events!r} + "
    "'/codepipeline_job.json')); jobs.job_id(e); "
    "d = models.read({{'jobDetails': {{'id': e['CodePipeline.job']['id'], 'data': {{"
    "'actionConfiguration': {{'configuration': {{'UserParameters': json.dumps({params})}}}}, "
    "'pipelineContext': {{'pipelineName': 'p', 'pipelineExecutionId': "
    "'4a2e8c1f-0b7d-4e59-9c3a-6f1d2b8e7a90'}}}}}}}}, models.JobDetailsAnswer); "
    "models.read(d.jobDetails.data.actionConfiguration.configuration.UserParameters, "
    "models.{model}); "
    "models.read(json.dumps({{'model_package_arn': 'arn:aws:sagemaker:eu-west-1:111111111111:"
    "model-package/g/1', 'model_version': 1, 'model_data_url': "
    "'s3://artifacts/released/p/1/model.tar.gz'}}), models.Release)"
)
EVENTS = str(ROOT / "tests" / "events")


def _event(name: str) -> Any:
    return json.loads((ROOT / "tests" / "events" / name).read_text())


def _sns(message: dict[str, Any]) -> dict[str, Any]:
    """The SNS record Lambda receives (https://docs.aws.amazon.com/lambda/latest/dg/
    with-sns.html), carrying CodePipeline's approval notification."""
    topic = "arn:aws:sns:eu-west-1:123456789012:brief-business-signoff"
    subscription = f"{topic}:21be56ed-a058-49f5-8c98-aedd2564c486"
    return {"Records": [{
        "EventVersion": "1.0", "EventSubscriptionArn": subscription, "EventSource": "aws:sns",
        "Sns": {
            "SignatureVersion": "1", "Timestamp": "2026-11-24T09:00:00.000Z",
            "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
            "SigningCertUrl": "https://sns.eu-west-1.amazonaws.com/"
            "SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e", "Message": json.dumps(message),
            "MessageAttributes": {}, "Type": "Notification",
            "UnsubscribeUrl": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"
            f"&SubscriptionArn={subscription}",
            "TopicArn": topic, "Subject": "APPROVAL NEEDED: AWS CodePipeline MyFirstPipeline",
        },
    }]}  # fmt: skip


def _click() -> dict[str, Any]:
    """Slack's button click as a Lambda function URL request (payload format 2.0), its body
    form-encoded (the signature is the callback's next step, not its parse)."""
    payload = {
        "type": "block_actions",
        "api_app_id": "A0BENCH",
        "team": {"id": "T0BENCH"},
        "user": {"id": "U0BENCH", "username": "bench", "name": "bench"},
        "actions": [{"action_id": "approve", "block_id": "gate:r", "value": "r"}],
    }
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/x-www-form-urlencoded",
                    "x-slack-request-timestamp": "1467806400", "x-slack-signature": "v0=0"},
        "requestContext": {
            "accountId": "anonymous", "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.lambda-url.eu-west-1.on.aws", "domainPrefix": "a1b2c3d4e5",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "Slackbot 1.0"},
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "routeKey": "$default",
            "stage": "$default", "time": "06/Jul/2016:12:00:00 +0000", "timeEpoch": 1467806400000,
        },
        "body": urlencode({"payload": json.dumps(payload)}), "isBase64Encoded": False,
    }  # fmt: skip


_APPROVAL = _event("codepipeline_approval_notification.json")
FIRST_PARSE = {
    "release": "import json; from release import handler as h; "
    f"h.read(json.load(open({EVENTS!r} + '/model_package_state_change.json')), h.ModelApproval)",
    "deployer": JOB.format(
        events=EVENTS, model="DeployParameters",
        params={"environment": "staging", "stack": "s",
                "service_role": "arn:aws:iam::111111111111:role/s-cfn"},
    ),
    "deploy_verifier": JOB.format(
        events=EVENTS, model="VerifyParameters",
        params={"environment": "staging", "endpoint": "e"},
    ),
    "quality_gate": JOB.format(
        events=EVENTS, model="GateParameters", params={"endpoint": "e"}
    ),
    # The EventBridge, SNS and function URL hooks: their check of the event (each raises,
    # naming the field, on an event it refuses), before the checks of where it comes from.
    "drift_responder": "from drift_responder import handler as h; "
    f"h.parse({_event('drift_alarm_state_change.json')!r})",
    "pipeline_starter": "from pipeline_starter import handler as h; "
    f"h.describe({_event('scheduled_event.json')!r})",
    "gate_notifier": "from gate_notifier import handler as h; "
    f"h.parse({_sns(_APPROVAL)!r}, {{{_APPROVAL['approval']['stageName']!r}: {{}}}})",
    "gate_callback": "from gate_callback import handler as h; "
    f"e = h.url_request({_click()!r}); h.parse_click(e.body)",
}  # fmt: skip

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
# The import timed inside the interpreter, then the wall-clock time it was done at (the parent
# takes the spawn's from the same clock: the difference is the whole init, interpreter included).
TIMED = "import time; t = time.perf_counter(); {0}; print(time.perf_counter() - t, time.time())"
# The import, then the first parse, each timed, then the time the init was done.
TIMED_PARSE = (
    "import time; t = time.perf_counter(); {0}; u = time.perf_counter(); {1}; "
    "print(u - t, time.perf_counter() - u, time.time())"
)
RUNTIME: dict[str, Any] = {}
"""The interpreter and environment the hooks run under (main() chooses: bench/_runtime.py)."""


@functools.cache
def _deployed() -> Path:
    """The hooks' folder as their asset ships it: no bytecode caches (the asset leaves them out,
    as AWS recommends) on a read-only /var/task, so each cold start compiles the hook's modules
    from source; the tests' own __pycache__ folders must not make the hooks look faster."""
    sys.path.insert(0, str(ROOT))
    from mlgate.infra.constructs.hooks import ASSET_EXCLUDES

    target = Path(tempfile.mkdtemp(prefix="mlgate-hooks-")) / "task"
    patterns = [pattern.removeprefix("**/") for pattern in ASSET_EXCLUDES]
    shutil.copytree(SOURCE[0], target, ignore=shutil.ignore_patterns(*patterns))
    atexit.register(shutil.rmtree, target.parent, ignore_errors=True)
    return target


def _run(code: str) -> str:
    """`code` in a fresh interpreter; its output, then the wall-clock time it was started at."""
    env = {**os.environ, **HOOK_ENV, "PYTHONDONTWRITEBYTECODE": "1", **RUNTIME.get("env", {})}
    python = RUNTIME.get("python", sys.executable)
    started = time.time()
    out = subprocess.run(
        [python, "-c", code], cwd=_deployed(), capture_output=True, text=True, check=True,
        env=env,
    )  # fmt: skip
    return f"{out.stdout.strip()} {started}"


def bare_function(hook: str) -> str:
    """The code of a bare boto3 function making the same calls: json, os and boto3 imported,
    the same clients created at import, no Powertools and no shared modules."""
    services = json.loads(
        _run(DISCOVER.format(f"{hook}.handler")).rsplit(" ", 1)[0].splitlines()[-1]
    )
    clients = "; ".join(f"boto3.client({s!r})" for s in services)
    return "import json, os, boto3" + (f"; {clients}" if clients else "")


@dataclass
class Cold:
    """Medians (seconds) of one hook's cold start and of its bare boto3 counterpart's."""

    hook_import: float
    bare_import: float
    first_parse: float | None
    hook_init: float
    """From the interpreter's spawn to the end of the import and first parse: Lambda's init
    (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html, Init phase)
    but for the runtime's own bootstrap, which both pay alike."""
    bare_init: float
    clients: int


def cold_import(hook: str, repeats: int) -> Cold:
    """Median cold import of the hook and of its bare boto3 counterpart, run interleaved (so
    load affects both alike), how many clients both create, and the median first parse of the
    hook's event (None for a hook that parses none with Powertools' parser)."""
    bare = bare_function(hook)
    hook_s, bare_s, parse_s, hook_init, bare_init = [], [], [], [], []
    for _ in range(repeats):
        if hook in FIRST_PARSE:
            imported, parsed, done, started = _run(
                TIMED_PARSE.format(f"import {hook}.handler", FIRST_PARSE[hook])
            ).split()
            parse_s.append(float(parsed))
        else:
            imported, done, started = _run(TIMED.format(f"import {hook}.handler")).split()
        hook_s.append(float(imported))
        hook_init.append(float(done) - float(started))
        imported, done, started = _run(TIMED.format(bare)).split()
        bare_s.append(float(imported))
        bare_init.append(float(done) - float(started))
    median = statistics.median
    return Cold(
        median(hook_s), median(bare_s), median(parse_s) if parse_s else None,
        median(hook_init), median(bare_init), bare.count("boto3.client("),
    )  # fmt: skip


def warm(repeats: int) -> dict[str, tuple[float, str]]:
    """Median warm invocation (ms) of every hook, on the rehearsal's offline world: moto where
    it can host the calls, the rehearsal's stand-ins for CodePipeline, the endpoint, CloudWatch
    and Glue Data Quality results (those answer instantly, so the figures are the hooks' own)."""
    import contextlib
    import io

    from moto import mock_aws

    sys.path.insert(0, str(ROOT))
    from mlgate.manifest import load_manifest
    from tools.rehearsal import Rehearsal, lambda_context, offline

    offline(metrics=True)  # the hooks' EMF lines are part of their work
    os.environ.update({k: v for k, v in HOOK_ENV.items() if k != "IDEMPOTENCY_TABLE"})
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
        # The run's model artifact and baseline dataset, which the release hook copies to the
        # version's released folder.
        for key in ("model/model.tar.gz", "baseline/baseline.csv"):
            s3.put_object(Bucket="artifacts", Key=f"{world.run_prefix}/{key}", Body=b"bench")
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
        # The drift responder's and the pipeline starter's settings, as their constructs set
        # them (mlgate/infra/constructs/drift.py, mlgate/infra/stacks/training.py).
        alarm = world.drift_alarm_name("staging")
        os.environ.update(
            {"PIPELINE_NAME": "p", "COOLDOWN_TABLE": "cooldown", "OWNERS_TOPIC_ARN": topic,
             "ENDPOINT_NAME": "e", "PRODUCT": "bench", "ENVIRONMENT": "staging",
             "DRIFT_ALARM": alarm, "QUALITY_JOB": world.names.quality_job(),
             "SCHEDULE_RULE": "train-on-schedule"}
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

        # Each call a fresh invocation's context (the rehearsal's: a function of the home
        # account and region, where moto made the resources the events name).
        def context(hook: str) -> Any:
            return lambda_context(hook)

        verify = world.job(environment="staging", endpoint="mlgate-fraud-detection-staging")
        stack = "mlgate-fraud-detection-staging-serving"
        service_role = f"arn:aws:iam::123456789012:role/{world.names.serving_cfn_role('staging')}"
        approval = world.approval_event(arn)
        ticks = iter(range(1, 1_000_000))

        def drifted() -> dict[str, Any]:
            """A new state change of the drift alarm into ALARM (a drift of its own), a
            minute after the last one: inside the cool-down the warm-up's started."""
            from datetime import UTC, datetime, timedelta

            start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
            return world.alarm_event("staging", 0.3, start + timedelta(minutes=next(ticks)))

        def scheduled() -> dict[str, Any]:
            """The retraining schedule's event, from this product's rule (a new event each
            time: its id is the start's client token)."""
            return {
                "version": "0", "id": f"bench-{time.time_ns()}", "detail-type": "Scheduled Event",
                "source": "aws.events", "account": "123456789012", "region": "eu-west-1",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "resources": ["arn:aws:events:eu-west-1:123456789012:rule/train-on-schedule"],
                "detail": {},
            }  # fmt: skip

        def on_endpoint(call: Any) -> Any:
            """DescribeEndpoint answers from the stand-in endpoint during `call`."""
            world.endpoint_mode = True
            try:
                return call()
            finally:
                world.endpoint_mode = False

        def verified() -> Any:
            return on_endpoint(lambda: verifier.handler(verify, context("deploy_verifier")))

        def alarmed() -> Any:
            event = drifted()
            return drift.handler(event, world.context_of(event, "drift_responder"))

        cases: dict[str, Any] = {
            "release (approval delivered again)": lambda: release.handler(
                approval, world.context_of(approval, "release")
            ),
            "deployer (version already served)": lambda: deployer.handler(
                world.job(environment="staging", stack=stack, service_role=service_role),
                context("deployer"),
            ),
            "deploy_verifier": verified,
            # A new job each time, so every call sends the smoke load and judges it.
            "quality_gate (smoke load judged)": lambda: on_endpoint(
                lambda: gate.handler(
                    world.job(endpoint="mlgate-fraud-detection-staging"), context("quality_gate")
                )
            ),
            # A new approval request each time, so every call builds and posts a brief.
            "gate_notifier (brief posted)": lambda: notifier.handler(
                world.notification("ComplianceReview", f"token-{time.time_ns()}"),
                context("gate_notifier"),
            ),
            "gate_callback (second click)": lambda: world.click(
                request, approver.slack_user_id or ""
            ),
            # moto ends an execution at once: each trigger finds the pipeline idle and starts it.
            "pipeline_starter (run started)": lambda: starter.handler(
                scheduled(), context("pipeline_starter")
            ),
            # The warm-up starts retraining; each timed drift counts, and tells the owners.
            "drift_responder (inside the cool-down)": alarmed,
        }
        for name, call in cases.items():
            worked(name, call())  # warm-up
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                answer = call()
                samples.append((time.perf_counter() - start) * 1000)
                worked(name, answer)
            results[name] = statistics.median(samples)
            outcomes[name] = outcome(answer)
    return {name: (ms, outcomes[name]) for name, ms in results.items()}


def worked(name: str, answer: Any) -> None:
    """Stops the benchmark when a hook refused its call or failed it: its figure would be
    that of a refusal, not of the hook's work. The callback's 409 is its answer to a click on
    a decided gate (the signature checked, the request read): the work of a second click."""
    answer = dict(answer)
    status = int(answer.get("statusCode", 200))
    refused = (
        answer.get("status") == "refused"
        or answer.get("result") in ("refused", "failed")
        or answer.get("expired") == "refused"
        or (status >= 400 and status != 409)
    )
    if refused:
        raise SystemExit(f"bench: {name}: the hook did not do its work: {answer}")


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
    parser.add_argument("--hooks", nargs="*", default=HOOKS, choices=HOOKS)
    parser.add_argument("--cold-only", action="store_true", help="skip the warm invocations")
    parser.add_argument(
        "--source",
        type=Path,
        default=LAMBDAS,
        help="the hooks' folder to measure cold (default: this checkout's)",
    )
    parser.add_argument(
        "--runtime", choices=("lambda", "local"), default="lambda",
        help="lambda (default): the runtime's Python with the layer as it ships "
        "(bench/_runtime.py); local: this interpreter and its virtualenv",
    )  # fmt: skip
    args = parser.parse_args()
    SOURCE[0] = args.source
    where = "this interpreter and its virtualenv (bytecode cached)"
    if args.runtime == "lambda":
        from _runtime import runtime

        found = runtime()
        if found is None:
            print("No python3.13 on this machine: measuring with this interpreter instead.")
        else:
            RUNTIME.update(python=found[0], env=found[1])
            where = "python3.13 with the shipped layer (its bytecode) and boto3 beside it"
    rows = []
    for hook in args.hooks:
        c = cold_import(hook, args.repeats)
        parse = f"{c.first_parse * 1000:.1f}" if c.first_parse is not None else "-"
        with_parse = (c.hook_import + (c.first_parse or 0)) / c.bare_import
        rows.append([hook, str(c.clients), f"{c.hook_import * 1000:.0f}", parse,
                     f"{c.bare_import * 1000:.0f}", f"{with_parse:.2f}",
                     f"{c.hook_init * 1000:.0f}", f"{c.bare_init * 1000:.0f}",
                     f"{c.hook_init / c.bare_init:.2f}"])  # fmt: skip
    print(
        f"Hook cold start (ms, median of {args.repeats}, fresh interpreters, interleaved) against "
        f"a bare boto3 function creating the same clients, on {where}. Import: the handler "
        "module's import (and the first parse of its event) timed inside the interpreter; init: "
        "from the interpreter's spawn to the end of both. Target: init ratio at most 1.3."
    )
    print(table(["hook", "clients", "import ms", "first parse ms", "bare import ms",
                 "import+parse ratio", "init ms", "bare init ms", "init ratio"], rows))  # fmt: skip
    if args.cold_only:
        return
    print(f"\nWarm invocation under moto (ms, median of {args.repeats})")
    rows = [[k, f"{ms:.1f}", said] for k, (ms, said) in warm(args.repeats).items()]
    print(table(["hook", "invoke ms", "what it answered"], rows))


if __name__ == "__main__":
    main()
