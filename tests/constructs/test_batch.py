"""BatchScoring alone in a bare stack: a batch environment's model, role, hook, rules, table
and alarms, held to what the batch_run hook and AWS expect of them."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3_assets as assets

from mlgate.infra.batch_settings import BatchRun, job_prefix
from mlgate.infra.constructs.batch import BatchProps, BatchScoring
from mlgate.infra.naming import Names

from .conftest import Kit, actions_of, granted, kit, policy_statements, resources, text

HOOKS = Path(__file__).resolve().parents[2] / "mlgate" / "runtime" / "hooks"
SCRIPT = HOOKS.parents[1] / "runtime" / "ml" / "scripts" / "preprocess.py"


COLUMNS = (
    ("customer_id", "string"), ("tenure", "int"), ("plan", "string"), ("prediction", "double"),
)  # fmt: skip


def batch_props(k: Kit, **changes: object) -> BatchProps:
    run = BatchRun(
        instance_type="ml.m5.xlarge",
        instance_count=2,
        schedule="cron(0 6 ? * MON *)",
        etl_job=None,
        input_uri="s3://curated-bucket/curated/",
        input_bucket="curated-bucket",
        sample_rows=300,
        max_run_minutes=90,
        max_payload_mb=6,
        payload="raw",
        request_columns=("tenure", "plan"),
        database="churn_catalog",
        table_columns=COLUMNS,
        reference_model_parameter="/mlgate/churn/prod/live-model-name",
    )
    return BatchProps(
        names=k.names,
        run=replace(run, **changes),  # type: ignore[arg-type]
        environment={"SAGEMAKER_PROGRAM": "train.py"},
        released=k.released(),
    )


def build(k: Kit, props: BatchProps) -> BatchScoring:
    has_model = cdk.CfnCondition(k.stack, "HasModel", expression=cdk.Fn.condition_equals("a", "a"))
    return BatchScoring(
        k.stack,
        "Batch",
        props=props,
        model_data="s3://home/released/churn/1/model.tar.gz",
        has_model=has_model,
        key=k.key,
        artifacts_bucket="env-artifacts",
        home_artifacts_arn="arn:aws:s3:::home-artifacts",
        image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving:1",
        prepare_code=assets.Asset(k.stack, "Prepare", path=str(SCRIPT)),
        contract=assets.Asset(k.stack, "Contract", path=str(SCRIPT)),
        alarms=k.alarms,
        idempotency=k.idempotency(),
    )


def hook_environment(k: Kit) -> dict[str, object]:
    functions = resources(k.template(), "AWS::Lambda::Function")
    (function,) = [f for f in functions.values() if "batch_run" in text(f["Properties"])]
    found: dict[str, object] = function["Properties"]["Environment"]["Variables"]
    assert function["Properties"]["FunctionName"] == "mlgate-churn-staging-batch-run"
    return found


def test_the_model_exists_from_the_first_release_and_its_name_is_a_parameter(home: Kit) -> None:
    build(home, batch_props(home))
    template = home.template()
    (model,) = resources(template, "AWS::SageMaker::Model").values()
    assert model["Condition"] == "HasModel"
    assert model["Properties"]["EnableNetworkIsolation"] is True
    (parameter,) = [
        p
        for p in resources(template, "AWS::SSM::Parameter").values()
        if p["Properties"]["Name"] == "/mlgate/churn/staging/live-model-name"
    ]
    value = parameter["Properties"]["Value"]
    assert value["Fn::If"][0] == "HasModel"
    assert value["Fn::If"][2] == "none"  # what the hook reads as nothing released


def test_the_hook_knows_what_the_spec_says_it_reads(home: Kit) -> None:
    build(home, batch_props(home))
    env = hook_environment(home)
    assert env["PAYLOAD"] == "raw"
    assert env["REQUEST_COLUMNS"] == "tenure,plan"
    assert env["REFERENCE_MODEL_PARAMETER"] == "/mlgate/churn/prod/live-model-name"
    assert env["MODEL_PARAMETER"] == "/mlgate/churn/staging/live-model-name"
    assert env["PREDICTIONS_TABLE"] == "predictions_staging"
    assert (env["MAX_RUN_MINUTES"], env["SAMPLE_ROWS"], env["INSTANCE_COUNT"]) == ("90", "300", "2")
    assert "ETL_JOB" not in env
    assert env["SCHEDULE_RULE"] == "mlgate-churn-staging-batch-schedule"


def test_runs_start_on_the_schedule_or_after_the_etl_job(home: Kit) -> None:
    build(home, batch_props(home))
    rules = resources(home.template(), "AWS::Events::Rule")
    expressions = [r["Properties"].get("ScheduleExpression") for r in rules.values()]
    assert "cron(0 6 ? * MON *)" in expressions
    assert "rate(15 minutes)" in expressions  # the watch for late runs
    other = kit()
    build(other, batch_props(other, schedule=None, etl_job="mlgate-churn-etl"))
    patterns = [
        r["Properties"]["EventPattern"]
        for r in resources(other.template(), "AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
    ]
    glue = [p for p in patterns if p["source"] == ["aws.glue"]]
    assert glue == [
        {
            "source": ["aws.glue"],
            "detail-type": ["Glue Job State Change"],
            "detail": {"jobName": ["mlgate-churn-etl"], "state": ["SUCCEEDED"]},
        }
    ]
    with pytest.raises(ValueError, match="schedule or after its ETL job"):
        build(kit(), batch_props(home, schedule="rate(1 day)", etl_job="mlgate-churn-etl"))


def test_the_job_rules_and_grants_name_the_hooks_own_job_prefix(home: Kit) -> None:
    """The infra's prefix is the runtime's (a long product name is cut the same way)."""
    sys.path.insert(0, str(HOOKS))
    try:
        from shared.batch import job_prefix as runtime_prefix
    finally:
        sys.path.remove(str(HOOKS))
    for product in ("churn", "a-very-long-product-name-that-goes-on-and-on-for-ever"):
        for env in ("staging", "prod"):
            names = Names(product, env)
            assert job_prefix(names) == runtime_prefix(product, env)
    build(home, batch_props(home))
    template = home.template()
    patterns = [
        r["Properties"]["EventPattern"]
        for r in resources(template, "AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
    ]
    details = [p["detail"] for p in patterns]
    ended = ["Completed", "Failed", "Stopped"]
    assert {
        "ProcessingJobName": [{"prefix": "churn-staging-b-"}],
        "ProcessingJobStatus": ended,
    } in details
    assert {
        "TransformJobName": [{"prefix": "churn-staging-b-"}],
        "TransformJobStatus": ended,
    } in details
    started = text(granted(template, "sagemaker:CreateProcessingJob"))
    assert "processing-job/churn-staging-b-*" in started
    # The one role it passes is the model role, to SageMaker only.
    (passed,) = granted(template, "iam:PassRole")
    assert "ModelRole" in text(passed)


def test_a_failed_late_or_empty_run_pages_on_call(home: Kit) -> None:
    scoring = build(home, batch_props(home))
    alarms = resources(home.template(), "AWS::CloudWatch::Alarm")
    by_metric = {a["Properties"].get("MetricName"): a["Properties"] for a in alarms.values()}
    for metric in ("BatchRunsFailed", "BatchRunsLate", "BatchRunsEmpty"):
        alarm = by_metric[metric]
        assert alarm["Namespace"] == "mlgate/batch"
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "Product": "churn",
            "Environment": "staging",
        }
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"]  # routed to on-call
    assert scoring.alarm_names == [
        "mlgate/churn/staging/system/batch-run-failed/critical",
        "mlgate/churn/staging/system/batch-run-late/critical",
        "mlgate/churn/staging/system/batch-run-empty/critical",
    ]


def test_the_predictions_table_reads_the_scheduled_runs_output(home: Kit) -> None:
    build(home, batch_props(home))
    (table,) = resources(home.template(), "AWS::Glue::Table").values()
    table_input = table["Properties"]["TableInput"]
    assert table_input["Name"] == "predictions_staging"
    assert table_input["PartitionKeys"] == [
        {"Name": "run", "Type": "string", "Comment": "The run id (shared/batch.py)"}
    ]
    storage = table_input["StorageDescriptor"]
    assert storage["Location"] == "s3://env-artifacts/batch/staging/predictions/"
    assert tuple((c["Name"], c["Type"]) for c in storage["Columns"]) == COLUMNS
    # Only scheduled runs write there; each run's own files live beside it, under runs/.
    writes = text(granted(home.template(), "s3:PutObject"))
    assert "env-artifacts/batch/staging/*" in writes
    assert "curated-bucket" not in writes  # the scored data is read, never written


def test_prods_model_scores_stagings_sample_runs_as_their_reference() -> None:
    """Staging's quality gate compares the new version with prod's on the same rows: the
    reference transform runs as prod's model role, which reads staging's prepared input and
    writes its reference output there, nothing else of staging's."""
    prod = kit("prod")
    build(prod, batch_props(prod, reference_model_parameter=None, reference_for="staging"))
    reads = text(granted(prod.template(), "s3:GetObject"))
    writes = text(granted(prod.template(), "s3:PutObject"))
    assert "batch/staging/runs/*/input/*" in reads
    assert "batch/staging/runs/*/reference/*" in writes
    assert "batch/staging/runs/*/candidate" not in writes
    alone = kit("prod")
    build(alone, batch_props(alone, reference_model_parameter=None))
    assert "batch/staging" not in text(granted(alone.template(), "s3:GetObject"))


def test_the_prepare_job_reads_its_two_scripts_not_every_asset(home: Kit) -> None:
    """The prepare script and the training contract come from CDK's asset bucket: the model
    role reads those two objects and lists their keys only. CDK's Asset.grant_read (the broken
    form) lets it read every asset of the account (s3:GetObject* on `<bucket>/*`)."""
    build(home, batch_props(home))
    statements = [s for s in policy_statements(home.template()) if "cdk-" in text(s["Resource"])]
    assert {a for s in statements for a in actions_of(s)} == {"s3:GetObject", "s3:ListBucket"}
    (reads,) = [s["Resource"] for s in statements if actions_of(s) == ["s3:GetObject"]]
    objects = {r.split("/", 1)[1] for r in ([reads] if isinstance(reads, str) else reads)}
    # The script and the contract (here one file, so one asset), each named: no wildcard.
    assert objects
    assert not [o for o in objects if "*" in o]
    (listing,) = [s for s in statements if actions_of(s) == ["s3:ListBucket"]]
    assert set(listing["Condition"]["StringLike"]["s3:prefix"]) == objects
