"""MonitoredEndpoint in each serving mode, alone in a bare stack: what a serverless and an
asynchronous endpoint are made of, and what each refuses."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlgate.infra.constructs.endpoint import AsyncQueue, EndpointProps, ServerlessCapacity

from .conftest import Kit, granted, resources
from .test_endpoint import build, endpoint_props

SERVERLESS = ServerlessCapacity(memory_mb=3072, max_concurrency=12, provisioned_concurrency=2)
QUEUE = AsyncQueue(
    max_concurrent_invocations_per_instance=4, backlog_per_instance=5, min_instances=0,
    max_instances=3,
)  # fmt: skip


def serverless(k: Kit) -> EndpointProps:
    return replace(
        endpoint_props(k, policy="all_at_once", scaling=None), mode="serverless",
        serverless=SERVERLESS,
    )  # fmt: skip


def asynchronous(k: Kit, queue: AsyncQueue = QUEUE) -> EndpointProps:
    return replace(endpoint_props(k, policy="all_at_once"), mode="async", async_queue=queue)


def test_a_serverless_endpoint_has_its_capacity_and_nothing_serverless_refuses(home: Kit) -> None:
    served = build(home, serverless(home))
    template = home.template()
    (config,) = resources(template, "AWS::SageMaker::EndpointConfig").values()
    (variant,) = config["Properties"]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": 3072, "MaxConcurrency": 12, "ProvisionedConcurrency": 2,
    }  # fmt: skip
    assert "InstanceType" not in variant
    assert "InitialInstanceCount" not in variant
    # Serverless Inference supports neither data capture nor network isolation.
    assert "DataCaptureConfig" not in config["Properties"]
    (model,) = resources(template, "AWS::SageMaker::Model").values()
    assert model["Properties"]["EnableNetworkIsolation"] is False
    assert resources(template, "AWS::ApplicationAutoScaling::ScalableTarget") == {}
    # Nothing writes capture files: the model role may not either.
    assert not [r for r in granted(template, "s3:PutObject") if "datacapture" in str(r)]
    assert served.rollback_alarm_names  # the release still rolls back on the SLOs


def test_a_serverless_endpoint_refuses_to_be_built_without_its_capacity(home: Kit) -> None:
    with pytest.raises(ValueError, match="ServerlessCapacity"):
        build(home, replace(serverless(home), serverless=None))


def test_an_async_endpoint_writes_results_with_the_key_and_notifies_encrypted_topics(
    home: Kit,
) -> None:
    build(home, asynchronous(home))
    template = home.template()
    (config,) = resources(template, "AWS::SageMaker::EndpointConfig").values()
    asynchronous_config = config["Properties"]["AsyncInferenceConfig"]
    output = asynchronous_config["OutputConfig"]
    assert output["S3OutputPath"] == "s3://env-artifacts/async/staging/output"
    assert output["S3FailurePath"] == "s3://env-artifacts/async/staging/failures"
    assert "ProductKey" in str(output["KmsKeyId"])
    assert asynchronous_config["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 4}
    topics = resources(template, "AWS::SNS::Topic")
    notify = output["NotificationConfig"]
    for which in ("SuccessTopic", "ErrorTopic"):
        (logical,) = [t for t in topics if t in str(notify[which])]
        assert "ProductKey" in str(topics[logical]["Properties"]["KmsMasterKeyId"])
    # The model role reads requests, writes results and failures, and publishes.
    assert "async/staging/input" in str(granted(template, "s3:GetObject"))
    written = str(granted(template, "s3:PutObject"))
    assert "async/staging/output" in written
    assert "async/staging/failures" in written
    assert granted(template, "sns:Publish")


def test_an_async_endpoint_scales_on_its_backlog_to_zero_and_wakes_on_new_work(
    home: Kit,
) -> None:
    served = build(home, asynchronous(home))
    template = home.template()
    (target,) = resources(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (0, 3)
    policies = {
        p["Properties"]["PolicyType"]: p["Properties"]
        for p in resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    tracking = policies["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    metric = tracking["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert metric["Dimensions"] == [{"Name": "EndpointName", "Value": "mlgate-churn-staging"}]
    assert tracking["TargetValue"] == 5
    step = policies["StepScaling"]["StepScalingPolicyConfiguration"]
    assert step["AdjustmentType"] == "ChangeInCapacity"
    assert step["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    alarms = {a["Properties"]["AlarmName"]: a for a in
              resources(template, "AWS::CloudWatch::Alarm").values()}  # fmt: skip
    wake = alarms["mlgate/churn/staging/system/async-backlog-without-capacity/scaling"]
    assert wake["Properties"]["MetricName"] == "HasBacklogWithoutCapacity"
    assert wake["Properties"]["Threshold"] == 1
    assert wake["Condition"] == "HasModel"
    # Its one action is the step policy: it pages nobody.
    (action,) = wake["Properties"]["AlarmActions"]
    assert "WakeFromZero" in str(action)
    assert served.scaling_alarm_names == [
        "mlgate/churn/staging/system/async-backlog-without-capacity/scaling"
    ]


def test_an_async_endpoint_kept_warm_has_no_wake_policy(home: Kit) -> None:
    build(home, asynchronous(home, replace(QUEUE, min_instances=1)))
    template = home.template()
    (target,) = resources(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert target["Properties"]["MinCapacity"] == 1
    policies = resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    kinds = [p["Properties"]["PolicyType"] for p in policies]
    assert kinds == ["TargetTrackingScaling"]


def test_an_async_endpoint_rolls_back_on_processed_requests_not_invocations(home: Kit) -> None:
    build(home, asynchronous(home))
    alarms = resources(home.template(), "AWS::CloudWatch::Alarm").values()
    errors = next(a for a in alarms if "error-rate-5xx" in a["Properties"]["AlarmName"])
    names = {
        m["MetricStat"]["Metric"]["MetricName"]
        for m in errors["Properties"]["Metrics"]
        if "MetricStat" in m
    }
    # Async endpoints publish no Invocations: a rate over it would never be computed.
    assert names == {"Invocation5XXErrors", "InvocationsProcessed"}


def test_an_unknown_mode_is_refused(home: Kit) -> None:
    with pytest.raises(ValueError, match="serving mode 'batch'"):
        build(home, replace(endpoint_props(home), mode="batch"))
