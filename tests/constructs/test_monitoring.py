"""What watches an environment (the Evidently monitor, Model Monitor's schedules), its dashboard
and alarms (ProductMonitoring), and the product's buckets (SecureBucket), each in a bare stack
from hand-written props."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3

from mlgate.infra.constructs.evidently import EvidentlyMonitor, EvidentlyProps
from mlgate.infra.constructs.model_monitor import (
    GroundTruth,
    ModelMonitorProps,
    ModelMonitorSchedules,
)
from mlgate.infra.constructs.observability import (
    Hook,
    Kpi,
    ModelMetric,
    Owners,
    ProductMonitoring,
    ProductMonitoringProps,
)
from mlgate.infra.constructs.storage import SecureBucket

from .conftest import ML_LEAD, ON_CALL, PM, Kit, granted, kit, resources, text

LABELS = "s3://labels-bucket/churn/labels/"
STEPS = {"stage": ["--stage"], "monitor": ["--monitor", "x"], "publish": ["--publish"]}


def test_the_evidently_monitor_runs_its_steps_on_its_schedule(home: Kit, tmp_path: Path) -> None:
    monitor = EvidentlyMonitor(
        home.stack,
        "Evidently",
        props=EvidentlyProps(names=home.names, schedule="cron(0 */6 * * ? *)", steps=STEPS,
                             released=home.released(), ground_truth_s3_uri=LABELS),
        key=home.key,
        artifacts_bucket="env-artifacts",
        home_artifacts_arn="arn:aws:s3:::home-artifacts",
        build_dir=tmp_path,
    )  # fmt: skip
    assert monitor.arguments == ["--monitor", "x"]
    assert (
        monitor.capture_uri
        == "s3://env-artifacts/datacapture/staging/mlgate-churn-staging/AllTraffic"
    )
    assert monitor.reports_uri == "s3://env-artifacts/monitoring/staging/evidently"
    template = home.template()
    (rule,) = resources(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "cron(0 */6 * * ? *)"
    (pipeline,) = resources(template, "AWS::SageMaker::Pipeline").values()
    assert pipeline["Properties"]["PipelineName"] == "mlgate-churn-staging-monitoring"
    body = text(pipeline["Properties"]["PipelineDefinition"])
    for arguments in STEPS.values():
        assert json.dumps(arguments, separators=(",", ":"))[1:-1].replace('"', '\\"') in body
    # Labels are read from the ground-truth prefix only.
    assert "arn:aws:s3:::labels-bucket/churn/labels/*" in text(granted(template, "s3:GetObject"))


def test_the_evidently_monitor_without_ground_truth_reads_no_labels(
    home: Kit, tmp_path: Path
) -> None:
    EvidentlyMonitor(
        home.stack,
        "Evidently",
        props=EvidentlyProps(names=home.names, schedule="rate(1 hour)", steps=STEPS,
                             released=home.released()),
        key=home.key,
        artifacts_bucket="env-artifacts",
        home_artifacts_arn="arn:aws:s3:::home-artifacts",
        build_dir=tmp_path,
    )  # fmt: skip
    assert "labels-bucket" not in text(home.template().to_json())


def model_monitor(k: Kit, truth: GroundTruth | None) -> ModelMonitorSchedules:
    image = "156813124566.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    return ModelMonitorSchedules(
        k.stack,
        "ModelMonitor",
        props=ModelMonitorProps(names=k.names, schedule="cron(0 * ? * * *)",
                                released=k.released(), ground_truth=truth),
        key=k.key,
        artifacts_bucket="env-artifacts",
        home_artifacts_arn="arn:aws:s3:::home-artifacts",
        image=image,
        pull=[image],
        baseline_statistics="s3://home-artifacts/released/churn/1/baseline/statistics.json",
        baseline_constraints="s3://home-artifacts/released/churn/1/baseline/constraints.json",
    )  # fmt: skip


def test_model_monitor_adds_model_quality_only_with_ground_truth(home: Kit) -> None:
    model_monitor(home, GroundTruth(LABELS, "BinaryClassification", delay_hours=24,
                                    interval_hours=1))  # fmt: skip
    template = home.template()
    schedules = sorted(
        s["Properties"]["MonitoringScheduleName"]
        for s in resources(template, "AWS::SageMaker::MonitoringSchedule").values()
    )
    assert schedules == ["mlgate-churn-staging-data-quality", "mlgate-churn-staging-model-quality"]
    (quality,) = resources(template, "AWS::SageMaker::ModelQualityJobDefinition").values()
    props = quality["Properties"]
    assert props["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    endpoint = props["ModelQualityJobInput"]["EndpointInput"]
    assert (endpoint["StartTimeOffset"], endpoint["EndTimeOffset"]) == ("-PT25H", "-PT24H")
    assert endpoint["ProbabilityAttribute"] == "0"
    assert props["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"] == LABELS

    bare = kit()
    model_monitor(bare, None)
    assert len(resources(bare.template(), "AWS::SageMaker::MonitoringSchedule")) == 1
    assert not resources(bare.template(), "AWS::SageMaker::ModelQualityJobDefinition")


def test_model_monitor_refuses_a_problem_type_it_does_not_know(home: Kit) -> None:
    with pytest.raises(ValueError, match="problem type 'ranking'"):
        model_monitor(home, GroundTruth(LABELS, "ranking", 24, 1))


# --- ProductMonitoring ------------------------------------------------------------------------


def monitoring_props(
    k: Kit, *, engine: str = "evidently", ground_truth: bool = True
) -> ProductMonitoringProps:
    return ProductMonitoringProps(
        names=k.names,
        display_name="Churn risk",
        objective="Keep customers.",
        runbook_url="https://runbooks.example.com/churn",
        owners=Owners(product_manager=PM, ml_lead=ML_LEAD, on_call=ON_CALL),
        engine=engine,
        run_hours=6,
        kpis=(Kpi("retention", "Customers kept.", PM, 0.9, True, "fraction", "Retention",
                  "mlgate/business"),),
        model_metrics=(ModelMetric("auc", "Ranks churners.", ML_LEAD, 0.8, True),
                       ModelMetric("rmse", "Error.", ML_LEAD, 3.0, False)),
        ground_truth=ground_truth,
        retrain_cooldown_hours=24,
        drift_threshold=0.2,
        feature_drift_thresholds=(0.3,),
        payload_columns=("tenure", "plan=basic"),
        latency_slo_ms=100.0,
    )  # fmt: skip


def dashboard(k: Kit, props: ProductMonitoringProps) -> ProductMonitoring:
    fn = lambda_.Function.from_function_name(k.stack, "Fn", "mlgate-churn-release")
    return ProductMonitoring(
        k.stack,
        "Monitoring",
        props=props,
        key=k.key,
        alarms=k.alarms,
        endpoint="mlgate-churn-staging",
        variant="AllTraffic",
        glue_jobs=["mlgate-churn-curate"],
        training_pipeline="mlgate-churn-training",
        hooks=[Hook("release", fn)],
        model_alarms=["mlgate/churn/staging/system/latency-p99-ms/critical"],
        external_alarms=[],
        reports_uri="s3://env-artifacts/monitoring/staging/evidently",
        event_rules=["mlgate-churn-model-approved"],
    )


def alarms(template: Any) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
    }


def test_the_dashboard_alarms_each_tier_and_mails_each_owner(home: Kit) -> None:
    built = dashboard(home, monitoring_props(home))
    template = home.template()
    base = "mlgate/churn/staging"
    found = alarms(template)
    assert sorted(found) == sorted([
        f"{base}/business/retention/warning",
        f"{base}/model/auc/warning",
        f"{base}/model/rmse/warning",
        f"{base}/model/data-drift/warning",
        f"{base}/system/hook-release-errors/warning",
        f"{base}/system/rule-model-approved-failed-invocations/critical",
    ])  # fmt: skip
    assert found[f"{base}/business/retention/warning"]["ComparisonOperator"] == "LessThanThreshold"
    assert found[f"{base}/model/rmse/warning"]["ComparisonOperator"] == "GreaterThanThreshold"
    drift = found[f"{base}/model/data-drift/warning"]
    assert (drift["Threshold"], drift["MetricName"]) == (0.2, "drifted_feature_share")
    assert drift["Period"] == 6 * 3600
    assert "once per 24 h" in drift["AlarmDescription"]
    (composite,) = resources(template, "AWS::CloudWatch::CompositeAlarm").values()
    assert composite["Properties"]["AlarmName"] == f"{base}/model/model-unhealthy/critical"
    rule = text(composite["Properties"]["AlarmRule"])
    # Every model-tier alarm (auc, rmse, drift) and the endpoint's rollback alarm.
    assert rule.count("ALARM(") == 4
    assert "latency-p99-ms" in rule
    # A warning topic per owner who has one: the PM (KPI) and the ML lead (model, drift).
    assert set(built.owner_topics) == {"pm", "ml-lead", "oncall"}
    emails = sorted(s["Properties"]["Endpoint"] for s in
                    resources(template, "AWS::SNS::Subscription").values())  # fmt: skip
    assert emails == ["ml@example.com", "oncall@example.com", "pm@example.com"]
    (board,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    assert board["Properties"]["DashboardName"] == "mlgate-churn-staging"
    body = text(board["Properties"]["DashboardBody"])
    assert "SLO p99 100 ms" in body
    assert "Churn risk" in body


def test_without_ground_truth_no_live_model_alarm_pretends(home: Kit) -> None:
    dashboard(home, monitoring_props(home, ground_truth=False))
    found = alarms(home.template())
    assert not [name for name in found if "/model/auc/" in name or "/model/rmse/" in name]
    assert "mlgate/churn/staging/model/data-drift/warning" in found


def test_model_monitor_drift_alarms_on_violations(home: Kit) -> None:
    dashboard(home, monitoring_props(home, engine="model-monitor"))
    drift = alarms(home.template())["mlgate/churn/staging/model/data-drift/warning"]
    assert (drift["MetricName"], drift["Threshold"]) == ("DriftViolations", 0)


# --- SecureBucket -----------------------------------------------------------------------------


def test_an_expiring_bucket_keeps_noncurrent_versions_as_long_as_it_is_told(home: Kit) -> None:
    logs = s3.Bucket(home.stack, "Logs")
    SecureBucket(home.stack, "Raw", key=home.key, access_logs=logs, log_prefix="raw/",
                 bucket_name="raw", expiration_days=10, expired_noncurrent_days=30,
                 prefix_expirations={"datacapture/": 60})  # fmt: skip
    (bucket,) = [b for b in resources(home.template(), "AWS::S3::Bucket").values()
                 if b.get("Properties", {}).get("BucketName") == "raw"]  # fmt: skip
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire"]["ExpirationInDays"] == 10
    assert rules["expire"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 10
    assert rules["expire-datacapture"]["ExpirationInDays"] == 60
    assert rules["expire-datacapture"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30


def test_an_expiring_bucket_without_its_noncurrent_rule_is_refused(home: Kit) -> None:
    logs = s3.Bucket(home.stack, "Logs")
    with pytest.raises(ValueError, match="expired_noncurrent_days"):
        SecureBucket(home.stack, "Raw", key=home.key, access_logs=logs, log_prefix="raw/",
                     bucket_name="raw", expiration_days=10)  # fmt: skip
