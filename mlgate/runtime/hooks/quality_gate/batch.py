"""The quality gate of a batch staging (UserParameters' `batch`): no endpoint and no smoke
load; it judges the sample run the deploy verifier ran in this execution, from its record and
its outputs in staging's artifact bucket: the last of the execution's runs (shared/batch.py's
sample_runs(execution, "staging"), in the order of attempts) that has a record, the one the
verifier judged last (a retried verify action starts the next attempt only after a run's
record failed the release).

- Failure rate: (rows_in - rows_out + unparseable) / rows_in of the candidate (the released
  version), at most `max_failure_rate`.
- Prediction shift: the candidate's predictions against the reference's (prod's live version,
  scored on the same rows by the same run), as the shadow test measures it (shared/shadow.py:
  the Wasserstein distance over the reference's standard deviation for numeric scores, the
  Jensen-Shannon distance for labels), at most `max_prediction_shift`. The prediction is the
  last field of each output line (JoinSource Input); the outputs are read line by line. When
  most of the reference's predictions are numbers, a prediction that is not one is left out
  here (the failure rate counts the candidate's).
- Run-time ratio: the candidate's transform seconds over the reference's, at most
  `max_run_time_ratio`.
With no reference (prod serves no batch version), only the failure rate is judged, and the
message says so. The registered model metrics are judged as for an endpoint (the handler's
lines). The verdict is recorded in the audit trail under the run's end time and the job id: a
retry computes the same verdict from the same record and writes the same key once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from deploy_verifier.batch import read_record

from shared.audit import AuditTrail, digest
from shared.batch import record_key, sample_run, sample_runs
from shared.batch_run import is_number, predictions
from shared.jobs import JobError, fail, is_transient, refused_by_aws, succeed
from shared.models import BatchParameters, Release, RunRecord, RunSide
from shared.shadow import prediction_shift

ENV = "staging"


def failure_rate(record: RunRecord, side: RunSide) -> float | None:
    if record.rows_in == 0:
        return None
    return (max(0, record.rows_in - side.rows_out) + side.unparseable) / record.rows_in


def shift(s3: Any, candidate: RunSide, reference: RunSide) -> tuple[float, str] | str:
    """(shift, how it was measured), or why there is no evidence."""
    if candidate.output_uri is None or reference.output_uri is None:
        return "the run record names no output of a side"
    ours = list(predictions(s3, reference.output_uri))
    theirs = list(predictions(s3, candidate.output_uri))
    if sum(map(is_number, ours)) * 2 > len(ours):  # scores: what is not one is a failure
        ours, theirs = [v for v in ours if is_number(v)], [v for v in theirs if is_number(v)]
    if not ours or not theirs:
        return f"no predictions in {'the reference' if not ours else 'the candidate'}'s output"
    return prediction_shift(ours, theirs)


def judge(
    s3: Any, record: RunRecord, arn: str, limits: BatchParameters
) -> tuple[bool, list[str], dict[str, Any]]:
    """(passed, one line per figure and threshold, evidence)."""
    lines: list[str] = []
    ok = True
    evidence: dict[str, Any] = {"run": record.run, "rows_in": record.rows_in}
    side = record.candidate
    if record.status != "Completed" or side is None or side.status != "Completed":
        why = record.reason or (side.failure_reason if side else None) or "no reason given"
        return False, [f"FAIL the sample run {record.run} is {record.status}: {why}"], evidence
    if record.model_package != arn:
        return False, [
            f"FAIL the sample run {record.run} scored model package {record.model_package}, "
            f"not the release's {arn}"
        ], evidence  # fmt: skip
    rate = failure_rate(record, side)
    evidence["failure_rate"] = rate
    if rate is None:
        ok = False
        lines.append(f"FAIL failure rate: the sample run {record.run} had no input rows")
    else:
        passed = rate <= limits.max_failure_rate
        ok &= passed
        lines.append(
            f"{'PASS' if passed else 'FAIL'} failure rate {rate:.2%} ({side.rows_out} of "
            f"{record.rows_in} rows scored, {side.unparseable} unparseable; at most "
            f"{limits.max_failure_rate:.2%})"
        )
    reference = record.reference
    if reference is None:
        lines.append(
            "INFO prod serves no batch version to compare with: prediction shift and run time "
            "not judged"
        )
        return ok, lines, evidence
    if reference.status != "Completed":
        why = reference.failure_reason or "no reason given"
        lines.append(
            f"FAIL prod's version ({record.reference_model}) did not score the sample "
            f"({reference.status}: {why}): no comparison"
        )
        return False, lines, evidence
    measured = shift(s3, side, reference)
    if isinstance(measured, str):
        ok = False
        lines.append(f"FAIL prediction shift: {measured}: no evidence")
    else:
        value, how = measured
        evidence["prediction_shift"] = {"value": value, "measure": how}
        passed = value <= limits.max_prediction_shift
        ok &= passed
        lines.append(
            f"{'PASS' if passed else 'FAIL'} prediction shift {value:.3f} against prod's "
            f"{record.reference_model} ({how}; at most {limits.max_prediction_shift:g})"
        )
    if side.seconds is None or not reference.seconds:
        ok = False
        lines.append("FAIL run time: the run record has no transform seconds for a side")
    else:
        ratio = side.seconds / reference.seconds
        evidence["run_time_ratio"] = ratio
        passed = ratio <= limits.max_run_time_ratio
        ok &= passed
        lines.append(
            f"{'PASS' if passed else 'FAIL'} run time x{ratio:.2f} ({side.seconds:.0f} s "
            f"against prod's {reference.seconds:.0f} s; at most x{limits.max_run_time_ratio:g})"
        )
    return ok, lines, evidence


def step(
    job: Any,
    release: Release,
    metric_lines: tuple[bool, list[str]],
    *,
    codepipeline: Any,
    s3: Any,
    trail: AuditTrail,
    pipeline: str,
) -> dict[str, str]:
    """The gate's job in a batch staging: judge the verifier's sample run and the registered
    metrics (`metric_lines`, the handler's), record the verdict, report it."""
    limits = job.params.batch
    run, record = sample_run(job.execution, ENV), None
    for attempt in sample_runs(job.execution, ENV):
        found = read_record(s3, limits.bucket, ENV, attempt)
        if found is None:
            break
        run, record = attempt, found
    if record is None:
        raise JobError(
            f"the deploy verifier's sample run {run} is missing: no s3://{limits.bucket}/"
            f"{record_key(ENV, run)} (the gate judges the run the verifier ran in this "
            "execution)"
        )
    metrics_ok, lines = metric_lines
    ok, batch_lines, evidence = judge(s3, record, release.model_package_arn, limits)
    ok &= metrics_ok
    summary = f"Quality gate {'passed' if ok else 'failed'} on sample run {run}: " + "; ".join(
        [*lines, *batch_lines]
    )
    when = datetime.fromisoformat(record.finished_at.replace("Z", "+00:00"))
    try:
        trail.record(
            pipeline=pipeline,
            execution=job.execution,
            event="quality-gate",
            gate="quality-gate",
            key=job.id,
            # The run's own end: every try of this job writes the same audit key.
            when=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            who="mlgate quality gate",
            decision="Passed" if ok else "Failed",
            model_version=str(release.model_version),
            evidence_sha256=digest({"release": release.document(), **evidence}),
            detail=summary,
        )
    except ClientError as err:
        if is_transient(err):
            raise
        raise JobError(
            f"{summary}. The verdict could not be recorded ({refused_by_aws(err)}); a verdict "
            "that is not on record does not pass the gate"
        ) from None
    (succeed if ok else fail)(codepipeline, job.id, summary)
    return {"result": "succeeded" if ok else "failed", "reason": summary}
