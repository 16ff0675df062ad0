"""What a batch environment's runs take from the manifest (mlgate/infra/constructs/batch.py),
and the batch_run hook's environment built from it.

Free of CDK, so the rehearsal configures the hook exactly as the Serving stack does without
starting jsii's Node runtime (as mlgate/infra/monitoring_args.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlgate.infra.instance_storage import has_instance_storage
from mlgate.infra.naming import CURATED_PREFIX, Names
from mlgate.manifest import NUMERIC_TYPES, EnvName, Manifest, ProblemType

GLUE_TYPES = {"int": "int", "bigint": "bigint", "double": "double", "float": "float",
              "boolean": "boolean", "date": "date", "timestamp": "timestamp"}  # fmt: skip
"""Curated column types the predictions table keeps as they are; anything else is a string."""
RUN_AND_STEP = 21
"""The longest run id and step a job name ends in: s20261205T0600-score."""


def job_prefix(names: Names) -> str:
    """What the environment's batch jobs are named after: the hook's own rule
    (mlgate/runtime/hooks/shared/batch.py job_prefix, which the Lambda asset carries; a test
    holds the two equal): `<product>-<env>-b-`, the product cut so that a run id and step fit
    SageMaker's 63 characters."""
    tail = f"-{names.env}-b-"
    return f"{names.product[: 63 - RUN_AND_STEP - len(tail)].rstrip('-')}{tail}"


def batch_function_name(names: Names) -> str:
    """The batch_run hook's function name: the deploy verifier invokes it by this name."""
    return names.resource("batch-run", max_length=64)


def batch_rule(names: Names, what: str) -> str:
    return names.rule(f"batch-{what}")


def table_column(payload_column: str) -> str:
    """A payload column's name as a Glue column (lower case, letters, digits and _): a
    one-hot column `vehicle=car` becomes `vehicle_car`."""
    return re.sub(r"[^a-z0-9_]", "_", payload_column.lower())


@dataclass(frozen=True)
class BatchRun:
    """What an environment's runs do: the transform's instances, when runs start (`schedule`,
    or after each success of `etl_job`), what they read (`input_uri` in the bucket
    `input_bucket`), the release's sample size, when a run is late, the model's payload
    (`payload`: "encoded", mlgate's preprocess layout, or "raw", the product's request columns
    `request_columns`), the predictions table (`database`, `table_columns` as (name, Glue
    type), id first, prediction last), and prod's live model parameter in staging
    (`reference_model_parameter`)."""

    instance_type: str
    instance_count: int
    schedule: str | None
    etl_job: str | None
    input_uri: str
    input_bucket: str
    sample_rows: int
    max_run_minutes: int
    max_payload_mb: int
    payload: str
    request_columns: tuple[str, ...]
    database: str
    table_columns: tuple[tuple[str, str], ...]
    reference_model_parameter: str | None
    reference_for: str | None = None
    """Prod's: the environment whose release's sample runs this model scores too (staging's,
    for its quality gate's comparison), as its reference job, under that environment's runs."""


def batch_run(manifest: Manifest, env: EnvName, *, curated_bucket: str, database: str) -> BatchRun:
    """The environment's runs, from the manifest; `curated_bucket` and `database` are the Data
    stack's."""
    settings = manifest.env_serving(env)
    batch = settings.batch_settings
    schema = manifest.data.curated
    # A product that brings its own preprocess serves the request columns of its sample
    # request as they are; otherwise the model takes mlgate's preprocess layout (numbers, each
    # category one-hot), which the prepare job encodes the same way.
    raw = manifest.model.code.preprocess is not None
    types = {c.name: c.type for c in schema.columns}

    def column_type(name: str) -> str:
        if not raw:
            return "double"
        known = types.get(name)
        return GLUE_TYPES.get(str(known), "double" if known in NUMERIC_TYPES else "string")

    labels = manifest.model.problem_type is ProblemType.MULTICLASS
    return BatchRun(
        instance_type=settings.instance_type,
        instance_count=settings.instance_count,
        schedule=batch.schedule,
        etl_job=None if batch.schedule else Names.of(manifest).etl_job(),
        input_uri=f"s3://{curated_bucket}/{batch.input_prefix or CURATED_PREFIX}",
        input_bucket=curated_bucket,
        sample_rows=batch.sample_rows,
        max_run_minutes=batch.max_run_minutes,
        max_payload_mb=batch.max_payload_mb,
        payload="raw" if raw else "encoded",
        request_columns=tuple(manifest.payload_columns),
        database=database,
        table_columns=(
            (schema.id_column, GLUE_TYPES.get(str(types[schema.id_column]), "string")),
            *((table_column(c), column_type(c)) for c in manifest.payload_columns),
            ("prediction", "string" if labels else "double"),
        ),
        reference_model_parameter=Names.of(manifest, "prod").live_release_parameter("model-name")
        if env == "staging" and manifest.is_batch("prod")
        else None,
        reference_for="staging" if env == "prod" and manifest.is_batch("staging") else None,
    )


def hook_environment(
    run: BatchRun,
    names: Names,
    *,
    bucket: str,
    key_arn: str,
    image: str,
    prepare_code_uri: str,
    contract_uri: str,
    role_arn: str,
    table: str,
) -> Mapping[str, str]:
    """The batch_run hook's environment (its module docstring lists what it reads)."""
    return {
        "PRODUCT": names.product,
        "ENVIRONMENT": str(names.env),
        "ARTIFACT_BUCKET": bucket,
        "KEY_ARN": key_arn,
        # The prep and transform jobs' volumes: the product key, or none on instance storage
        # (mlgate/infra/instance_storage.py), where SageMaker refuses one.
        "VOLUME_ENCRYPTION": (
            "instance-storage" if has_instance_storage(run.instance_type) else "product-key"
        ),
        "MODEL_PARAMETER": names.live_release_parameter("model-name"),
        "MODEL_PACKAGE_PARAMETER": names.live_release_parameter("model-package"),
        **(
            {"REFERENCE_MODEL_PARAMETER": run.reference_model_parameter}
            if run.reference_model_parameter
            else {}
        ),
        "INPUT_URI": run.input_uri,
        "PROCESSING_IMAGE": image,
        "PREPARE_CODE_URI": prepare_code_uri,
        "CONTRACT_URI": contract_uri,
        "PAYLOAD": run.payload,
        **({"REQUEST_COLUMNS": ",".join(run.request_columns)} if run.payload == "raw" else {}),
        "PREPARE_ROLE_ARN": role_arn,
        "INSTANCE_TYPE": run.instance_type,
        "INSTANCE_COUNT": str(run.instance_count),
        "MAX_PAYLOAD_MB": str(run.max_payload_mb),
        "MAX_RUN_MINUTES": str(run.max_run_minutes),
        "SAMPLE_ROWS": str(run.sample_rows),
        "GLUE_DATABASE": run.database,
        "PREDICTIONS_TABLE": table,
        "WATCH_RULE": batch_rule(names, "watch"),
        **({"ETL_JOB": run.etl_job} if run.etl_job else {}),
        **({"SCHEDULE_RULE": batch_rule(names, "schedule")} if run.schedule else {}),
    }


def batch_checks(manifest: Manifest, env: EnvName) -> dict[str, Any] | None:
    """A batch environment's release checks, as the deploy verifier and the quality gate read
    them (UserParameters' `batch`, shared/models.py BatchParameters); None for an endpoint."""
    if not manifest.is_batch(env):
        return None
    batch = manifest.env_serving(env).batch_settings
    target = manifest.environment(env)
    names = Names.of(manifest, env)
    return {
        "function": batch_function_name(names),
        "bucket": Names.of(manifest).bucket("artifacts", target.account, target.region),
        "sample_rows": batch.sample_rows,
        "max_run_minutes": batch.max_run_minutes,
        "max_prediction_shift": batch.max_prediction_shift,
        "max_failure_rate": batch.max_failure_rate,
        "max_run_time_ratio": batch.max_run_time_ratio,
        "model_parameter": names.live_release_parameter("model-name"),
        "model_package_parameter": names.live_release_parameter("model-package"),
    }
