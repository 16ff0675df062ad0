"""The deploy verifier in a batch environment (UserParameters' `batch`): no endpoint; the
release is verified by a sample run of the batch_run hook on the version now live.

First invocation: the release is checked (this execution's, an approved version); the
environment's live model package (SSM, `model_package_parameter`, which the Serving stack
update sets) must be the release's version, else the update was rolled back (a silent
rollback, naming both); its live model (`model_parameter`) must exist. Then the batch_run
function is invoked asynchronously (Invoke, InvocationType Event: Lambda answers 202 once the
event is queued, https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html) with a sample
start of `sample_rows` rows under the run id shared/batch.py's sample_run gives this execution,
environment and attempt, and the job continues with a BatchToken. A Lambda retry of this
invocation sends the same run id, and batch_run starts each run once.

The attempt: a retried verify action runs in the same pipeline execution (CodePipeline's Retry
keeps the execution: RetryStageExecution takes its pipelineExecutionId,
https://docs.aws.amazon.com/codepipeline/latest/userguide/pipelines-actions-retry.html).
The first invocation takes this execution's runs in order and uses the first one that has no
record yet (started here, or still running from an earlier try: batch_run starts it once) or
whose record verifies the release (judged again, nothing started). A run whose record failed
the release is passed over, so a retry after a failed run starts the next attempt instead of
failing on the same record again; after shared/batch.py's SAMPLE_ATTEMPTS the job fails.

Each continuation reads the run's record.json: absent, it continues until the token's
deadline (`max_run_minutes` after the start, never past CodePipeline's 24 hours for a Lambda
action: https://docs.aws.amazon.com/codepipeline/latest/userguide/limits.html), then fails;
present, it fails naming the reason unless the run Completed on the release's model package,
with every input row scored (candidate rows_out == rows_in) and no unparseable prediction.
Then it records the served item (shared/served.py; its time is the record's finished_at, so a
retry writes the same key once) and succeeds with the rows, seconds and run id.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shared.audit import AuditTrail
from shared.batch import SAMPLE, SAMPLE_ATTEMPTS, record_key, sample_runs
from shared.jobs import JobError, Refused, check_approved, read_release, succeed
from shared.models import BatchToken, Release, RunRecord, read
from shared.served import served_item

# CodePipeline fails a Lambda invoke action after 24 hours whatever it answers: the wait ends
# before, so the verifier fails it saying why.
LONGEST_WAIT_MINUTES = 24 * 60 - 30
RECORD_BYTES = 1 << 20
NOTHING_LIVE = "none"


def wait_minutes(max_run_minutes: int) -> int:
    return min(max_run_minutes, LONGEST_WAIT_MINUTES)


def read_record(s3: Any, bucket: str, env: str, run: str) -> RunRecord | None:
    """The run's record.json, read whole and checked; None while the run has not ended.

    S3 answers NoSuchKey for a missing object only to a caller allowed s3:ListBucket on the
    bucket, AccessDenied to any other
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions"): a
    hook reading a record needs both, or a run still going fails its job as refused."""
    key = record_key(env, run)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(RECORD_BYTES + 1)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise
    where = f"s3://{bucket}/{key}"
    if len(body) > RECORD_BYTES:
        raise JobError(f"{where} is larger than 1 MB: not a run record")
    try:
        document = json.loads(body.decode("utf-8"))
        return read(document, RunRecord, "record.json")
    except (UnicodeDecodeError, ValueError) as err:
        # Refusal is a ValueError: it names the field.
        raise JobError(f"{where} is not a run record: {err}") from None


def parameter(ssm: Any, name: str, env: str) -> str:
    """An SSM parameter's value; a parameter that does not exist fails the job naming it."""
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise
        raise JobError(
            f"{env}: SSM parameter {name} does not exist: the Serving stack keeps it"
        ) from None


def attempt_run(job: Any, release: Release, env: Any) -> tuple[str, RunRecord | None]:
    """The sample run this try of the verify action uses (module docstring: the attempt), with
    its record when it already verifies the release."""
    batch, name = job.params.batch, job.params.environment
    s3, failed = env.client("s3"), ""
    for run in sample_runs(job.execution, name):
        record = read_record(s3, batch.bucket, name, run)
        if record is None:
            return run, None
        failed = problem(record, release.model_package_arn) or ""
        if not failed:
            return run, record
    raise JobError(
        f"{name}: this execution's {SAMPLE_ATTEMPTS} sample runs all failed the release, the "
        f"last: {failed}; start a new release rather than retry"
    )


def start(job: Any, release: Release, env: Any, now: float) -> tuple[BatchToken, bool]:
    """Check the live version (every try: a silent rollback is caught whatever ran before),
    then take the attempt's run (module docstring) and start it (once per run id) unless its
    record already verifies the release: its token, and whether a run was started."""
    params, batch = job.params, job.params.batch
    name, arn = params.environment, release.model_package_arn
    ssm = env.client("ssm")
    live = parameter(ssm, batch.model_package_parameter, name)
    if live != arn:
        raise JobError(
            f"{name}: silent rollback: the live model package ({batch.model_package_parameter}) "
            f"is {live}, but the pipeline deployed {arn}; the Serving stack update was rolled "
            "back (see its stack events)"
        )
    model = parameter(ssm, batch.model_parameter, name)
    if model == NOTHING_LIVE:
        raise JobError(
            f"{name}: the live model parameter {batch.model_parameter} names no model although "
            f"the live model package is {arn}"
        )
    run, verified = attempt_run(job, release, env)
    token = BatchToken(run=run, deadline=int(now) + wait_minutes(batch.max_run_minutes) * 60)
    if verified is not None:
        return token, False
    payload = {"action": "start", "kind": SAMPLE, "run": run, "rows": batch.sample_rows,
               "model_package": arn}  # fmt: skip
    answer = env.client("lambda").invoke(
        FunctionName=batch.function, InvocationType="Event", Payload=json.dumps(payload).encode()
    )
    if answer.get("StatusCode") != 202:
        raise JobError(
            f"{name}: Lambda answered {answer.get('StatusCode')} to the sample start of run "
            f"{run} on {batch.function}, not 202 (queued)"
        )
    return token, True


def problem(record: RunRecord, arn: str) -> str | None:
    """Why the sample run does not verify the release; None when it does."""
    side = record.candidate
    if record.status != "Completed":
        why = record.reason or (side.failure_reason if side else None) or "no reason given"
        return f"the sample run {record.run} is {record.status}: {why}"
    if record.model_package != arn:
        return (
            f"the sample run {record.run} scored model package {record.model_package}, not the "
            f"release's {arn}"
        )
    if side is None or side.status != "Completed":
        status = side.status if side else "missing"
        return f"the sample run {record.run}'s scoring job is {status}"
    if record.rows_in == 0:
        return f"the sample run {record.run} had no input rows: nothing was scored"
    if side.rows_out != record.rows_in:
        return (
            f"the sample run {record.run} scored {side.rows_out} of {record.rows_in} rows "
            f"({side.job}): {record.rows_in - side.rows_out} rows got no prediction"
        )
    if side.unparseable:
        return (
            f"the sample run {record.run} has {side.unparseable} unparseable predictions of "
            f"{side.rows_out} ({side.job})"
        )
    return None


def record_served(job: Any, release: Release, record: RunRecord, dynamodb: Any, log: Any) -> None:
    """The served record of the verified environment, keyed on the run's end: once."""
    table = os.environ.get("AUDIT_TABLE", "")
    if not table:
        log("no AUDIT_TABLE: the served record is not written", {})
        return
    item = served_item(
        pipeline=job.source.pipeline,
        env=job.params.environment,
        when=datetime.fromisoformat(record.finished_at.replace("Z", "+00:00")),
        version=release.model_version,
        document=release.document(),
        execution=job.execution,
        endpoint=record.model or job.params.batch.function,
    )
    written = AuditTrail(dynamodb, table).append(item)
    log("served record", {"sk": item["sk"]["S"], "written": written})


def step(
    job: Any,
    *,
    codepipeline: Any,
    s3_home: Any,
    registry: Any,
    dynamodb: Any,
    env: Any,
    now: float,
    log: Any,
) -> dict[str, str]:
    """The verifier's job in a batch environment (module docstring): start, wait, judge."""
    params, batch = job.params, job.params.batch
    name = params.environment
    if job.continuation is None:
        release = read_release(job, codepipeline, s3_home)
        check_approved(job, release, registry)
        token, started = start(job, release, env, now)
        reason = (
            f"{name}: sample run {token.run} started"
            if started
            else f"{name}: sample run {token.run} already verifies the release: judged again"
        )
        succeed(codepipeline, job.id, continuation=token.model_dump_json())
        return {"result": "in_progress", "reason": reason}
    token = job.token(BatchToken)
    run = token.run
    if run not in sample_runs(job.execution, name):
        raise Refused(
            job.id,
            f"continuationToken.run: names {run}, not a sample run of this execution in {name} "
            "(not a token this action wrote)",
        )
    record = read_record(env.client("s3"), batch.bucket, name, run)
    if record is None:
        minutes = wait_minutes(batch.max_run_minutes)
        if now > token.deadline:
            raise JobError(
                f"{name}: the sample run {run} did not finish in {minutes} minutes "
                f"(max_run_minutes {batch.max_run_minutes}): no s3://{batch.bucket}/"
                f"{record_key(name, run)} (see the batch_run function's logs and the run's "
                "jobs)"
            )
        succeed(codepipeline, job.id, continuation=job.continuation)
        return {"result": "in_progress", "reason": f"{name}: waiting for sample run {run}"}
    release = read_release(job, codepipeline, s3_home)
    why = problem(record, release.model_package_arn)
    if why is not None:
        raise JobError(f"{name}: {why}")
    side = record.candidate
    assert side is not None  # problem() requires it
    record_served(job, release, record, dynamodb, log)
    seconds = f"{side.seconds:.0f} s" if side.seconds is not None else "an unreported time"
    summary = (
        f"{name}: version {release.model_version} ({record.model}) scored all {side.rows_out} "
        f"rows of sample run {run} in {seconds}, no unparseable prediction"
    )
    succeed(codepipeline, job.id, summary)
    return {"result": "succeeded", "reason": summary}
