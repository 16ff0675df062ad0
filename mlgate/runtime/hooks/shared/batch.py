"""Batch scoring's names and places: run ids, job names and the S3 layout of a batch
environment's runs (mlgate/manifest/serving.py, `mode: batch`).

A batch environment has no endpoint: the batch_run hook prepares each run's input with a
SageMaker Processing job, scores it with a Batch Transform job, and writes the run's record
once every job has ended. The deploy verifier and the quality gate read that record. Everything
lives in the environment's artifact bucket, under `batch/<env>/`:

- runs/<run>/input/part-00000.csv: the prepared input, `id,<payload...>` per line, no header;
- runs/<run>/meta/rows.json: {"rows": N}, what the prepare job wrote;
- predictions/run=<run>/: a scheduled run's transform output (the Glue `predictions` table's
  partitions);
- runs/<run>/candidate/ and runs/<run>/reference/: a release's sample run's outputs;
- runs/<run>/record.json: the run's record.

Output lines are the input line with the prediction joined as the last field (Batch
Transform's JoinSource Input, OutputFilter "$":
https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

BATCH_PREFIX = "batch"
JOB_NAME_LENGTH = 63  # CreateProcessingJob's and CreateTransformJob's name limit
STEPS = ("prep", "score", "ref")
"""The jobs of a run: prepare the input, score it with the live model, and (a release's sample
run) score it with prod's model for the quality gate's comparison."""
SCHEDULED, SAMPLE = "scheduled", "sample"
CANDIDATE, REFERENCE = "candidate", "reference"
_RUN = re.compile(r"^(s[0-9]{8}T[0-9]{4}|[ev][0-9a-f]{12})$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def scheduled_run(time: datetime) -> str:
    """The run a schedule starts at `time` (its EventBridge event's time, to the minute)."""
    return f"s{time:%Y%m%dT%H%M}"


def etl_run(job_run_id: str) -> str:
    """The run a successful ETL job run starts."""
    return f"e{_digest(job_run_id)}"


SAMPLE_ATTEMPTS = 10
"""The sample runs one pipeline execution may start in one environment. A verify action that
failed on its sample run (a transform job's transient fault, say) and is retried in CodePipeline
runs in the same execution: the retry starts the next attempt's run, not the failed one again
(deploy_verifier/batch.py)."""


def sample_run(execution: str, env: str, attempt: int = 0) -> str:
    """A release's sample run: per pipeline execution, environment and attempt (0, then each
    retry of the verify action after a run that failed it)."""
    if not 0 <= attempt < SAMPLE_ATTEMPTS:
        raise ValueError(f"attempt {attempt} is not within 0..{SAMPLE_ATTEMPTS - 1}")
    return f"v{_digest(f'{execution}#{env}' + (f'#{attempt}' if attempt else ''))}"


def sample_runs(execution: str, env: str) -> list[str]:
    """Every sample run the execution may start in the environment, in the order of attempts."""
    return [sample_run(execution, env, attempt) for attempt in range(SAMPLE_ATTEMPTS)]


def is_run(text: str) -> bool:
    return bool(_RUN.match(text))


RUN_AND_STEP = 21  # the longest "<run>-<step>": s20261205T0600-score


def job_prefix(product: str, env: str) -> str:
    """What every job of this environment's runs is named after (EventBridge rules match it):
    `<product>-<env>-b-`, the product cut so that any run and step fit in 63 characters."""
    tail = f"-{env}-b-"
    return f"{product[: JOB_NAME_LENGTH - RUN_AND_STEP - len(tail)].rstrip('-')}{tail}"


def job_name(product: str, env: str, run: str, step: str) -> str:
    """A run's job: `<job prefix><run>-<step>`."""
    if step not in STEPS:
        raise ValueError(f"step '{step}' is none of {', '.join(STEPS)}")
    if not is_run(run):
        raise ValueError(f"'{run}' is not a batch run id")
    return f"{job_prefix(product, env)}{run}-{step}"


def run_of(job: str, product: str, env: str) -> tuple[str, str] | None:
    """(run, step) of one of this environment's job names, None for any other job."""
    head = job_prefix(product, env)
    if not job.startswith(head):
        return None
    run, _, step = job[len(head) :].rpartition("-")
    return (run, step) if is_run(run) and step in STEPS else None


def env_prefix(env: str) -> str:
    return f"{BATCH_PREFIX}/{env}"


def run_prefix(env: str, run: str) -> str:
    return f"{env_prefix(env)}/runs/{run}"


def input_prefix(env: str, run: str) -> str:
    return f"{run_prefix(env, run)}/input/"


def meta_key(env: str, run: str) -> str:
    return f"{run_prefix(env, run)}/meta/rows.json"


def record_key(env: str, run: str) -> str:
    return f"{run_prefix(env, run)}/record.json"


def predictions_prefix(env: str) -> str:
    """The Glue predictions table's location."""
    return f"{env_prefix(env)}/predictions/"


def output_prefix(env: str, run: str, kind: str, side: str = CANDIDATE) -> str:
    """Where a run's transform writes: the table's partition for a scheduled run, the run's own
    folder for each side of a sample run."""
    if kind == SCHEDULED:
        return f"{predictions_prefix(env)}run={run}/"
    return f"{run_prefix(env, run)}/{side}/"
