"""Where a deployed run finds its inputs in S3, so that it reads only the hours it judges.

Processing downloads a whole S3 prefix, and an endpoint's capture prefix grows for ever; the
job lists the hour folders of its windows itself. Data capture writes
`<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html),
and ground truth is uploaded in the same hourly layout
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-merge.html).

The live version is the one the environment's Serving stack serves: that stack writes its model
package ARN to an SSM parameter in the same CloudFormation update that moves the endpoint, so a
rolled-back release rolls the parameter back too. The training pipeline registers each version
with the S3 URI of its baseline dataset (customer metadata `mlgate:baseline-dataset`); the
release hook copies it to released/<product>/<version>/baseline/dataset/<its file name> in the
home artifact bucket, the only place a deployed monitor may read it from.

A batch environment has no capture: each scheduled run's Batch Transform output lands under
`batch/<env>/predictions/run=<run>/*.out` in the environment's artifact bucket
(mlgate/runtime/hooks/shared/batch.py), one `id,<payload...>,<prediction>` line per row. An
output object's moment is its LastModified ("Creation date of the object":
https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html), the same for all its lines;
ListObjectsV2 filters by prefix only
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html), so the whole
predictions prefix is listed (keys, 1,000 a page) and the window's objects downloaded.
`OBJECTS_FILE` beside them keeps each one's LastModified, which a download does not.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

NO_RELEASE = "none"
BASELINE_PROPERTY = "mlgate:baseline-dataset"
BATCH_OUTPUT = ".out"
"""Batch Transform names an output object after its input file, plus `.out`."""
OBJECTS_FILE = "objects.json"
"""Written beside staged batch outputs: {path relative to the folder: LastModified, ISO}."""


def split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> (bucket, 'some/prefix/'), the prefix ending in '/'."""
    if not uri.startswith("s3://"):
        raise ValueError(f"'{uri}' is not an s3:// URI")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def hour_folders(start: datetime, end: datetime) -> list[str]:
    """The yyyy/mm/dd/hh/ folders of every hour that overlaps [start, end]."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    folders = []
    while hour <= end:
        folders.append(hour.strftime("%Y/%m/%d/%H/"))
        hour += timedelta(hours=1)
    return folders


def fetch_hours(s3: Any, uri: str, start: datetime, end: datetime, dest: Path) -> int:
    """Download every object in the hour folders of [start, end] under `uri`; the count."""
    bucket, prefix = split_uri(uri)
    count = 0
    for folder in hour_folders(start, end):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + folder)
        for page in pages:
            for item in page.get("Contents", []):
                target = dest / item["Key"][len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(target))
                count += 1
    return count


def fetch_written(s3: Any, uri: str, start: datetime, end: datetime, dest: Path) -> int:
    """Download every batch output object under `uri` whose LastModified is in (start, end]
    into `dest` (its key below `uri` kept), streamed to disk by download_file; record each
    one's LastModified in dest/OBJECTS_FILE. Returns the count."""
    bucket, prefix = split_uri(uri)
    written: dict[str, str] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            key, moment = item["Key"], item["LastModified"]
            if not key.endswith(BATCH_OUTPUT) or not start < moment <= end:
                continue
            relative = key[len(prefix) :]
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            written[relative] = moment.isoformat()
    dest.mkdir(parents=True, exist_ok=True)
    (dest / OBJECTS_FILE).write_text(json.dumps(written, indent=1, sort_keys=True))
    return len(written)


def released_baseline(registered: str, package: str, released_uri: str) -> str:
    """Where the release hook copied a version's baseline dataset: the released prefix
    (s3://<home artifacts>/released/<product>), the version (the package ARN's last part),
    baseline/dataset/, and the registered dataset's file name."""
    version = package.rsplit("/", 1)[-1]
    name = registered.rstrip("/").rsplit("/", 1)[-1]
    return f"{released_uri.rstrip('/')}/{version}/baseline/dataset/{name}"


def live_release(
    ssm: Any, sagemaker: Any, parameter: str, released_uri: str | None = None
) -> tuple[str, str] | None:
    """(model package ARN, S3 URI of its baseline dataset) of the live version; None before
    the first release. With `released_uri` the dataset is the released copy (what a deployed
    monitor may read), else the location the training pipeline registered."""
    package = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    if package == NO_RELEASE:
        return None
    described = sagemaker.describe_model_package(ModelPackageName=package)
    uri = (described.get("CustomerMetadataProperties") or {}).get(BASELINE_PROPERTY)
    if not uri:
        raise ValueError(
            f"model package {package} has no {BASELINE_PROPERTY} property: it was registered "
            "by a training pipeline older than the Evidently monitor; release a version "
            "trained since"
        )
    if released_uri:
        return str(package), released_baseline(str(uri), str(package), released_uri)
    return str(package), str(uri)


def live_baseline(ssm: Any, sagemaker: Any, parameter: str) -> str | None:
    """The S3 URI of the live version's registered baseline dataset; None before the first
    release."""
    live = live_release(ssm, sagemaker, parameter)
    return None if live is None else live[1]


def fetch_baseline(s3: Any, uri: str, dest: Path) -> None:
    bucket, key = split_uri(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key.rstrip("/"), str(dest))
