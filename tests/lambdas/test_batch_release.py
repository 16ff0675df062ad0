"""The release path of a batch environment (no endpoint), under moto (SSM, S3, the audit
table; CodePipeline and the registry stood in for as in test_deploy_checks.py, the batch_run
function by a stand-in that starts each run once, as the real one does):

- the deploy verifier checks the live model package, starts the release's sample run, waits
  for its record through its own token and judges it;
- the quality gate judges that run's record and outputs against prod's version.

The run records are written here in the spec's schema (the batch_run hook writes them on AWS).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.validate import validate_parameters

from .conftest import CONTEXT, EXECUTION, Faults, audit_items, fail_then_retry, package_arn
from .test_deploy_checks import (  # fixtures and stand-ins
    JOB,
    RELEASED_ARN,
    Pipeline,
    gate,
    released,
    verifier,
)

__all__ = ["gate", "released", "verifier"]  # fixtures, used by name

BUCKET = "artifacts"
MODEL = "mlgate-fraud-detection-staging-model-7"
PREVIOUS_MODEL = "mlgate-fraud-detection-prod-model-6"
PACKAGE_PARAMETER = "/mlgate/fraud-detection/staging/live-model-package"
MODEL_PARAMETER = "/mlgate/fraud-detection/staging/live-model"
BATCH = {
    "function": "mlgate-fraud-detection-staging-batch-run",
    "bucket": BUCKET,
    "sample_rows": 50,
    "max_run_minutes": 180,
    "max_prediction_shift": 0.1,
    "max_failure_rate": 0.0,
    "max_run_time_ratio": 3.0,
    "model_parameter": MODEL_PARAMETER,
    "model_package_parameter": PACKAGE_PARAMETER,
}
START = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
FINISHED = "2026-12-05T10:14:07+00:00"


def sample(env: str = "staging", attempt: int = 0) -> str:
    from shared.batch import sample_run

    return sample_run(EXECUTION, env, attempt)


class BatchRun:
    """The batch_run function as Lambda's Invoke reaches it: each request is checked against
    botocore's model of Invoke; an Event invocation answers 202; a start of a run already
    started starts nothing (the hook is idempotent per run)."""

    def __init__(self) -> None:
        self.invokes: list[dict[str, Any]] = []
        self.started: list[str] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        model = boto3.client("lambda").meta.service_model.operation_model("Invoke")
        validate_parameters(kwargs, model.input_shape)
        payload = json.loads(kwargs["Payload"])
        self.invokes.append({**kwargs, "Payload": payload})
        if payload["run"] not in self.started:
            self.started.append(payload["run"])
        return {"StatusCode": 202 if kwargs["InvocationType"] == "Event" else 200}


class Env:
    """The environment's session: the batch_run stand-in for Lambda, moto for the rest."""

    def __init__(self, batch_run: BatchRun) -> None:
        self.batch_run = batch_run

    def client(self, name: str) -> Any:
        return self.batch_run if name == "lambda" else boto3.client(name)


def live(package: str = RELEASED_ARN, model: str = MODEL) -> None:
    """What the Serving stack keeps in SSM: the live model package and model."""
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=PACKAGE_PARAMETER, Value=package, Type="String", Overwrite=True)
    ssm.put_parameter(Name=MODEL_PARAMETER, Value=model, Type="String", Overwrite=True)


def side(job: str, rows: int, run: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"job": job, "status": "Completed", "rows_out": rows, "unparseable": 0,
            "seconds": 312.0, "output_uri": f"s3://{BUCKET}/batch/staging/runs/{run or sample()}/"
            f"{'reference' if job.endswith('-ref') else 'candidate'}/",
            "failure_reason": None, **fields}  # fmt: skip


def record(run: str | None = None, compare: bool = False, **fields: Any) -> dict[str, Any]:
    """A sample run's record.json, in the spec's schema; `fields` override."""
    run = run or sample()
    job = f"fraud-detection-staging-b-{run}"
    return {
        "run": run, "kind": "sample", "status": "Completed", "model": MODEL,
        "model_package": RELEASED_ARN,
        "reference_model": PREVIOUS_MODEL if compare else None,
        "rows_in": 50,
        "candidate": side(f"{job}-score", 50, run),
        "reference": side(f"{job}-ref", 50, run, seconds=260.0) if compare else None,
        "started_at": "2026-12-05T10:00:02+00:00", "finished_at": FINISHED, "reason": "",
        **fields,
    }  # fmt: skip


def write_record(document: dict[str, Any], env: str = "staging") -> None:
    from shared.batch import record_key

    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=record_key(env, document["run"]), Body=json.dumps(document).encode()
    )


@pytest.fixture
def batch(verifier: Any, audit_table: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    handler, _ = verifier
    monkeypatch.setenv("AUDIT_TABLE", audit_table)
    batch_run = BatchRun()
    monkeypatch.setattr(handler, "session", lambda *a: Env(batch_run))
    live()
    return handler, batch_run


def verify(
    batch: Any,
    released: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    at: datetime = START,
    token: str | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, str]:
    handler, _ = batch
    monkeypatch.setattr(handler, "now", lambda: at.timestamp())
    released.jobs.add(params or {"environment": "staging", "batch": BATCH}, continuation=token,
                      revision=released.revision)  # fmt: skip
    return dict(handler.handler(copy.deepcopy(JOB), CONTEXT))


def token_of(released: Pipeline) -> str:
    return str(released.jobs.reports()[-1][1]["continuationToken"])


def served() -> list[dict[str, str]]:
    return [i for i in audit_items() if i["pk"].startswith("served#")]


def started(batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch) -> str:
    """The first invocation, which starts the sample run: its token."""
    first = verify(batch, released, monkeypatch)
    assert first["result"] == "in_progress", first
    return token_of(released)


# --- the deploy verifier ---------------------------------------------------------------------


def test_verifier_starts_the_sample_run_waits_for_its_record_and_records_what_serves(
    batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, batch_run = batch
    token = started(batch, released, monkeypatch)
    assert json.loads(token) == {"run": sample(), "deadline": int(START.timestamp()) + 180 * 60}
    ((call),) = batch_run.invokes
    assert call["FunctionName"] == BATCH["function"]
    assert call["InvocationType"] == "Event"
    assert call["Payload"] == {"action": "start", "kind": "sample", "run": sample(), "rows": 50,
                               "model_package": RELEASED_ARN}  # fmt: skip
    waiting = verify(batch, released, monkeypatch, START + timedelta(minutes=5), token)
    assert waiting["result"] == "in_progress"
    assert token_of(released) == token
    assert served() == []
    write_record(record())
    done = verify(batch, released, monkeypatch, START + timedelta(minutes=15), token)
    assert done["result"] == "succeeded", done
    assert "scored all 50 rows" in done["reason"]
    assert "in 312 s" in done["reason"]
    assert sample() in done["reason"]
    assert len(batch_run.invokes) == 1, "a continuation starts nothing"
    ((item,),) = [served()]
    assert item["sk"] == "2026-12-05T10:14:07Z#7"
    assert item["model_package_arn"] == RELEASED_ARN
    assert item["environment"] == "staging"
    again = verify(batch, released, monkeypatch, START + timedelta(minutes=16), token)
    assert again["result"] == "succeeded"
    assert len(served()) == 1


def test_verifier_catches_a_silent_rollback_of_a_batch_environment(
    batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, batch_run = batch
    live(package=package_arn(6))
    result = verify(batch, released, monkeypatch)
    assert result["result"] == "failed"
    assert "silent rollback" in result["reason"]
    assert f"is {package_arn(6)}, but the pipeline deployed {RELEASED_ARN}" in result["reason"]
    assert batch_run.invokes == []
    assert served() == []


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"status": "Failed", "reason": "score job: AlgorithmError: model crashed"},
         "is Failed: score job: AlgorithmError: model crashed"),
        ({"status": "Empty", "rows_in": 0, "reason": "the input had no rows"},
         "is Empty: the input had no rows"),
        ({"rows_in": 0}, "had no input rows"),
        ({"candidate": side("fraud-detection-staging-b-x-score", 47)},
         "scored 47 of 50 rows"),
        ({"candidate": side("fraud-detection-staging-b-x-score", 50, unparseable=3)},
         "has 3 unparseable predictions of 50"),
        ({"model_package": package_arn(6)}, f"scored model package {package_arn(6)}"),
    ],
    ids=["failed", "empty", "no-rows", "rows-missing", "unparseable", "other-version"],
)  # fmt: skip
def test_verifier_fails_a_sample_run_that_does_not_score_every_row(
    batch: Any,
    released: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    fields: dict[str, Any],
    reason: str,
) -> None:
    token = started(batch, released, monkeypatch)
    write_record(record(**fields))
    result = verify(batch, released, monkeypatch, START + timedelta(minutes=15), token)
    assert result["result"] == "failed", result
    assert reason in result["reason"]
    assert result["reason"].startswith("staging: ")
    assert served() == []


def test_verifier_fails_a_sample_run_without_a_record_past_its_deadline(
    batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = started(batch, released, monkeypatch)
    before = verify(batch, released, monkeypatch, START + timedelta(minutes=179), token)
    assert before["result"] == "in_progress"
    late = verify(batch, released, monkeypatch, START + timedelta(minutes=181), token)
    assert late["result"] == "failed"
    assert f"the sample run {sample()} did not finish in 180 minutes" in late["reason"]


def test_a_wait_longer_than_codepipeline_allows_is_cut_to_its_24_hours(
    batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    longest = {**BATCH, "max_run_minutes": 2880}
    verify(batch, released, monkeypatch, params={"environment": "staging", "batch": longest})
    deadline = json.loads(token_of(released))["deadline"]
    assert deadline - START.timestamp() == (24 * 60 - 30) * 60


def test_a_retried_first_invocation_starts_one_run(
    batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch, faults: Faults
) -> None:
    """The report of the first invocation fails (the invocation fails, Lambda retries it): the
    retry sends the same run id, and batch_run starts one run."""
    _, batch_run = batch
    run = lambda: verify(batch, released, monkeypatch)  # noqa: E731
    run()
    index = faults.seen.index("recorder.put_job_success_result")
    batch_run.invokes.clear()
    batch_run.started.clear()
    faults.seen.clear()
    answer = fail_then_retry(faults, index, run)
    assert faults.failed == "recorder.put_job_success_result"
    assert answer["result"] == "in_progress"
    assert len(batch_run.invokes) == 2
    assert {i["Payload"]["run"] for i in batch_run.invokes} == {sample()}
    assert batch_run.started == [sample()]


def test_a_retried_verify_action_after_a_failed_run_starts_the_next_attempt(
    batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transform job's transient fault fails the sample run and the action; CodePipeline's
    Retry runs the action again in the same execution: it starts attempt 1's run (a new run
    id, so batch_run starts new jobs) instead of failing on attempt 0's record again."""
    _, batch_run = batch
    first = started(batch, released, monkeypatch)
    write_record(record(status="Failed", reason="score job: InternalServerError"))
    failed = verify(batch, released, monkeypatch, START + timedelta(minutes=15), first)
    assert failed["result"] == "failed", failed
    retried = verify(batch, released, monkeypatch, START + timedelta(hours=1))  # Retry
    assert retried["result"] == "in_progress", retried
    second = token_of(released)
    assert json.loads(second)["run"] == sample(attempt=1) != sample()
    assert batch_run.started == [sample(), sample(attempt=1)]
    write_record(record(run=sample(attempt=1)))
    done = verify(batch, released, monkeypatch, START + timedelta(hours=2), second)
    assert done["result"] == "succeeded", done
    assert sample(attempt=1) in done["reason"]
    assert len(served()) == 1
    # Retried once more (a later action of the stage failed): the verified run, nothing new.
    again = verify(batch, released, monkeypatch, START + timedelta(hours=3))
    assert "already verifies the release" in again["reason"]
    assert json.loads(token_of(released))["run"] == sample(attempt=1)
    assert batch_run.started == [sample(), sample(attempt=1)]


def test_a_silent_rollback_after_a_verified_run_is_still_caught(
    batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run verified the release; then the stack rolled back behind the pipeline's back and
    the action runs again (a retry): the live version is checked before the verified run is
    reused, so the retry fails on the rollback instead of passing on the old record."""
    _, batch_run = batch
    token = started(batch, released, monkeypatch)
    write_record(record())
    assert verify(batch, released, monkeypatch, START, token)["result"] == "succeeded"
    live(package=package_arn(6))
    result = verify(batch, released, monkeypatch, START + timedelta(hours=1))
    assert result["result"] == "failed", result
    assert "silent rollback" in result["reason"]
    assert len(batch_run.invokes) == 1


def test_a_retry_while_the_run_still_goes_waits_for_the_same_run(
    batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The action failed waiting (its deadline passed) while the run still went: the retry
    takes the same run, which batch_run does not start twice."""
    _, batch_run = batch
    started(batch, released, monkeypatch)
    retried = verify(batch, released, monkeypatch, START + timedelta(hours=4))
    assert retried["result"] == "in_progress"
    assert json.loads(token_of(released))["run"] == sample()
    assert batch_run.started == [sample()]


def test_after_every_attempt_failed_the_verifier_fails_saying_to_release_again(
    batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.batch import SAMPLE_ATTEMPTS

    _, batch_run = batch
    for attempt in range(SAMPLE_ATTEMPTS):
        write_record(record(run=sample(attempt=attempt), status="Failed", reason="no capacity"))
    result = verify(batch, released, monkeypatch)
    assert result["result"] == "failed", result
    assert f"this execution's {SAMPLE_ATTEMPTS} sample runs all failed" in result["reason"]
    assert "no capacity" in result["reason"]
    assert batch_run.invokes == []


def test_the_attempts_are_distinct_runs_and_a_run_id_outside_them_is_refused() -> None:
    from shared.batch import SAMPLE_ATTEMPTS, is_run, sample_run, sample_runs

    runs = sample_runs(EXECUTION, "staging")
    assert len(set(runs)) == SAMPLE_ATTEMPTS
    assert all(is_run(r) for r in runs)
    assert runs[0] == sample_run(EXECUTION, "staging")  # attempt 0: the run id before retries
    assert set(runs).isdisjoint(sample_runs(EXECUTION, "prod"))
    with pytest.raises(ValueError, match=r"attempt 10 is not within 0\.\.9"):
        sample_run(EXECUTION, "staging", SAMPLE_ATTEMPTS)


@pytest.mark.parametrize(
    "token",
    [
        {"run": "v000000000000", "deadline": 1},  # another execution's run
        {"endpoint": "mlgate-fraud-detection-staging", "since": 1},  # a shadow test's
        "A continuation token if continuing job",  # AWS's sample
    ],
    ids=["other-run", "shadow-token", "not-json"],
)
def test_verifier_refuses_a_token_that_is_not_its_own(
    batch: Any, released: Pipeline, monkeypatch: pytest.MonkeyPatch, token: Any
) -> None:
    _, batch_run = batch
    write_record(record(run="v000000000000"))
    text = token if isinstance(token, str) else json.dumps(token)
    result = verify(batch, released, monkeypatch, token=text)
    assert result["result"] == "refused", result
    assert "not a token this action wrote" in result["reason"]
    assert batch_run.invokes == []
    assert served() == []


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"environment": "staging", "endpoint": "e", "batch": BATCH}, "not both"),
        ({"environment": "staging"}, "UserParameters.endpoint: Field required"),
        ({"environment": "staging", "batch": {**BATCH, "sample_rows": "50"}},
         "batch.sample_rows"),
        ({"environment": "staging", "batch": {**BATCH, "function": "a:b"}}, "batch.function"),
        ({"environment": "staging", "batch": {k: v for k, v in BATCH.items()
                                              if k != "model_package_parameter"}},
         "batch.model_package_parameter"),
    ],
    ids=["both", "neither", "string-rows", "function-arn", "no-package-parameter"],
)  # fmt: skip
def test_verifier_refuses_parameters_that_are_not_one_batch_environment(
    batch: Any,
    released: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    params: dict[str, Any],
    reason: str,
) -> None:
    _, batch_run = batch
    result = verify(batch, released, monkeypatch, params=params)
    assert result["result"] == "refused"
    assert reason in result["reason"]
    assert batch_run.invokes == []


def test_batch_parameters_take_no_shadow_and_the_gate_takes_endpoint_or_batch() -> None:
    from shared.models import GateParameters, Refusal, VerifyParameters, read

    shadow = {"variant": "Shadow", "production_variant": "AllTraffic", "minutes": 60,
              "sampling_percent": 30, "capture_uri": "s3://capture/x",
              "thresholds": {"min_requests": 50, "max_latency_ratio": 1.5,
                             "max_error_rate": 0.01, "max_prediction_shift": 0.1}}  # fmt: skip
    with pytest.raises(Refusal, match="no endpoint to shadow"):
        read({"environment": "prod", "batch": BATCH, "shadow": shadow}, VerifyParameters)
    with pytest.raises(Refusal, match="not both"):
        read({"endpoint": "e", "batch": BATCH}, GateParameters)
    with pytest.raises(Refusal, match="endpoint: Field required"):
        read({"execution": EXECUTION}, GateParameters)
    assert read({"batch": BATCH}, GateParameters).batch is not None
    assert read({"endpoint": "e"}, GateParameters).endpoint_name == "e"


# --- the quality gate ------------------------------------------------------------------------


def outputs(run: str, which: str, predictions: list[str]) -> None:
    """A transform output: `id,<payload>,<prediction>` per line (JoinSource Input)."""
    lines = [f'{i},"a, b",{i % 7}.5,{p}' for i, p in enumerate(predictions)]
    boto3.client("s3").put_object(
        Bucket=BUCKET,
        Key=f"batch/staging/runs/{run}/{which}/part-00000.csv.out",
        Body=("\n".join(lines) + "\n").encode(),
    )


def scores(shift: float = 0.0) -> list[str]:
    return [f"{i / 50 + shift:.4f}" for i in range(50)]


def judge(gate: Any, released: Pipeline, batch: dict[str, Any] | None = None) -> dict[str, str]:
    released.jobs.add({"execution": EXECUTION, "batch": batch or BATCH},
                      revision=released.revision)  # fmt: skip
    return dict(gate.handler.handler(copy.deepcopy(JOB), CONTEXT))


def verdict_items() -> list[dict[str, str]]:
    return [i for i in audit_items() if i.get("event") == "quality-gate"]


def compared(new: list[str], prod: list[str], **fields: Any) -> None:
    """The verifier's sample run with prod's version as reference, and both outputs."""
    write_record(record(compare=True, **fields))
    outputs(sample(), "candidate", new)
    outputs(sample(), "reference", prod)


def test_gate_passes_a_sample_run_close_to_prod_naming_each_figure(
    gate: Any, released: Pipeline
) -> None:
    compared(scores(0.01), scores())
    result = judge(gate, released)
    assert result["result"] == "succeeded", result["reason"]
    reason = result["reason"]
    assert reason.startswith(f"Quality gate passed on sample run {sample()}: ")
    assert "PASS precision 0.9700" in reason
    assert "PASS failure rate 0.00% (50 of 50 rows scored, 0 unparseable; at most 0.00%)" in reason
    assert f"PASS prediction shift 0.035 against prod's {PREVIOUS_MODEL}" in reason
    assert "Wasserstein / production's std; at most 0.1" in reason
    assert "PASS run time x1.20 (312 s against prod's 260 s; at most x3)" in reason
    (item,) = verdict_items()
    assert (item["decision"], item["detail"]) == ("Passed", reason)
    assert item["when"] == "2026-12-05T10:14:07Z"
    assert gate.pipeline.names() == ["put_job_success_result"]
    again = judge(gate, released)  # a retry: the same verdict, recorded once
    assert again["reason"] == reason
    assert len(verdict_items()) == 1


def test_gate_fails_numeric_predictions_shifted_past_the_threshold(
    gate: Any, released: Pipeline
) -> None:
    compared(scores(0.2), scores())
    result = judge(gate, released)
    assert result["result"] == "failed"
    assert "FAIL prediction shift 0.693" in result["reason"]
    assert verdict_items()[0]["decision"] == "Failed"
    assert gate.pipeline.names() == ["put_job_failure_result"]


def test_gate_fails_labels_shifted_past_the_threshold(gate: Any, released: Pipeline) -> None:
    compared(["fraud"] * 20 + ["ok"] * 30, ["fraud"] * 5 + ["ok"] * 45)
    result = judge(gate, released)
    assert result["result"] == "failed"
    assert "FAIL prediction shift" in result["reason"]
    assert "Jensen-Shannon distance of the labels" in result["reason"]
    compared(["fraud"] * 6 + ["ok"] * 44, ["fraud"] * 5 + ["ok"] * 45)
    assert "PASS prediction shift" in judge(gate, released)["reason"]


def test_gate_fails_a_failure_rate_above_its_threshold(gate: Any, released: Pipeline) -> None:
    candidate = side(f"fraud-detection-staging-b-{sample()}-score", 49, unparseable=1)
    compared([*scores()[:48], "nan"], [*scores()[:49], ""], candidate=candidate)
    result = judge(gate, released)
    assert result["result"] == "failed"
    assert (
        "FAIL failure rate 4.00% (49 of 50 rows scored, 1 unparseable; at most 0.00%)"
        in (result["reason"])
    )
    # Scores still: what is not a number is left out of the comparison, on both sides.
    assert "PASS prediction shift 0.0" in result["reason"]
    assert "Wasserstein" in result["reason"]
    tolerant = {**BATCH, "max_failure_rate": 0.05}
    assert "PASS failure rate 4.00%" in judge(gate, released, tolerant)["reason"]


def test_gate_fails_a_slow_run(gate: Any, released: Pipeline) -> None:
    candidate = side(f"fraud-detection-staging-b-{sample()}-score", 50, seconds=1040.0)
    compared(scores(), scores(), candidate=candidate)
    result = judge(gate, released)
    assert result["result"] == "failed"
    assert "FAIL run time x4.00 (1040 s against prod's 260 s; at most x3)" in result["reason"]


def test_gate_without_a_reference_judges_the_failure_rate_and_says_so(
    gate: Any, released: Pipeline
) -> None:
    write_record(record())
    outputs(sample(), "candidate", scores())
    result = judge(gate, released)
    assert result["result"] == "succeeded", result["reason"]
    assert "prod serves no batch version to compare with" in result["reason"]
    assert "PASS failure rate 0.00%" in result["reason"]
    assert "prediction shift " not in result["reason"].replace("prediction shift and", "")
    write_record(record(candidate=side(f"b-{sample()}-score", 45)))
    failed = judge(gate, released)
    assert failed["result"] == "failed"
    assert "FAIL failure rate 10.00%" in failed["reason"]


def test_gate_judges_the_attempt_the_verifier_judged_last(gate: Any, released: Pipeline) -> None:
    """After a retried verify action: attempt 0 failed, attempt 1 verified the release; the
    gate judges attempt 1's run and outputs."""
    write_record(record(status="Failed", reason="score job: InternalServerError", compare=True))
    retried = sample(attempt=1)
    write_record(record(run=retried, compare=True))
    outputs(retried, "candidate", scores(0.01))
    outputs(retried, "reference", scores())
    result = judge(gate, released)
    assert result["result"] == "succeeded", result["reason"]
    assert result["reason"].startswith(f"Quality gate passed on sample run {retried}: ")


def test_gate_fails_when_the_verifier_s_sample_run_is_missing(
    gate: Any, released: Pipeline
) -> None:
    write_record(record(run=sample("prod")))  # another environment's run is not this one
    result = judge(gate, released)
    assert result["result"] == "failed"
    assert f"the deploy verifier's sample run {sample()} is missing" in result["reason"]
    assert verdict_items() == []


def test_gate_fails_a_reference_that_did_not_score(gate: Any, released: Pipeline) -> None:
    reference = side(f"b-{sample()}-ref", 0, status="Failed", failure_reason="OOM")
    compared(scores(), [], reference=reference)
    result = judge(gate, released)
    assert result["result"] == "failed"
    assert (
        f"FAIL prod's version ({PREVIOUS_MODEL}) did not score the sample (Failed: OOM)"
        in (result["reason"])
    )


def test_gate_refuses_a_continuation_token_in_a_batch_environment(
    gate: Any, released: Pipeline
) -> None:
    released.jobs.add({"execution": EXECUTION, "batch": BATCH},
                      continuation=json.dumps({"endpoint": "e", "deadline": 1}),
                      revision=released.revision)  # fmt: skip
    result = gate.handler.handler(copy.deepcopy(JOB), CONTEXT)
    assert result["result"] == "refused"
    assert "not a token this action wrote" in result["reason"]


def test_gate_still_judges_the_registered_metrics_of_a_batch_release(
    gate: Any, released: Pipeline
) -> None:
    compared(scores(0.01), scores())
    demanding = {"model_metrics": [{"name": "recall", "threshold": 0.9,
                                    "direction": "at_least"}], "slos": []}  # fmt: skip
    gate.patch.setenv("MLGATE_THRESHOLDS", json.dumps(demanding))
    gate.handler.settings.cache_clear()
    result = judge(gate, released)
    assert result["result"] == "failed"
    assert "FAIL recall 0.7100 (needs >= 0.9)" in result["reason"]
    assert "PASS prediction shift" in result["reason"]
