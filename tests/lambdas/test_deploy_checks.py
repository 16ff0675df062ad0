"""Deploy verifier and quality gate under moto, driven by the documented CodePipeline job event."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mlgate.gates import thresholds
from mlgate.manifest import load_manifest

from ..conftest import DEFAULT_MANIFEST
from .conftest import CONTEXT, Faults, Recorder, audit_items, bucket, event, fail_then_retry

JOB = event("codepipeline_job.json")
ENDPOINT = "mlgate-fraud-detection-staging"
RELEASED = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlgate-fraud-detection/7"
PREVIOUS = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlgate-fraud-detection/6"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def job(**params: Any) -> dict[str, Any]:
    e = copy.deepcopy(JOB)
    data = e["CodePipeline.job"]["data"]
    data["actionConfiguration"]["configuration"]["UserParameters"] = json.dumps(params)
    data["inputArtifacts"][0]["location"]["s3Location"] = {
        "bucketName": "artifacts",
        "objectKey": "release.json",
    }
    data["artifactCredentials"] = {}
    del data["continuationToken"]
    return e


@pytest.fixture
def released(aws: None) -> None:
    bucket("artifacts")
    boto3.client("s3").put_object(
        Bucket="artifacts",
        Key="release.json",
        Body=json.dumps(
            {
                "model_package_arn": RELEASED,
                "model_version": 7,
                "metrics": {"precision": 0.97, "recall": 0.71, "auc": 0.95},
            }
        ),
    )


class Endpoint:
    """DescribeEndpoint / Config / Model as SageMaker answers them for one endpoint."""

    def __init__(self, status: str, package: str) -> None:
        self.status, self.package = status, package

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {"EndpointStatus": self.status, "EndpointConfigName": "config-7"}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        return {"ProductionVariants": [{"ModelName": "model-7"}]}

    def describe_model(self, ModelName: str) -> dict[str, Any]:
        return {"Containers": [{"ModelPackageName": self.package}]}


class Runtime:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        import io

        self.bodies.append(kwargs["Body"])
        return {"Body": io.BytesIO(b"0.0132")}


@pytest.fixture
def verifier(released: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    from deploy_verifier import handler

    pipeline = Recorder()
    monkeypatch.setattr(handler, "codepipeline", pipeline)
    monkeypatch.setenv("SAMPLE_PAYLOAD", "120.5,1,0.3,1.2,3600,2")
    handler.sample_payload.cache_clear()
    return handler, pipeline


def run_verifier(
    verifier: Any, monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint
) -> dict[str, str]:
    handler, _ = verifier
    runtime = Runtime()
    real = boto3.client
    monkeypatch.setattr(
        handler.boto3,
        "client",
        lambda name, *a, **k: (
            {"sagemaker": endpoint, "sagemaker-runtime": runtime}.get(name) or real(name, *a, **k)
        ),
    )
    return dict(handler.handler(job(environment="staging", endpoint=ENDPOINT), None))


def test_verifier_passes_when_the_released_version_serves(verifier: Any, monkeypatch: Any) -> None:
    result = run_verifier(verifier, monkeypatch, Endpoint("InService", RELEASED))
    assert result["result"] == "succeeded"
    assert f"serves {RELEASED} on config-7; sample scored 0.0132" in result["reason"]
    assert verifier[1].names() == ["put_job_success_result"]


def test_verifier_catches_a_silent_rollback(verifier: Any, monkeypatch: Any) -> None:
    result = run_verifier(verifier, monkeypatch, Endpoint("InService", PREVIOUS))
    assert result["result"] == "failed"
    assert result["reason"].startswith(f"staging: silent rollback: {ENDPOINT} is InService")
    assert f"serving {PREVIOUS}, but the pipeline deployed {RELEASED}" in result["reason"]
    ((name, sent),) = verifier[1].calls
    assert name == "put_job_failure_result"
    assert "silent rollback" in sent["failureDetails"]["message"]


def test_verifier_fails_an_endpoint_that_is_not_in_service(verifier: Any, monkeypatch: Any) -> None:
    result = run_verifier(verifier, monkeypatch, Endpoint("Updating", RELEASED))
    assert result["reason"] == f"staging: endpoint {ENDPOINT} is Updating, not InService"


def test_verifier_checks_prod_in_another_account_under_the_verify_role(
    verifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, pipeline = verifier
    role = "arn:aws:iam::222222222222:role/mlgate-fraud-detection-prod-verify"
    endpoint, runtime, sessions = Endpoint("InService", RELEASED), Runtime(), []

    class Session:
        """A session under the assumed role's credentials; its clients answer for prod."""

        def __init__(self, **credentials: str) -> None:
            sessions.append(credentials)

        def client(self, name: str) -> Any:
            return {"sagemaker": endpoint, "sagemaker-runtime": runtime}[name]

    from types import SimpleNamespace

    from shared import accounts

    monkeypatch.setattr(accounts, "boto3", SimpleNamespace(client=boto3.client, Session=Session))
    result = handler.handler(
        job(environment="prod", endpoint="mlgate-fraud-detection-prod", role_arn=role), None
    )
    assert result["result"] == "succeeded", result
    assert result["reason"].startswith("prod: mlgate-fraud-detection-prod serves")
    # The credentials are the ones STS issued for the prod verify role, not the hook's own.
    (credentials,) = sessions
    caller = boto3.client("sts", **credentials).get_caller_identity()["Arn"]
    assert caller == (
        "arn:aws:sts::222222222222:assumed-role/mlgate-fraud-detection-prod-verify/"
        "mlgate-verify-prod"
    )
    assert pipeline.names() == ["put_job_success_result"]


def test_verifier_refuses_a_malformed_job(verifier: Any) -> None:
    handler, pipeline = verifier
    result = handler.handler(job(environment="staging"), None)
    assert result == {"result": "failed", "reason": "UserParameters lacks ['endpoint']"}
    assert pipeline.names() == ["put_job_failure_result"]


def staging(latency_ms: float | None, invocations: int, errors: int) -> Recorder:
    """CloudWatch's answer for staging (moto computes no percentiles, so p99 is stubbed)."""
    values = {
        "latency": [latency_ms * 1000] if latency_ms is not None else [],
        "invocations": [invocations] if invocations else [],
        "errors5xx": [errors] if invocations else [],
        "modelerrors": [0] if invocations else [],
    }
    return Recorder(
        get_metric_data=lambda **q: {
            "MetricDataResults": [
                {"Id": m["Id"], "Values": values[m["Id"]]} for m in q["MetricDataQueries"]
            ]
        }
    )


@pytest.fixture
def gate(released: None, audit_table: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from quality_gate import handler

    pipeline = Recorder()
    monkeypatch.setattr(handler, "codepipeline", pipeline)
    monkeypatch.setenv("MLGATE_THRESHOLDS", json.dumps(thresholds(load_manifest(DEFAULT_MANIFEST))))
    monkeypatch.setenv("AUDIT_TABLE", audit_table)
    monkeypatch.setenv("RELEASE_PIPELINE", "mlgate-fraud-detection-release")
    handler.settings.cache_clear()
    return handler, pipeline, monkeypatch


def with_cloudwatch(gate: Any, answer: Recorder) -> Any:
    handler, _, monkeypatch = gate
    monkeypatch.setattr(handler, "cloudwatch", answer)
    return handler


def test_quality_gate_passes_good_evidence_and_records_it(gate: Any) -> None:
    cloudwatch = staging(latency_ms=85, invocations=5000, errors=0)
    handler, pipeline = with_cloudwatch(gate, cloudwatch), gate[1]
    result = handler.handler(job(endpoint=ENDPOINT, window_minutes=60), None, now=NOW)
    assert result["result"] == "succeeded", result["reason"]
    assert "PASS precision 0.9700 (needs >= 0.95)" in result["reason"]
    assert "PASS staging latency_p99_ms 85" in result["reason"]
    assert pipeline.names() == ["put_job_success_result"]
    (verdict,) = [i for i in audit_items() if i.get("event") == "quality-gate"]
    assert verdict["decision"] == "Passed"
    ((_, query),) = cloudwatch.calls
    latency = query["MetricDataQueries"][0]["MetricStat"]
    assert (latency["Metric"]["MetricName"], latency["Stat"]) == ("ModelLatency", "p99")
    assert query["StartTime"] == NOW - timedelta(minutes=60)


def test_quality_gate_fails_on_a_breached_slo_and_says_which(gate: Any) -> None:
    handler, pipeline = with_cloudwatch(gate, staging(450, 5000, 20)), gate[1]
    result = handler.handler(job(endpoint=ENDPOINT), None, now=NOW)
    assert result["result"] == "failed"
    assert "FAIL staging latency_p99_ms 450 (SLO <= 200.0)" in result["reason"]
    assert "FAIL staging error_rate_5xx 0.004 (SLO <= 0.001)" in result["reason"]
    assert pipeline.names() == ["put_job_failure_result"]


def test_quality_gate_fails_without_staging_traffic(gate: Any) -> None:
    handler = with_cloudwatch(gate, staging(None, 0, 0))
    result = handler.handler(job(endpoint=ENDPOINT), None, now=NOW)
    assert result["result"] == "failed"
    assert "no staging traffic in the window to judge it" in result["reason"]


@pytest.mark.parametrize("index", range(8))
def test_a_transient_fault_then_the_retry_records_and_reports_the_verdict_once(
    gate: Any, faults: Faults, index: int
) -> None:
    """Each AWS call of the quality gate fails once in turn; the retry of the same job
    records one verdict and reports it once."""
    handler, pipeline = with_cloudwatch(gate, staging(85, 5000, 0)), gate[1]
    answer = fail_then_retry(
        faults, index, lambda: handler.handler(job(endpoint=ENDPOINT), CONTEXT, now=NOW)
    )
    if not faults.failed:
        pytest.skip(f"the quality gate makes fewer than {index + 1} AWS calls")
    assert answer["result"] == "succeeded", (faults.failed, answer)
    assert len([i for i in audit_items() if i.get("event") == "quality-gate"]) == 1
    assert pipeline.names() == ["put_job_success_result"], faults.failed


@pytest.mark.parametrize("index", range(2))
def test_a_transient_fault_then_the_retry_verifies_and_reports_once(
    verifier: Any, monkeypatch: pytest.MonkeyPatch, faults: Faults, index: int
) -> None:
    """Reading release.json or reporting to CodePipeline is throttled once: the invocation
    fails (the job does not), and Lambda's retry verifies and reports success once."""
    _, pipeline = verifier
    answer = fail_then_retry(
        faults,
        index,
        lambda: run_verifier(verifier, monkeypatch, Endpoint("InService", RELEASED)),
    )
    assert faults.failed == ["s3.get_object", "recorder.put_job_success_result"][index]
    assert answer["result"] == "succeeded"
    assert pipeline.names() == ["put_job_success_result"]


def config_gone(name: str) -> dict[str, Any]:
    """What SageMaker answers DescribeEndpointConfig for a config CloudFormation deleted."""
    return {
        "service_error_code": "ValidationException",
        "service_message": f'Could not find endpoint configuration "arn:aws:sagemaker:eu-west-1:'
        f'111111111111:endpoint-config/{name}".',
        "http_status_code": 400,
    }


def stubbed_sagemaker(
    verifier: Any, monkeypatch: pytest.MonkeyPatch, configs: list[str]
) -> tuple[Stubber, list[float]]:
    """A real SageMaker client under Stubber: the endpoint names each of `configs` in turn and
    every one of them is already deleted, except one called config-7 (serving RELEASED)."""
    handler, _ = verifier
    sagemaker = boto3.client("sagemaker")
    stubber = Stubber(sagemaker)
    for name in configs:
        stubber.add_response(
            "describe_endpoint",
            {"EndpointName": ENDPOINT, "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/x",
             "EndpointConfigName": name, "EndpointStatus": "InService",
             "CreationTime": NOW, "LastModifiedTime": NOW},
            {"EndpointName": ENDPOINT},
        )  # fmt: skip
        if name != "config-7":
            stubber.add_client_error("describe_endpoint_config", **config_gone(name))
            continue
        stubber.add_response(
            "describe_endpoint_config",
            {"EndpointConfigName": name, "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:"
             "endpoint-config/config-7", "CreationTime": NOW,
             "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "model-7"}]},
            {"EndpointConfigName": name},
        )  # fmt: skip
        stubber.add_response(
            "describe_model",
            {"ModelName": "model-7", "ModelArn": "arn:aws:sagemaker:eu-west-1:1:model/model-7",
             "CreationTime": NOW, "Containers": [{"ModelPackageName": RELEASED}]},
            {"ModelName": "model-7"},
        )  # fmt: skip
    stubber.activate()
    pauses: list[float] = []
    monkeypatch.setattr(handler, "pause", pauses.append)
    runtime, real = Runtime(), boto3.client
    monkeypatch.setattr(
        handler.boto3,
        "client",
        lambda name, *a, **k: (
            {"sagemaker": sagemaker, "sagemaker-runtime": runtime}.get(name) or real(name, *a, **k)
        ),
    )
    return stubber, pauses


def test_verifier_reads_the_endpoint_again_when_its_old_config_was_deleted(
    verifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint still named the previous config when read, and CloudFormation deleted
    that config before the verifier described it; the next read finds the new one."""
    handler, pipeline = verifier
    stubber, pauses = stubbed_sagemaker(verifier, monkeypatch, ["config-6", "config-7"])
    result = handler.handler(job(environment="staging", endpoint=ENDPOINT), None)
    assert result["result"] == "succeeded", result
    assert f"serves {RELEASED} on config-7" in result["reason"]
    assert pauses == [handler.PAUSE]
    assert pipeline.names() == ["put_job_success_result"]
    stubber.assert_no_pending_responses()


def test_verifier_says_so_when_it_cannot_resolve_what_is_served(
    verifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, pipeline = verifier
    configs = ["config-6"] * handler.READS
    stubber, pauses = stubbed_sagemaker(verifier, monkeypatch, configs)
    result = handler.handler(job(environment="staging", endpoint=ENDPOINT), None)
    assert result == {
        "result": "failed",
        "reason": f"staging: cannot tell which model version {ENDPOINT} serves: it names "
        f"endpoint config config-6, which (or whose model) no longer exists, in "
        f"{handler.READS} reads; CloudFormation may still be replacing it: retry the stage "
        "once the Serving stack is stable",
    }
    assert len(pauses) == handler.READS - 1, "bounded: no pause after the last read"
    ((name, sent),) = pipeline.calls
    assert name == "put_job_failure_result"
    assert "cannot tell which model version" in sent["failureDetails"]["message"]
    stubber.assert_no_pending_responses()
