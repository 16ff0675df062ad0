"""Serving stacks: data capture, blue/green guardrails on the SLO alarms, autoscaling, the
live-version parameters, the drift loop, and names that never collide. A batch environment
has no endpoint: its tests are the batch analogues where one exists (the model waits for a
release, its role reads released versions, its batch prefix and the data it scores), and
test_a_batch_environment_scores_as_the_manifest_says holds what replaces the endpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match


def serving(synth: Any, product: Any, env: str) -> Any:
    return synth.template(product.extra[f"serving-{env}"])


BATCH_TEST = "test_a_batch_environment_scores_as_the_manifest_says"
ENDPOINT_KINDS = (
    "AWS::SageMaker::Endpoint",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::InferenceComponent",
    "AWS::ApplicationAutoScaling::ScalableTarget",
)


def endpoint_only(product: Any, env: str) -> None:
    """Skip a test of an endpoint in a batch environment, naming the test of its runs."""
    if product.manifest.is_batch(env):
        pytest.skip(f"{env} scores in batch, with no endpoint: {BATCH_TEST}")


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_endpoint_config_captures_requests_and_responses_encrypted(
    synth: Any, product: Any, env: str
) -> None:
    endpoint_only(product, env)
    settings = product.manifest.env_serving(env)  # type: ignore[arg-type]
    if settings.mode.value == "serverless":
        # Serverless Inference supports no data capture: the config has none, and its variant
        # no instances.
        (config,) = (
            serving(synth, product, env).find_resources("AWS::SageMaker::EndpointConfig").values()
        )
        assert "DataCaptureConfig" not in config["Properties"]
        (variant,) = config["Properties"]["ProductionVariants"]
        assert variant["ServerlessConfig"]["MemorySizeInMB"] == settings.serverless.memory_mb
        assert "InstanceType" not in variant
        return
    serving(synth, product, env).has_resource_properties(
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
                    "InitialSamplingPercentage": (
                        product.manifest.serving.data_capture_sampling_percent
                    ),
                    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                    "DestinationS3Uri": Match.string_like_regexp(
                        f"^s3://mlgate-{product.manifest.product.name}-.*/datacapture/{env}$"
                    ),
                    "KmsKeyId": Match.any_value(),
                }
            ),
        },
    )


def routing(rollout: Any) -> dict[str, Any]:
    """SageMaker's TrafficRoutingConfiguration for a manifest rollout."""
    if rollout.policy.value == "canary":
        return {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": rollout.canary_percent},
            "WaitIntervalInSeconds": rollout.bake_minutes * 60,
        }
    if rollout.policy.value == "linear":
        return {
            "Type": "LINEAR",
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": rollout.linear_step_percent},
            "WaitIntervalInSeconds": rollout.bake_minutes * 60,
        }
    # All at once bakes too: the only time SageMaker can roll a release back.
    return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": rollout.bake_minutes * 60}


def test_prod_shifts_as_the_manifest_says_and_rolls_back_on_every_slo_alarm(
    synth: Any, product: Any
) -> None:
    endpoint_only(product, "prod")
    template = serving(synth, product, "prod")
    rollout = product.manifest.serving.prod.rollout
    (endpoint,) = template.find_resources("AWS::SageMaker::Endpoint").values()
    config = endpoint["Properties"]["DeploymentConfig"]
    policy = config["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == routing(rollout)
    assert policy["TerminationWaitInSeconds"] == rollout.termination_wait_minutes * 60
    assert policy["MaximumExecutionTimeoutInSeconds"] == rollout.max_execution_timeout_minutes * 60
    rollback = {a["AlarmName"] for a in config["AutoRollbackConfiguration"]["Alarms"]}
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    names = {a["Properties"].get("AlarmName") for a in alarms.values()}
    assert rollback == {
        f"mlgate/{product.manifest.product.name}/prod/system/"
        f"{s.name.value.replace('_', '-')}/critical"
        for s in product.manifest.metrics.slos
    }
    assert rollback <= names
    assert endpoint["Condition"] == "HasModel"


def test_staging_shifts_as_the_manifest_says(synth: Any, product: Any) -> None:
    endpoint_only(product, "staging")
    template = serving(synth, product, "staging")
    (endpoint,) = template.find_resources("AWS::SageMaker::Endpoint").values()
    policy = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == routing(
        product.manifest.serving.staging.rollout
    )


def test_rollback_alarm_thresholds_are_the_manifest_slos(synth: Any, product: Any) -> None:
    endpoint_only(product, "prod")
    alarms = serving(synth, product, "prod").find_resources("AWS::CloudWatch::Alarm")
    by_name = {a["Properties"]["AlarmName"]: a["Properties"] for a in alarms.values()}
    name = product.manifest.product.name
    slos = {s.name.value: s for s in product.manifest.metrics.slos}
    latency = by_name[f"mlgate/{name}/prod/system/latency-p99-ms/critical"]
    # ModelLatency is in microseconds
    assert latency["Threshold"] == slos["latency_p99_ms"].threshold * 1000
    assert latency["ExtendedStatistic"] == "p99"
    errors = by_name[f"mlgate/{name}/prod/system/error-rate-5xx/critical"]
    assert errors["Threshold"] == slos["error_rate_5xx"].threshold
    assert errors["TreatMissingData"] == "notBreaching"
    assert errors["EvaluationPeriods"] == slos["error_rate_5xx"].evaluation_periods
    for alarm in by_name.values():
        assert alarm["AlarmActions"], alarm["AlarmName"]
        assert "Runbook: https://" in alarm["AlarmDescription"]


def test_autoscaling_tracks_invocations_per_instance_within_manifest_bounds(
    synth: Any, product: Any
) -> None:
    endpoint_only(product, "prod")
    bounds = product.manifest.serving.prod.autoscaling
    template = serving(synth, product, "prod")
    if product.manifest.serving.prod.inference_component is not None:
        pytest.skip("prod's copies scale, not its variant: test_a_component_serves_the_model")
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": bounds.min_instances,
            "MaxCapacity": bounds.max_instances,
            "ResourceId": (
                f"endpoint/mlgate-{product.manifest.product.name}-prod/variant/AllTraffic"
            ),
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


def test_drift_alarm_invokes_the_responder_with_the_cooldown(synth: Any, product: Any) -> None:
    """Evidently (the examples' engine): drift is the drift alarm entering ALARM."""
    manifest = product.manifest
    alarm = f"mlgate/{manifest.product.name}/prod/model/data-drift/warning"
    template = serving(synth, product, "prod")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "resources": [Match.string_like_regexp(f":alarm:{alarm}$")],
                "detail": {"state": {"value": ["ALARM"]}},
            }
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "drift_responder.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "COOLDOWN_HOURS": str(manifest.monitoring.retrain_cooldown_hours),
                        "REPORTS_URI": Match.string_like_regexp("/monitoring/prod/evidently$"),
                    }
                )
            },
        },
    )


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_serving_holds_no_monitor_and_keeps_the_live_version_in_ssm(
    synth: Any, product: Any, env: str
) -> None:
    """A monitor AWS refuses must not roll a release back: none lives in Serving. The live
    version's parameters move with the endpoint, in the same update."""
    template = serving(synth, product, env)
    for kind in (
        "AWS::SageMaker::MonitoringSchedule",
        "AWS::SageMaker::DataQualityJobDefinition",
        "AWS::SageMaker::ModelQualityJobDefinition",
        "AWS::SageMaker::Pipeline",
    ):
        assert template.find_resources(kind) == {}
    name = product.manifest.product.name
    for what, parameter in (
        ("model-package", "ModelPackageArn"),
        ("baseline-statistics", "BaselineStatisticsUri"),
        ("baseline-constraints", "BaselineConstraintsUri"),
    ):
        template.has_resource_properties(
            "AWS::SSM::Parameter",
            {"Name": f"/mlgate/{name}/{env}/live-{what}", "Value": {"Ref": parameter}},
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


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_everything_that_needs_a_model_waits_for_one(synth: Any, product: Any, env: str) -> None:
    """Applied once the stack is built: every endpoint, config, scaling and monitoring resource
    carries the HasModel condition, so `cdk deploy --all` works before any version is released.
    A batch environment's model too (its runs find "none" for a name until then)."""
    from mlgate.infra.constructs.conditions import NEEDS_A_MODEL

    resources = serving(synth, product, env).to_json()["Resources"]
    kinds = [r for r in resources.values() if r["Type"] in NEEDS_A_MODEL]
    needed = {"AWS::SageMaker::Model"}
    if not product.manifest.is_batch(env):
        needed |= {"AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"}
    assert {r["Type"] for r in kinds} >= needed
    # The shadow test's model exists only while one runs: HasShadow implies HasModel.
    assert all(
        r.get("Condition") == ("HasShadow" if logical == "ShadowModel" else "HasModel")
        for logical, r in resources.items()
        if r["Type"] in NEEDS_A_MODEL
    )


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_endpoint_config_and_model_keep_their_logical_ids(
    synth: Any, product: Any, env: str
) -> None:
    """The release hooks update Serving in place: a new logical ID would make CloudFormation
    replace the endpoint (an outage) instead of running the blue/green update. A batch
    environment's release replaces its one model, which its live model parameter follows."""
    template = serving(synth, product, env)
    batch = product.manifest.is_batch(env)
    for kind, logical in (
        ("AWS::SageMaker::Endpoint", "Endpoint"),
        ("AWS::SageMaker::EndpointConfig", "EndpointConfig"),
        ("AWS::SageMaker::Model", "Model"),
    ):
        found = [k for k in template.find_resources(kind) if k != "ShadowModel"]
        assert found == ([] if batch and kind != "AWS::SageMaker::Model" else [logical])


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_model_serves_the_released_artifact_with_the_serving_image(
    synth: Any, product: Any, env: str
) -> None:
    """Built from the manifest's serving image and the ModelDataUrl parameter (the released
    copy), not from the model package: the model role needs no read of training runs and no
    access to the registry (issue 29)."""
    from mlgate.infra.ml.images import image_uris

    region = product.manifest.environment(env).region
    template = serving(synth, product, env).to_json()
    (model,) = [
        r
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::SageMaker::Model" and k != "ShadowModel"
    ]
    (container,) = model["Properties"]["Containers"]
    assert container["Image"] == image_uris(product.manifest, region)["model"]
    assert container["ModelDataUrl"] == {"Ref": "ModelDataUrl"}
    assert "ModelPackageName" not in container
    if product.manifest.model.algorithm.script_mode:
        assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    # CloudFormation names the model: the Serving stack's service role holds it by these tags.
    tags = {t["Key"]: t["Value"] for t in model["Properties"]["Tags"]}
    assert tags["mlgate:product"] == product.manifest.product.name
    assert tags["mlgate:environment"] == env


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_model_role_reads_released_versions_only(synth: Any, product: Any, env: str) -> None:
    from fnmatch import fnmatchcase

    from mlgate.infra.naming import CURATED_PREFIX, Names

    template = serving(synth, product, env).to_json()
    name = Names.of(product.manifest, env).model_role()
    (role_id,) = [
        logical
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == name
    ]
    statements = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    home = product.manifest.environments.staging
    bucket = f"arn:aws:s3:::mlgate-{product.manifest.product.name}-artifacts-{home.account}-"
    bucket += home.region

    def granted(action: str) -> list[str]:
        """Every resource of a statement allowing `action` (CDK's wildcards included)."""
        return sorted(
            resource
            for s in statements
            if any(
                fnmatchcase(action, a)
                for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            )
            for resource in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
        )

    reads = granted("s3:GetObject")
    released = [f"{bucket}/released/{product.manifest.product.name}/*"]
    if product.manifest.is_batch(env):
        # Its jobs read what they score (the curated data, under the batch input prefix), the
        # prepare script and training contract (those two objects only), and read and write
        # its runs; prod's model also scores staging's sample runs as their reference.
        name = product.manifest.product.name
        batch = product.manifest.env_serving(env).batch_settings
        curated = f"arn:aws:s3:::mlgate-{name}-curated-{home.account}-{home.region}"
        runs = [f"{bucket}/batch/{env}/*"]
        if env == "prod" and product.manifest.is_batch("staging"):
            runs.append(f"{bucket}/batch/staging/runs/*/input/*")
        assets = [r for r in reads if r.startswith("arn:aws:s3:::cdk-")]
        assert len(assets) == 2, assets
        assert not any("*" in r for r in assets), assets
        released += [*runs, f"{curated}/{batch.input_prefix or CURATED_PREFIX}*", *assets]
        writes = [f"{bucket}/batch/{env}/*"]
        if env == "prod" and product.manifest.is_batch("staging"):
            writes.append(f"{bucket}/batch/staging/runs/*/reference/*")
        assert granted("s3:PutObject") == sorted(writes)
    if product.manifest.env_serving(env).mode.value == "async":
        # An async endpoint also reads its queued requests, in its own environment's bucket.
        site = product.manifest.environment(env)
        released.append(
            f"arn:aws:s3:::mlgate-{product.manifest.product.name}-artifacts-{site.account}-"
            f"{site.region}/async/{env}/input/*"
        )
    assert reads == sorted(released)
    (decrypt,) = [s for s in statements if s["Action"] == "kms:Decrypt"]
    assert decrypt["Condition"] == {
        "StringEquals": {
            "kms:ViaService": f"s3.{home.region}.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": bucket,
        }
    }


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_a_component_serves_the_model_as_the_manifest_says(
    synth: Any, product: Any, env: str
) -> None:
    """An environment with serving.<env>.inference_component: the variant names no model and
    scales its instances as the manifest's autoscaling bounds say; the component holds the
    model, its copies, its rolling update on the same rollback alarms, and waits for a model;
    its copies scale on invocations per copy. Without one, no component and the model in the
    variant."""
    from mlgate.infra.inference_component import component_name
    from mlgate.infra.naming import Names

    endpoint_only(product, env)
    settings = product.manifest.env_serving(env)
    template = serving(synth, product, env).to_json()["Resources"]
    components = [r for r in template.values() if r["Type"] == "AWS::SageMaker::InferenceComponent"]
    (config,) = [r for r in template.values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    (variant,) = config["Properties"]["ProductionVariants"]
    chosen = settings.inference_component
    if chosen is None:
        assert components == []
        assert "ModelName" in variant
        return
    (component,) = components
    props = component["Properties"]
    assert "ModelName" not in variant
    bounds = settings.autoscaling
    assert variant["ManagedInstanceScaling"] == {
        "Status": "ENABLED",
        "MinInstanceCount": 0 if chosen.min_copies == 0 else bounds.min_instances,
        "MaxInstanceCount": bounds.max_instances,
    }
    assert "DataCaptureConfig" in config["Properties"]
    name = component_name(Names.of(product.manifest, env))
    assert props["InferenceComponentName"] == name
    assert props["Specification"]["ModelName"] == {"Fn::GetAtt": ["Model", "ModelName"]}
    assert props["Specification"]["ComputeResourceRequirements"] == {
        "NumberOfCpuCoresRequired": chosen.cpus,
        "MinMemoryRequiredInMb": chosen.memory_mb,
    }
    assert props["RuntimeConfig"] == {"CopyCount": chosen.copies}
    rolling = props["DeploymentConfig"]["RollingUpdatePolicy"]
    assert rolling["MaximumBatchSize"] == {
        "Type": "CAPACITY_PERCENT",
        "Value": chosen.batch_percent(settings.rollout),
    }
    assert rolling["WaitIntervalInSeconds"] == settings.rollout.bake_minutes * 60
    (endpoint,) = [r for r in template.values() if r["Type"] == "AWS::SageMaker::Endpoint"]
    rollback = endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert props["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == rollback
    assert component["Condition"] == "HasModel"
    (target,) = [
        r for r in template.values() if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
    ]
    assert target["Properties"]["ResourceId"] == f"inference-component/{name}"
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (
        chosen.min_copies,
        chosen.max_copies,
    )
    (policy,) = [
        r
        for r in template.values()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
        and r["Properties"]["PolicyType"] == "TargetTrackingScaling"
    ]
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == chosen.target_invocations_per_copy


def test_an_example_hosts_a_component() -> None:
    """So the component is synthesized, linted and rehearsed with every make test."""
    from mlgate.manifest import ENV_NAMES, load_manifest

    from ..conftest import EXAMPLES

    hosted = [
        (path.parent.name, env)
        for path in sorted(EXAMPLES.glob("*/manifest.yaml"))
        for env in ENV_NAMES
        if load_manifest(path).env_serving(env).inference_component is not None
    ]
    assert hosted, "no example environment hosts its model as an inference component"


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_a_shadow_test_s_variant_is_the_released_version_under_test_and_only_while_it_runs(
    synth: Any, product: Any, env: str
) -> None:
    """With the manifest's shadow test: a ShadowModelDataUrl parameter (none by default, or a
    released copy; the name the deployer sets), a shadow model served exactly as the production
    model but for its artifact, and a shadow variant in the endpoint config only under
    HasShadow, with the test's fleet and sampling. Without one: none of them."""
    import mlgate.cli.rollback  # noqa: F401 (puts the hooks' shared code on the path)
    from mlgate.infra.constructs.endpoint import SHADOW_VARIANT
    from shared.served import NO_SHADOW, SHADOW  # what the deployer sets

    test = product.manifest.env_serving(env).shadow
    template = serving(synth, product, env).to_json()
    resources, parameters = template["Resources"], template.get("Parameters", {})
    configs = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    if test is None:  # a batch environment's too (the manifest refuses a shadow test there)
        assert "ShadowModelDataUrl" not in parameters
        assert "ShadowModel" not in resources
        assert all("ShadowProductionVariants" not in c["Properties"] for c in configs)
        return
    (config,) = configs
    parameter = parameters[SHADOW]
    assert parameter["Default"] == NO_SHADOW
    assert re.fullmatch(parameter["AllowedPattern"], NO_SHADOW)
    shadow, model = resources["ShadowModel"], resources["Model"]
    assert shadow["Condition"] == "HasShadow"
    (ours,), (theirs,) = model["Properties"]["Containers"], shadow["Properties"]["Containers"]
    assert theirs["ModelDataUrl"] == {"Ref": "ShadowModelDataUrl"}
    assert {k: v for k, v in theirs.items() if k != "ModelDataUrl"} == {
        k: v for k, v in ours.items() if k != "ModelDataUrl"
    }
    condition, (variant,), absent = config["Properties"]["ShadowProductionVariants"]["Fn::If"]
    assert (condition, absent) == ("HasShadow", {"Ref": "AWS::NoValue"})
    assert variant["VariantName"] == SHADOW_VARIANT
    assert variant["InitialInstanceCount"] == test.instance_count
    assert variant["InitialVariantWeight"] == test.sampling_percent / 100


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_a_batch_environment_scores_as_the_manifest_says(
    synth: Any, product: Any, env: str
) -> None:
    """In place of the endpoint: no endpoint, config, component or scaling; the batch_run hook
    with the manifest's transform instances, limits and sample, the environment's key for its
    outputs and its own artifact bucket; runs start on the schedule or after the ETL job; the
    live model's name follows the model a release replaces ("none" before one); a failed, late
    or empty run pages on-call with a runbook, and no SLO rolls anything back. An endpoint
    environment has no batch hook."""
    from mlgate.infra.naming import Names

    manifest = product.manifest
    name = manifest.product.name
    resources = serving(synth, product, env).to_json()["Resources"]
    hooks = [
        r for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "batch_run.handler.handler"
    ]  # fmt: skip
    if not manifest.is_batch(env):
        assert hooks == []
        assert [r for r in resources.values() if r["Type"] == "AWS::Glue::Table"] == []
        return
    assert [r["Type"] for r in resources.values() if r["Type"] in ENDPOINT_KINDS] == []
    settings = manifest.env_serving(env)
    batch = settings.batch_settings
    (hook,) = hooks
    variables = hook["Properties"]["Environment"]["Variables"]
    site = manifest.environment(env)
    assert {k: variables[k] for k in (
        "INSTANCE_TYPE", "INSTANCE_COUNT", "MAX_RUN_MINUTES", "MAX_PAYLOAD_MB", "SAMPLE_ROWS",
        "ARTIFACT_BUCKET", "ENVIRONMENT",
    )} == {
        "INSTANCE_TYPE": settings.instance_type, "INSTANCE_COUNT": str(settings.instance_count),
        "MAX_RUN_MINUTES": str(batch.max_run_minutes),
        "MAX_PAYLOAD_MB": str(batch.max_payload_mb), "SAMPLE_ROWS": str(batch.sample_rows),
        "ARTIFACT_BUCKET": f"mlgate-{name}-artifacts-{site.account}-{site.region}",
        "ENVIRONMENT": env,
    }  # fmt: skip
    assert "ProductKey" in json.dumps(variables["KEY_ARN"])  # the outputs' key
    function = next(k for k, r in resources.items() if r is hook)
    starts = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        and function in json.dumps(r["Properties"].get("Targets"))
        and (
            r["Properties"].get("ScheduleExpression") == batch.schedule
            if batch.schedule
            else r["Properties"].get("EventPattern", {}).get("source") == ["aws.glue"]
        )
    ]
    (start,) = starts
    if not batch.schedule:
        assert start["EventPattern"]["detail"] == {
            "jobName": [Names.of(manifest).etl_job()],
            "state": ["SUCCEEDED"],
        }
    (parameter,) = [
        r["Properties"] for r in resources.values()
        if r["Type"] == "AWS::SSM::Parameter"
        and r["Properties"]["Name"] == f"/mlgate/{name}/{env}/live-model-name"
    ]  # fmt: skip
    assert parameter["Value"] == {
        "Fn::If": ["HasModel", {"Fn::GetAtt": ["Model", "ModelName"]}, "none"]
    }
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    for what in ("failed", "late", "empty"):
        alarm = alarms[f"mlgate/{name}/{env}/system/batch-run-{what}/critical"]
        assert alarm["Threshold"] == 1
        assert alarm["AlarmActions"]
        assert "Runbook: https://" in alarm["AlarmDescription"]
    assert product.extra[f"serving-{env}"].rollback_alarm_names == []
    assert not [n for n in alarms for s in manifest.metrics.slos
                if s.name.value.replace("_", "-") in n]  # fmt: skip
