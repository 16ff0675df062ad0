"""The batch_run hook under moto (SageMaker's processing and transform jobs, S3, SSM, Glue): a
schedule starts a run, its prepare job's end starts the transform, the transform's end writes
the record, the partition and the metrics, each once whatever is redelivered or fails on the
way; anything not this environment's own is answered with one log line and touches nothing.
The sample job events (tests/events/batch_*.json) take AWS's documented shapes
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html:
"Processing job state change", "Transform job state change"), with this product's job names."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker.exceptions import ValidationError

from .conftest import Faults, bucket, context_in, emf, event, fail_then_retry, moto

PRODUCT, ENV, ACCOUNT, REGION = "fraud-detection", "staging", "123456789012", "eu-west-1"
BUCKET = "artifacts"
MODEL = "mlgate-fraud-detection-staging-model-v7"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/mlgate-fraud-detection/7"
PROD_MODEL = "mlgate-fraud-detection-prod-model-v6"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SCHEDULE_RULE, WATCH_RULE = (
    "mlgate-fraud-detection-staging-batch",
    "mlgate-fraud-detection-staging-batch-watch",
)
ETL_JOB = "mlgate-fraud-detection-quality"
RUN = "s20261207T0600"
NOW = datetime(2026, 12, 7, 6, 40, tzinfo=UTC).timestamp()
PARAMS = {"model": "/mlgate/fraud-detection/staging/model", "package":
          "/mlgate/fraud-detection/staging/model-package",
          "reference": "/mlgate/fraud-detection/prod/model"}  # fmt: skip
PREDICTIONS = f"s3://{BUCKET}/batch/{ENV}/predictions/"
CONTEXT = context_in(ACCOUNT, REGION)
IMAGE = f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def backend() -> Any:
    return sagemaker_models.sagemaker_backends[ACCOUNT][REGION]


def unique_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """SageMaker refuses a second job of a name (moto replaces the first): as the API does, a
    ValidationException for the duplicate."""
    cls = sagemaker_models.SageMakerModelBackend
    for method, jobs in (("create_processing_job", "processing_jobs"),
                         ("create_transform_job", "transform_jobs")):  # fmt: skip
        original = getattr(cls, method)

        def create(self: Any, *args: Any, _original: Any = original, _jobs: str = jobs,
                   **kwargs: Any) -> Any:  # fmt: skip
            name = kwargs.get("processing_job_name") or kwargs.get("transform_job_name")
            if name in getattr(self, _jobs):
                raise ValidationError(message=f"Job name must be unique: {name} already exists")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, create)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto():
        from .conftest import create_idempotency_table

        create_idempotency_table(boto3.client("dynamodb"))
        bucket(BUCKET)
        ssm = boto3.client("ssm")
        for name, value in ((PARAMS["model"], MODEL), (PARAMS["package"], PACKAGE),
                            (PARAMS["reference"], PROD_MODEL)):  # fmt: skip
            ssm.put_parameter(Name=name, Value=value, Type="String")
        glue = boto3.client("glue")
        glue.create_database(DatabaseInput={"Name": "mlgate_fraud_detection"})
        glue.create_table(DatabaseName="mlgate_fraud_detection", TableInput={
            "Name": "predictions", "PartitionKeys": [{"Name": "run", "Type": "string"}],
            "StorageDescriptor": {
                "Columns": [{"Name": "line", "Type": "string"}], "Location": PREDICTIONS,
                "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "SerdeInfo": {"SerializationLibrary":
                              "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"}}})  # fmt: skip
        unique_names(monkeypatch)
        for key, value in {
            "PRODUCT": PRODUCT, "ENVIRONMENT": ENV, "ARTIFACT_BUCKET": BUCKET, "KEY_ARN": KEY,
            "MODEL_PARAMETER": PARAMS["model"], "MODEL_PACKAGE_PARAMETER": PARAMS["package"],
            "INPUT_URI": f"s3://{BUCKET}/curated/{PRODUCT}/",
            "PROCESSING_IMAGE": IMAGE,
            "PREPARE_CODE_URI": "s3://assets/0a1b2c.py", "CONTRACT_URI": "s3://assets/4e5f.json",
            "PAYLOAD": "encoded", "PREPARE_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/model",
            "INSTANCE_TYPE": "ml.m5.xlarge", "INSTANCE_COUNT": "1", "MAX_PAYLOAD_MB": "6",
            "MAX_RUN_MINUTES": "180", "SAMPLE_ROWS": "500",
            "GLUE_DATABASE": "mlgate_fraud_detection", "PREDICTIONS_TABLE": "predictions",
            "WATCH_RULE": WATCH_RULE, "SCHEDULE_RULE": SCHEDULE_RULE,
            "VOLUME_ENCRYPTION": "product-key",
        }.items():  # fmt: skip
            monkeypatch.setenv(key, value)
        for key in ("ETL_JOB", "REQUEST_COLUMNS", "REFERENCE_MODEL_PARAMETER"):
            monkeypatch.delenv(key, raising=False)
        from batch_run import handler

        monkeypatch.setattr(handler.metrics, "namespace", "mlgate/batch")
        handler.settings.cache_clear()
        yield handler
        handler.settings.cache_clear()


# --- events ---------------------------------------------------------------------------------


def scheduled(rule: str = SCHEDULE_RULE, when: str = "2026-12-07T06:00:12Z",
              id_: str = "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa") -> dict[str, Any]:  # fmt: skip
    """AWS's sample scheduled event (tests/events), from this rule, account and region."""
    found = event("scheduled_event.json")
    found.update(account=ACCOUNT, region=REGION, time=when, id=id_,
                 resources=[f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"])  # fmt: skip
    return found


def processing(run: str = RUN, status: str = "Completed", id_: str = "p-1") -> dict[str, Any]:
    found = event("batch_processing_job_state_change.json")
    name = f"{PRODUCT}-{ENV}-b-{run}-prep"
    found["id"] = id_
    found["detail"].update(ProcessingJobName=name, ProcessingJobStatus=status)
    found["resources"] = [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name.lower()}"]
    return found


def transform(run: str = RUN, step: str = "score", status: str = "Completed",
              id_: str = "t-1") -> dict[str, Any]:  # fmt: skip
    found = event("batch_transform_job_state_change.json")
    name = f"{PRODUCT}-{ENV}-b-{run}-{step}"
    found["id"] = id_
    found["detail"].update(TransformJobName=name, TransformJobStatus=status)
    found["resources"] = [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/{name.lower()}"]
    return found


def sample_start(run: str = "v0123456789ab", rows: int = 3) -> dict[str, Any]:
    return {"action": "start", "kind": "sample", "run": run, "rows": rows,
            "model_package": PACKAGE}  # fmt: skip


def call(handler: Any, found: dict[str, Any], now: float = NOW) -> dict[str, Any]:
    return dict(handler.handler(copy.deepcopy(found), CONTEXT, now=now))


# --- what the jobs would write, and what the hook wrote ------------------------------------


def put(key: str, body: str) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def prepared(run: str = RUN, rows: int = 3) -> None:
    """What the prepare job writes: the input and rows.json."""
    put(f"batch/{ENV}/runs/{run}/input/part-00000.csv",
        "".join(f"id-{i},1.5,0.0\n" for i in range(rows)))  # fmt: skip
    put(f"batch/{ENV}/runs/{run}/meta/rows.json", json.dumps({"rows": rows}))


def scored_lines(prefix: str, predictions: list[str]) -> None:
    """What a transform job writes: each input line with its prediction joined."""
    put(f"{prefix}part-00000.csv.out",
        "".join(f"id-{i},1.5,0.0,{p}\n" for i, p in enumerate(predictions)))  # fmt: skip


def record(run: str = RUN) -> dict[str, Any] | None:
    try:
        body = boto3.client("s3").get_object(Bucket=BUCKET,
                                             Key=f"batch/{ENV}/runs/{run}/record.json")  # fmt: skip
    except boto3.client("s3").exceptions.NoSuchKey:
        return None
    found: dict[str, Any] = json.loads(body["Body"].read())
    return found


def partitions() -> list[dict[str, Any]]:
    return list(boto3.client("glue").get_partitions(
        DatabaseName="mlgate_fraud_detection", TableName="predictions")["Partitions"])  # fmt: skip


def processing_jobs() -> list[str]:
    return sorted(backend().processing_jobs)


def transform_jobs() -> list[str]:
    return sorted(backend().transform_jobs)


def counted(out: str) -> dict[str, float]:
    """Metric name -> sum, of the mlgate/batch metrics filed by Product and Environment."""
    sums: dict[str, float] = {}
    for metric in emf(out):
        if metric["namespace"] == "mlgate/batch" and {
            "Product": PRODUCT, "Environment": ENV} in metric["dimensions"]:  # fmt: skip
            sums[metric["name"]] = sums.get(metric["name"], 0) + metric["value"]
    return sums


def whole_run(handler: Any, predictions: list[str] | None = None) -> None:
    """Schedule -> prepare job done -> transform job done."""
    assert call(handler, scheduled())["status"] == "started"
    prepared()
    assert call(handler, processing())["status"] == "scoring"
    scored_lines(f"batch/{ENV}/predictions/run={RUN}/", predictions or ["0.1", "0.9", "0.4"])
    call(handler, transform())


# --- the run --------------------------------------------------------------------------------


def test_a_scheduled_run_prepares_scores_and_adds_its_partition(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert call(aws, scheduled()) == {"status": "started", "run": RUN}
    prep = backend().processing_jobs[f"{PRODUCT}-{ENV}-b-{RUN}-prep"]
    assert prep.app_specification == {
        "ImageUri": IMAGE,
        "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/0a1b2c.py"],
        "ContainerArguments": ["--batch-input", "--payload", "encoded"],
    }  # fmt: skip
    inputs = {i["InputName"]: (i["S3Input"]["S3Uri"], i["S3Input"]["LocalPath"])
              for i in prep.processing_inputs}  # fmt: skip
    assert inputs == {
        "code": ("s3://assets/0a1b2c.py", "/opt/ml/processing/input/code"),
        "contract": ("s3://assets/4e5f.json", "/opt/ml/processing/contract"),
        "data": (f"s3://{BUCKET}/curated/{PRODUCT}/", "/opt/ml/processing/input"),
    }
    outputs = {o["OutputName"]: (o["S3Output"]["LocalPath"], o["S3Output"]["S3Uri"])
               for o in prep.processing_output_config["Outputs"]}  # fmt: skip
    assert outputs == {
        "input": ("/opt/ml/processing/output/input",
                  f"s3://{BUCKET}/batch/{ENV}/runs/{RUN}/input/"),
        "meta": ("/opt/ml/processing/output/meta", f"s3://{BUCKET}/batch/{ENV}/runs/{RUN}/meta/"),
    }  # fmt: skip
    assert prep.processing_output_config["KmsKeyId"] == KEY
    assert prep.network_config == {"EnableNetworkIsolation": True}
    assert prep.stopping_condition == {"MaxRuntimeInSeconds": 180 * 60}
    assert {t["Key"]: t["Value"] for t in prep.tags}["mlgate:batch-run"] == RUN
    assert transform_jobs() == []

    prepared()
    assert call(aws, processing()) == {"status": "scoring", "run": RUN}
    (name,) = transform_jobs()
    job = backend().transform_jobs[name]
    assert (name, job.model_name, job.batch_strategy, job.max_payload_in_mb) == (
        f"{PRODUCT}-{ENV}-b-{RUN}-score",
        MODEL,
        "MultiRecord",
        6,
    )
    assert job.data_processing == {"InputFilter": "$[1:]", "JoinSource": "Input",
                                   "OutputFilter": "$"}  # fmt: skip
    assert job.transform_output["S3OutputPath"] == f"{PREDICTIONS}run={RUN}/"
    assert job.transform_input["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{BUCKET}/batch/{ENV}/runs/{RUN}/input/"
    )
    assert record() is None
    assert partitions() == []

    scored_lines(f"batch/{ENV}/predictions/run={RUN}/", ["0.1", "0.9", "0.4"])
    assert call(aws, transform()) == {"status": "Completed", "run": RUN}
    found = record()
    assert found is not None
    assert (found["status"], found["kind"], found["model"], found["model_package"]) == (
        "Completed",
        "scheduled",
        MODEL,
        PACKAGE,
    )
    assert (found["rows_in"], found["reference"], found["reason"]) == (3, None, None)
    assert {k: found["candidate"][k] for k in ("job", "status", "rows_out", "unparseable")} == {
        "job": name,
        "status": "Completed",
        "rows_out": 3,
        "unparseable": 0,
    }
    assert found["started_at"] == "2026-12-07T06:40:00Z"
    (partition,) = partitions()
    assert partition["Values"] == [RUN]
    assert partition["StorageDescriptor"]["Location"] == f"{PREDICTIONS}run={RUN}/"
    assert partition["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith(
        "LazySimpleSerDe"
    )
    sums = counted(capsys.readouterr().out)
    assert sums == {"BatchRunsSucceeded": 1, "BatchRowsScored": 3, "BatchRunMinutes": 0.0}


@pytest.mark.parametrize(
    ("instance_type", "encryption", "volume_key"),
    [("ml.m5.xlarge", "product-key", KEY), ("ml.g5.xlarge", "instance-storage", None)],
)
def test_the_jobs_volumes_take_the_key_unless_they_are_instance_storage(
    aws: Any, monkeypatch: pytest.MonkeyPatch, instance_type: str, encryption: str,
    volume_key: str | None,
) -> None:  # fmt: skip
    """SageMaker refuses a VolumeKmsKeyId for an instance type with instance storage (its
    hardware encrypts it): the stack says which (VOLUME_ENCRYPTION), the requests follow."""
    monkeypatch.setenv("INSTANCE_TYPE", instance_type)
    monkeypatch.setenv("VOLUME_ENCRYPTION", encryption)
    aws.settings.cache_clear()
    sent: dict[str, Any] = {}

    def capture(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent[model.name] = params

    events = aws.sagemaker.meta.events
    for operation in ("CreateProcessingJob", "CreateTransformJob"):
        events.register(f"provide-client-params.sagemaker.{operation}", capture)
    call(aws, scheduled())
    prepared()
    call(aws, processing())
    cluster = sent["CreateProcessingJob"]["ProcessingResources"]["ClusterConfig"]
    resources = sent["CreateTransformJob"]["TransformResources"]
    assert cluster.get("VolumeKmsKeyId") == volume_key
    assert resources.get("VolumeKmsKeyId") == volume_key
    assert sent["CreateTransformJob"]["TransformOutput"]["KmsKeyId"] == KEY  # S3 output: always


def test_a_stack_setting_the_hook_does_not_know_is_refused(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOLUME_ENCRYPTION", "maybe")
    aws.settings.cache_clear()
    with pytest.raises(ValueError, match="VOLUME_ENCRYPTION is 'maybe': one of product-key"):
        aws.settings()


def test_a_successful_etl_run_starts_a_run_named_after_it(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCHEDULE_RULE")
    monkeypatch.setenv("ETL_JOB", ETL_JOB)
    aws.settings.cache_clear()
    glue_event = event("glue_job_succeeded.json")
    glue_event.update(account=ACCOUNT, region=REGION)
    glue_event["detail"]["jobName"] = ETL_JOB
    answer = call(aws, glue_event)
    from shared.batch import etl_run

    run = etl_run(glue_event["detail"]["jobRunId"])
    assert answer == {"status": "started", "run": run}
    assert processing_jobs() == [f"{PRODUCT}-{ENV}-b-{run}-prep"]
    # The schedule is not this environment's trigger any more.
    refused = call(aws, scheduled())
    assert (refused["status"], refused["field"]) == ("refused", "resources")


def test_redelivered_and_repeated_events_do_the_work_once(
    aws: Any, faults: Faults, capsys: pytest.CaptureFixture[str]
) -> None:
    """EventBridge redelivers (same id); SageMaker sends several events per change (new ids):
    one prepare job, one transform job, one record, one partition, metrics once."""
    for id_ in ("a", "a", "b"):
        call(aws, scheduled(id_=id_))
    prepared()
    for id_ in ("p-1", "p-1", "p-2"):
        call(aws, processing(id_=id_))
    scored_lines(f"batch/{ENV}/predictions/run={RUN}/", ["0.1", "0.9", "0.4"])
    for id_ in ("t-1", "t-1", "t-2"):
        call(aws, transform(id_=id_))
    assert processing_jobs() == [f"{PRODUCT}-{ENV}-b-{RUN}-prep"]
    assert transform_jobs() == [f"{PRODUCT}-{ENV}-b-{RUN}-score"]
    creates = [c for c in faults.seen if c.startswith("sagemaker.create_")]
    # A redelivery (same id) answers from its idempotency record; a new id tries, and finds
    # the job an earlier event created.
    assert (
        creates == ["sagemaker.create_processing_job"] * 2 + ["sagemaker.create_transform_job"] * 2
    )
    assert len(partitions()) == 1
    assert record() is not None
    assert counted(capsys.readouterr().out)["BatchRunsSucceeded"] == 1


def test_two_summaries_at_once_write_the_record_and_count_once(
    aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two deliveries summarizing the run at the same time (two Lambda instances: each reads
    no record yet): the first write of record.json wins, the other neither overwrites it nor
    counts."""
    call(aws, scheduled())
    prepared()
    call(aws, processing())
    scored_lines(f"batch/{ENV}/predictions/run={RUN}/", ["0.1", "0.9", "0.4"])
    monkeypatch.setattr(aws, "recorded", lambda run: False)
    assert call(aws, transform(id_="t-1"))["status"] == "Completed"
    assert call(aws, transform(id_="t-2"), now=NOW + 60)["status"] == "recorded"
    found = record()
    assert found is not None
    assert found["finished_at"] == "2026-12-07T06:40:00Z"
    assert counted(capsys.readouterr().out)["BatchRunsSucceeded"] == 1


def phases(aws: Any) -> list[Any]:
    return [lambda: call(aws, scheduled()), lambda: call(aws, processing()),
            lambda: call(aws, transform())]  # fmt: skip


@pytest.mark.parametrize("phase", [0, 1, 2])
@pytest.mark.parametrize("index", range(14))
def test_a_transient_fault_then_the_retry_finishes_exactly_once(
    aws: Any, faults: Faults, capsys: pytest.CaptureFixture[str], phase: int, index: int
) -> None:
    """Each AWS call of each step fails once in turn (a throttle); Lambda's retry of that step
    finishes it: one job per step, one record, one partition, each metric once."""
    steps = phases(aws)
    prepared()
    scored_lines(f"batch/{ENV}/predictions/run={RUN}/", ["0.1", "0.9", "0.4"])
    for step in steps[:phase]:
        step()
    faults.seen.clear()
    answer = fail_then_retry(faults, index, steps[phase])
    if not faults.failed:
        pytest.skip(f"step {phase} makes fewer than {index + 1} AWS calls")
    # "recorded": the try that failed had written the record (and counted) before the fault.
    assert answer["status"] in ("started", "scoring", "Completed", "recorded"), faults.failed
    for step in steps[phase + 1 :]:
        step()
    assert processing_jobs() == [f"{PRODUCT}-{ENV}-b-{RUN}-prep"], faults.failed
    assert transform_jobs() == [f"{PRODUCT}-{ENV}-b-{RUN}-score"], faults.failed
    found = record()
    assert found is not None, faults.failed
    assert found["status"] == "Completed", faults.failed
    assert len(partitions()) == 1
    sums = counted(capsys.readouterr().out)
    assert (sums.get("BatchRunsSucceeded"), sums.get("BatchRowsScored")) == (1, 3), faults.failed


def test_nothing_released_starts_nothing_and_says_so(
    aws: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    boto3.client("ssm").put_parameter(Name=PARAMS["model"], Value="none", Type="String",
                                      Overwrite=True)  # fmt: skip
    answer = call(aws, scheduled())
    assert answer["status"] == "skipped"
    assert processing_jobs() == []
    assert record() is None
    (line,) = [r for r in caplog.records if r.name == "service_undefined"]
    assert "nothing released yet" in str(getattr(line, "reason", ""))
    assert counted(capsys.readouterr().out) == {}


def fail_job(jobs: str, name: str, status: str, reason: str) -> None:
    job = getattr(backend(), jobs)[name]
    if jobs == "processing_jobs":
        job.processing_job_status = status
    else:
        job.transform_job_status = status
    job.failure_reason = reason


def test_a_failed_prepare_job_ends_the_run_failed_with_its_reason(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    call(aws, scheduled())
    fail_job("processing_jobs", f"{PRODUCT}-{ENV}-b-{RUN}-prep", "Failed",
             "AlgorithmError: curated data lacks ['amount']")  # fmt: skip
    assert call(aws, processing(status="Failed"))["status"] == "Failed"
    found = record()
    assert found is not None
    assert found["status"] == "Failed"
    assert found["reason"] == (f"prepare job {PRODUCT}-{ENV}-b-{RUN}-prep Failed: "
                               "AlgorithmError: curated data lacks ['amount']")  # fmt: skip
    assert transform_jobs() == []
    assert partitions() == []
    assert counted(capsys.readouterr().out)["BatchRunsFailed"] == 1


def test_a_failed_transform_job_ends_the_run_failed_with_its_reason(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    call(aws, scheduled())
    prepared()
    call(aws, processing())
    fail_job("transform_jobs", f"{PRODUCT}-{ENV}-b-{RUN}-score", "Failed",
             "ClientError: See job logs for more information")  # fmt: skip
    assert call(aws, transform(status="Failed"))["status"] == "Failed"
    found = record()
    assert found is not None
    assert found["reason"] == (f"transform job {PRODUCT}-{ENV}-b-{RUN}-score Failed: "
                               "ClientError: See job logs for more information")  # fmt: skip
    assert found["candidate"]["failure_reason"] == "ClientError: See job logs for more information"
    assert partitions() == []
    sums = counted(capsys.readouterr().out)
    assert sums["BatchRunsFailed"] == 1
    assert "BatchRunsSucceeded" not in sums


def test_an_empty_input_ends_the_run_empty_without_a_partition(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    call(aws, scheduled())
    prepared(rows=0)
    assert call(aws, processing())["status"] == "Empty"
    assert transform_jobs() == []
    assert partitions() == []
    found = record()
    assert found is not None
    assert (found["status"], found["rows_in"]) == ("Empty", 0)
    assert counted(capsys.readouterr().out)["BatchRunsEmpty"] == 1


def test_an_empty_output_ends_the_run_empty_without_a_partition(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    call(aws, scheduled())
    prepared()
    call(aws, processing())
    put(f"batch/{ENV}/predictions/run={RUN}/part-00000.csv.out", "")
    assert call(aws, transform())["status"] == "Empty"
    assert partitions() == []
    assert counted(capsys.readouterr().out)["BatchRunsEmpty"] == 1


def test_a_transform_still_running_is_waited_for(aws: Any) -> None:
    call(aws, scheduled())
    prepared()
    call(aws, processing())
    backend().transform_jobs[f"{PRODUCT}-{ENV}-b-{RUN}-score"].transform_job_status = "InProgress"
    assert call(aws, transform(status="InProgress"))["status"] == "waiting"
    assert record() is None


# --- sample runs ----------------------------------------------------------------------------


def test_a_sample_run_scores_the_candidate_and_prods_model_and_summarizes_both(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERENCE_MODEL_PARAMETER", PARAMS["reference"])
    aws.settings.cache_clear()
    run = "v0123456789ab"
    assert call(aws, sample_start(run))["status"] == "started"
    prep = backend().processing_jobs[f"{PRODUCT}-{ENV}-b-{run}-prep"]
    assert prep.app_specification["ContainerArguments"][-2:] == ["--limit", "3"]
    prepared(run)
    call(aws, processing(run))
    jobs = backend().transform_jobs
    score, ref = jobs[f"{PRODUCT}-{ENV}-b-{run}-score"], jobs[f"{PRODUCT}-{ENV}-b-{run}-ref"]
    assert (score.model_name, ref.model_name) == (MODEL, PROD_MODEL)
    runs = f"s3://{BUCKET}/batch/{ENV}/runs/{run}"
    assert score.transform_output["S3OutputPath"] == f"{runs}/candidate/"
    assert ref.transform_output["S3OutputPath"] == f"{runs}/reference/"
    scored_lines(f"batch/{ENV}/runs/{run}/candidate/", ["0.2", "nan", "0.4"])
    ref.transform_job_status = "InProgress"
    assert call(aws, transform(run))["status"] == "waiting"
    ref.transform_job_status = "Completed"
    scored_lines(f"batch/{ENV}/runs/{run}/reference/", ["0.3", "0.5"])
    assert call(aws, transform(run, "ref", id_="t-2"))["status"] == "Completed"
    found = record(run)
    assert found is not None
    assert (found["kind"], found["reference_model"], found["rows_in"]) == ("sample", PROD_MODEL, 3)
    assert (found["candidate"]["rows_out"], found["candidate"]["unparseable"]) == (3, 1)
    assert (found["reference"]["rows_out"], found["reference"]["unparseable"]) == (2, 0)
    assert partitions() == [], "a sample's outputs are not the table's"


def test_a_sample_run_without_a_reference_scores_the_candidate_alone(aws: Any) -> None:
    run = "v0123456789ab"
    call(aws, sample_start(run))
    prepared(run)
    call(aws, processing(run))
    assert transform_jobs() == [f"{PRODUCT}-{ENV}-b-{run}-score"]


def test_prods_model_none_means_no_reference(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERENCE_MODEL_PARAMETER", PARAMS["reference"])
    boto3.client("ssm").put_parameter(Name=PARAMS["reference"], Value="none", Type="String",
                                      Overwrite=True)  # fmt: skip
    aws.settings.cache_clear()
    run = "v0123456789ab"
    call(aws, sample_start(run))
    prepared(run)
    call(aws, processing(run))
    assert transform_jobs() == [f"{PRODUCT}-{ENV}-b-{run}-score"]


def test_a_sample_of_another_model_package_ends_failed_at_once(aws: Any) -> None:
    run = "v0123456789ab"
    start = sample_start(run) | {"model_package": PACKAGE.replace("/7", "/8")}
    assert call(aws, start)["status"] == "Failed"
    assert processing_jobs() == []
    found = record(run)
    assert found is not None
    assert "not the requested" in found["reason"]


# --- refused --------------------------------------------------------------------------------


def other_prefix(found: dict[str, Any], name: str) -> dict[str, Any]:
    found["detail"]["ProcessingJobName"] = name
    found["resources"] = [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name.lower()}"]
    return found


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: scheduled() | {"source": "aws.sagemaker"}, "source"),
        (lambda: scheduled() | {"account": "999999999999"}, "account"),
        (lambda: scheduled() | {"region": "us-east-1"}, "region"),
        (lambda: scheduled(rule="someone-elses-rule"), "resources"),
        (lambda: {k: v for k, v in scheduled().items() if k != "detail"}, "detail"),
        (lambda: scheduled() | {"detail-type": "Glue Job State Change"}, "detail.jobName"),
        (lambda: other_prefix(processing(), f"other-product-{ENV}-b-{RUN}-prep"),
         "detail.ProcessingJobName"),
        (lambda: other_prefix(processing(), f"{PRODUCT}-prod-b-{RUN}-prep"),
         "detail.ProcessingJobName"),
        (lambda: other_prefix(processing(), f"{PRODUCT}-{ENV}-b-{RUN}-score"),
         "detail.ProcessingJobName"),
        (lambda: processing() | {"resources": [
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/another"]}, "resources[0]"),
        (lambda: transform() | {"source": "aws.events"}, "source"),
        (lambda: sample_start(run="s20261207T0600"), "run"),
        (lambda: sample_start() | {"rows": "3"}, "rows"),
        (lambda: sample_start(rows=501), "rows"),
        (lambda: sample_start() | {"kind": "scheduled"}, "kind"),
    ],
)  # fmt: skip
def test_a_foreign_or_malformed_event_is_answered_with_one_line_and_touches_nothing(
    aws: Any, faults: Faults, caplog: pytest.LogCaptureFixture, make: Any, field: str
) -> None:
    caplog.set_level(logging.INFO)
    answer = call(aws, make())
    assert (answer["status"], answer["field"]) == ("refused", field), answer
    assert faults.seen == [], "refused before any AWS call"
    (line,) = [r for r in caplog.records if r.name == "service_undefined"]
    assert (line.getMessage(), getattr(line, "field", None)) == ("event refused", field)


def test_a_glue_event_of_another_job_or_that_failed_starts_nothing(
    aws: Any, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_JOB", ETL_JOB)
    aws.settings.cache_clear()
    glue_event = event("glue_job_succeeded.json")
    glue_event.update(account=ACCOUNT, region=REGION)
    other = call(aws, glue_event)
    assert (other["status"], other["field"]) == ("refused", "detail.jobName")
    glue_event["detail"].update(jobName=ETL_JOB, state="FAILED")
    failed = call(aws, glue_event)
    assert (failed["status"], failed["field"]) == ("refused", "detail.state")
    assert faults.seen == []
    assert processing_jobs() == []


# --- the watch ------------------------------------------------------------------------------


def test_a_run_past_its_deadline_counts_late_once(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    call(aws, scheduled())
    backend().processing_jobs[f"{PRODUCT}-{ENV}-b-{RUN}-prep"].processing_job_status = "InProgress"
    assert call(aws, scheduled(WATCH_RULE, id_="w-1"), now=NOW + 179 * 60)["late"] == ""
    later = NOW + 181 * 60
    assert call(aws, scheduled(WATCH_RULE, id_="w-2"), now=later)["late"] == RUN
    assert call(aws, scheduled(WATCH_RULE, id_="w-3"), now=later + 900)["late"] == RUN
    assert counted(capsys.readouterr().out) == {"BatchRunsLate": 1}
    assert backend().processing_jobs[f"{PRODUCT}-{ENV}-b-{RUN}-prep"].processing_job_status == (
        "InProgress"
    ), "nothing is stopped"


# --- counting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "rows", "unparseable"),
    [
        (["0.1", "0.9", "1e-3"], 3, 0),
        (["0.1", "", "abc", "nan", "inf", "0.2", "0.3", "0.4", "0.5", "0.6"], 10, 4),
        (["fraud", "legit", ""], 3, 1),
        ([], 0, 0),
    ],
)
def test_unparseable_predictions(values: list[str], rows: int, unparseable: int) -> None:
    from shared.batch_run import count

    assert count(iter(values)) == type(count(iter([])))(rows=rows, unparseable=unparseable)


def test_outputs_are_counted_streaming(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body is never read whole: StreamingBody.read is only called for chunks."""
    from shared.batch_run import count, predictions

    put("out/part-00000.csv.out", "".join(f'id-{i},"a, b",{i / 10}\n' for i in range(5000)))
    put("out/part-00001.csv.out", 'id-x,"q",oops\n')
    original = StreamingBody.read

    def read(self: Any, amt: int | None = None) -> bytes:
        assert amt is not None, "a whole body read"
        return original(self, amt)

    monkeypatch.setattr(StreamingBody, "read", read)
    found = count(predictions(boto3.client("s3"), f"s3://{BUCKET}/out/"))
    assert (found.rows, found.unparseable) == (5001, 1)


def test_a_deadline_in_the_past_is_not_late_for_a_finished_run(aws: Any) -> None:
    """Only running jobs are watched: a finished run is never late."""
    whole_run(aws)
    answer = call(
        aws, scheduled(WATCH_RULE, id_="w-9"), now=NOW + timedelta(days=1).total_seconds()
    )
    assert (answer["running"], answer["late"]) == (0, "")
