"""What a batch run leaves in S3, read without holding a file in memory: the run's record, its
start, and its transform outputs (shared/batch.py names the places). The batch_run hook writes
them; the deploy verifier and the quality gate read them.

An output line is the input line with the prediction joined as its last field (JoinSource
Input, OutputFilter "$": https://docs.aws.amazon.com/sagemaker/latest/dg/
batch-transform-data-processing.html), so a line is `id,<payload...>,<prediction>`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shared.batch import run_prefix

MISSING = ("NoSuchKey", "404")


def start_key(env: str, run: str) -> str:
    """What a run started with (kind, models, rows asked), written once at its start."""
    return f"{run_prefix(env, run)}/start.json"


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of s3://bucket/key."""
    if not uri.startswith("s3://"):
        raise ValueError(f"'{uri}' is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def read_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The JSON object at `key`, None when there is none."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if err.response["Error"]["Code"] in MISSING:
            return None
        raise
    found: dict[str, Any] = json.loads(body)
    return found


def put_once(s3: Any, bucket: str, key: str, document: dict[str, Any]) -> bool:
    """Writes `document` (the bucket's default encryption applies) unless `key` exists: an S3
    conditional write, If-None-Match * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
    conditional-writes.html: 412 PreconditionFailed when it exists, 409
    ConditionalRequestConflict while another write of it is under way: raised, retried). True
    when this call wrote it."""
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(document, sort_keys=True).encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as err:
        if err.response["Error"]["Code"] in ("PreconditionFailed", "412"):
            return False
        raise
    return True


def _objects(s3: Any, uri: str) -> Iterator[str]:
    bucket, prefix = split_uri(uri)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".out"):
                yield item["Key"]


def lines(s3: Any, uri: str) -> Iterator[str]:
    """Every non-blank output line under `uri` (the transform's .out objects, key order),
    streamed: StreamingBody.iter_lines reads the body in chunks."""
    bucket, _ = split_uri(uri)
    for key in _objects(s3, uri):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for raw in body.iter_lines():
            text = raw.decode("utf-8", errors="replace")
            if text.strip():
                yield text


def last_field(line: str) -> str:
    """The line's last CSV field (a raw payload may hold quoted commas)."""
    fields = next(csv.reader([line]), [""])
    return fields[-1].strip() if fields else ""


def predictions(s3: Any, uri: str) -> Iterator[str]:
    """The prediction of each output line under `uri`."""
    for line in lines(s3, uri):
        yield last_field(line)


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


@dataclass(frozen=True)
class Count:
    rows: int
    unparseable: int


def count(values: Iterator[str]) -> Count:
    """Rows and predictions nothing can use. Scores (most predictions numbers): a prediction
    that is not a finite number; labels (most are not numbers): an empty one."""
    rows = numbers = empty = 0
    for value in values:
        rows += 1
        numbers += is_number(value)
        empty += not value
    scores = numbers * 2 >= rows and numbers > 0
    return Count(rows=rows, unparseable=rows - numbers if scores else empty)
