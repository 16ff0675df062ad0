"""The rehearsal's batch environments (mlgate/manifest/serving.py, `mode: batch`): the
batch_run hook (mlgate/runtime/hooks/batch_run) configured as the Serving stack configures it
(mlgate/infra/batch_settings.py), its SageMaker jobs run in this process.

moto hosts the hook's calls (CreateProcessingJob, CreateTransformJob, their Describe and List,
S3, SSM, Glue's CreatePartition); what moto does not do is run a job. `BatchJobs.run` does, in
the order the hook created them, each followed by the state-change event SageMaker sends
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html):

- a prepare job runs mlgate's preprocess.py --batch-input on the curated table the rehearsal's
  ETL wrote, and its outputs are uploaded where the job's ProcessingOutputConfig says;
- a transform job reads its input from moto's S3, drops the id column (its InputFilter "$[1:]"),
  sends the rest to the product's model in mini-batches, as Batch Transform's MultiRecord
  strategy does, through the serving contract of tools/local_endpoint.py, and writes each input
  line with its prediction joined last (JoinSource Input) to its S3OutputPath, one `.out` per
  input file.

The model a job names is the one the release made: CloudFormation replaces the Serving stack's
SageMaker model at each release; offline the rehearsal names it `<env>-model-<version>` and
writes the live model parameter as the stack does ([simulated offline]).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlgate.infra.batch_settings import (
    batch_function_name,
    batch_rule,
    batch_run,
    hook_environment,
    job_prefix,
)
from mlgate.infra.naming import Names, role_arn
from mlgate.manifest import ENV_NAMES, EnvName, Manifest

MB = 1_000_000
"""MaxPayloadInMB's megabyte."""
CURATED_BUCKET = "curated"
"""The rehearsal's curated bucket: the local folder its ETL wrote stands for it."""


class BatchJobs:
    """Batch environments of one product's rehearsal: the hook of each, the models releases
    made, and the jobs run so far."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        client: Callable[[str], Any],
        host: Any,
        context: Callable[[str, str, str], Any],
        curated: Callable[[], Path],
        work: Path,
    ) -> None:
        self.manifest = manifest
        self.client = client
        self.host = host
        self.context = context
        self.curated = curated
        self.work = work
        self.models: dict[str, str] = {}
        """Model name -> the released model artifact it serves."""
        self.done: set[str] = set()
        """Jobs already run."""
        self.events = 0
        self.firings = 0
        """Schedule firings so far (the rehearsal's clock: a week apart)."""
        self._labels: dict[str, Any] | None = None
        self.last_sample: dict[str, str] = {}
        """Each environment's last sample run (the verifier's)."""

    # --- the hook ------------------------------------------------------------------------

    def environment(self, env: EnvName) -> dict[str, str]:
        """The hook's environment as the Serving stack sets it (its own account's bucket and
        key, in the rehearsal's names)."""
        m = self.manifest
        names = Names.of(m, env)
        target = m.environment(env)
        run = batch_run(m, env, curated_bucket=CURATED_BUCKET, database=catalog_name(m))
        return {
            **hook_environment(
                run,
                names,
                bucket="artifacts",
                key_arn=f"arn:aws:kms:{target.region}:{target.account}:key/rehearsal",
                image="rehearsal/prepare:local",
                prepare_code_uri="s3://assets/preprocess.py",
                contract_uri="s3://assets/contract.json",
                role_arn=role_arn(target.account, names.model_role()),
                table=f"predictions_{env}",
            ),
            "POWERTOOLS_METRICS_NAMESPACE": "mlgate/batch",
            "POWERTOOLS_SERVICE_NAME": "batch_run",
        }

    def hook(self, env: EnvName) -> Any:
        """The batch_run hook configured for `env` (its settings are read once per import: they
        are read afresh for each environment)."""
        environment = self.environment(env)
        # The other environment's own settings go: each function has only its own.
        for other in ("staging", "prod"):
            if other != env and self.manifest.is_batch(other):
                for name in self.environment(other):
                    os.environ.pop(name, None)
        os.environ.update(environment)
        module = importlib.import_module("batch_run.handler")
        module.settings.cache_clear()
        return module

    def deliver(self, env: EnvName, event: dict[str, Any]) -> dict[str, Any]:
        target = self.manifest.environment(env)
        context = self.context(target.account, target.region, batch_function_name(
            Names.of(self.manifest, env)))  # fmt: skip
        result: dict[str, Any] = self.hook(env).handler(event, context)
        self.events += 1
        return result

    def invoke(self, FunctionName: str, Payload: bytes | str, **_: Any) -> dict[str, Any]:
        """Lambda's Invoke of a batch_run function (the deploy verifier's sample start): the
        hook runs now, as Lambda runs an Event invocation soon after accepting it."""
        for env in ("staging", "prod"):
            if self.manifest.is_batch(env) and FunctionName == batch_function_name(
                Names.of(self.manifest, env)
            ):
                self.deliver(env, json.loads(Payload))
                return {"StatusCode": 202}
        raise SystemExit(f"rehearsal: no batch_run function named {FunctionName}")

    # --- what starts runs ------------------------------------------------------------------

    def _event(self, env: EnvName, source: str, kind: str, resources: list[str],
               detail: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:  # fmt: skip
        target = self.manifest.environment(env)
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": kind,
            "source": source,
            "account": target.account,
            "time": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": target.region,
            "resources": resources,
            "detail": detail,
        }

    def start_scheduled(self, env: EnvName) -> dict[str, Any]:
        """What starts the environment's runs: its schedule rule firing, or its ETL job's run
        succeeding."""
        m = self.manifest
        names = Names.of(m, env)
        target = m.environment(env)
        settings = m.env_serving(env).batch_settings
        if settings.schedule:
            rule = f"arn:aws:events:{target.region}:{target.account}:rule/"
            # Each firing a week after the one before: a run is named after its firing's time.
            self.firings += 1
            at = datetime.now(UTC) + timedelta(weeks=self.firings - 1)
            event = self._event(env, "aws.events", "Scheduled Event",
                                [rule + batch_rule(names, "schedule")], {}, at)  # fmt: skip
        else:
            event = self._event(env, "aws.glue", "Glue Job State Change", [], {
                "jobName": Names.of(m).etl_job(), "severity": "INFO", "state": "SUCCEEDED",
                "jobRunId": f"jr_{uuid.uuid4().hex}", "message": "Job run succeeded",
            })  # fmt: skip
        return self.deliver(env, event)

    # --- releases --------------------------------------------------------------------------

    def release(self, env: EnvName, version: int, model_data_url: str, package: str) -> str:
        """What the Serving stack's update does for a batch environment: a new SageMaker model
        of the released artifact, and the live model parameters naming it [simulated offline:
        CloudFormation replaces the model]."""
        names = Names.of(self.manifest, env)
        model = f"{env}-model-{version}"
        self.models[model] = model_data_url
        ssm = self.client("ssm")
        for what, value in (("model-name", model), ("model-package", package)):
            ssm.put_parameter(Name=names.live_release_parameter(what), Value=value,
                              Type="String", Overwrite=True)  # fmt: skip
        return model

    def catalog(self) -> None:
        """What `cdk deploy` made before any release: the product's Glue database and each
        batch environment's predictions table, and its live model parameters at none."""
        ssm = self.client("ssm")
        for env in ("staging", "prod"):
            if self.manifest.is_batch(env):
                names = Names.of(self.manifest, env)
                for what in ("model-name", "model-package"):
                    ssm.put_parameter(Name=names.live_release_parameter(what), Value="none",
                                      Type="String")  # fmt: skip
        glue = self.client("glue")
        database = catalog_name(self.manifest)
        glue.create_database(DatabaseInput={"Name": database})
        for env in ENV_NAMES:
            if self.manifest.is_batch(env):
                glue.create_table(
                    DatabaseName=database,
                    TableInput={
                        "Name": f"predictions_{env}",
                        "PartitionKeys": [{"Name": "run", "Type": "string"}],
                        "StorageDescriptor": {
                            "Location": f"s3://artifacts/batch/{env}/predictions/",
                            "Columns": [],
                        },
                    },
                )

    # --- what a run shows ---------------------------------------------------------------

    def record(self, env: EnvName, run: str) -> dict[str, Any]:
        body = self.client("s3").get_object(
            Bucket="artifacts", Key=f"batch/{env}/runs/{run}/record.json"
        )["Body"]
        found: dict[str, Any] = json.loads(body.read())
        return found

    def run_of(self, env: EnvName, job: str) -> str:
        return job.removeprefix(job_prefix(Names.of(self.manifest, env))).rsplit("-", 1)[0]

    def output(self, uri: str) -> list[str]:
        """The lines of a run's transform output under `uri`."""
        s3 = self.client("s3")
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        lines: list[str] = []
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            lines += [line for line in body.splitlines() if line.strip()]
        return lines

    def labels(self) -> dict[str, Any]:
        """Each curated row's label by its id (the table the rehearsal's ETL wrote once)."""
        if self._labels is None:
            from mlgate.runtime.ml.scripts.preprocess import read_curated

            schema = self.manifest.data.curated
            curated = read_curated(self.curated())
            self._labels = dict(zip(curated[schema.id_column].astype(str),
                                    curated[schema.target_column], strict=True))  # fmt: skip
        return self._labels

    def scored_frame(self, lines: list[str]) -> Any:
        """A run's output as the KPI stand-ins take a scored batch: the target (as the test
        split holds it: a class's index, else the value) from the curated row of each id, the
        payload columns, and the prediction."""
        import csv

        import pandas as pd

        m = self.manifest
        schema = m.data.curated
        labels = self.labels()
        values = list(schema.column(schema.target_column).values)
        columns = [schema.id_column, *m.payload_columns, "prediction"]
        rows = list(csv.reader(lines))
        frame = pd.DataFrame(rows, columns=columns)
        for column in m.payload_columns:
            converted = pd.to_numeric(frame[column], errors="coerce")
            if converted.notna().all():
                frame[column] = converted
        scores = pd.to_numeric(frame["prediction"], errors="coerce")
        if scores.notna().all():
            frame["prediction"] = scores
        target = frame[schema.id_column].map(labels)
        frame.insert(0, schema.target_column,
                     target.map(values.index) if values else pd.to_numeric(target))  # fmt: skip
        return frame.drop(columns=[schema.id_column])

    def kpis(self, rehearsal: Any, env: EnvName, what: str, run: str | None = None) -> None:
        """The KPI stand-ins on a run's predictions (a release's sample: its candidate's)."""
        if run is None:
            run = self.last_sample[env]
        record = self.record(env, run)
        lines = self.output(record["candidate"]["output_uri"])
        frame = self.scored_frame(lines)
        where = f"{what} ({len(lines)} rows of run {run}"
        rehearsal.report_kpis(env, where, frame, "prediction", "the batch run's rows")

    def scheduled(self, rehearsal: Any, env: EnvName, what: str) -> None:
        """What scores the environment's rows between releases: a run started as the
        manifest says, its jobs run, its record, partition and metrics."""
        from tools.rehearsal import SIMULATED, say

        settings = self.manifest.env_serving(env).batch_settings
        self.start_scheduled(env)
        ran = self.run(env)
        if not ran:
            raise SystemExit(f"rehearsal: the {env} batch run started no job")
        run = self.run_of(env, ran[0])
        record = self.record(env, run)
        side = record["candidate"] or {}
        partitions = self.client("glue").get_partitions(
            DatabaseName=catalog_name(self.manifest), TableName=f"predictions_{env}"
        )["Partitions"]
        say(
            f"Batch run {env}",
            f"{what}: started {settings.trigger()} ("
            + (
                "the schedule rule's event"
                if settings.schedule
                else "the ETL job's SUCCEEDED event"
            )
            + f" delivered here; the rule itself {SIMULATED}); jobs {', '.join(ran)} ran here on "
            "the real model; "
            f"record {record['status']}: {side.get('rows_out', 0)} of {record['rows_in']} rows "
            f"scored, {side.get('unparseable', 0)} unparseable; the predictions table has "
            f"{len(partitions)} partition(s) (run={run}).",
        )
        if record["status"] != "Completed":
            raise SystemExit(f"rehearsal: the {env} batch run ended {record['status']}: "
                             f"{record.get('reason')}")  # fmt: skip
        self.publish(rehearsal, env, record)
        rehearsal.moment("batch", f"{env} run {run}: {side.get('rows_out', 0)} rows", env)
        self.kpis(rehearsal, env, what, run)

    def publish(self, rehearsal: Any, env: EnvName, record: dict[str, Any]) -> None:
        """The run's metrics as the hook's EMF lines give them to CloudWatch (offline, the
        rehearsal's CloudWatch keeps them for the dashboards)."""
        side = record.get("candidate") or {}
        dimensions = [{"Name": "Product", "Value": self.manifest.product.name},
                      {"Name": "Environment", "Value": env}]  # fmt: skip
        at = datetime.now(UTC)
        outcome = {"Completed": "BatchRunsSucceeded", "Empty": "BatchRunsEmpty"}.get(
            record["status"], "BatchRunsFailed"
        )
        data = [(outcome, 1.0), ("BatchRowsScored", float(side.get("rows_out", 0))),
                ("BatchRunMinutes", float(side.get("seconds", 0.0)) / 60)]  # fmt: skip
        rehearsal.metrics.put_metric_data(
            Namespace="mlgate/batch",
            MetricData=[{"MetricName": name, "Dimensions": dimensions, "Timestamp": at,
                         "Value": value} for name, value in data],
        )  # fmt: skip

    def scored_run(self, env: EnvName, rows: list[str], at: datetime) -> str:
        """A scheduled run's output of `rows` (payloads), scored by the live model, written as
        Batch Transform writes it (`id,<payload>,<prediction>`) at `at` (its LastModified, which
        the monitoring job's window reads); the predictions prefix the job reads."""
        from moto.s3.models import s3_backends

        from mlgate.infra.monitoring_args import batch_predictions_uri

        model = self.client("ssm").get_parameter(
            Name=Names.of(self.manifest, env).live_release_parameter("model-name")
        )["Parameter"]["Value"]
        answers = self.host.container(self.models[model]).answers(rows)
        key = f"batch/{env}/predictions/run=s{at:%Y%m%dT%H%M}/part-00000.csv.out"
        pairs = enumerate(zip(rows, answers, strict=True))
        body = "".join(f"m{i},{row},{answer}\n" for i, (row, answer) in pairs)
        self.client("s3").put_object(Bucket="artifacts", Key=key, Body=body.encode())
        target = self.manifest.environment(env)
        s3_backends[target.account]["aws"].buckets["artifacts"].keys[key].last_modified = at
        return batch_predictions_uri("artifacts", env)

    def silent_rollback(self, rehearsal: Any, say: Callable[[str, str], None]) -> bool:
        """Prod's live model parameters name another version than the release's (a stack
        rolled back behind the pipeline's back): the verifier must refuse before any run."""
        ssm = self.client("ssm")
        parameter = Names.of(self.manifest, "prod").live_release_parameter("model-package")
        live = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
        ssm.put_parameter(Name=parameter, Value=live.rsplit("/", 1)[0] + "/0", Overwrite=True,
                          Type="String")  # fmt: skip
        self.client("s3").put_object(
            Bucket="releases", Key="release.json", Body=json.dumps(rehearsal.release)
        )
        ok = rehearsal.verify("prod")
        ssm.put_parameter(Name=parameter, Value=live, Overwrite=True, Type="String")
        rehearsal.moment("rollback", "a silent rollback in prod, caught by the deploy verifier",
                         "prod")  # fmt: skip
        say("Fault 3", "a silent rollback in prod: " + (
            "NOT CAUGHT" if ok else "caught by the deploy verifier before any run; the "
            "release is marked failed."))  # fmt: skip
        return not ok

    # --- SageMaker's side: running the jobs -------------------------------------------------

    def _jobs(self, env: EnvName) -> list[tuple[str, str]]:
        """(kind, name) of the environment's jobs not run yet, oldest first."""
        sagemaker = self.client("sagemaker")
        prefix = job_prefix(Names.of(self.manifest, env))
        found: list[tuple[Any, str, str]] = []
        for kind, listing, key in (
            ("processing", sagemaker.list_processing_jobs, "ProcessingJobSummaries"),
            ("transform", sagemaker.list_transform_jobs, "TransformJobSummaries"),
        ):
            for job in listing(NameContains=prefix, MaxResults=100)[key]:
                name = job["ProcessingJobName" if kind == "processing" else "TransformJobName"]
                if name.startswith(prefix) and name not in self.done:
                    found.append((job["CreationTime"], kind, name))
        return [(kind, name) for _, kind, name in sorted(found)]

    def run(self, env: EnvName) -> list[str]:
        """Run every job the hook has started in `env`, each followed by its state-change
        event, until none is left: the jobs run, in order."""
        ran: list[str] = []
        while jobs := self._jobs(env):
            # moto ends a job when it is created; SageMaker's is in progress until it ran.
            for kind, name in jobs:
                self._job(env, kind, name).__dict__[f"{kind}_job_status"] = "InProgress"
            for kind, name in jobs:
                self._job(env, kind, name).__dict__[f"{kind}_job_status"] = "Completed"
                self.done.add(name)
                ran.append(name)
                if (run := self.run_of(env, name)).startswith("v"):
                    self.last_sample[env] = run
                if kind == "processing":
                    self._prepare(name)
                    event = self._event(env, "aws.sagemaker",
                                        "SageMaker Processing Job State Change", [],
                                        {"ProcessingJobName": name,
                                         "ProcessingJobStatus": "Completed"})  # fmt: skip
                else:
                    status = self._transform(name)
                    event = self._event(env, "aws.sagemaker",
                                        "SageMaker Transform Job State Change", [],
                                        {"TransformJobName": name,
                                         "TransformJobStatus": status})  # fmt: skip
                self.deliver(env, event)
        return ran

    def _s3(self) -> Any:
        return self.client("s3")

    def _prepare(self, name: str) -> None:
        """preprocess.py --batch-input, as the job's AppSpecification runs it, on the curated
        table; its outputs uploaded to the job's output URIs."""
        from mlgate.infra.product_code import training_contract
        from mlgate.runtime.ml.scripts import preprocess

        job = self.client("sagemaker").describe_processing_job(ProcessingJobName=name)
        arguments = list(job["AppSpecification"].get("ContainerArguments", []))
        with tempfile.TemporaryDirectory(dir=self.work) as folder:
            base = Path(folder)
            (base / "contract").mkdir()
            (base / "contract" / "contract.json").write_text(
                json.dumps(training_contract(self.manifest))
            )
            (base / "input").symlink_to(self.curated(), target_is_directory=True)
            preprocess.main(arguments, base)
            s3 = self._s3()
            for output in job["ProcessingOutputConfig"]["Outputs"]:
                where = output["S3Output"]
                local = Path(where["LocalPath"].replace(preprocess.BASE.as_posix(), str(base), 1))
                bucket, _, prefix = where["S3Uri"].removeprefix("s3://").partition("/")
                for file in sorted(p for p in local.rglob("*") if p.is_file()):
                    key = f"{prefix.rstrip('/')}/{file.relative_to(local).as_posix()}"
                    s3.put_object(Bucket=bucket, Key=key, Body=file.read_bytes())

    def _transform(self, name: str) -> str:
        """The model named by the job scores each input line but its first field; the line
        with its prediction joined last is written to the output path. A container error fails
        the job as SageMaker fails it (its FailureReason names the container's answer, and no
        output is written): its status."""
        from tools.local_endpoint import ContainerError

        try:
            self._score(name)
        except ContainerError as err:
            moto_job = self._job(self.env_of(name), "transform", name)
            moto_job.transform_job_status = "Failed"
            moto_job.failure_reason = (
                f"ClientError: See job logs for more information; the model container answered "
                f"{err.status}: {err.message}"
            )
            return "Failed"
        return "Completed"

    def _score(self, name: str) -> None:
        job = self.client("sagemaker").describe_transform_job(TransformJobName=name)
        container = self.host.container(self.models[job["ModelName"]])
        started = time.perf_counter()
        s3 = self._s3()
        source = job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        bucket, _, prefix = source.removeprefix("s3://").partition("/")
        out_bucket, _, out_prefix = (
            job["TransformOutput"]["S3OutputPath"].removeprefix("s3://").partition("/")
        )
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        limit = int(job.get("MaxPayloadInMB", 6)) * MB
        for item in listed:
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            lines = [line for line in body.splitlines() if line.strip()]
            joined: list[str] = []
            for chunk in mini_batches(lines, limit):
                payloads = [line.split(",", 1)[1] if "," in line else "" for line in chunk]
                answers = container.answers(payloads)
                joined += [f"{line},{answer}" for line, answer in zip(chunk, answers, strict=True)]
            key = f"{out_prefix.rstrip('/')}/{item['Key'].rsplit('/', 1)[-1]}.out"
            s3.put_object(Bucket=out_bucket, Key=key, Body=("\n".join(joined) + "\n").encode())
        took = timedelta(seconds=max(time.perf_counter() - started, 0.001))
        moto_job = self._job(self.env_of(name), "transform", name)
        moto_job.transform_end_time = moto_job.transform_start_time + took

    def env_of(self, job: str) -> EnvName:
        for env in ENV_NAMES:
            if job.startswith(job_prefix(Names.of(self.manifest, env))):
                return env
        raise SystemExit(f"rehearsal: {job} is no batch job of this product")

    def _job(self, env: EnvName, kind: str, name: str) -> Any:
        """moto's record of a job (its status and times are SageMaker's answer): the rehearsal
        sets them as the job runs here."""
        from moto.sagemaker.models import sagemaker_backends

        target = self.manifest.environment(env)
        backend = sagemaker_backends[target.account][target.region]
        return (backend.processing_jobs if kind == "processing" else backend.transform_jobs)[name]


def mini_batches(lines: list[str], limit: int) -> list[list[str]]:
    """Lines in the mini-batches Batch Transform's MultiRecord strategy sends the container:
    as many as fit in MaxPayloadInMB (`limit` bytes), each line whole
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html)."""
    batches: list[list[str]] = []
    size = 0
    for line in lines:
        weight = len(line.encode()) + 1
        if not batches or size + weight > limit:
            batches.append([])
            size = 0
        batches[-1].append(line)
        size += weight
    return batches


def hooks_path() -> None:
    """The hooks import as in Lambda (mlgate/runtime/hooks is the asset root)."""
    root = str(Path(__file__).resolve().parents[1] / "mlgate" / "runtime" / "hooks")
    if root not in sys.path:
        sys.path.insert(0, root)


def catalog_name(manifest: Manifest) -> str:
    """The product's Glue database, as the Data stack names it."""
    return Names.of(manifest).resource("catalog").replace("-", "_")
