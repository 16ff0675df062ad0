"""Monitoring of a batch environment (issue 32): the job reads the runs' transform output
(`--source batch`: `id,<payload...>,<prediction>` lines under batch/<env>/predictions/) instead
of an endpoint's data capture; the stage step copies the output objects written in the windows;
the arguments and the monitor role follow the manifest's mode."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import yaml
from moto import mock_aws

from mlgate.infra.monitoring_args import (
    batch_predictions_uri,
    job_arguments,
    predictions_prefix,
    step_arguments,
)
from mlgate.manifest import Manifest, load_manifests
from mlgate.manifest.loading import parse_manifest
from mlgate.runtime.hooks.shared import batch as layout

from ..conftest import EXAMPLES
from ..lazy import Lazy
from .conftest import (
    CATEGORICAL,
    FEATURE_TYPES,
    FEATURES,
    NOW,
    draw,
    job,
    write_baseline,
    write_batch,
    write_ground_truth,
)

# Evidently (through run) loads on the worker that runs these tests only.
capture, run, stage, sources = (
    Lazy(f"mlgate.runtime.monitoring_job.{name}") for name in ("capture", "run", "stage", "sources")
)

IN_WINDOW = NOW - timedelta(minutes=20)
"""When a run's output object was written: inside the one-hour window ending at NOW."""
LONG_AGO = NOW - timedelta(days=3)


# --- the reader ----------------------------------------------------------------------------


def small_batch(folder: Path) -> list[tuple[Path, datetime]]:
    """Two runs' outputs: numbers and labels as predictions, a quoted categorical value, a line
    of the wrong width, a line without an id, a row without a prediction."""
    first = folder / "run=s20261120T1100" / "part-00000.csv.out"
    first.parent.mkdir(parents=True)
    first.write_text(
        "r1,50.5,1.5,0.1,0.2,a,x,0.91\n"
        'r2,,2.5,0.3,0.4,"b, or c",y,0.05\n'
        "r3,40.0,1.0,0.5,0.6,c,z\n"  # the prediction is missing: 7 fields, not 8
        ",41.0,1.0,0.5,0.6,c,z,0.3\n"  # no id
    )
    second = folder / "run=e0123456789ab" / "part-00000.csv.out"
    second.parent.mkdir(parents=True)
    second.write_text("r4,60.0,3.5,-0.1,1.2,d,x,gold\nr5,61.0,3.0,-0.2,1.1,a,y,\n")
    (folder / sources.OBJECTS_FILE).write_text(
        json.dumps(
            {
                "run=s20261120T1100/part-00000.csv.out": IN_WINDOW.isoformat(),
                "run=e0123456789ab/part-00000.csv.out": LONG_AGO.isoformat(),
            }
        )
    )
    return capture.batch_outputs(folder)  # type: ignore[no-any-return]


@pytest.mark.parametrize("chunk", [1, 2, 50])
def test_the_batch_reader_reads_ids_payloads_and_predictions_in_chunks(
    tmp_path: Path, chunk: int, caplog: pytest.LogCaptureFixture
) -> None:
    outputs = small_batch(tmp_path)
    assert [moment for _, moment in outputs] == [LONG_AGO, IN_WINDOW]  # path order: e..., s...
    stream = capture.BatchStream(outputs, FEATURES, CATEGORICAL, chunk_records=chunk)
    with caplog.at_level(logging.WARNING, logger="monitoring_job"):
        chunks = list(stream)
    assert len(chunks) == -(-6 // chunk)  # ceil: a chunk closes at `chunk` lines
    features = pd.concat([c.features for c in chunks])
    events = pd.concat([c.events for c in chunks])
    assert (stream.records, stream.malformed, stream.rows) == (6, 2, 4)
    assert list(events.index) == [0, 1, 2, 3]  # row numbers over the whole stream
    assert list(events["inference_id"]) == ["r4", "r5", "r1", "r2"]
    # A number and a label alike stay text; an empty prediction is no prediction.
    assert list(events["prediction"]) == ["gold", None, "0.91", "0.05"]
    assert list(events["inference_time"]) == [LONG_AGO, LONG_AGO, IN_WINDOW, IN_WINDOW]
    assert events["single_row"].all()  # each line is joined to its label on its own
    assert features.loc[3, "f_cat_1"] == "b, or c"  # the payload, quoted as CSV
    assert pd.isna(features.loc[3, "f_num_1"])  # empty: missing
    assert features.loc[0, "f_num_1"] == 60.0
    assert list(features.columns) == FEATURES
    skipped = [r.getMessage() for r in caplog.records]
    assert any(":3: a line does not have 8 fields" in m for m in skipped), skipped
    assert any(":4: the line has no id" in m for m in skipped), skipped


def test_a_file_the_stage_step_did_not_record_is_dated_by_its_own_time(tmp_path: Path) -> None:
    path = tmp_path / "by-hand.out"
    path.write_text("r1,1,1,1,1,a,x,0.5\n")
    ((found, moment),) = capture.batch_outputs(tmp_path)
    assert found == path
    assert moment.timestamp() == pytest.approx(path.stat().st_mtime)


def test_the_capture_reader_reads_no_row_of_batch_output(tmp_path: Path) -> None:
    """The broken form the batch source replaces: capture's reader on transform output finds no
    .jsonl file, and fed the .out files anyway, takes every line for a malformed record."""
    outputs = small_batch(tmp_path)
    assert capture.jsonl_files(tmp_path) == []
    wrong = capture.CaptureStream([path for path, _ in outputs], FEATURES, CATEGORICAL)
    assert sum(len(c.features) for c in wrong) == 0
    assert wrong.malformed == wrong.records == 6


# --- the job on a batch environment's outputs ----------------------------------------------


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The job on one folder of outputs, read as batch (the right source) and as capture (the
    default, wrong here): a run written in the window with f_num_1 and f_cat_1 shifted, and
    an older run like the baseline that the window leaves out."""
    tmp = tmp_path_factory.mktemp("batch")
    write_baseline(tmp / "baseline.csv")
    outputs = tmp / "capture"
    write_batch(outputs, "s20261120T1100", draw(600, seed=5, shift=["f_num_1", "f_cat_1"]),
                written=IN_WINDOW, extra=["broken,1,2"])  # fmt: skip
    write_batch(outputs, "s20261117T1100", draw(400, seed=6), written=LONG_AGO)
    batch = job(tmp, "--source", "batch")
    as_capture = job(tmp, "--report-dir", str(tmp / "report-capture"))
    return {"batch": batch, "capture": as_capture}


def test_a_shifted_batch_run_drifts_on_its_shifted_features_only(
    judged: dict[str, dict[str, Any]],
) -> None:
    summary = judged["batch"]
    assert summary["capture"] == {"records": 1001, "malformed": 1}
    overall = summary["drift"]["overall"]
    assert overall["rows"] == 600  # the run written in the window; the older one is left out
    drifted = {c for c, f in summary["drift"]["features"].items() if f["drifted"]}
    assert drifted == {"f_num_1", "f_cat_1"}
    assert overall["drift_detected"] is True


def test_read_as_capture_the_same_outputs_give_no_rows(judged: dict[str, dict[str, Any]]) -> None:
    """What a batch environment's monitor judged before `--source batch`: nothing."""
    summary = judged["capture"]
    assert summary["capture"] == {"records": 0, "malformed": 0}
    assert summary["drift"] is None


def test_labels_join_batch_predictions_on_their_id_column(tmp_path: Path) -> None:
    """Ground truth names a batch row by its id (the output line's first field), as the
    ground-truth record's eventId; label predictions are compared as labels (multiclass)."""
    write_baseline(tmp_path / "baseline.csv")
    frame = draw(8, seed=7)
    tiers = ["gold", "silver", "bronze", "gold", "silver", "bronze", "gold", "silver"]
    due = NOW - timedelta(hours=24, minutes=30)  # in the due window of a 24 h delay
    ids = write_batch(tmp_path / "capture", "s20261119T1130", frame, written=due,
                      predictions=tiers)  # fmt: skip
    truth = dict(zip(ids, ["gold", "silver", "gold", "gold", "bronze", "bronze", "gold", "x"],
                     strict=True))  # fmt: skip
    truth["not-a-batch-id"] = "gold"
    write_ground_truth(tmp_path / "ground-truth", truth)
    summary = job(
        tmp_path,
        "--source", "batch",
        "--ground-truth-dir", str(tmp_path / "ground-truth"),
        "--ground-truth-delay-hours", "24",
        "--problem-type", "multiclass",
        "--metrics", "accuracy",
    )  # fmt: skip
    assert summary["drift"] is None  # nothing written in the drift window itself
    assert "No batch predictions" in (tmp_path / "report" / "report.html").read_text()
    quality = summary["quality"]
    assert (quality["due"], quality["rows"]) == (8, 8)
    assert quality["metrics"]["accuracy"] == pytest.approx(5 / 8)


# --- the stage step ------------------------------------------------------------------------

BUCKET = "env-artifacts"
PREDICTIONS = f"s3://{BUCKET}/batch/staging/predictions/"


class Objects:
    """S3 as the stage step uses it for a batch source: a paginated listing with each object's
    LastModified, and download_file (streamed to disk). No get_object: reading an object whole
    into memory fails here."""

    def __init__(self, objects: dict[str, tuple[datetime, str]]) -> None:
        self.objects = objects
        self.downloaded: list[str] = []

    def get_paginator(self, name: str) -> Objects:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
        assert Bucket == BUCKET
        keys = sorted(k for k in self.objects if k.startswith(Prefix))
        pages = [keys[i : i + 2] for i in range(0, len(keys), 2)]  # several pages
        return [
            {"Contents": [{"Key": k, "LastModified": self.objects[k][0]} for k in page]}
            for page in pages
        ]

    def download_file(self, bucket: str, key: str, target: str) -> None:
        self.downloaded.append(key)
        Path(target).write_text(self.objects[key][1])


def test_the_stage_step_copies_the_outputs_written_in_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = "r1,50,1,0,0,a,x,0.5\n"
    prefix = "batch/staging/predictions/"
    s3 = Objects(
        {
            f"{prefix}run=s20261120T1100/part-00000.csv.out": (IN_WINDOW, line),
            f"{prefix}run=e0123456789ab/part-00000.csv.out": (NOW - timedelta(minutes=5), line),
            f"{prefix}run=s20261120T1300/part-00000.csv.out": (NOW + timedelta(minutes=1), line),
            f"{prefix}run=s20261117T1100/part-00000.csv.out": (LONG_AGO, line),
            f"{prefix}run=s20261120T1100/_manifest.json": (IN_WINDOW, "{}"),
        }
    )
    monkeypatch.setattr(stage.sources, "live_release", lambda *_: ("arn:pkg/3", "s3://h/b.csv"))
    monkeypatch.setattr(stage.sources, "fetch_baseline", lambda *_: None)
    out = tmp_path / "staged"
    record = stage.main(
        [
            "--source", "batch", "--capture-s3-uri", PREDICTIONS,
            "--release-parameter", "/p", "--released-uri", "s3://h/released/product",
            "--window-hours", "1", "--now", NOW.isoformat(), "--out-dir", str(out),
        ],
        clients={"s3": s3, "ssm": None, "sagemaker": None},
    )  # fmt: skip
    assert (record["source"], record["capture_files"]) == ("batch", 2)
    assert sorted(s3.downloaded) == [
        f"{prefix}run=e0123456789ab/part-00000.csv.out",
        f"{prefix}run=s20261120T1100/part-00000.csv.out",
    ]
    staged = capture.batch_outputs(out / stage.CAPTURE_DIR)
    assert [(p.parent.name, m) for p, m in staged] == [
        ("run=e0123456789ab", NOW - timedelta(minutes=5)),
        ("run=s20261120T1100", IN_WINDOW),
    ]


# --- the arguments the Monitoring stack gives the job --------------------------------------

BASE = EXAMPLES / "delivery-time" / "manifest.yaml"


def batch_in(env: str) -> dict[str, Any]:
    """delivery-time's manifest with `env` scoring in batch (tests/test_batch_manifest.py's
    batch_in), prod moved into staging's account as a batch environment must be."""
    doc: dict[str, Any] = copy.deepcopy(yaml.safe_load(BASE.read_text()))
    doc["environments"]["prod"]["account"] = doc["environments"]["staging"]["account"]
    doc["serving"][env] = {
        "mode": "batch",
        "instance_type": "ml.m5.xlarge",
        "instance_count": 1,
        "batch": {"schedule": "cron(0 6 ? * MON *)", "sample_rows": 300},
    }
    return doc


def source_of(arguments: list[str]) -> str:
    """--source as run.py and stage.py parse it (capture when absent)."""
    return str(run.parser().parse_known_args(arguments)[0].source)


def test_a_batch_environment_monitors_its_predictions_prefix() -> None:
    manifest = parse_manifest(batch_in("staging"), BASE)
    uri = batch_predictions_uri("env-artifacts", "staging")
    assert uri == PREDICTIONS
    for env in ("staging", "prod"):  # where the batch_run hook writes a scheduled run's output
        assert predictions_prefix(env) == layout.predictions_prefix(env)
        assert layout.output_prefix(env, "s20261120T1100", layout.SCHEDULED).startswith(
            predictions_prefix(env)
        )
    whole = job_arguments(manifest, "staging", capture_uri=uri)
    assert source_of(whole) == "batch"
    steps = step_arguments(manifest, "staging", capture_uri=uri, released_uri="s3://h/r/p")
    parsed = stage.parser().parse_args(steps["stage"])
    assert (parsed.source, parsed.capture_s3_uri) == ("batch", PREDICTIONS)
    assert source_of(steps["monitor"]) == "batch"
    assert "--capture-s3-uri" not in steps["monitor"]  # the isolated step reads staged files
    # prod still serves an endpoint: its capture, read as capture.
    assert source_of(job_arguments(manifest, "prod", capture_uri="s3://b/datacapture/prod")) == (
        "capture"
    )


def test_every_example_reads_batch_output_exactly_where_it_scores_in_batch() -> None:
    manifests: list[Manifest] = load_manifests(EXAMPLES)
    seen = set()
    for manifest in manifests:
        for env in ("staging", "prod"):
            batch = manifest.is_batch(env)
            seen.add(batch)
            uri = batch_predictions_uri("b", env) if batch else f"s3://b/datacapture/{env}"
            steps = step_arguments(manifest, env, capture_uri=uri, released_uri="s3://h/r/p")
            wanted = "batch" if batch else "capture"
            assert stage.parser().parse_args(steps["stage"]).source == wanted, manifest
            assert source_of(steps["monitor"]) == wanted
            assert run.parser().parse_known_args(steps["monitor"])[0].features == list(
                manifest.payload_columns
            )
    assert seen == {True, False}, "the examples hold a batch and an endpoint environment"


# --- the monitor role ----------------------------------------------------------------------


def test_the_monitor_of_a_batch_environment_reads_its_predictions_not_capture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlgate.infra.constructs import evidently

    from ..constructs.conftest import actions_of, granted, kit, policy_statements, text

    acknowledged: dict[str, str] = {}
    real = evidently.acknowledge_each

    def record(scope: Any, reasons: dict[str, str]) -> None:
        acknowledged.update(reasons)
        real(scope, reasons)

    monkeypatch.setattr(evidently, "acknowledge_each", record)

    def role_of(batch: bool) -> tuple[str, str, str]:
        acknowledged.clear()
        k = kit()
        evidently.EvidentlyMonitor(
            k.stack, "Evidently",
            props=evidently.EvidentlyProps(names=k.names, schedule="rate(1 hour)", steps={
                "stage": ["--stage"], "monitor": ["--monitor"], "publish": ["--publish"]},
                released=k.released(), batch=batch),
            key=k.key, artifacts_bucket="env-artifacts",
            home_artifacts_arn="arn:aws:s3:::home-artifacts", build_dir=tmp_path / str(batch),
        )  # fmt: skip
        template = k.template()
        listed = [s for s in policy_statements(template) if "s3:ListBucket" in actions_of(s)]
        return text(granted(template, "s3:GetObject")), text(listed), text(acknowledged)

    predictions = "arn:aws:s3:::env-artifacts/batch/staging/predictions/*"
    capture = "arn:aws:s3:::env-artifacts/datacapture/staging/mlgate-churn-staging/AllTraffic/*"
    read, listed, reasons = role_of(batch=True)
    assert predictions in read
    assert capture not in read
    assert "batch/staging/predictions/*" in listed
    assert f"AwsSolutions-IAM5[Resource::{predictions}]" in reasons
    assert "the transform output of this batch environment's scheduled runs" in reasons
    assert "captured traffic of this environment's endpoint" not in reasons
    # The broken form: an endpoint's monitor, which a batch environment's must not be.
    read, listed, reasons = role_of(batch=False)
    assert predictions not in read
    assert capture in read
    assert "batch/staging/predictions" not in listed
    assert "transform output" not in reasons


def test_the_monitoring_stack_gives_each_examples_monitor_its_mode() -> None:
    from mlgate.infra.stacks.monitoring import evidently_props

    for manifest in load_manifests(EXAMPLES):
        for env in ("staging", "prod"):
            props = evidently_props(manifest, env, artifacts_bucket="env-artifacts",
                                    home_artifacts_arn="arn:aws:s3:::home")  # fmt: skip
            assert props.batch is manifest.is_batch(env), (manifest.product.name, env)
            read = stage.parser().parse_args(props.steps["stage"]).capture_s3_uri
            assert (read == batch_predictions_uri("env-artifacts", env)) is props.batch


@mock_aws
def test_the_whole_job_fetches_a_batch_environments_predictions_from_s3(tmp_path: Path) -> None:
    """run.main with the S3 sources, as the rehearsal runs it: --source batch lists the
    predictions prefix and reads the outputs written in the window (moto dates them now)."""
    from .test_sources import PACKAGE, PARAMETER, REGION, sagemaker_with

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    local = tmp_path / "s3"
    write_batch(local, "s20261120T1100", draw(300, seed=5, shift=["f_num_1"]), written=NOW)
    write_batch(local, "e0123456789ab", draw(200, seed=6, shift=["f_num_1"]), written=NOW)
    for path in local.rglob("*.out"):
        s3.upload_file(str(path), BUCKET, f"batch/staging/predictions/{path.relative_to(local)}")
    s3.put_object(Bucket=BUCKET, Key="batch/staging/runs/s20261120T1100/record.json", Body=b"{}")
    s3.upload_file(str(write_baseline(tmp_path / "b.csv")), BUCKET, "released/baseline.csv")
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value=PACKAGE, Type="String")
    sagemaker, stub = sagemaker_with(PACKAGE, f"s3://{BUCKET}/released/baseline.csv")
    now = datetime.now(UTC) + timedelta(minutes=1)

    summary = run.main(
        [
            "--source", "batch", "--capture-dir", str(tmp_path / "capture"),
            "--baseline", str(tmp_path / "baseline" / "baseline.csv"),
            "--features", ",".join(FEATURES), "--feature-types", FEATURE_TYPES,
            "--now", now.isoformat(), "--report-dir", str(tmp_path / "report"),
            "--capture-s3-uri", PREDICTIONS, "--release-parameter", PARAMETER,
        ],
        clients={"s3": s3, "ssm": ssm, "sagemaker": sagemaker},
    )  # fmt: skip

    stub.assert_no_pending_responses()
    staged = capture.batch_outputs(tmp_path / "capture")
    assert sorted(p.parent.name for p, _ in staged) == ["run=e0123456789ab", "run=s20261120T1100"]
    assert all(now - timedelta(minutes=5) < moment <= now for _, moment in staged)
    assert summary["capture"] == {"records": 500, "malformed": 0}
    assert summary["drift"]["overall"]["rows"] == 500
    assert summary["drift"]["features"]["f_num_1"]["drifted"] is True
