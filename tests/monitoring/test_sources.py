"""The deployed job fetches only its windows' hour folders and the live version's baseline
(mlgate/runtime/monitoring_job/sources.py),
under moto for S3 and SSM and a Stubber for SageMaker."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ..lazy import Lazy
from .conftest import FEATURE_TYPES, FEATURES, NOW, draw, write_baseline, write_capture

# Evidently (through run) loads on the worker that runs these tests only.
run, sources = (Lazy(f"mlgate.runtime.monitoring_job.{name}") for name in ("run", "sources"))

REGION = "eu-west-1"
BUCKET = "env-artifacts"
CAPTURE = f"s3://{BUCKET}/datacapture/staging/endpoint/AllTraffic"
PACKAGE = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/group/3"
PARAMETER = "/mlgate/product/staging/live-model-package"


def upload(s3: Any, folder: Path, uri: str) -> None:
    bucket, prefix = sources.split_uri(uri)
    for path in folder.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, prefix + str(path.relative_to(folder)))


def sagemaker_with(package: str, baseline: str | None) -> tuple[Any, Stubber]:
    client = boto3.client("sagemaker", region_name=REGION)
    stub = Stubber(client)
    metadata = {sources.BASELINE_PROPERTY: baseline} if baseline else {}
    stub.add_response(
        "describe_model_package",
        {
            "ModelPackageName": "group",
            "ModelPackageArn": package,
            "CreationTime": NOW,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "CustomerMetadataProperties": metadata,
        },
        {"ModelPackageName": package},
    )
    stub.activate()
    return client, stub


def argv(tmp_path: Path) -> list[str]:
    return [
        "--capture-dir", str(tmp_path / "capture"),
        "--baseline", str(tmp_path / "baseline" / "baseline.csv"),
        "--features", ",".join(FEATURES),
        "--feature-types", FEATURE_TYPES,
        "--now", NOW.isoformat(),
        "--report-dir", str(tmp_path / "report"),
        "--capture-s3-uri", CAPTURE,
        "--release-parameter", PARAMETER,
    ]  # fmt: skip


def test_hour_folders_cover_every_hour_the_window_touches() -> None:
    assert sources.hour_folders(NOW - timedelta(minutes=90), NOW) == [
        "2026/11/20/10/",
        "2026/11/20/11/",
        "2026/11/20/12/",
    ]


@mock_aws
def test_the_job_fetches_the_window_and_the_live_baseline_then_judges_them(
    tmp_path: Path,
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    local = tmp_path / "s3"
    write_capture(local / "capture", draw(300, seed=5, shift=["f_num_1"]))
    # An old hour that the window never touches: it must not be downloaded.
    write_capture(local / "capture", draw(50, seed=6), end=NOW - timedelta(days=3))
    upload(s3, local / "capture", CAPTURE)
    baseline_uri = f"s3://{BUCKET}/training/product/exec-1/baseline/baseline.csv"
    s3.upload_file(
        str(write_baseline(tmp_path / "b.csv")),
        BUCKET,
        sources.split_uri(baseline_uri)[1].rstrip("/"),
    )
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value=PACKAGE, Type="String")
    sagemaker, stub = sagemaker_with(PACKAGE, baseline_uri)

    summary = run.main(argv(tmp_path), clients={"s3": s3, "ssm": ssm, "sagemaker": sagemaker})

    stub.assert_no_pending_responses()
    fetched = sorted(
        p.relative_to(tmp_path / "capture").parts[:4]
        for p in (tmp_path / "capture").rglob("*.jsonl")
    )
    assert fetched == [("2026", "11", "20", "11")]
    assert summary["capture"]["records"] == 300
    assert summary["drift"]["features"]["f_num_1"]["drifted"] is True


@mock_aws
def test_before_the_first_release_the_job_reports_that_and_reads_nothing(tmp_path: Path) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value=sources.NO_RELEASE, Type="String")
    clients = {"s3": boto3.client("s3", region_name=REGION), "ssm": ssm, "sagemaker": None}

    summary = run.main(argv(tmp_path), clients=clients)

    assert summary == {"window": None, "capture": None, "drift": None, "quality": None}
    assert json.loads((tmp_path / "report" / "summary.json").read_text()) == summary
    assert "No model released" in (tmp_path / "report" / "report.html").read_text()


@mock_aws
def test_a_version_without_its_baseline_dataset_is_a_clear_error() -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value=PACKAGE, Type="String")
    sagemaker, _ = sagemaker_with(PACKAGE, None)
    with pytest.raises(ValueError, match="has no mlgate:baseline-dataset property"):
        sources.live_baseline(ssm, sagemaker, PARAMETER)


# --- the deployed pipeline: stage (network), monitor (isolated), publish (network) -----------

HOME = "home-artifacts"
RELEASED = f"s3://{HOME}/released/product"


def step_argv(tmp_path: Path) -> dict[str, list[str]]:
    staged = tmp_path / "staged"
    return {
        "stage": [
            "--capture-s3-uri", CAPTURE, "--release-parameter", PARAMETER,
            "--released-uri", RELEASED, "--window-hours", "1", "--now", NOW.isoformat(),
            "--out-dir", str(staged),
        ],
        "monitor": [
            "--capture-dir", str(staged / "capture"),
            "--baseline", str(staged / "baseline" / "baseline.csv"),
            "--features", ",".join(FEATURES), "--feature-types", FEATURE_TYPES,
            "--report-dir", str(tmp_path / "report"),
            "--release-file", str(staged / "release.json"),
        ],
        "publish": [
            "--summary", str(tmp_path / "report" / "summary.json"),
            "--namespace", "mlgate/product", "--dimensions", "Product=product,Environment=staging",
        ],
    }  # fmt: skip


@mock_aws
def test_the_three_steps_judge_the_window_against_the_released_baseline(tmp_path: Path) -> None:
    """Stage copies the window and the released copy of the baseline (not the training run's);
    the isolated step judges them with no client at all; publish puts the summary's metrics."""
    from mlgate.runtime.monitoring_job import publish, stage

    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (BUCKET, HOME):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    local = tmp_path / "s3"
    write_capture(local / "capture", draw(300, seed=5, shift=["f_num_1"]))
    upload(s3, local / "capture", CAPTURE)
    released = "released/product/3/baseline/dataset/baseline.csv"
    s3.upload_file(str(write_baseline(tmp_path / "b.csv")), HOME, released)
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value=PACKAGE, Type="String")
    registered = f"s3://{BUCKET}/training/product/exec-1/baseline/baseline.csv"  # never read
    sagemaker, stub = sagemaker_with(PACKAGE, registered)
    args = step_argv(tmp_path)

    record = stage.main(args["stage"], clients={"s3": s3, "ssm": ssm, "sagemaker": sagemaker})
    assert record["baseline"] == f"s3://{HOME}/{released}"
    assert record["capture_files"] == 1
    summary = run.main(args["monitor"], clients={})
    assert summary["window"]["end"] == NOW.isoformat()
    assert summary["drift"]["features"]["f_num_1"]["drifted"] is True

    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    assert publish.main(args["publish"], cloudwatch) > 0
    names = {
        m["MetricName"] for m in cloudwatch.list_metrics(Namespace="mlgate/product")["Metrics"]
    }
    assert "drifted_feature_share" in names
    stub.assert_no_pending_responses()


@mock_aws
def test_before_the_first_release_the_steps_stage_nothing_and_publish_nothing(
    tmp_path: Path,
) -> None:
    from mlgate.runtime.monitoring_job import publish, stage

    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value=sources.NO_RELEASE, Type="String")
    args = step_argv(tmp_path)
    record = stage.main(args["stage"], clients={"s3": None, "ssm": ssm, "sagemaker": None})
    assert record["model_package"] is None
    summary = run.main(args["monitor"], clients={})
    assert summary["window"] is None
    assert publish.main(args["publish"], client=object()) == 0
