"""Powertools idempotency for the hooks, on the product's idempotency table (DynamoDB).

How Powertools decides (https://docs.powertools.aws.dev/lambda/python/latest/utilities/
idempotency/): a first call writes an INPROGRESS record, runs, and stores the result; a call
with the same key returns the stored result; a call that raises deletes its record, so the
retry does the work again. With payload validation a call with the same key but different
content raises IdempotencyValidationError instead of returning another event's result.

Each decorated function needs a persistence layer of its own (a layer is configured once, by
its first function), and a key prefix: the hook's role may only touch keys that start with the
hook's name (dynamodb:LeadingKeys, mlgate/infra/constructs/hooks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from shared.settings import read

TABLE = "IDEMPOTENCY_TABLE"
dynamodb = boto3.client("dynamodb")
F = TypeVar("F", bound=Callable[..., Any])


def store() -> DynamoDBPersistenceLayer:
    """A persistence layer for one decorated function (records expire via TTL `expiration`)."""
    table = read("idempotency", (TABLE,))[TABLE]
    return DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb)


def config(
    key: str,
    validation: str = "",
    *,
    hours: int = 24,
    replayed: Any = None,
) -> IdempotencyConfig:
    """Key and validated payload as JMESPath on the function's data; `replayed(response)` turns
    a stored result into the answer a repeated call gets."""

    def hook(response: Any, idempotent_data: DataRecord) -> Any:
        return replayed(response) if replayed else response

    return IdempotencyConfig(
        event_key_jmespath=key,
        payload_validation_jmespath=validation,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=hours * 3600,
        response_hook=hook,
    )


def once(*, data: str, config: IdempotencyConfig, prefix: str) -> Callable[[F], F]:
    """Powertools' idempotent_function on keyword argument `data`, with a store of its own and
    the key prefix `prefix` (the hook's name, or hook.step)."""
    decorator: Callable[[F], F] = idempotent_function(
        data_keyword_argument=data,
        config=config,
        persistence_store=store(),
        key_prefix=prefix,
    )
    return decorator
