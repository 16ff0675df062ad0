"""Hooks import as their Lambda runtime does (mlgate/lambdas is the asset root), and share
fixtures: moto, the audit and idempotency tables, a recorder for calls moto lacks, a Lambda
context, and transient faults injected into any one AWS call."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from moto import mock_aws

# Hooks build their idempotency stores at import, as in Lambda, from the stack's settings.
os.environ.setdefault("IDEMPOTENCY_TABLE", "idempotency")

LAMBDAS = Path(__file__).resolve().parents[2] / "mlgate" / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

EVENTS = Path(__file__).resolve().parents[1] / "events"


def event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


class Recorder:
    """Stands in for CodePipeline calls moto does not implement, recording what was sent."""

    def __init__(self, **responses: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.responses = responses

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def call(**kwargs: Any) -> Any:
            FAULTS.call(f"recorder.{name}")
            self.calls.append((name, kwargs))
            response = self.responses.get(name, {})
            if isinstance(response, Exception):
                raise response
            return response(**kwargs) if callable(response) else response

        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@dataclass
class Faults:
    """Transient faults: the call at index `fail_at` (counting every AWS call a hook makes,
    through botocore or a Recorder) raises a throttling error, once. `seen` lists the calls."""

    fail_at: int | None = None
    seen: list[str] = field(default_factory=list)
    failed: str = ""

    def call(self, name: str) -> None:
        self.seen.append(name)
        if self.fail_at is not None and len(self.seen) - 1 == self.fail_at:
            self.failed = name
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": f"injected fault: {name}"}},
                name,
            )


FAULTS = Faults()
_real_call = botocore.client.BaseClient._make_api_call


def _faulty_call(self: Any, operation: str, params: Any) -> Any:
    name = f"{self.meta.service_model.service_name}.{xform_name(operation)}"
    item = params.get("Key") or params.get("Item")
    key = item.get("id", {}).get("S", "") if isinstance(item, dict) else ""
    # An idempotency record's call is named after its key prefix: the hook or one of its steps.
    FAULTS.call(f"{name}[{key.split('#')[0]}]" if key else name)
    return _real_call(self, operation, params)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    """Counts calls from now on; set `fail_at` to make one of them fail once."""
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", _faulty_call)
    FAULTS.fail_at, FAULTS.seen, FAULTS.failed = None, [], ""
    yield FAULTS
    FAULTS.fail_at, FAULTS.seen, FAULTS.failed = None, [], ""


def fail_then_retry(faults: Faults, index: int, run: Callable[[], Any]) -> Any:
    """Run with the `index`-th AWS call failing once, then run again as Lambda's retry does
    (a failed invocation is retried after a delay: the failed run's in-progress idempotency
    record has expired by then, see LambdaContext below); returns the retry's answer."""
    faults.fail_at = index
    with contextlib.suppress(Exception):  # any failure: the invocation failed, Lambda retries
        run()
    faults.fail_at = None
    return run()


@dataclass
class LambdaContext:
    """What Powertools reads of Lambda's context. The remaining time bounds how long a
    failed invocation's INPROGRESS record blocks a retry; 1 ms stands for Lambda's retry
    delay (a minute or more) having passed."""

    function_name: str = "hook"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:hook"
    aws_request_id: str = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return 1


CONTEXT = LambdaContext()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=os.environ["IDEMPOTENCY_TABLE"],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield


@pytest.fixture
def audit_table(aws: None) -> str:
    boto3.client("dynamodb").create_table(
        TableName="audit",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return "audit"


def audit_items() -> list[dict[str, str]]:
    items = boto3.client("dynamodb").scan(TableName="audit")["Items"]
    return [{k: v["S"] for k, v in i.items() if "S" in v} for i in items]


def bucket(name: str) -> None:
    boto3.client("s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
