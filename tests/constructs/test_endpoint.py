"""MonitoredEndpoint and DriftResponder, each alone in a bare stack from hand-written props."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events

from mlgate.infra.constructs.drift import DriftProps, DriftResponder
from mlgate.infra.constructs.endpoint import (
    EndpointProps,
    MonitoredEndpoint,
    RollbackSlo,
    Rollout,
    Scaling,
)

from .conftest import ACCOUNT, ML_LEAD, ON_CALL, REGION, REMOTE, Kit, granted, kit, resources

SCALING = Scaling(1, 4, 500)


def rollout(policy: str = "canary") -> Rollout:
    return Rollout(
        policy=policy,
        canary_percent=10,
        linear_step_percent=25,
        bake_minutes=7,
        termination_wait_minutes=3,
        max_execution_timeout_minutes=90,
    )


def endpoint_props(
    k: Kit,
    *,
    policy: str = "canary",
    slos: tuple[RollbackSlo, ...] | None = None,
    scaling: Scaling | None = SCALING,
    remote: bool = False,
    instance_type: str = "ml.c5.xlarge",
) -> EndpointProps:
    return EndpointProps(
        names=k.names,
        instance_type=instance_type,
        instance_count=3,
        capture_percent=15,
        environment={"SAGEMAKER_PROGRAM": "train.py"},
        rollout=rollout(policy),
        slos=slos
        if slos is not None
        else (
            RollbackSlo("latency_p99_ms", 80.0, 60, 3, ON_CALL),
            RollbackSlo("error_rate_5xx", 0.01, 300, 2, ML_LEAD),
        ),
        scaling=scaling,
        released=k.released(remote=remote),
    )


def build(k: Kit, props: EndpointProps) -> MonitoredEndpoint:
    has_model = cdk.CfnCondition(k.stack, "HasModel", expression=cdk.Fn.condition_equals("a", "a"))
    return MonitoredEndpoint(
        k.stack,
        "Served",
        props=props,
        model_data="s3://home/released/churn/1/model.tar.gz",
        has_model=has_model,
        key=k.key,
        artifacts_bucket="env-artifacts",
        home_artifacts_arn="arn:aws:s3:::home-artifacts",
        image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving:1",
        alarms=k.alarms,
    )


def test_the_endpoint_serves_its_fleet_with_capture_and_rolls_back_on_each_slo(home: Kit) -> None:
    served = build(home, endpoint_props(home))
    template = home.template()
    (config,) = resources(template, "AWS::SageMaker::EndpointConfig").values()
    variant = config["Properties"]["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.xlarge", 3)
    assert config["Properties"]["DataCaptureConfig"]["InitialSamplingPercentage"] == 15
    assert config["Properties"]["DataCaptureConfig"]["DestinationS3Uri"] == (
        "s3://env-artifacts/datacapture/staging"
    )
    (model,) = resources(template, "AWS::SageMaker::Model").values()
    assert model["Properties"]["Containers"][0]["Environment"] == {"SAGEMAKER_PROGRAM": "train.py"}

    (endpoint,) = resources(template, "AWS::SageMaker::Endpoint").values()
    assert endpoint["Properties"]["EndpointName"] == "mlgate-churn-staging"
    deployment = endpoint["Properties"]["DeploymentConfig"]
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        "WaitIntervalInSeconds": 7 * 60,
    }
    assert deployment["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 3 * 60
    assert deployment["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == 90 * 60
    names = [
        "mlgate/churn/staging/system/latency-p99-ms/critical",
        "mlgate/churn/staging/system/error-rate-5xx/critical",
    ]
    assert served.rollback_alarm_names == names
    rollback = deployment["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName"] for a in rollback] == names

    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in
              resources(template, "AWS::CloudWatch::Alarm").values()}  # fmt: skip
    assert sorted(alarms) == sorted(names)
    latency = alarms[names[0]]
    assert latency["Threshold"] == 80_000  # ModelLatency is in microseconds
    assert (latency["EvaluationPeriods"], latency["DatapointsToAlarm"]) == (3, 3)
    assert latency["TreatMissingData"] == "notBreaching"
    assert "Owner: Olga On-call" in latency["AlarmDescription"]
    errors = alarms[names[1]]
    assert errors["Threshold"] == 0.01
    assert "Owner: Mo Lead" in errors["AlarmDescription"]
    assert {m["Id"] for m in errors["Metrics"]} >= {"errors", "invocations"}

    (target,) = resources(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (1, 4)
    (policy,) = resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 500


@pytest.mark.parametrize(
    ("instance_type", "keyed"),
    [("ml.c5.xlarge", True), ("ml.g5.xlarge", False), ("ml.g4dn.xlarge", False),
     ("ml.m5d.large", False), ("ml.inf2.xlarge", True)],
)  # fmt: skip
def test_the_volumes_take_the_key_unless_the_instances_keep_them_on_instance_storage(
    home: Kit, instance_type: str, keyed: bool
) -> None:
    """CreateEndpointConfig fails with a KmsKeyId when a variant's instance type has local
    storage (its hardware encrypts it); every other fleet's volumes take the product key."""
    build(home, endpoint_props(home, instance_type=instance_type))
    (config,) = resources(home.template(), "AWS::SageMaker::EndpointConfig").values()
    assert ("KmsKeyId" in config["Properties"]) is keyed


def test_the_model_role_reads_released_versions_only_and_decrypts_them_through_s3(
    home: Kit,
) -> None:
    build(home, endpoint_props(home))
    template = home.template()
    assert granted(template, "s3:GetObject") == ["arn:aws:s3:::home-artifacts/released/churn/*"]
    (decrypt,) = list(granted(template, "kms:Decrypt"))
    assert isinstance(decrypt, dict)  # the home key itself (a reference), not key/*


def test_a_remote_environment_decrypts_with_the_home_accounts_keys() -> None:
    k = kit("prod", REMOTE)
    build(k, endpoint_props(k, remote=True))
    assert granted(k.template(), "kms:Decrypt") == [f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*"]


@pytest.mark.parametrize(
    ("policy", "routing"),
    [("linear", {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                 "WaitIntervalInSeconds": 420}),
     ("all_at_once", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 420})],
)  # fmt: skip
def test_each_rollout_policy_routes_its_traffic(policy: str, routing: dict[str, object]) -> None:
    k = kit()
    build(k, endpoint_props(k, policy=policy, scaling=None))
    (endpoint,) = resources(k.template(), "AWS::SageMaker::Endpoint").values()
    update = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert update["TrafficRoutingConfiguration"] == routing
    # A fixed fleet: no scaling target.
    assert not resources(k.template(), "AWS::ApplicationAutoScaling::ScalableTarget")


def test_an_unknown_rollout_policy_or_slo_is_refused(home: Kit) -> None:
    with pytest.raises(ValueError, match="rollout policy 'blue'"):
        build(home, endpoint_props(home, policy="blue"))
    k = kit()
    with pytest.raises(ValueError, match="SLO 'throughput'"):
        build(k, endpoint_props(k, slos=(RollbackSlo("throughput", 1.0, 60, 1, ON_CALL),)))


# --- DriftResponder ---------------------------------------------------------------------------

PIPELINE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/mlgate-churn-training"


def drift(k: Kit, retrain_role_arn: str | None = None) -> DriftResponder:
    return DriftResponder(
        k.stack,
        "Drift",
        props=DriftProps(
            names=k.names,
            cooldown_hours=36,
            training_pipeline_arn=PIPELINE,
            retrain_role_arn=retrain_role_arn,
        ),
        key=k.key,
        alarms=k.alarms,
        idempotency=k.idempotency(),
        drift_event=events.EventPattern(source=["aws.cloudwatch"]),
        drift_description="drift",
        drift_source={"DRIFT_ALARM": "mlgate/churn/staging/model/data-drift/warning"},
        reports_uri="s3://env-artifacts/monitoring/staging/evidently",
    )


def test_the_drift_responder_starts_home_training_at_most_once_per_cooldown(home: Kit) -> None:
    drift(home)
    template = home.template()
    functions = resources(template, "AWS::Lambda::Function")
    (variables,) = [
        f["Properties"]["Environment"]["Variables"]
        for f in functions.values()
        if "COOLDOWN_HOURS" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert variables["COOLDOWN_HOURS"] == "36"
    assert variables["ENVIRONMENT"] == "staging"
    assert variables["ENDPOINT_NAME"] == "mlgate-churn-staging"
    assert "RETRAIN_ROLE_ARN" not in variables
    assert granted(template, "sagemaker:StartPipelineExecution") == [PIPELINE]
    assert not granted(template, "sts:AssumeRole")
    tables = [t["Properties"].get("TableName") for t in
              resources(template, "AWS::DynamoDB::GlobalTable").values()]  # fmt: skip
    assert "mlgate-churn-staging-drift" in tables
    (rule,) = resources(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["Name"] == "mlgate-churn-staging-drift"


def test_a_remote_drift_responder_starts_training_through_the_home_retrain_role() -> None:
    k = kit("prod", REMOTE)
    role = f"arn:aws:iam::{ACCOUNT}:role/mlgate-churn-prod-retrain"
    drift(k, retrain_role_arn=role)
    template = k.template()
    assert granted(template, "sts:AssumeRole") == [role]
    assert not granted(template, "sagemaker:StartPipelineExecution")
