"""The SageMaker Pipeline definition, for every example product: steps in order, thresholds
equal to the manifest's, registration as PendingManualApproval with the model's artifacts, the
product's scripts as the services load them, and built without touching the network."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

from mlgate.infra.ml.pipeline import (
    ENTRY_SCRIPT,
    SERVING_CODE_DIR,
    definition,
    image_uris,
    metric_json_path,
    script_mode,
)
from mlgate.manifest import Direction, MonitoringEngine

from ..conftest import pinned_versions
from .conftest import Built, build


def flatten(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for step in steps:
        out.append(step)
        if step["Type"] == "Condition":
            out += flatten(step["Arguments"]["IfSteps"]) + flatten(step["Arguments"]["ElseSteps"])
    return out


def test_definition_is_built_offline(built: Built) -> None:
    assert built.body["Steps"]
    assert built.attempts == [], f"the SDK tried to reach {built.attempts}"


def test_the_sdk_s_telemetry_is_off_with_any_sdk_version(monkeypatch: Any) -> None:
    """With the SDK version it was tested with, `_no_telemetry` replaces the SDK's telemetry
    hook and gives it an empty config; with another, it leaves the hook and points the SDK's
    config at mlgate's defaults file, whose TelemetryOptOut the SDK's own decorator reads."""
    import boto3
    from sagemaker.core.common_utils import resolve_value_from_config
    from sagemaker.core.config.config_schema import TELEMETRY_OPT_OUT_PATH
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.telemetry import telemetry_logging

    from mlgate.infra.ml import pipeline

    hook = telemetry_logging._send_telemetry_request
    for variable in ("SAGEMAKER_ADMIN_CONFIG_OVERRIDE", "SAGEMAKER_USER_CONFIG_OVERRIDE"):
        monkeypatch.delenv(variable, raising=False)
    with pipeline._no_telemetry():
        assert telemetry_logging._send_telemetry_request is not hook
        assert os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] == os.devnull
    assert telemetry_logging._send_telemetry_request is hook

    monkeypatch.setattr(pipeline, "TELEMETRY_TESTED", ("sagemaker-core", "0.0.0"))
    with pipeline._no_telemetry():
        assert telemetry_logging._send_telemetry_request is hook
        session = Session(boto_session=boto3.Session(region_name="eu-west-1"))
        opted_out = resolve_value_from_config(
            config_path=TELEMETRY_OPT_OUT_PATH, default_value=False, sagemaker_session=session
        )
    assert opted_out is True


def test_the_telemetry_hook_s_tested_version_is_the_pinned_one() -> None:
    """_no_telemetry replaces a private SDK hook only with the version it was tested with (the
    documented, slower switch otherwise): a pin moved without revisiting it fails here."""
    from mlgate.infra.ml.pipeline import TELEMETRY_TESTED

    package, tested = TELEMETRY_TESTED
    pinned = pinned_versions("requirements-sagemaker.txt")[package]
    assert pinned == tested, (
        f"requirements-sagemaker.txt pins {package} {pinned}; pipeline.TELEMETRY_TESTED says "
        f"{tested}: check that _no_telemetry's hook still exists, then update it"
    )


def test_steps_run_preprocess_train_evaluate_then_the_checks(
    manifest: Any, body: dict[str, Any]
) -> None:
    top = body["Steps"]
    baseline = [("DataQualityBaseline", "QualityCheck")] if model_monitor(manifest) else []
    assert [(s["Name"], s["Type"]) for s in top] == [
        ("Preprocess", "Processing"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        *baseline,
        (f"Check{manifest.metrics.model_metrics[0].name.value.title()}", "Condition"),
    ]


def model_monitor(manifest: Any) -> bool:
    return bool(manifest.monitoring.engine is MonitoringEngine.MODEL_MONITOR)


def with_engine(manifest: Any, engine: MonitoringEngine) -> Any:
    return manifest.model_copy(
        update={"monitoring": manifest.monitoring.model_copy(update={"engine": engine})}
    )


def test_without_model_monitor_no_step_runs_its_image_or_registers_its_baseline(
    manifest: Any, settings: Any
) -> None:
    """Model Monitor is closed to new customers: with Evidently, a version is registered in an
    account that cannot run Model Monitor's analyzer (no QualityCheck step, no drift-check
    baseline from it), and the Evidently job's baseline dataset travels with the version."""
    body = build(with_engine(manifest, MonitoringEngine.EVIDENTLY), settings)
    steps = flatten(body["Steps"])
    assert [s for s in steps if s["Type"] in ("QualityCheck", "ClarifyCheck")] == []
    text = json.dumps(body)
    assert "model-monitor-analyzer" not in text
    assert "DataQualityBaseline" not in text
    (register,) = [s for s in steps if s["Type"] == "RegisterModel"]
    args = register["Arguments"]
    assert "DriftCheckBaselines" not in args
    assert "ModelDataQuality" not in args["ModelMetrics"]
    assert "mlgate:baseline-dataset" in args["CustomerMetadataProperties"]


def test_with_model_monitor_the_baseline_step_gates_registration(
    manifest: Any, settings: Any
) -> None:
    body = build(with_engine(manifest, MonitoringEngine.MODEL_MONITOR), settings)
    names = [s["Name"] for s in body["Steps"]]
    assert names.index("DataQualityBaseline") == 3
    steps = flatten(body["Steps"])
    (register,) = [s for s in steps if s["Type"] == "RegisterModel"]
    drift = register["Arguments"]["DriftCheckBaselines"]["ModelDataQuality"]
    assert drift["Statistics"]["S3Uri"] == {
        "Get": "Steps.DataQualityBaseline.CalculatedBaselineStatistics"
    }
    checks = [s for s in steps if s["Type"] == "Condition"]
    assert checks[0]["DependsOn"] == ["DataQualityBaseline"]


def test_one_check_per_manifest_metric_with_its_threshold_and_a_named_failure(
    manifest: Any, body: dict[str, Any]
) -> None:
    steps = flatten(body["Steps"])
    checks = [s for s in steps if s["Type"] == "Condition"]
    assert len(checks) == len(manifest.metrics.model_metrics)
    for metric, check in zip(manifest.metrics.model_metrics, checks, strict=True):
        (condition,) = check["Arguments"]["Conditions"]
        expected = (
            "GreaterThanOrEqualTo"
            if metric.direction is Direction.AT_LEAST
            else "LessThanOrEqualTo"
        )
        assert condition["Type"] == expected
        assert condition["RightValue"] == metric.threshold
        (fail,) = check["Arguments"]["ElseSteps"]
        assert fail["Type"] == "Fail"
        message = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
        assert message[0] == f"{metric.name.value} on the test split is"
        assert str(metric.threshold) in message[2]


def test_registration_waits_for_the_ml_lead_and_carries_evidence(
    manifest: Any, settings: Any, body: dict[str, Any]
) -> None:
    (register,) = [s for s in flatten(body["Steps"]) if s["Type"] == "RegisterModel"]
    args = register["Arguments"]
    assert args["ModelApprovalStatus"] == "PendingManualApproval"
    assert args["ModelPackageGroupName"] == f"mlgate-{manifest.product.name}"
    assert args["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    if model_monitor(manifest):
        quality = args["ModelMetrics"]["ModelDataQuality"]
        assert quality["Statistics"]["S3Uri"] == {
            "Get": "Steps.DataQualityBaseline.CalculatedBaselineStatistics"
        }
        assert quality["Constraints"]["S3Uri"] == {
            "Get": "Steps.DataQualityBaseline.CalculatedBaselineConstraints"
        }
    meta = args["CustomerMetadataProperties"]
    assert meta["mlgate:manifest-sha256"] == settings.manifest_sha256
    assert meta["mlgate:code-sha256"] == settings.code_sha256
    for metric in manifest.metrics.model_metrics:
        expected = f"{metric.direction.value} {metric.threshold}"
        assert meta[f"mlgate:threshold:{metric.name.value}"] == expected
    # What the Evidently monitor compares live traffic with: the preprocess's baseline split.
    assert meta["mlgate:baseline-dataset"] == {
        "Std:Join": {
            "On": "/",
            "Values": [
                {
                    "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['baseline']"
                    ".S3Output.S3Uri"
                },
                "baseline.csv",
            ],
        }
    }


def test_training_uses_the_manifest_hyper_parameters_and_the_regional_image(
    manifest: Any, settings: Any, body: dict[str, Any]
) -> None:
    train = body["Steps"][1]["Arguments"]
    assert (
        train["AlgorithmSpecification"]["TrainingImage"]
        == image_uris(manifest, settings.region)["model"]
    )
    given = {k: str(v) for k, v in manifest.model.hyperparameters.items()}
    assert {k: train["HyperParameters"][k] for k in given} == given
    assert train["ResourceConfig"]["InstanceType"] == manifest.model.training_instance_type
    assert train["OutputDataConfig"]["KmsKeyId"] == settings.kms_key_arn


def test_definition_is_deterministic(
    manifest: Any, settings: Any, built_definition: dict[str, Any]
) -> None:
    assert definition(manifest, settings) == built_definition


def register_step(body: dict[str, Any]) -> dict[str, Any]:
    (register,) = [s for s in flatten(body["Steps"]) if s["Type"] == "RegisterModel"]
    return register  # type: ignore[no-any-return]


def environments(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node["Environment"]] if isinstance(node.get("Environment"), dict) else []
        return found + [e for v in node.values() for e in environments(v)]
    if isinstance(node, list):
        return [e for v in node for e in environments(v)]
    return []


def test_the_registered_version_carries_the_trained_artifacts(
    manifest: Any, settings: Any, body: dict[str, Any]
) -> None:
    """A version without ModelDataUrl deploys a container with no model in it."""
    (container,) = register_step(body)["Arguments"]["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert container["Image"] == image_uris(manifest, settings.region)["model"]


def test_no_environment_variable_is_empty(body: dict[str, Any]) -> None:
    """An empty SAGEMAKER_PROGRAM sends the XGBoost container looking for a user script."""
    for environment in environments(body):
        assert "" not in environment.values(), environment


def test_script_mode_runs_the_product_script_and_serves_from_the_model(
    manifest: Any, settings: Any, body: dict[str, Any]
) -> None:
    """Training runs mlgate's entry (which runs the product's train.py and copies the code into
    the model); the registered container serves from the code inside the model artifact."""
    program = script_mode(manifest)
    train = body["Steps"][1]["Arguments"]
    (container,) = register_step(body)["Arguments"]["InferenceSpecification"]["Containers"]
    if program is None:
        assert "sagemaker_program" not in train["HyperParameters"]
        assert "SAGEMAKER_PROGRAM" not in container.get("Environment", {})
        return
    assert train["HyperParameters"]["sagemaker_program"] == ENTRY_SCRIPT
    # Under network isolation the source arrives as the `code` channel, not fetched from S3.
    name = settings.train_source_uri.rsplit("/", 1)[-1]
    assert train["HyperParameters"]["sagemaker_submit_directory"] == (
        f"/opt/ml/input/data/code/{name}"
    )
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in train["InputDataConfig"]}
    assert channels["code"]["S3Uri"] == settings.train_source_uri
    assert train["Environment"]["MLGATE_PROGRAM"] == program
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == program
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == SERVING_CODE_DIR


def test_conditions_read_the_problem_types_report_section(
    manifest: Any, body: dict[str, Any]
) -> None:
    steps = flatten(body["Steps"])
    paths = [
        c["Arguments"]["Conditions"][0]["LeftValue"]["Std:JsonGet"]["Path"]
        for c in steps
        if c["Type"] == "Condition"
    ]
    assert paths == [metric_json_path(manifest, m.name) for m in manifest.metrics.model_metrics]
    assert all(p.startswith(manifest.model.problem_type.report_section + ".") for p in paths)


def test_processing_runs_the_script_under_the_name_it_is_downloaded_as(
    settings: Any, body: dict[str, Any]
) -> None:
    """Processing downloads a code object under its S3 name (CDK assets are hash-named): the
    entry point must be that name, not the script's own."""
    for step in flatten(body["Steps"]):
        if step["Type"] != "Processing":
            continue
        args = step["Arguments"]
        entry = args["AppSpecification"]["ContainerEntrypoint"][-1]
        (code,) = [i for i in args["ProcessingInputs"] if i["InputName"] == "code"]
        uri = code["S3Input"]["S3Uri"]
        assert entry == f"{code['S3Input']['LocalPath']}/{uri.rsplit('/', 1)[-1]}"
        contract = [i for i in args["ProcessingInputs"] if i["InputName"] == "contract"]
        assert [c["S3Input"]["S3Uri"] for c in contract] == [settings.contract_uri]


def test_image_uris_equal_the_sdk_s_in_every_region_of_the_manifest(manifest: Any) -> None:
    """mlgate reads the SDK's region tables itself (no SDK import at synth): the URIs must be
    exactly what the SDK's own retrieve answers."""
    from sagemaker.core import image_uris as sdk

    model = manifest.model
    for region in {manifest.environments.staging.region, "eu-west-1", "us-east-1"}:
        ours = image_uris(manifest, region)
        framework = "sklearn" if model.algorithm.value == "sklearn" else "xgboost"
        extra = {"py_version": "py3"} if framework == "sklearn" else {}
        assert ours["model"] == sdk.retrieve(
            framework, region=region, version=model.version, **extra
        )
        assert ours["model-monitor"] == sdk.retrieve("model-monitor", region=region)


def test_each_cached_definition_is_what_the_sdk_builds_today(
    manifest: Any, settings: Any, built_definition: dict[str, Any]
) -> None:
    """Synth serves the pipeline definition from the product's cache (no SDK import): the
    cache must hold exactly what the SDK builds now from the same inputs, under their key."""
    import json

    from mlgate.infra.ml.pipeline import CACHE_FILE, PipelineSettings, definition_key

    path = manifest.path(str(CACHE_FILE))
    assert path.is_file(), f"{path} is missing: `make synth MANIFEST={manifest.folder}`, commit it"
    cached = json.loads(path.read_text())
    stored = PipelineSettings(**cached["settings"])
    assert cached["key"] == definition_key(manifest, stored), (
        f"{path} was built from other inputs: `make synth MANIFEST={manifest.folder}`, commit it"
    )
    built = built_definition if stored == settings else build(manifest, stored)
    assert cached["definition"] == built


def test_the_cache_is_rebuilt_when_an_input_changes(
    manifest: Any, settings: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    import dataclasses
    import json

    from mlgate.infra.ml.pipeline import CACHE_FILE, cached_definition, definition_key

    # A copy whose folder is tmp_path: the session's manifest keeps its own (monkeypatch's undo
    # of a pydantic private attribute deletes it).
    manifest = manifest.model_copy()
    manifest._folder = tmp_path
    first = cached_definition(manifest, settings)
    stored = json.loads((tmp_path / CACHE_FILE).read_text())
    assert stored["key"] == definition_key(manifest, settings)
    changed = dataclasses.replace(settings, bucket="another-bucket")
    assert definition_key(manifest, changed) != stored["key"]
    second = cached_definition(manifest, changed)
    assert "another-bucket" in json.dumps(second)
    assert "another-bucket" not in json.dumps(first)


# --- issue 29: jobs that need no network run without it -------------------------------------


def networked_jobs(body: dict[str, Any]) -> list[str]:
    """Jobs of the definition that may reach the network: a training job without
    EnableNetworkIsolation, a processing or check job whose NetworkConfig lacks it."""
    found = []
    for step in flatten(body["Steps"]):
        args = step.get("Arguments", {})
        if step["Type"] == "Training":
            isolated = args.get("EnableNetworkIsolation")
        elif step["Type"] in ("Processing", "QualityCheck"):
            isolated = args.get("NetworkConfig", {}).get("EnableNetworkIsolation")
        else:
            continue
        if isolated is not True:
            found.append(step["Name"])
    return found


def test_every_job_runs_with_network_isolation(manifest: Any, settings: Any) -> None:
    """Preprocess, train, evaluate and (with Model Monitor) the baseline read and write only
    through SageMaker's channels: none may reach the network. Only the manifest's `tracking`
    opens it, for the steps that log to the tracking server (tests/ml/test_tracking.py)."""
    from mlgate.infra.ml.pipeline import installs_requirements, script_mode

    assert not installs_requirements(manifest)
    logging = ["Preprocess", *(["Train"] if script_mode(manifest) else []), "Evaluate"]
    untracked = manifest.model_copy(update={"tracking": None})
    plain = replace(settings, tracking_uri=None, tracking_code_uri=None)
    for engine in MonitoringEngine:
        alone = build(with_engine(untracked, engine), plain)
        assert networked_jobs(alone) == [], engine
        assert "MLFLOW_TRACKING_URI" not in json.dumps(alone), engine  # no job told of a server
        body = build(with_engine(manifest, engine), settings)
        assert networked_jobs(body) == (logging if manifest.tracking else []), engine


def test_the_isolation_check_fails_on_a_job_with_the_network_on(body: dict[str, Any]) -> None:
    import copy

    # Every job isolated first (a tracked product's logging jobs are networked on purpose).
    for step in body["Steps"]:
        if step["Type"] == "Training":
            step["Arguments"]["EnableNetworkIsolation"] = True
        elif step["Type"] == "Processing":
            step["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] = True
    assert networked_jobs(body) == []
    for step in body["Steps"]:
        broken = copy.deepcopy(body)
        args = next(s for s in broken["Steps"] if s["Name"] == step["Name"]).get("Arguments")
        if step["Type"] == "Training":
            args["EnableNetworkIsolation"] = False
        elif step["Type"] == "Processing":
            del args["NetworkConfig"]["EnableNetworkIsolation"]
        else:
            continue
        assert networked_jobs(broken) == [step["Name"]]


def test_training_that_pip_installs_requirements_is_the_one_networked_job(
    manifest: Any, settings: Any
) -> None:
    """A product whose script-mode code ships a requirements.txt trains with the network on
    (the framework container installs it from the index); nothing else changes."""
    if script_mode(manifest) is None:
        return
    code = manifest.model.code.model_copy(
        update={"dependencies": (*manifest.model.code.dependencies, "ml/requirements.txt")}
    )
    needs = manifest.model_copy(
        update={"model": manifest.model.model_copy(update={"code": code}), "tracking": None}
    )
    plain = replace(settings, tracking_uri=None, tracking_code_uri=None)
    assert networked_jobs(build(needs, plain)) == ["Train"]


def test_the_sdk_tables_give_no_digest_to_pin() -> None:
    """images.py pins by tag because the SDK's image tables hold no digest: the day one does,
    this fails and the images are pinned by it."""
    from pathlib import Path

    import sagemaker.core

    tables = Path(sagemaker.core.__file__).parent / "image_uri_config"
    names = sorted(tables.glob("*.json"))
    assert len(names) > 50
    for table in names:
        text = table.read_text()
        assert "sha256:" not in text, table.name
        assert '"digest"' not in text.lower(), table.name


def volume_keys(body: dict[str, Any]) -> dict[str, Any]:
    """Each training and processing step's volume key (None: none asked)."""
    found: dict[str, Any] = {}
    for step in body["Steps"]:
        arguments = step.get("Arguments", {})
        if "ResourceConfig" in arguments:
            found[step["Name"]] = arguments["ResourceConfig"].get("VolumeKmsKeyId")
        elif "ProcessingResources" in arguments:
            cluster = arguments["ProcessingResources"]["ClusterConfig"]
            found[step["Name"]] = cluster.get("VolumeKmsKeyId")
    return found


def test_job_volumes_take_the_key_unless_the_instances_keep_them_on_instance_storage(
    manifest: Any, settings: Any, body: dict[str, Any]
) -> None:
    """SageMaker refuses a VolumeKmsKeyId on an instance type with local storage (training's
    ResourceConfig, processing's ClusterConfig): a product training on ml.g5 and processing on
    ml.m5d gets none there, and every example's jobs get the product key."""
    keys = volume_keys(body)
    assert keys
    assert set(keys.values()) == {settings.kms_key_arn}
    model = manifest.model.model_copy(
        update={
            "training_instance_type": "ml.g5.2xlarge",
            "processing_instance_type": "ml.m5d.xlarge",
        }
    )
    on_nvme = volume_keys(build(manifest.model_copy(update={"model": model}), settings))
    assert on_nvme.keys() == keys.keys()
    assert set(on_nvme.values()) == {None}
