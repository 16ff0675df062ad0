"""The rehearsal's endpoint is the product's model: a broken product fails the rehearsal at
VerifyStaging, naming the function and the error, as it would fail on AWS.

Each example product is copied and broken the way a product of its kind breaks: a script-mode
product's predict_fn that raises, or its input_fn returning what predict_fn cannot take; a
built-in XGBoost product's request the algorithm cannot parse (a sample request with a word
where the model takes a number). The rehearsal releases the copy, deploys it and verifies
staging. A breakage leaves the product's data alone: the copy's ETL output is the example's
own curated data (tests/spark_session.py: example_curation, made once for tests/etl and
tests/ml too), a few thousand rows of it; the rehearsal trains the copy on them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgate.manifest import load_manifest

from .conftest import PRODUCTS, ROOT
from .spark_session import example_curation, spark  # noqa: F401  (local Spark, shared with tests/etl)

pytestmark = pytest.mark.spark

ROWS = 5_000
"""Curated rows each copy trains on (the example's first partitions holding as many): the
thresholds do not matter here, only the endpoint's answers."""

RAISES = """

def predict_fn(input_data, model):
    raise RuntimeError("scoring service unavailable in predict_fn")
"""
WRONG_INPUT = """

def input_fn(request_body, request_content_type):
    return {"body": request_body, "type": request_content_type}
"""


def script_mode(name: str) -> bool:
    return load_manifest(ROOT / "examples" / name / "manifest.yaml").model.algorithm.script_mode


def breakages(name: str) -> list[str]:
    return ["predict_fn raises", "input_fn wrong type"] if script_mode(name) else ["not a number"]


CASES = [
    pytest.param(n, b, id=f"{n}-{b.replace(' ', '-')}") for n in PRODUCTS for b in breakages(n)
]


def broken_copy(name: str, breakage: str, folder: Path) -> Path:
    """The example product copied to `folder`, broken as `breakage` says."""
    copy = folder / name
    shutil.copytree(ROOT / "examples" / name, copy, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = load_manifest(copy / "manifest.yaml")
    if breakage == "predict_fn raises":
        train = manifest.path(manifest.model.code.train)
        train.write_text(train.read_text() + RAISES)
    elif breakage == "input_fn wrong type":
        train = manifest.path(manifest.model.code.train)
        train.write_text(train.read_text() + WRONG_INPUT)
    else:
        # The payload's own header, and the record with a word for its first number (a flag
        # sent as `true`): the algorithm's CSV parser refuses it.
        values = manifest.sample_record.split(",")
        (copy / "sample_request.csv").write_text(
            ",".join(manifest.payload_columns) + "\n" + ",".join(["true", *values[1:]]) + "\n"
        )
        document = yaml.safe_load((copy / "manifest.yaml").read_text())
        document["serving"]["sample_request"] = "sample_request.csv"
        (copy / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return copy / "manifest.yaml"


def first_partitions(source: Path, out: Path, rows: int) -> None:
    """Curated Parquet as Spark writes it (key=value partition folders) copied from `source`
    to `out`: its first partitions holding at least `rows` rows and its top-level files
    (_SUCCESS); unpartitioned data whole."""
    import pyarrow.parquet as pq

    folders = sorted(p for p in source.iterdir() if p.is_dir())
    if not folders:
        shutil.copytree(source, out)
        return
    out.mkdir(parents=True)
    for file in source.iterdir():
        if file.is_file():
            shutil.copy2(file, out / file.name)
    kept = 0
    for folder in folders:
        shutil.copytree(folder, out / folder.name)
        kept += sum(pq.read_metadata(f).num_rows for f in folder.glob("*.parquet"))
        if kept >= rows:
            break


@pytest.fixture(scope="module")
def curated(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:  # noqa: F811
    """Each example product's curated data (made once, shared with tests/etl and tests/ml)."""

    def get(name: str) -> Path:
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        return example_curation(spark, manifest, tmp_path_factory).base / "input"

    return get


@pytest.mark.parametrize(("name", "breakage"), CASES)
def test_a_broken_product_fails_the_rehearsal_at_verify_staging(
    name: str,
    breakage: str,
    curated: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tools import rehearsal

    manifest = load_manifest(broken_copy(name, breakage, tmp_path / "product"))
    source = curated(name)

    def etl(self: Any) -> Path:
        out = self.work / "processing" / "input"
        first_partitions(source, out, ROWS)
        return out

    monkeypatch.setattr(rehearsal.Rehearsal, "etl", etl)
    monkeypatch.setattr(rehearsal, "REPORTS", tmp_path / "reports")
    # A hook imported earlier in this process, in another world (another table and region, as
    # a test of the same worker leaves it), is not the one the rehearsal runs.
    import importlib

    monkeypatch.syspath_prepend(str(rehearsal.LAMBDAS))
    with monkeypatch.context() as elsewhere:
        elsewhere.setenv("IDEMPOTENCY_TABLE", "another-world")
        elsewhere.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
        importlib.import_module("release.handler")
    assert rehearsal.rehearse(manifest) == 1
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert "Verify staging" in out, captured.out[-3000:] + captured.err[-3000:]
    verified = out[out.index("Verify staging") :]
    assert verified.startswith("Verify staging failed:"), verified[:2000]
    # An async staging endpoint answers through its failure object; a real-time or serverless
    # one refuses InvokeEndpoint with SageMaker's ModelError.
    staging = manifest.serving.staging.mode.value
    # A batch staging's sample run fails at its transform job, with the container's answer.
    refused = {
        "async": "the async sample on",
        "batch": "-score Failed: ClientError: See job logs for more information; the model "
        "container answered 500",
    }.get(staging, "InvokeEndpoint refused: ModelError")
    assert refused in verified, verified[:2000]
    expected = {
        "predict_fn raises": "predict_fn raised RuntimeError: scoring service unavailable in "
        "predict_fn",
        # predict_fn (the product's own) cannot take what the broken input_fn returned.
        "input_fn wrong type": "predict_fn raised",
        "not a number": "Loading csv data failed with Exception, please ensure data is in csv "
        "format: <class 'ValueError'> could not convert string to float: 'true'",
    }[breakage]
    assert expected in verified, verified[:2000]
    assert "the release stops at VerifyStaging" in verified
    assert "Quality gate" not in verified
    assert "Deploy prod" not in verified
    if staging == "batch":
        return  # no endpoint, no endpoint metrics: the run's record says it failed (above)
    # The run's metrics still say what the endpoint answered: one model error.
    import json

    written = json.loads((tmp_path / "reports" / name / "metrics.json").read_text())
    errors = [
        m for m in written["metrics"]
        if m["namespace"] == "AWS/SageMaker"
        and m["name"] == ("InvocationFailures" if staging == "async" else "InvocationModelErrors")
    ]  # fmt: skip
    assert sum(v for s in errors for _, v in s["points"]) == 1
