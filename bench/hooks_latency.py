"""Each hook's cold import time, and warm invocation times under moto.

Cold import: a fresh interpreter imports the hook's handler module (what a Lambda cold start
adds on top of the runtime's own start: timed inside the interpreter), median of several runs.
Warm invocation: the handler called repeatedly in one process under moto, after one warm-up.
Usage: .venv/bin/python bench/hooks_latency.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from _common import ROOT, table

LAMBDAS = ROOT / "mlgate" / "lambdas"
HOOKS = sorted(p.name for p in LAMBDAS.iterdir() if (p / "handler.py").exists())


def cold_import(hook: str, repeats: int) -> float:
    def run(code: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=LAMBDAS,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"},
        )
        return float(out.stdout.strip())

    timed = "import time; t = time.perf_counter(); import {0}; print(time.perf_counter() - t)"
    return statistics.median(run(timed.format(f"{hook}.handler")) for _ in range(repeats))


def warm(repeats: int) -> dict[str, float]:
    """Median warm invocation (ms) of the hooks moto can host end to end."""
    from moto import mock_aws

    sys.path.insert(0, str(LAMBDAS))
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
    )
    results = {}
    with mock_aws():
        import boto3

        sm = boto3.client("sagemaker")
        sm.create_pipeline(
            PipelineName="p",
            RoleArn="arn:aws:iam::123456789012:role/r",
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        )
        boto3.client("dynamodb").create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        topic = boto3.client("sns").create_topic(Name="t")["TopicArn"]
        secret = boto3.client("secretsmanager").create_secret(Name="s", SecretString="k")["ARN"]
        os.environ.update(
            {
                "PIPELINE_NAME": "p",
                "COOLDOWN_TABLE": "t",
                "OWNERS_TOPIC_ARN": topic,
                "ENDPOINT_NAME": "e",
                "SLACK_SIGNING_SECRET_ARN": secret,
                "AUDIT_TABLE": "t",
            }
        )
        from drift_responder import handler as drift
        from gate_callback import handler as callback
        from pipeline_starter import handler as starter

        starter.sagemaker = sm
        starter.PIPELINE_NAME = "p"
        scheduled = {"id": "x", "detail-type": "Scheduled Event", "detail": {}}
        violation = {
            "detail-type": "SageMaker Processing Job State Change",
            "detail": {
                "ProcessingJobName": "j",
                "ProcessingJobStatus": "Completed",
                "ExitMessage": "CompletedWithViolations: 2 violations.",
                "MonitoringScheduleArn": "arn:aws:sagemaker:eu-west-1:1:monitoring-schedule/m",
            },
        }
        forged = {
            "headers": {
                "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "v0=forged",
            },
            "body": "payload=%7B%7D",
        }
        cases: dict[str, Any] = {
            "pipeline_starter": lambda: starter.handler(scheduled, None),
            "drift_responder": lambda: drift.handler(violation, None),
            "gate_callback (refusal)": lambda: callback.handler(forged, None),
        }
        for name, call in cases.items():
            call()
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                samples.append((time.perf_counter() - start) * 1000)
            results[name] = statistics.median(samples)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = [[h, f"{cold_import(h, args.repeats) * 1000:.0f}"] for h in HOOKS]
    print(f"Hook cold import (ms, median of {args.repeats}, fresh interpreter)")
    print(table(["hook", "import ms"], rows))
    print(f"\nWarm invocation under moto (ms, median of {args.repeats})")
    print(table(["hook", "invoke ms"], [[k, f"{v:.1f}"] for k, v in warm(args.repeats).items()]))


if __name__ == "__main__":
    main()
