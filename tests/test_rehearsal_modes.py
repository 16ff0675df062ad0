"""The rehearsal's SageMaker stand-in serves each environment in the manifest's mode: its
endpoint configs answer as the Serving stack builds them, an asynchronous endpoint's queued
requests are answered by the real model into result objects (or failure objects when the
model refuses), and the drift loop watches a monitored environment only."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from mlgate.manifest import load_manifest
from mlgate.runtime.hooks.shared.serving import Queue, mode_of

from .conftest import PRODUCTS, ROOT

ARTIFACT = "s3://artifacts/released/p/1/model.tar.gz"


def manifest_of(name: str) -> Any:
    return load_manifest(ROOT / "examples" / name / "manifest.yaml")


def endpoint_of(manifest: Any, host: Any = None) -> Any:
    from mlgate.infra.naming import Names
    from tools.rehearsal import ENVS, Endpoint

    modes = {Names.of(manifest, e).endpoint(): (e, manifest.env_serving(e)) for e in ENVS}
    return Endpoint(None, host, lambda: boto3.client("s3", region_name="us-east-1"), modes,
                    manifest.serving.data_capture_sampling_percent)  # fmt: skip


@pytest.mark.parametrize("name", PRODUCTS)
def test_each_endpoint_config_answers_in_its_environments_mode(name: str) -> None:
    from mlgate.infra.naming import Names
    from tools.rehearsal import Endpoint

    manifest = manifest_of(name)
    endpoint = endpoint_of(manifest)
    for env in ("staging", "prod"):
        served = Names.of(manifest, env).endpoint()
        mode = manifest.env_serving(env).mode.value
        if mode == "batch":
            # No endpoint: SageMaker knows none by the environment's name.
            with pytest.raises(ClientError, match="Could not find endpoint"):
                endpoint.describe_endpoint_config(f"{served}-config")
            with pytest.raises(ClientError, match="Could not find endpoint"):
                endpoint.describe_endpoint(served)
            continue
        config = endpoint.describe_endpoint_config(f"{served}-config")
        assert mode_of(config) == mode, (env, config)
        if mode == "async":
            queue = Queue.of(config, env)
            assert (queue.bucket, queue.output, queue.failures) == (
                "artifacts", f"s3://artifacts/async/{env}/output",
                f"s3://artifacts/async/{env}/failures")  # fmt: skip
            notify = config["AsyncInferenceConfig"]["OutputConfig"]["NotificationConfig"]
            assert set(notify) == {"SuccessTopic", "ErrorTopic"}
        if mode == "serverless":
            capacity = manifest.env_serving(env).serverless
            assert config["ProductionVariants"][0]["ServerlessConfig"]["MemorySizeInMB"] == (
                capacity.memory_mb
            )
            assert "DataCaptureConfig" not in config  # serverless endpoints capture nothing
        else:
            assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == (
                manifest.serving.data_capture_sampling_percent
            )
    # The broken form: the stand-in without the manifest's modes answers real-time for all.
    bare = Endpoint().describe_endpoint_config("x-config")
    assert mode_of(bare) == "real-time"
    assert {manifest.env_serving(e).mode.value for e in ("staging", "prod")} != {"real-time"}


@pytest.fixture
def booster_host(tmp_path: Path) -> Any:
    """A real XGBoost model (built-in algorithm mode) in moto's S3, served by the local host."""
    import xgboost as xgb

    from tools.local_endpoint import LocalHost

    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 3))
    labels = (features[:, 0] > 0).astype(float)
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(features, labels), 5)
    saved = tmp_path / "xgboost-model"
    booster.save_model(str(saved))
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        tar.add(saved, arcname="xgboost-model")

    def read(url: str) -> bytes:
        bucket, _, key = url.removeprefix("s3://").partition("/")
        return bytes(boto3.client("s3", region_name="us-east-1").get_object(
            Bucket=bucket, Key=key)["Body"].read())  # fmt: skip

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        s3.put_object(Bucket="artifacts", Key=ARTIFACT.split("/", 3)[3], Body=packed.getvalue())
        yield LocalHost(tmp_path / "endpoint", "xgboost", None, read), booster


def queue_one(endpoint: Any, name: str, body: str, inference: str) -> dict[str, Any]:
    s3 = boto3.client("s3", region_name="us-east-1")
    key = f"async/staging/input/{inference}.csv"
    s3.put_object(Bucket="artifacts", Key=key, Body=body.encode())
    return dict(endpoint.invoke_endpoint_async(
        EndpointName=name, ContentType="text/csv", InputLocation=f"s3://artifacts/{key}",
        InferenceId=inference))  # fmt: skip


def read(uri: str) -> str | None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        body = boto3.client("s3", region_name="us-east-1").get_object(Bucket=bucket, Key=key)
    except ClientError:
        return None
    return str(body["Body"].read().decode())


def test_the_async_stand_in_answers_with_the_real_model_or_writes_the_failure(
    booster_host: Any,
) -> None:
    import xgboost as xgb

    from mlgate.infra.naming import Names

    host, booster = booster_host
    manifest = manifest_of("fraud-detection")
    assert manifest.serving.staging.mode.value == "async"
    endpoint = endpoint_of(manifest, host)
    name = Names.of(manifest, "staging").endpoint()
    endpoint.serving[name] = ARTIFACT
    with pytest.raises(ClientError, match="InvokeEndpointAsync"):  # async refuses InvokeEndpoint
        endpoint.invoke_endpoint(EndpointName=name, Body="1,2,3", ContentType="text/csv")
    good = queue_one(endpoint, name, "0.5,-1.0,2.0", "good")
    bad = queue_one(endpoint, name, "true,-1.0,2.0", "bad")
    assert good == {
        "InferenceId": "good",
        "OutputLocation": "s3://artifacts/async/staging/output/good.out",
        "FailureLocation": "s3://artifacts/async/staging/failures/good-error.out",
    }
    # Queued, not answered yet: nothing written until the endpoint processes its backlog.
    assert read(good["OutputLocation"]) is None
    assert len(endpoint.pending(name)) == 2
    done = endpoint.drain(name)
    assert [q.inference_id for q in done] == ["good", "bad"]
    assert not endpoint.pending(name)
    expected = booster.predict(xgb.DMatrix(np.array([[0.5, -1.0, 2.0]])))[0]
    answer = read(good["OutputLocation"])
    assert answer is not None
    assert float(answer) == pytest.approx(float(expected), rel=1e-6)
    assert read(good["FailureLocation"]) is None
    failure = read(bad["FailureLocation"])
    assert failure is not None
    assert "Loading csv data failed" in failure, failure
    assert "Received client error (415)" in failure
    assert read(bad["OutputLocation"]) is None
    assert [q.failed for q in done] == [False, True]
    # The queue's series for the dashboard: the backlog filled to 2 and drained to 0.
    from tools.rehearsal_metrics import queue_series

    (backlog, age) = queue_series(endpoint.queue)
    assert [v for _, v in backlog["points"]][-1] == 0
    assert max(v for _, v in backlog["points"]) == 2
    assert age["dimensions"] == {"EndpointName": name}


def test_a_missing_request_object_is_refused(booster_host: Any) -> None:
    from mlgate.infra.naming import Names

    host, _ = booster_host
    manifest = manifest_of("fraud-detection")
    endpoint = endpoint_of(manifest, host)
    name = Names.of(manifest, "staging").endpoint()
    with pytest.raises(ClientError):
        endpoint.invoke_endpoint_async(EndpointName=name, InputLocation="s3://artifacts/nothing")
    assert not endpoint.queue


def test_the_drift_loop_watches_a_monitored_environment_only(tmp_path: Path) -> None:
    """The environments the rehearsal monitors are those the app builds a Monitoring stack
    for (monitored: not serverless); delivery-time's serverless staging is not one;
    with no monitored environment the drift loop does not run."""
    from tools.rehearsal import Rehearsal

    with mock_aws():
        for name in PRODUCTS:
            manifest = manifest_of(name)
            with Rehearsal(tmp_path / name, manifest) as rehearsal:
                monitored = rehearsal.monitored()
            assert monitored == [e for e in ("staging", "prod") if manifest.monitored(e)]
            if manifest.serving.staging.mode.value == "serverless":
                assert monitored[0] == "prod"  # the broken form monitored staging
        serving = manifest_of("delivery-time").serving
        unwatched = manifest_of("delivery-time").model_copy(
            update={"serving": serving.model_copy(update={"prod": serving.staging})}
        )
        with Rehearsal(tmp_path / "none", unwatched) as rehearsal:
            assert rehearsal.monitored() == []
            assert rehearsal.drift_loop("arn:unused") is False


def test_a_batch_transform_sends_whole_lines_within_max_payload() -> None:
    """The rehearsal's transform sends the model mini-batches as MultiRecord does: every line
    whole, in order, each batch within MaxPayloadInMB (a line is its bytes and its newline)."""
    from tools.rehearsal_batch import mini_batches

    lines = [f"id-{i},{'x' * (i % 7)}" for i in range(50)]
    limit = 40
    batches = mini_batches(lines, limit)
    assert [line for batch in batches for line in batch] == lines
    assert all(sum(len(x) + 1 for x in batch) <= limit for batch in batches)
    assert len(batches) > 1
    assert mini_batches(lines, 10**6) == [lines]  # everything fits in one request
    assert mini_batches([], limit) == []
