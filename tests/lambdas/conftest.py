"""Hooks import as their Lambda runtime does (mlgate/lambdas is the asset root), and share
fixtures: moto, the audit table, a recorder for CodePipeline calls moto lacks."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

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
        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            response = self.responses.get(name, {})
            if isinstance(response, Exception):
                raise response
            return response(**kwargs) if callable(response) else response

        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
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
