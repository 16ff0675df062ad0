"""Serving stacks: data capture, blue/green guardrails on the SLO alarms, autoscaling, Model
Monitor, the drift loop, and names that never collide."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from mlgate.manifest import load_manifest

from ..conftest import DEFAULT_MANIFEST

MANIFEST = load_manifest(DEFAULT_MANIFEST)


def serving(synth: Any, env: str) -> Any:
    return synth.template(synth.product().extra[f"serving-{env}"])


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_endpoint_config_captures_requests_and_responses_encrypted(synth: Any, env: str) -> None:
    settings = MANIFEST.env_serving(env)  # type: ignore[arg-type]
    serving(synth, env).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "KmsKeyId": Match.any_value(),
            "ProductionVariants": [
                Match.object_like(
                    {
                        "InstanceType": settings.instance_type,
                        "InitialInstanceCount": settings.instance_count,
                        "VariantName": "AllTraffic",
                    }
                )
            ],
            "DataCaptureConfig": Match.object_like(
                {
                    "EnableCapture": True,
                    "InitialSamplingPercentage": MANIFEST.serving.data_capture_sampling_percent,
                    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                    "DestinationS3Uri": "s3://mlgate-fraud-detection-artifacts-111111111111-"
                    f"eu-west-1/datacapture/{env}",
                    "KmsKeyId": Match.any_value(),
                }
            ),
        },
    )


def test_prod_shifts_a_canary_and_rolls_back_on_every_slo_alarm(synth: Any) -> None:
    template = serving(synth, "prod")
    rollout = MANIFEST.serving.prod.rollout
    (endpoint,) = template.find_resources("AWS::SageMaker::Endpoint").values()
    config = endpoint["Properties"]["DeploymentConfig"]
    policy = config["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": rollout.canary_percent},
        "WaitIntervalInSeconds": rollout.bake_minutes * 60,
    }
    assert policy["TerminationWaitInSeconds"] == rollout.termination_wait_minutes * 60
    assert policy["MaximumExecutionTimeoutInSeconds"] == rollout.max_execution_timeout_minutes * 60
    rollback = {a["AlarmName"] for a in config["AutoRollbackConfiguration"]["Alarms"]}
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    names = {a["Properties"].get("AlarmName") for a in alarms.values()}
    assert rollback == {
        f"mlgate/fraud-detection/prod/system/{s.name.value.replace('_', '-')}/critical"
        for s in MANIFEST.metrics.slos
    }
    assert rollback <= names
    assert endpoint["Condition"] == "HasModel"


def test_staging_shifts_all_at_once(synth: Any) -> None:
    (endpoint,) = serving(synth, "staging").find_resources("AWS::SageMaker::Endpoint").values()
    routing = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert routing["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"


def test_rollback_alarm_thresholds_are_the_manifest_slos(synth: Any) -> None:
    alarms = serving(synth, "prod").find_resources("AWS::CloudWatch::Alarm")
    by_name = {a["Properties"]["AlarmName"]: a["Properties"] for a in alarms.values()}
    latency = by_name["mlgate/fraud-detection/prod/system/latency-p99-ms/critical"]
    assert latency["Threshold"] == 200 * 1000  # ModelLatency is in microseconds
    assert latency["ExtendedStatistic"] == "p99"
    errors = by_name["mlgate/fraud-detection/prod/system/error-rate-5xx/critical"]
    assert errors["Threshold"] == 0.001
    assert errors["TreatMissingData"] == "notBreaching"
    assert errors["EvaluationPeriods"] == 3
    for alarm in by_name.values():
        assert alarm["AlarmActions"], alarm["AlarmName"]
        assert "Runbook: https://" in alarm["AlarmDescription"]


def test_autoscaling_tracks_invocations_per_instance_within_manifest_bounds(synth: Any) -> None:
    bounds = MANIFEST.serving.prod.autoscaling
    template = serving(synth, "prod")
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": bounds.min_instances,
            "MaxCapacity": bounds.max_instances,
            "ResourceId": "endpoint/mlgate-fraud-detection-prod/variant/AllTraffic",
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "TargetValue": bounds.target_invocations_per_instance,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    },
                }
            )
        },
    )


def test_model_monitor_runs_isolated_and_encrypted_on_the_manifest_schedule(synth: Any) -> None:
    template = serving(synth, "prod")
    template.has_resource_properties(
        "AWS::SageMaker::DataQualityJobDefinition",
        {
            "NetworkConfig": {
                "EnableNetworkIsolation": True,
                "EnableInterContainerTrafficEncryption": True,
            },
            "DataQualityJobOutputConfig": Match.object_like({"KmsKeyId": Match.any_value()}),
            "DataQualityBaselineConfig": {
                "ConstraintsResource": {"S3Uri": {"Ref": "BaselineConstraintsUri"}},
                "StatisticsResource": {"S3Uri": {"Ref": "BaselineStatisticsUri"}},
            },
        },
    )
    schedules = template.find_resources("AWS::SageMaker::MonitoringSchedule")
    kinds = sorted(
        s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"] for s in schedules.values()
    )
    assert kinds == ["DataQuality", "ModelQuality"]  # ground truth is declared
    for schedule in schedules.values():
        expression = schedule["Properties"]["MonitoringScheduleConfig"]["ScheduleConfig"]
        assert expression["ScheduleExpression"] == MANIFEST.monitoring.schedule


def test_drift_rule_invokes_the_responder_with_the_cooldown(synth: Any) -> None:
    template = serving(synth, "prod")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {
                    "detail-type": ["SageMaker Processing Job State Change"],
                    "detail": Match.object_like(
                        {"ExitMessage": [{"prefix": "CompletedWithViolations"}]}
                    ),
                }
            )
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "drift_responder.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {"COOLDOWN_HOURS": str(MANIFEST.monitoring.retrain_cooldown_hours)}
                )
            },
        },
    )


# Property naming a resource -> the resource types it names (None: any type).
PHYSICAL: dict[str, tuple[str, ...] | None] = {
    "EndpointName": ("AWS::SageMaker::Endpoint",),
    "TableName": None,
    "TopicName": None,
    "RoleName": None,
    "PipelineName": None,
    "RuleName": None,
    "AlarmName": None,
    "JobDefinitionName": None,
    "MonitoringScheduleName": None,
    "BucketName": None,
    "Name": None,
    "ModelPackageGroupName": ("AWS::SageMaker::ModelPackageGroup",),
    "AliasName": None,
}


def physical_names(outdir: Path) -> list[str]:
    names = []
    for path in outdir.glob("*.template.json"):
        for resource in json.loads(path.read_text())["Resources"].values():
            for key, types in PHYSICAL.items():
                value = resource.get("Properties", {}).get(key)
                if isinstance(value, str) and (types is None or resource["Type"] in types):
                    names.append(f"{resource['Type']}:{value}")
    return names


def test_two_products_never_collide(synth: Any) -> None:
    """Every example product in one app: no physical name is used twice."""
    products = [p.manifest.product.name for p in synth.products]
    assert len(products) >= 2
    names = physical_names(synth.outdir)
    assert len(names) > 40 * len(products)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == []
    for product in products:
        assert any(product in n for n in names)
