"""Deploy verifier and quality gate under moto, driven by the documented CodePipeline job event."""

from __future__ import annotations

import copy
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from mlgate.infra.gates import thresholds
from mlgate.manifest import load_manifest

from ..conftest import DEFAULT_MANIFEST
from .conftest import (
    CONTEXT,
    EXECUTION,
    Faults,
    Jobs,
    Recorder,
    Registry,
    audit_items,
    bucket,
    event,
    fail_then_retry,
    package_arn,
    release_source,
)
from .conftest import (
    released as released_json,
)

JOB = event("codepipeline_job.json")
ENDPOINT = "mlgate-fraud-detection-staging"
# What the endpoint's model names: the released copy of the version's model artifact.
RELEASED = "s3://artifacts/released/fraud-detection/7/model.tar.gz"
PREVIOUS = "s3://artifacts/released/fraud-detection/6/model.tar.gz"
RELEASED_ARN = package_arn(7)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NAMESPACE = "mlgate/fraud-detection/release"


@dataclass
class Pipeline:
    """CodePipeline as the job hooks see it in a test: the jobs it holds, the source revision
    of the execution, the registry."""

    jobs: Jobs
    registry: Registry
    revision: str


PIPELINE: Pipeline | None = None


def job(**params: Any) -> dict[str, Any]:
    """The hook's job with these UserParameters, held by CodePipeline (the stand-in), and the
    event that names it: AWS's sample, of which the hooks read the job id only."""
    assert PIPELINE is not None
    PIPELINE.jobs.add(params, revision=PIPELINE.revision)
    return copy.deepcopy(JOB)


RELEASE = released_json(
    7,
    metrics={"precision": 0.97, "recall": 0.71, "auc": 0.95},
    evaluation_report_uri="s3://artifacts/training/fraud-detection/run-1/evaluation/"
    "evaluation.json",
)


@pytest.fixture
def released(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    global PIPELINE
    bucket("artifacts")
    registry = Registry()
    registry.hold(RELEASED_ARN)
    PIPELINE = Pipeline(Jobs(), registry, release_source(monkeypatch, RELEASE))
    yield PIPELINE
    PIPELINE = None


class Endpoint:
    """DescribeEndpoint / Config / Model as SageMaker answers them for one endpoint."""

    def __init__(self, status: str, package: str) -> None:
        self.status, self.package = status, package

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {"EndpointStatus": self.status, "EndpointConfigName": "config-7"}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        return {"ProductionVariants": [{"ModelName": "model-7"}]}

    def describe_model(self, ModelName: str) -> dict[str, Any]:
        return {"Containers": [{"Image": "xgboost", "ModelDataUrl": self.package}]}


class Runtime:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        import io

        self.bodies.append(kwargs["Body"])
        return {"Body": io.BytesIO(b"0.0132")}


@pytest.fixture
def verifier(released: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Any:
    from deploy_verifier import handler

    pipeline = released.jobs.results
    monkeypatch.setattr(handler, "codepipeline", released.jobs)
    monkeypatch.setattr(handler, "registry", released.registry)
    monkeypatch.setenv("SAMPLE_PAYLOAD", "120.5,1,0.3,1.2,3600,2")
    monkeypatch.setattr(handler.metrics, "namespace", NAMESPACE)
    handler.sample_payload.cache_clear()
    return handler, pipeline


def run_verifier(
    verifier: Any,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: Endpoint,
    event: dict[str, Any] | None = None,
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
    event = event or job(environment="staging", endpoint=ENDPOINT)
    return dict(handler.handler(event, CONTEXT))


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

    from shared import accounts

    monkeypatch.setattr(accounts, "boto3", SimpleNamespace(client=boto3.client, Session=Session))
    result = handler.handler(
        job(environment="prod", endpoint="mlgate-fraud-detection-prod", role_arn=role), CONTEXT
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
    result = handler.handler(job(environment="staging"), CONTEXT)
    assert result == {"result": "refused", "reason": "UserParameters.endpoint: Field required"}
    assert pipeline.names() == ["put_job_failure_result"]


SPLIT = "training/fraud-detection/run-1/test/test.csv"
# The test split's layout: the label first, then the payload columns, no header.
ROWS = [f"{i % 2},{100 + i}.5,1,0.3,1.2,3600,2" for i in range(8)]
REQUESTS = 12
# The manifest's thresholds, as the delivery stack hands them to the quality gate.
THRESHOLDS = json.dumps(thresholds(load_manifest(DEFAULT_MANIFEST)))


def payload(i: int) -> str:
    return ROWS[i % len(ROWS)].split(",", 1)[1]


class Clock:
    """Time as the gate reads it: each read moves it `step` seconds (a request is timed by
    two consecutive reads, so its latency is one step)."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def answer() -> dict[str, Any]:
    from botocore.response import StreamingBody

    return {"Body": StreamingBody(io.BytesIO(b"0.0132"), 6), "ContentType": "text/csv"}


def request(i: int) -> dict[str, Any]:
    return {"EndpointName": ENDPOINT, "ContentType": "text/csv", "Accept": "text/csv",
            "Body": payload(i)}  # fmt: skip


@pytest.fixture
def gate(released: Pipeline, audit_table: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from quality_gate import handler

    boto3.client("s3").put_object(Bucket="artifacts", Key=SPLIT, Body="\n".join(ROWS) + "\n")
    pipeline = released.jobs.results
    pauses: list[float] = []
    monkeypatch.setattr(handler, "codepipeline", released.jobs)
    monkeypatch.setattr(handler, "registry", released.registry)
    monkeypatch.setattr(handler, "sagemaker", Endpoint("InService", RELEASED))
    monkeypatch.setattr(handler, "clock", Clock(0.085))
    monkeypatch.setattr(handler, "pause", pauses.append)
    monkeypatch.setenv("MLGATE_THRESHOLDS", THRESHOLDS)
    monkeypatch.setenv("SMOKE_REQUESTS", str(REQUESTS))
    monkeypatch.setenv("AUDIT_TABLE", audit_table)
    monkeypatch.setenv("RELEASE_PIPELINE", "mlgate-fraud-detection-release")
    monkeypatch.setattr(handler.metrics, "namespace", NAMESPACE)
    handler.settings.cache_clear()
    return SimpleNamespace(handler=handler, pipeline=pipeline, pauses=pauses, patch=monkeypatch)


def verdicts() -> list[dict[str, str]]:
    return [i for i in audit_items() if i.get("event") == "quality-gate"]


def run_gate(gate: Any, stub: Stubber, *outcomes: str) -> dict[str, str]:
    """Queue the endpoint's answers, in order: "ok", "throttled", "5xx" (SageMaker's),
    "model-400" / "model-500" (ModelError, the container's status); the rest answer ok.
    Every request is checked to carry its test-split row's payload."""
    queued = list(outcomes) + ["ok"] * (REQUESTS - sum(o != "throttled" for o in outcomes))
    sent = 0
    for outcome in queued:
        if outcome == "ok":
            stub.add_response("invoke_endpoint", answer(), request(sent))
        else:
            code, status, container = {
                "throttled": ("ThrottlingException", 400, None),
                "5xx": ("ServiceUnavailable", 503, None),
                "model-400": ("ModelError", 424, 400),
                "model-500": ("ModelError", 424, 500),
            }[outcome]
            stub.add_client_error(
                "invoke_endpoint", code, f"{outcome} answer", status,
                expected_params=request(sent),
                modeled_fields={"OriginalStatusCode": container} if container else None,
            )  # fmt: skip
        sent += outcome != "throttled"
    with stub:
        result = dict(gate.handler.handler(job(endpoint=ENDPOINT, execution=EXECUTION), CONTEXT))
    stub.assert_no_pending_responses()
    return result


@pytest.fixture
def stub(gate: Any) -> Stubber:
    return Stubber(gate.handler.runtime)


def test_a_good_version_passes_on_its_own_smoke_load_and_is_recorded(
    gate: Any, stub: Stubber
) -> None:
    result = run_gate(gate, stub)
    assert result["result"] == "succeeded", result["reason"]
    assert "PASS precision 0.9700 (needs >= 0.95)" in result["reason"]
    assert (
        f"PASS smoke latency_p99_ms 85 over {REQUESTS} requests (SLO <= 200.0)"
        in (result["reason"])
    )
    assert f"PASS smoke error_rate_5xx 0 over {REQUESTS} requests" in result["reason"]
    assert gate.pipeline.names() == ["put_job_success_result"]
    (verdict,) = verdicts()
    assert verdict["decision"] == "Passed"
    assert verdict["execution"] == EXECUTION
    assert verdict["detail"] == result["reason"]


def test_a_slow_version_fails_naming_the_latency_slo(gate: Any, stub: Stubber) -> None:
    gate.patch.setattr(gate.handler, "clock", Clock(0.45))
    result = run_gate(gate, stub)
    assert result["result"] == "failed"
    assert (
        f"FAIL smoke latency_p99_ms 450 over {REQUESTS} requests (SLO <= 200.0)"
        in (result["reason"])
    )
    assert "PASS smoke error_rate_5xx" in result["reason"]
    assert gate.pipeline.names() == ["put_job_failure_result"]
    assert verdicts()[0]["decision"] == "Failed"


def test_an_erroring_version_fails_naming_each_error_slo(gate: Any, stub: Stubber) -> None:
    """As SageMaker counts them: a 5xx of SageMaker or of the model container is a 5xx; every
    non-2xx answer of the container, and a refused row, is an invocation error."""
    result = run_gate(gate, stub, "ok", "5xx", "model-400", "model-500")
    assert result["result"] == "failed"
    assert (
        f"FAIL smoke error_rate_5xx 0.1667 over {REQUESTS} requests (SLO <= 0.001)"
        in (result["reason"])
    )
    assert f"FAIL smoke invocation_error_rate 0.1667 over {REQUESTS} requests" in result["reason"]
    assert "first error: ServiceUnavailable: 5xx answer" in result["reason"]
    assert "PASS smoke latency_p99_ms" in result["reason"]


def test_a_throttled_request_is_retried_with_backoff_and_not_counted(
    gate: Any, stub: Stubber
) -> None:
    result = run_gate(gate, stub, "throttled", "throttled", "ok")
    assert result["result"] == "succeeded", result["reason"]
    assert gate.pauses == [0.2, 0.4]
    assert f"PASS smoke error_rate_5xx 0 over {REQUESTS} requests" in result["reason"]


def test_throttling_past_the_backoff_fails_the_invocation_and_lambda_s_retry_judges_once(
    gate: Any, stub: Stubber
) -> None:
    from quality_gate.handler import ATTEMPTS, Throttled

    for _ in range(ATTEMPTS):
        stub.add_client_error("invoke_endpoint", "ThrottlingException", "slow down", 400)
    with stub, pytest.raises(Throttled):
        gate.handler.handler(job(endpoint=ENDPOINT, execution=EXECUTION), CONTEXT)
    assert gate.pauses == [0.2, 0.4, 0.8]  # bounded: three waits, then the invocation fails
    assert verdicts() == []
    assert gate.pipeline.names() == []
    result = run_gate(gate, stub)
    assert result["result"] == "succeeded"
    assert len(verdicts()) == 1


def test_a_replayed_event_reports_the_stored_verdict_without_loading_again(
    gate: Any, stub: Stubber
) -> None:
    first = run_gate(gate, stub)
    with stub:  # nothing queued: a request to the endpoint would fail the test
        again = gate.handler.handler(job(endpoint=ENDPOINT, execution=EXECUTION), CONTEXT)
    assert again == first
    assert len(verdicts()) == 1
    assert gate.pipeline.names() == ["put_job_success_result", "put_job_success_result"]


class Moving(Endpoint):
    """An endpoint whose deployment moves it to another config while the load runs."""

    def __init__(self) -> None:
        super().__init__("InService", RELEASED)
        # Read for its mode, before the load, after it.
        self.configs = iter(["config-7", "config-7", "config-8"])

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {"EndpointStatus": "InService", "EndpointConfigName": next(self.configs)}


def test_requests_are_credited_to_one_version_only(gate: Any, stub: Stubber) -> None:
    gate.patch.setattr(gate.handler, "sagemaker", Moving())
    result = run_gate(gate, stub)
    assert result["result"] == "failed"
    assert "moved from config-7 to config-8 during the smoke load" in result["reason"]
    assert verdicts() == []


def test_no_smoke_load_while_a_deployment_is_in_flight(gate: Any) -> None:
    gate.patch.setattr(gate.handler, "sagemaker", Endpoint("Updating", RELEASED))
    result = gate.handler.handler(job(endpoint=ENDPOINT), CONTEXT)
    assert result["result"] == "failed"
    assert f"staging endpoint {ENDPOINT} is Updating" in result["reason"]
    assert gate.pipeline.names() == ["put_job_failure_result"]


def test_a_release_without_a_test_split_fails_saying_where_it_looked(gate: Any) -> None:
    boto3.client("s3").delete_object(Bucket="artifacts", Key=SPLIT)
    result = gate.handler.handler(job(endpoint=ENDPOINT), CONTEXT)
    assert result["result"] == "failed"
    assert f"no test split at s3://artifacts/{SPLIT}" in result["reason"]


def test_the_sample_is_read_with_one_bounded_range(gate: Any) -> None:
    handler = gate.handler
    reads: list[dict[str, Any]] = []
    real = boto3.client("s3")

    class Spy:
        def get_object(self, **kwargs: Any) -> Any:
            reads.append(kwargs)
            return real.get_object(**kwargs)

    assert handler.read_sample(Spy(), f"s3://artifacts/{SPLIT}") == [payload(i) for i in range(8)]
    ((read,),) = [reads]
    assert read["Range"] == f"bytes=0-{handler.SAMPLE_BYTES - 1}"


@pytest.mark.parametrize("index", range(12))
def test_a_transient_fault_then_the_retry_records_and_reports_the_verdict_once(
    gate: Any, faults: Faults, index: int
) -> None:
    """Each AWS call of the quality gate (with a one-request load) fails once in turn; the
    retry of the same job records one verdict and reports it once. A throttled request is
    retried inside the load: that invocation succeeds, and a second one replays its verdict.
    Lambda retries a minute or more later: each try runs at another time, and the verdict
    keeps one audit key all the same."""
    gate.patch.setenv("SMOKE_REQUESTS", "1")
    gate.handler.settings.cache_clear()
    gate.patch.setattr(gate.handler, "runtime", Recorder(invoke_endpoint=lambda **_: answer()))
    tries = iter(NOW + timedelta(minutes=2 * i) for i in range(3))
    # The audit trail's own clock moves on between tries too.
    clock = (f"2026-11-24T12:{minute:02d}:00Z" for minute in range(1, 60))
    gate.patch.setattr(sys.modules["shared.audit"], "now_iso", lambda now=None: next(clock))
    answer_ = fail_then_retry(
        faults,
        index,
        lambda: gate.handler.handler(
            job(endpoint=ENDPOINT, execution=EXECUTION), CONTEXT, now=next(tries)
        ),
    )
    if not faults.failed:
        pytest.skip(f"the quality gate makes fewer than {index + 1} AWS calls")
    assert answer_["result"] == "succeeded", (faults.failed, answer_)
    assert len(verdicts()) == 1
    reports = 2 if faults.failed == "recorder.invoke_endpoint" else 1
    assert gate.pipeline.names() == ["put_job_success_result"] * reports, faults.failed


VERIFIER_CALLS = [
    "recorder.get_job_details", "recorder.get_pipeline_execution", "s3.get_object",
    "recorder.describe_model_package", "recorder.put_job_success_result",
]  # fmt: skip


@pytest.mark.parametrize("index", range(len(VERIFIER_CALLS)))
def test_a_transient_fault_then_the_retry_verifies_and_reports_once(
    verifier: Any, monkeypatch: pytest.MonkeyPatch, faults: Faults, index: int
) -> None:
    """Reading the job, its execution, release.json or the registry, or reporting to
    CodePipeline is throttled once: the invocation fails (the job does not), and Lambda's retry
    verifies and reports success once."""
    _, pipeline = verifier
    answer = fail_then_retry(
        faults,
        index,
        lambda: run_verifier(verifier, monkeypatch, Endpoint("InService", RELEASED)),
    )
    assert faults.failed == VERIFIER_CALLS[index]
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
    result = handler.handler(job(environment="staging", endpoint=ENDPOINT), CONTEXT)
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
    result = handler.handler(job(environment="staging", endpoint=ENDPOINT), CONTEXT)
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


# --- refusals: before any work, and never an exception ---------------------------------------


def sagemaker_refusing(name: str) -> Any:
    """SageMaker under botocore's Stubber, answering DescribeEndpoint for an endpoint that does
    not exist here (another product's, another account's) as the service does."""
    client = boto3.client("sagemaker")
    stubber = Stubber(client)
    stubber.add_client_error(
        "describe_endpoint",
        service_error_code="ValidationException",
        service_message=f'Could not find endpoint "arn:aws:sagemaker:eu-west-1:111111111111:'
        f'endpoint/{name}".',
        http_status_code=400,
        expected_params={"EndpointName": name},
    )
    stubber.activate()
    return client


def test_verifier_fails_the_job_for_an_endpoint_aws_does_not_know(
    verifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ValidationException is AWS refusing the name, not the hook failing: the job fails
    saying so, and the invocation succeeds (no retry, nothing in the dead-letter queue)."""
    handler, pipeline = verifier
    other = "mlgate-other-product-staging"
    client, real = sagemaker_refusing(other), boto3.client
    monkeypatch.setattr(
        handler.boto3,
        "client",
        lambda name, *a, **k: client if name == "sagemaker" else real(name, *a, **k),
    )
    result = handler.handler(job(environment="staging", endpoint=other), CONTEXT)
    assert result["result"] == "failed"
    assert result["reason"].startswith("DescribeEndpoint refused: ValidationException")
    ((name, sent),) = pipeline.calls
    assert name == "put_job_failure_result"
    assert sent["failureDetails"]["message"] == result["reason"]


def test_gate_fails_the_job_for_an_endpoint_aws_does_not_know_without_loading(gate: Any) -> None:
    other = "mlgate-other-product-staging"
    gate.patch.setattr(gate.handler, "sagemaker", sagemaker_refusing(other))
    gate.patch.setattr(gate.handler, "runtime", Recorder())
    result = gate.handler.handler(job(endpoint=other, execution=EXECUTION), CONTEXT)
    assert result["result"] == "failed"
    assert "DescribeEndpoint refused: ValidationException" in result["reason"]
    assert gate.handler.runtime.calls == []
    assert audit_items() == []
    assert gate.pipeline.names() == ["put_job_failure_result"]


@pytest.mark.parametrize(
    ("thresholds", "reason"),
    [
        ('{"model_metrics": [{"name": "auc", "threshold": 0.9}], "slos": []}',
         "MLGATE_THRESHOLDS.model_metrics.0.direction: Field required"),
        ('{"model_metrics": [], "slos": [{"name": "p50", "threshold": 1}]}',
         "MLGATE_THRESHOLDS.slos.0.name: Input should be"),
        ("not json", "MLGATE_THRESHOLDS: Invalid JSON"),
    ],
)  # fmt: skip
def test_malformed_thresholds_refuse_the_job_before_the_smoke_load(
    gate: Any, thresholds: str, reason: str
) -> None:
    """A threshold the verdict could not be judged on is found before the first request, not
    after the whole load (which would then have run for nothing)."""
    gate.patch.setenv("MLGATE_THRESHOLDS", thresholds)
    gate.handler.settings.cache_clear()
    gate.patch.setattr(gate.handler, "runtime", Recorder())
    result = gate.handler.handler(job(endpoint=ENDPOINT, execution=EXECUTION), CONTEXT)
    assert result["result"] == "refused"
    assert reason in result["reason"], result["reason"]
    assert gate.handler.runtime.calls == []
    assert audit_items() == []
    assert gate.pipeline.names() == ["put_job_failure_result"]


def denied(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to PutItem"}},
        operation,
    )


class RefusingTable:
    """DynamoDB for the gate: the idempotency store as it is (moto), the audit trail refusing
    every write outright, or only writes of `event`."""

    def __init__(self, event: str = "") -> None:
        self.real, self.event = boto3.client("dynamodb"), event

    def put_item(self, **kwargs: Any) -> Any:
        item_event = kwargs["Item"].get("event", {}).get("S", "")
        if kwargs["TableName"] == "audit" and (not self.event or item_event == self.event):
            raise denied("PutItem")
        return self.real.put_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_an_audit_trail_the_gate_may_not_write_fails_the_job_before_the_load(
    gate: Any, stub: Stubber
) -> None:
    """The gate writes its start to the verdict's table, key prefix and key before the first
    request: a trail it may not write to fails the job with no request sent."""
    gate.patch.setattr(gate.handler, "dynamodb", RefusingTable())
    with stub:  # nothing queued: a request to the endpoint would fail the test
        result = gate.handler.handler(job(endpoint=ENDPOINT, execution=EXECUTION), CONTEXT)
    assert result["result"] == "failed"
    assert "PutItem refused: AccessDeniedException" in result["reason"]
    assert gate.pipeline.names() == ["put_job_failure_result"]


def test_a_verdict_the_trail_refuses_fails_the_job_showing_the_verdict(
    gate: Any, stub: Stubber
) -> None:
    """Were the verdict's own write refused outright after the load (the start was written),
    the job fails with the verdict in its message: the load's result is shown, not lost, and
    the invocation does not fail (a retry could not fix it)."""
    gate.patch.setattr(gate.handler, "dynamodb", RefusingTable(event="quality-gate"))
    result = run_gate(gate, stub)
    assert result["result"] == "failed"
    assert result["reason"].startswith("Quality gate passed: PASS precision 0.9700")
    assert "could not be recorded (PutItem refused: AccessDeniedException" in result["reason"]
    assert [i["event"] for i in audit_items()] == ["quality-gate-started"]
    assert gate.pipeline.names() == ["put_job_failure_result"]


def test_the_gate_records_its_start_then_its_verdict(gate: Any, stub: Stubber) -> None:
    run_gate(gate, stub)
    events = {i["event"]: i for i in audit_items()}
    assert sorted(events) == ["quality-gate", "quality-gate-started"]
    assert f"smoke load of {REQUESTS} requests" in events["quality-gate-started"]["detail"]
    assert all(i["execution"] == EXECUTION for i in events.values())


def hook_of(name: str, verifier: Any, gate: Any) -> tuple[Any, Recorder, dict[str, Any]]:
    """(the hook's module, its job results, its UserParameters)."""
    if name == "verifier":
        return verifier[0], verifier[1], {"environment": "staging", "endpoint": ENDPOINT}
    return gate.handler, gate.pipeline, {"endpoint": ENDPOINT, "execution": EXECUTION}


@pytest.mark.parametrize("hook", ["verifier", "gate"])
def test_a_job_with_a_continuation_token_not_its_own_is_refused(
    hook: str, verifier: Any, gate: Any, released: Pipeline
) -> None:
    """Both hooks continue only their own jobs (an asynchronous endpoint's): AWS's sample
    token is another action's."""
    handler, pipeline, params = hook_of(hook, verifier, gate)
    released.jobs.add(params, continuation="A continuation token if continuing job",
                      revision=released.revision)  # fmt: skip
    result = handler.handler(copy.deepcopy(JOB), CONTEXT)
    assert result["result"] == "refused"
    assert result["reason"].startswith("continuationToken: Invalid JSON")
    assert "not a token this action wrote" in result["reason"]
    assert pipeline.names() == ["put_job_failure_result"]


# --- forged events: only CodePipeline's job, only the execution's release, only Approved ------


class Untouchable:
    """An endpoint that must not be described or invoked."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the endpoint was called: {name}")


def untouched(hook: str, handler: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any call to the endpoint, its runtime or an environment's session fails the test."""
    if hook == "verifier":
        monkeypatch.setattr(handler, "session", lambda *a: Untouchable())
    else:
        monkeypatch.setattr(handler, "sagemaker", Untouchable())
        monkeypatch.setattr(handler, "runtime", Untouchable())


@pytest.mark.parametrize("hook", ["verifier", "gate"])
def test_a_forged_event_with_a_made_up_job_id_is_dropped_without_touching_the_endpoint(
    hook: str, verifier: Any, gate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, pipeline, params = hook_of(hook, verifier, gate)
    untouched(hook, handler, monkeypatch)
    forged = job(**params)
    forged["CodePipeline.job"]["id"] = "22222222-abcd-2222-abcd-222222abcdef"
    result = handler.handler(forged, CONTEXT)
    assert result["result"] == "refused"
    assert "is no job of this account" in result["reason"]
    assert pipeline.names() == []
    assert audit_items() == []


@pytest.mark.parametrize("hook", ["verifier", "gate"])
def test_a_real_job_with_forged_parameters_in_its_event_is_judged_on_its_own(
    hook: str, verifier: Any, gate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event's UserParameters and artifact location name another endpoint and another
    release.json: neither is read."""
    _, pipeline, params = hook_of(hook, verifier, gate)
    event = job(**params)
    data = event["CodePipeline.job"]["data"]
    data["actionConfiguration"]["configuration"]["UserParameters"] = json.dumps(
        {**params, "endpoint": "mlgate-other-product-staging"}
    )
    data["inputArtifacts"][0]["location"]["s3Location"] = {
        "bucketName": "attacker",
        "objectKey": "release.json",
    }
    if hook == "verifier":
        result = run_verifier(verifier, monkeypatch, Endpoint("InService", RELEASED), event)
    else:
        stub = Stubber(gate.handler.runtime)
        for i in range(REQUESTS):
            stub.add_response("invoke_endpoint", answer(), request(i))
        with stub:
            result = gate.handler.handler(event, CONTEXT)
    assert result["result"] == "succeeded", result
    assert result["reason"].startswith(
        f"staging: {ENDPOINT} serves {RELEASED}" if hook == "verifier" else "Quality gate passed"
    )
    assert pipeline.names() == ["put_job_success_result"]


@pytest.mark.parametrize("hook", ["verifier", "gate"])
@pytest.mark.parametrize(
    ("status", "group", "reason"),
    [
        ("Rejected", None, "version 7 is Rejected, not Approved"),
        ("PendingManualApproval", None, "version 7 is PendingManualApproval, not Approved"),
        ("Approved", "mlgate-other-product", "version 7 belongs to group mlgate-other-product"),
        (None, None, "DescribeModelPackage refused: ValidationException"),
    ],
)
def test_a_release_of_a_version_not_approved_in_this_group_is_refused_before_the_endpoint(
    hook: str, status: str | None, group: str | None, reason: str, verifier: Any, gate: Any,
    released: Pipeline, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    handler, pipeline, params = hook_of(hook, verifier, gate)
    untouched(hook, handler, monkeypatch)
    released.registry.packages.clear()
    if status is not None:
        released.registry.hold(RELEASED_ARN, status, group)
    result = handler.handler(job(**params), CONTEXT)
    assert result["result"] == "refused"
    assert result["reason"].startswith("release.json.model_package_arn: ")
    assert reason in result["reason"], result["reason"]
    assert pipeline.names() == ["put_job_failure_result"]
    assert audit_items() == []


def test_gate_refuses_parameters_naming_another_execution(gate: Any) -> None:
    result = gate.handler.handler(
        job(endpoint=ENDPOINT, execution="5b3f9d20-1c8e-4f6a-8d4b-7a2e3c9f8b01"), CONTEXT
    )
    assert result["result"] == "refused"
    assert result["reason"].startswith("UserParameters.execution: names execution 5b3f9d20")
    assert audit_items() == []


def test_each_job_publishes_one_count_and_the_gate_its_smoke_figures(
    gate: Any, stub: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    run_gate(gate, stub)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith('{"_aws"')]  # fmt: skip
    (blob,) = blobs
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {"JobsSucceeded", "SmokeLatencyP99", "SmokeErrorRate5xx",
                     "SmokeInvocationErrorRate"}  # fmt: skip
    assert blob["SmokeLatencyP99"] == [pytest.approx(85.0)]
    assert blob["JobsSucceeded"] == [1.0]


# --- asynchronous and serverless endpoints (issue 32) -----------------------------------------

OUTPUTS = "s3://artifacts/async/staging/output"
FAILURES = "s3://artifacts/async/staging/failures"


class AsyncEndpoint(Endpoint):
    """An endpoint whose config queues requests (AsyncInferenceConfig), as the Serving stack
    builds it: results and failures under the environment's async prefixes."""

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        return {
            "ProductionVariants": [{"ModelName": "model-7"}],
            "AsyncInferenceConfig": {
                "OutputConfig": {"S3OutputPath": OUTPUTS, "S3FailurePath": FAILURES}
            },
        }


class ServerlessEndpoint(Endpoint):
    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        return {"ProductionVariants": [{"ModelName": "model-7", "ServerlessConfig": {
            "MemorySizeInMB": 2048, "MaxConcurrency": 5}}]}  # fmt: skip


class AsyncRuntime:
    """SageMaker's asynchronous inference as the verifier sees it: InvokeEndpointAsync reads
    the request object (it must exist) and, as `then` says, writes its result ("answer"), its
    failure ("fail") or nothing yet ("later") under the config's output paths."""

    def __init__(self, then: str = "answer") -> None:
        self.then, self.calls = then, []  # type: list[dict[str, Any]]

    def invoke_endpoint_async(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        s3 = boto3.client("s3")
        where = kwargs["InputLocation"].removeprefix("s3://").split("/", 1)
        body = s3.get_object(Bucket=where[0], Key=where[1])["Body"].read().decode()
        name = kwargs["InferenceId"]
        output, failure = f"{OUTPUTS}/{name}.out", f"{FAILURES}/{name}-error.out"
        if self.then == "answer":
            write(output, f"0.0132 for {body}")
        elif self.then == "fail":
            write(failure, "Received server error (500) from model: feature count mismatch")
        return {"InferenceId": name, "OutputLocation": output, "FailureLocation": failure}

    def invoke_endpoint(self, **kwargs: Any) -> Any:
        raise AssertionError("an asynchronous endpoint refuses InvokeEndpoint")


def write(uri: str, text: str) -> None:
    bucket_, key = uri.removeprefix("s3://").split("/", 1)
    boto3.client("s3").put_object(Bucket=bucket_, Key=key, Body=text.encode())


def run_async(
    verifier: Any, monkeypatch: pytest.MonkeyPatch, runtime: Any, endpoint: Endpoint | None = None
) -> dict[str, str]:
    handler, _ = verifier
    endpoint, real = endpoint or AsyncEndpoint("InService", RELEASED), boto3.client
    monkeypatch.setattr(
        handler.boto3,
        "client",
        lambda name, *a, **k: (
            {"sagemaker": endpoint, "sagemaker-runtime": runtime}.get(name) or real(name, *a, **k)
        ),
    )
    return dict(handler.handler(copy.deepcopy(JOB), CONTEXT))


def verify_job(released: Pipeline, token: str | None = None) -> None:
    released.jobs.add({"environment": "staging", "endpoint": ENDPOINT}, continuation=token,
                      revision=released.revision)  # fmt: skip


def test_async_verify_succeeds_on_the_result_object(
    verifier: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, pipeline = verifier
    runtime = AsyncRuntime("answer")
    verify_job(released)
    result = run_async(verifier, monkeypatch, runtime)
    assert result["result"] == "succeeded", result
    assert (
        f"serves {RELEASED} on config-7 (asynchronous); sample scored 0.0132" in (result["reason"])
    )
    ((sent,),) = [runtime.calls]
    from .conftest import JOB_ID

    key = f"async/staging/input/verify-{JOB_ID}.csv"
    assert sent == {"EndpointName": ENDPOINT, "ContentType": "text/csv",
                    "InputLocation": f"s3://artifacts/{key}",
                    "InferenceId": f"verify-{JOB_ID}"}  # fmt: skip
    body = boto3.client("s3").get_object(Bucket="artifacts", Key=key)["Body"].read().decode()
    assert body == "120.5,1,0.3,1.2,3600,2"
    assert pipeline.names() == ["put_job_success_result"]
    assert "continuationToken" not in pipeline.calls[0][1]


def test_async_verify_fails_naming_the_failure_object_s_text(
    verifier: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, pipeline = verifier
    verify_job(released)
    result = run_async(verifier, monkeypatch, AsyncRuntime("fail"))
    assert result["result"] == "failed"
    assert result["reason"].startswith(f"staging: the async sample on {ENDPOINT} failed")
    assert "Received server error (500) from model: feature count mismatch" in result["reason"]
    ((name, sent),) = pipeline.calls
    assert name == "put_job_failure_result"
    assert "feature count mismatch" in sent["failureDetails"]["message"]


def test_async_verify_continues_until_the_result_lands_and_never_submits_twice(
    verifier: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint is scaled to zero: no result yet. The verifier answers with a continuation
    token; CodePipeline's next job (with it) finds nothing yet and continues again; once the
    result is written it succeeds. One submission in all."""
    _, pipeline = verifier
    runtime = AsyncRuntime("later")
    verify_job(released)
    first = run_async(verifier, monkeypatch, runtime)
    assert first["result"] == "in_progress", first
    (name, sent), = pipeline.calls  # fmt: skip
    assert name == "put_job_success_result"
    token = json.loads(sent["continuationToken"])
    assert token["endpoint"] == ENDPOINT
    assert token["config"] == "config-7"
    assert token["output"].startswith(f"{OUTPUTS}/verify-")
    verify_job(released, sent["continuationToken"])
    again = run_async(verifier, monkeypatch, runtime)
    assert again["result"] == "in_progress"
    assert pipeline.calls[-1][1]["continuationToken"] == sent["continuationToken"]
    write(token["output"], "0.0132")
    done = run_async(verifier, monkeypatch, runtime)
    assert done["result"] == "succeeded", done
    assert "sample scored 0.0132" in done["reason"]
    assert len(runtime.calls) == 1, "a continuation submits nothing"
    assert "continuationToken" not in pipeline.calls[-1][1]


def test_async_verify_fails_past_its_deadline(
    verifier: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, pipeline = verifier
    runtime = AsyncRuntime("later")
    verify_job(released)
    run_async(verifier, monkeypatch, runtime)
    verify_job(released, pipeline.calls[-1][1]["continuationToken"])
    later = handler.now() + handler.DEADLINE_SECONDS + 1
    monkeypatch.setattr(handler, "now", lambda: later)
    result = run_async(verifier, monkeypatch, runtime)
    assert result["result"] == "failed"
    assert "no result of the async sample" in result["reason"]
    assert pipeline.names()[-1] == "put_job_failure_result"


def test_async_verify_request_is_what_the_sagemaker_runtime_api_takes(
    verifier: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request checked against botocore's model of InvokeEndpointAsync (Stubber)."""
    from .conftest import JOB_ID

    client = boto3.client("sagemaker-runtime")
    stubber = Stubber(client)
    stubber.add_response(
        "invoke_endpoint_async",
        {"InferenceId": f"verify-{JOB_ID}", "OutputLocation": f"{OUTPUTS}/o.out",
         "FailureLocation": f"{FAILURES}/o-error.out"},
        {"EndpointName": ENDPOINT, "ContentType": "text/csv", "InferenceId": f"verify-{JOB_ID}",
         "InputLocation": f"s3://artifacts/async/staging/input/verify-{JOB_ID}.csv"},
    )  # fmt: skip
    verify_job(released)
    with stubber:
        result = run_async(verifier, monkeypatch, client)
    assert result["result"] == "in_progress", result
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("A continuation token if continuing job", "continuationToken: Invalid JSON"),
        ("{}", "continuationToken.endpoint: Field required"),
        (json.dumps({"endpoint": "mlgate-other-staging", "config": "c", "deadline": 1,
                     "output": f"{OUTPUTS}/x.out"}), "continuationToken.endpoint: names"),
        (json.dumps({"endpoint": ENDPOINT, "config": "c", "deadline": 1,
                     "output": "s3://artifacts/released/fraud-detection/7/model.tar.gz"}),
         "continuationToken.output: s3://artifacts/released/"),
        (json.dumps({"endpoint": ENDPOINT, "config": "c", "deadline": 1,
                     "output": f"{OUTPUTS}/x.out", "failure": "s3://artifacts/x"}),
         "continuationToken.failure: s3://artifacts/x is not under"),
        (json.dumps({"endpoint": ENDPOINT, "config": "c", "deadline": 1, "extra": 1,
                     "output": f"{OUTPUTS}/x.out"}), "continuationToken.extra: Extra inputs"),
    ],
)  # fmt: skip
def test_a_continuation_token_that_is_not_the_verifiers_own_is_refused(
    verifier: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch, token: str, reason: str
) -> None:
    handler, pipeline = verifier
    monkeypatch.setattr(handler, "session", lambda *a: Untouchable())
    verify_job(released, token)
    result = handler.handler(copy.deepcopy(JOB), CONTEXT)
    assert result["result"] == "refused"
    assert result["reason"].startswith(reason), result["reason"]
    assert "not a token this action wrote" in result["reason"]
    assert pipeline.names() == ["put_job_failure_result"]


def test_serverless_verify_invokes_the_endpoint_and_says_so(
    verifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_verifier(verifier, monkeypatch, ServerlessEndpoint("InService", RELEASED))
    assert result["result"] == "succeeded", result
    assert result["reason"].endswith("sample scored 0.0132 (serverless)")


def fixed_times(gate: Any) -> None:
    """Each request is submitted at T and its result object written at T + 0.15 s (as S3's
    LastModified says): its latency is 150 ms, queue and processing."""
    real = gate.handler.completed_at
    gate.patch.setattr(gate.handler, "wall", lambda: 1_800_000_000.0)
    gate.patch.setattr(gate.handler, "completed_at", lambda s3, uri: (
        None if real(s3, uri) is None else 1_800_000_000.15))  # fmt: skip


def run_async_gate(gate: Any, released: Pipeline, runtime: Any, token: str | None = None) -> Any:
    gate.patch.setattr(gate.handler, "sagemaker", AsyncEndpoint("InService", RELEASED))
    gate.patch.setattr(gate.handler, "runtime", runtime)
    released.jobs.add({"endpoint": ENDPOINT, "execution": EXECUTION}, continuation=token,
                      revision=released.revision)  # fmt: skip
    return dict(gate.handler.handler(copy.deepcopy(JOB), CONTEXT))


def test_gate_queues_its_smoke_load_on_an_async_endpoint_and_judges_the_results(
    gate: Any, released: Pipeline
) -> None:
    from .conftest import JOB_ID

    runtime = AsyncRuntime("answer")
    fixed_times(gate)
    result = run_async_gate(gate, released, runtime)
    assert result["result"] == "succeeded", result["reason"]
    # Queue plus processing time is shown, not held to the real-time latency SLO.
    assert f"INFO smoke latency_p99_ms 150 over {REQUESTS} queued requests" in result["reason"]
    assert "PASS smoke latency" not in result["reason"]
    assert "latency is queue plus processing time" in result["reason"]
    assert [c["InferenceId"] for c in runtime.calls] == [
        f"smoke-{JOB_ID}-{i}" for i in range(REQUESTS)
    ]
    assert runtime.calls[1]["InputLocation"] == (
        f"s3://artifacts/async/staging/input/smoke-{JOB_ID}-1.csv"
    )
    assert sorted(i["event"] for i in audit_items()) == ["quality-gate", "quality-gate-started"]
    assert gate.pipeline.names() == ["put_job_success_result"]


def test_gate_counts_async_failure_objects_as_failed_requests(
    gate: Any, released: Pipeline
) -> None:
    result = run_async_gate(gate, released, AsyncRuntime("fail"))
    assert result["result"] == "failed"
    assert f"FAIL smoke invocation_error_rate 1 over {REQUESTS} requests" in result["reason"]
    assert "first error: async failure: Received server error (500)" in result["reason"]
    assert (
        "FAIL smoke latency_p99_ms: no request of the smoke load was answered" in (result["reason"])
    )


def test_gate_continues_an_async_load_until_its_results_land_without_queueing_again(
    gate: Any, released: Pipeline
) -> None:
    runtime = AsyncRuntime("later")
    fixed_times(gate)
    first = run_async_gate(gate, released, runtime)
    assert first["result"] == "in_progress", first
    assert gate.pauses == [gate.handler.POLL_SECONDS] * (gate.handler.POLLS - 1)
    (name, sent), = gate.pipeline.calls  # fmt: skip
    assert name == "put_job_success_result"
    assert json.loads(sent["continuationToken"])["endpoint"] == ENDPOINT
    assert verdicts() == []
    again = run_async_gate(gate, released, runtime, sent["continuationToken"])
    assert again["result"] == "in_progress"
    for call in runtime.calls:
        write(f"{OUTPUTS}/{call['InferenceId']}.out", "0.0132")
    done = run_async_gate(gate, released, runtime, sent["continuationToken"])
    assert done["result"] == "succeeded", done["reason"]
    assert f"INFO smoke latency_p99_ms 150 over {REQUESTS} queued requests" in done["reason"]
    assert len(runtime.calls) == REQUESTS, "continuations queue nothing"
    assert len(verdicts()) == 1
    assert [i["event"] for i in audit_items()].count("quality-gate-started") == 1


def test_gate_judges_an_async_load_at_its_deadline_on_what_answered(
    gate: Any, released: Pipeline
) -> None:
    runtime = AsyncRuntime("later")
    first = run_async_gate(gate, released, runtime)
    token = gate.pipeline.calls[-1][1]["continuationToken"]
    write(f"{OUTPUTS}/{runtime.calls[0]['InferenceId']}.out", "0.0132")
    later = gate.handler.wall() + gate.handler.DEADLINE_SECONDS + 1
    gate.patch.setattr(gate.handler, "wall", lambda: later)
    result = run_async_gate(gate, released, runtime, token)
    assert first["result"] == "in_progress"
    assert result["result"] == "failed"
    assert f"FAIL smoke load: 1 of {REQUESTS} requests answered" in result["reason"]


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("null", "continuationToken: Input should be an object"),
        ("{}", "continuationToken.endpoint: Field required"),
        (json.dumps({"endpoint": "mlgate-other-staging", "deadline": 1}),
         "continuationToken.endpoint: names mlgate-other-staging"),
        (json.dumps({"endpoint": ENDPOINT, "deadline": 1, "queued": []}),
         "continuationToken.queued: Extra inputs"),
    ],
)  # fmt: skip
def test_a_continuation_token_that_is_not_the_gates_own_is_refused(
    gate: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch, token: str, reason: str
) -> None:
    untouched("gate", gate.handler, monkeypatch)
    released.jobs.add({"endpoint": ENDPOINT, "execution": EXECUTION}, continuation=token,
                      revision=released.revision)  # fmt: skip
    result = gate.handler.handler(copy.deepcopy(JOB), CONTEXT)
    assert result["result"] == "refused"
    assert result["reason"].startswith(reason), result["reason"]
    assert "not a token this action wrote" in result["reason"]
    assert audit_items() == []
    assert gate.pipeline.names() == ["put_job_failure_result"]
