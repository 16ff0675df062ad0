"""The training pipeline, authored with the SageMaker Python SDK (v3) and built offline.

preprocess -> train (built-in XGBoost, a framework container running the product's train.py,
or the product's image) -> evaluate -> data-quality baseline -> one condition per manifest
model metric -> register the model version (PendingManualApproval) with its artifacts; a
metric that falls short ends the run in a FailStep that names it.

`definition()` runs at synth time. It never reaches the network: role validation and
telemetry are off, every S3 location is explicit, image URIs come from the SDK's bundled
region tables, and the boto session carries a region and placeholder credentials (the SDK
creates clients, which do not connect until called; `tests/ml` proves no socket is opened).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlgate.infra.instance_storage import volume_key
from mlgate.infra.ml.images import image_uris
from mlgate.infra.naming import Names
from mlgate.manifest import Algorithm, Direction, Manifest, MonitoringEngine

__all__ = ["image_uris"]

# Evaluation report: SageMaker's model-quality JSON layout, so Studio shows the metrics.
REPORT_FILE = "evaluation.json"
PROPERTY_FILE = "EvaluationReport"
STEP_PREPROCESS = "Preprocess"
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_BASELINE = "DataQualityBaseline"
STEP_REGISTER = "RegisterModelVersion"
PROCESSING = "/opt/ml/processing"


def metric_json_path(manifest: Manifest, metric: str) -> str:
    """Where evaluate.py writes a metric, and where the condition step reads it."""
    return f"{manifest.model.problem_type.report_section}.{metric}.value"


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the definition needs that is not in the manifest (all explicit, no lookups)."""

    region: str
    role_arn: str
    bucket: str
    """Artifact bucket: code, splits, models, reports and baselines live under `prefix`."""
    prefix: str
    kms_key_arn: str
    curated_s3_uri: str
    preprocess_code_uri: str
    evaluate_code_uri: str
    contract_uri: str
    """The training contract JSON (mlgate.infra.product_code.training_contract) the scripts read."""
    train_source_uri: str | None
    """Script mode: the product's train.py and its dependencies as a sourcedir.tar.gz."""
    model_package_group: str
    manifest_sha256: str
    code_sha256: str
    tracking_uri: str | None = None
    """The manifest's tracking server: its ARN (a stand-in for one mlgate creates) or URI."""
    tracking_code_uri: str | None = None
    """mlgate/runtime/ml/tracking.py: with tracking, the processing steps' entry point, which
    runs the step's script (then an input of its own) and logs it."""


def _quiet_sdk_logs() -> None:
    """The SDK gives its modules their own loggers and levels; raise them all to ERROR."""
    names = [n for n in logging.root.manager.loggerDict if n.startswith("sagemaker")]
    for name in ["sagemaker", "sagemaker.config", "botocore.credentials", *names]:
        logging.getLogger(name).setLevel(logging.ERROR)


SDK_DEFAULTS = Path(__file__).with_name("sdk-defaults.yaml")
"""The SDK's defaults config that turns its telemetry off (the file says why)."""
TELEMETRY_TESTED = ("sagemaker-core", "2.27.0")
"""The SDK version whose telemetry hook `_no_telemetry` replaces (a private name)."""


@contextlib.contextmanager
def _no_telemetry() -> Iterator[None]:
    """The SDK sends nothing while mlgate builds a definition.

    Its documented switch is `TelemetryOptOut` in its defaults config, which it reads from an
    admin and a user path, each overridable by an environment variable
    (https://sagemaker.readthedocs.io/en/stable/api/utility/config.html). But the SDK checks a
    non-empty config against its whole JSON schema at every lookup (a quarter of a second each,
    dozens per definition: 2 s of build became 9 s). So with the SDK version this was tested
    with, its config is empty (both paths point at /dev/null, so no machine's own defaults,
    such as a default KMS key or subnets, reach a template either) and its telemetry hook is
    replaced for the build; with any other version the documented switch is used instead,
    slower and just as silent (tests/ml/test_pipeline_definition.py checks both)."""
    from importlib.metadata import version

    from sagemaker.core.telemetry import telemetry_logging

    package, tested = TELEMETRY_TESTED
    hook = "_send_telemetry_request"
    fast = version(package) == tested and callable(getattr(telemetry_logging, hook, None))
    config = os.devnull if fast else str(SDK_DEFAULTS)
    os.environ["SAGEMAKER_ADMIN_CONFIG_OVERRIDE"] = config
    os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = config
    if not fast:
        yield
        return
    send = getattr(telemetry_logging, hook)
    setattr(telemetry_logging, hook, lambda *args, **kwargs: None)
    try:
        yield
    finally:
        setattr(telemetry_logging, hook, send)


def _offline_environment(region: str) -> None:
    _quiet_sdk_logs()
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    # Placeholders so botocore can build clients; the SDK never calls them while building.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "offline-synth")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "offline-synth")


CODE_CHANNEL = "code"
CODE_CHANNEL_DIR = f"/opt/ml/input/data/{CODE_CHANNEL}"
"""Where a training job finds its `code` channel (the sourcedir.tar.gz in script mode)."""


def installs_requirements(manifest: Manifest) -> bool:
    """The product's script-mode code ships a requirements.txt, which the framework container
    pip-installs from the package index when training starts: the one job that needs the
    network."""
    return script_mode(manifest) is not None and any(
        d.rsplit("/", 1)[-1] == "requirements.txt" for d in manifest.model.code.dependencies
    )


ENTRY_SCRIPT = "mlgate_entry.py"
"""mlgate/runtime/ml/script_mode_entry.py, as the sourcedir.tar.gz holds it."""
SERVING_CODE_DIR = "/opt/ml/model/code"


def script_mode(manifest: Manifest) -> str | None:
    """The product's script-mode entry point's file name, or None when it brings no script."""
    train = manifest.model.code.train
    if not manifest.model.algorithm.script_mode or train is None:
        return None
    return train.rsplit("/", 1)[-1]


TRACKING_FILE = "mlflow-run.json"
"""Beside evaluation.json: the run evaluate logged to (mlgate/runtime/ml/tracking.py)."""
TRACKING_PROPERTY_FILE = "TrackingRun"
TRACKING_SCRIPT_DIR = "mlgate-script"
TRACKING_MODULE = "mlgate_tracking.py"
"""mlgate/runtime/ml/tracking.py, as the script-mode sourcedir.tar.gz holds it."""
TRACKING_METADATA = {
    "mlgate:mlflow-run-id": "run_id",
    "mlgate:mlflow-experiment-id": "experiment_id",
}
"""Customer metadata of the registered version, from evaluate's mlflow-run.json; with
mlgate:mlflow-tracking (the server), what a gate brief links."""


def tracked(manifest: Manifest) -> bool:
    """The manifest declares a tracking server: the steps log to it."""
    return manifest.tracking is not None


def tracking_environment(manifest: Manifest, tracking_uri: str) -> dict[str, str]:
    """What every logging job is told (mlgate/runtime/ml/tracking.py reads it): MLflow's own
    variables, the client to install, and (added per job) the execution that groups the steps."""
    return {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_EXPERIMENT_NAME": manifest.experiment,
        "MLGATE_MLFLOW_INSTALL": "index",
    }


CACHE_FILE = Path(".mlgate") / "pipeline-definition.json"
"""Beside the product's manifest: the last definition built, with the key it was built for."""
SDK_DISTRIBUTIONS = ("sagemaker-core", "sagemaker-train", "sagemaker-mlops", "sagemaker-serve")


def definition_key(manifest: Manifest, s: PipelineSettings) -> str:
    """Everything a definition is built from: the manifest, the settings (whose code URIs carry
    the scripts' content hashes), this module and the SDK's versions."""
    from importlib.metadata import PackageNotFoundError, version

    sha = hashlib.sha256()
    sha.update(manifest.model_dump_json().encode())
    sha.update(json.dumps(asdict(s), sort_keys=True).encode())
    sha.update(Path(__file__).read_bytes())
    sha.update(Path(volume_key.__code__.co_filename).read_bytes())  # which types take a key
    for dist in SDK_DISTRIBUTIONS:
        try:
            sha.update(f"{dist}=={version(dist)}".encode())
        except PackageNotFoundError:
            sha.update(f"{dist} missing".encode())
    return sha.hexdigest()


def cached_definition(manifest: Manifest, s: PipelineSettings) -> dict[str, Any]:
    """The definition from the product's cache when it was built from the same inputs, else
    built with the SDK (seconds) and cached. `make test` rebuilds every cached definition with
    the SDK and fails on any difference; MLGATE_PIPELINE_CACHE=off bypasses the cache."""
    if os.environ.get("MLGATE_PIPELINE_CACHE") == "off":
        return definition(manifest, s)
    key = definition_key(manifest, s)
    path = manifest.path(str(CACHE_FILE))
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            found: dict[str, Any] = cached["definition"]
            return found
    except (OSError, ValueError, KeyError):
        pass
    body = definition(manifest, s)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(
        json.dumps({"key": key, "settings": asdict(s), "definition": body}, indent=1,
                   sort_keys=True) + "\n"
    )  # fmt: skip
    partial.replace(path)  # atomic: parallel synths never read half a file
    return body


def definition(manifest: Manifest, s: PipelineSettings) -> dict[str, Any]:
    """The pipeline definition JSON, as CloudFormation's PipelineDefinitionBody takes it."""
    # The SDK logs every default it applies; a synth only needs to hear about problems.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        _offline_environment(s.region)
        with _no_telemetry():
            return _definition(manifest, s)
    finally:
        logging.disable(previous)


def _training_description(manifest: Manifest) -> str:
    model = manifest.model
    if model.algorithm is Algorithm.XGBOOST:
        return f"Built-in XGBoost {model.version} with the manifest's hyper-parameters"
    if model.algorithm is Algorithm.CUSTOM_IMAGE:
        return "The product's training image with the manifest's hyper-parameters"
    return f"{model.code.train} in the {model.algorithm.value} {model.version} container"


def _definition(manifest: Manifest, s: PipelineSettings) -> dict[str, Any]:
    import boto3
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.model_monitor.dataset_format import DatasetFormat
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import (
        OutputDataConfig,
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
        StoppingCondition,
    )
    from sagemaker.core.training.configs import CheckpointConfig, Compute, InputData, Networking
    from sagemaker.core.workflow.conditions import (
        ConditionGreaterThanOrEqualTo,
        ConditionLessThanOrEqualTo,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.quality_check_step import (
        DataQualityCheckConfig,
        QualityCheckStep,
    )
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.model_trainer import ModelTrainer

    # The SDK logs every default it applies and warns that a PipelineSession starts no jobs;
    # a synth only needs to hear about problems.
    _quiet_sdk_logs()
    warnings.filterwarnings("ignore", message="Running within a PipelineSession")
    session = PipelineSession(
        boto_session=boto3.Session(region_name=s.region), default_bucket=s.bucket
    )
    # The SDK checks (over the network) that a default bucket it chose itself exists; ours is
    # the product's artifact bucket, created by the foundation stack, so mark it as known.
    session._default_bucket = s.bucket
    images = image_uris(manifest, s.region)
    model = manifest.model
    run = f"s3://{s.bucket}/{s.prefix}"

    def out(*parts: str) -> Any:
        return Join(on="/", values=[run, ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])

    def s3_in(name: str, uri: Any, local: str) -> Any:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=uri, local_path=local, s3_data_type="S3Prefix", s3_input_mode="File"
            ),
        )

    def s3_out(name: str, local: str) -> Any:
        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=out(name), local_path=local, s3_upload_mode="EndOfJob"
            ),
        )

    # Every job runs with network isolation: it reads its inputs and writes its outputs
    # through SageMaker, which downloads and uploads them, and calls nothing itself
    # (https://docs.aws.amazon.com/sagemaker/latest/dg/mkt-algo-model-internet-free.html).
    # The exceptions: training a product that ships a requirements.txt (the framework
    # container pip-installs it from the package index when training starts), and, with a
    # tracking server, the jobs that log to it (preprocess, evaluate, a script-mode training):
    # an isolated container "can't make any outbound network calls, even to other AWS
    # services" (same page), and the server is an HTTPS endpoint; they install MLflow's client
    # from the package index at start (mlgate/runtime/ml/tracking.py). A built-in algorithm's
    # training runs no code of ours and stays isolated.
    isolated = NetworkConfig(enable_network_isolation=True, encrypt_inter_container_traffic=True)
    networked = NetworkConfig(enable_network_isolation=False, encrypt_inter_container_traffic=True)
    tracking: dict[str, Any] = {}
    if tracked(manifest):
        if s.tracking_uri is None or s.tracking_code_uri is None:
            raise ValueError("tracking needs the server's URI and tracking.py's location")
        tracking = {
            **tracking_environment(manifest, s.tracking_uri),
            "MLGATE_PIPELINE_EXECUTION": ExecutionVariables.PIPELINE_EXECUTION_ID,
            # boto3's region in the job, for evaluate's DescribeTrainingJob.
            "AWS_DEFAULT_REGION": s.region,
        }

    def processor(job: str, env: dict[str, Any] | None = None) -> Any:
        return ScriptProcessor(
            image_uri=images["model"],
            command=["python3"],
            role=s.role_arn,
            instance_type=model.processing_instance_type,
            instance_count=1,
            base_job_name=f"{manifest.product.name}-{job}",
            volume_kms_key=volume_key(model.processing_instance_type, s.kms_key_arn),
            output_kms_key=s.kms_key_arn,
            sagemaker_session=session,
            network_config=networked if tracking else isolated,
            env=env or None,
        )

    def step_code(step: str, script_uri: str) -> dict[str, Any]:
        """The step's script as the job's code, or with tracking, tracking.py running it."""
        if not tracking:
            return {"code": script_uri, "inputs": []}
        return {
            "code": s.tracking_code_uri,
            "inputs": [s3_in("script", script_uri, f"{PROCESSING}/{TRACKING_SCRIPT_DIR}")],
            "arguments": [step],
        }

    preprocess_code = step_code("preprocess", s.preprocess_code_uri)
    preprocess = ProcessingStep(
        name=STEP_PREPROCESS,
        description="Split curated data by time into train / validation / test; write the "
        "monitoring baseline dataset",
        step_args=processor("preprocess", tracking).run(
            code=preprocess_code["code"],
            inputs=[
                s3_in("curated", s.curated_s3_uri, f"{PROCESSING}/input"),
                s3_in("contract", s.contract_uri, f"{PROCESSING}/contract"),
                *preprocess_code["inputs"],
            ],
            outputs=[
                s3_out(name, f"{PROCESSING}/{name}")
                for name in ("train", "validation", "test", "baseline")
            ],
            arguments=preprocess_code.get("arguments"),
        ),
    )

    def split(name: str) -> Any:
        return preprocess.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    # Script mode as SageMaker's framework containers read it: the program and the
    # sourcedir.tar.gz it is in, as hyper-parameters (https://github.com/aws/
    # sagemaker-training-toolkit, sagemaker_program / sagemaker_submit_directory). mlgate's entry
    # runs the product's script, then puts the code into the model artifact for serving.
    # Under network isolation the container cannot fetch the sourcedir.tar.gz from S3 itself:
    # it arrives as the `code` channel, and the training toolkit extracts a local tar.gz as it
    # would a downloaded one (sagemaker_training/files.py, download_and_extract).
    program = script_mode(manifest)
    hyperparameters = {k: str(v) for k, v in model.hyperparameters.items()}
    environment: dict[str, str] = {}
    channels = [
        InputData(channel_name=c, data_source=split(c), content_type="text/csv")
        for c in ("train", "validation")
    ]
    if program is not None:
        if s.train_source_uri is None:
            raise ValueError("script mode needs the sourcedir.tar.gz's location")
        hyperparameters["sagemaker_program"] = ENTRY_SCRIPT
        hyperparameters["sagemaker_submit_directory"] = (
            f"{CODE_CHANNEL_DIR}/{s.train_source_uri.rsplit('/', 1)[-1]}"
        )
        hyperparameters["sagemaker_region"] = s.region
        environment["MLGATE_PROGRAM"] = program
        channels.append(InputData(channel_name=CODE_CHANNEL, data_source=s.train_source_uri))
        environment.update(tracking)
    training_isolated = not installs_requirements(manifest) and not (tracking and program)
    # Managed spot training: the job may wait for spot capacity and be interrupted; SageMaker
    # restarts it within MaxWaitTimeInSeconds (waiting included, at least MaxRuntimeInSeconds)
    # and copies /opt/ml/checkpoints to and from checkpoint_s3_uri, so an algorithm that
    # checkpoints resumes where it stopped: built-in XGBoost does; a script-mode train.py
    # resumes only when it writes and reads /opt/ml/checkpoints itself, otherwise it starts
    # over (https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html,
    # https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html).
    cost = manifest.cost
    runtime = round(cost.training_hours_per_run * 3600)
    spot = cost.use_spot
    stopping = StoppingCondition(
        max_runtime_in_seconds=runtime,
        **({"max_wait_time_in_seconds": round(cost.max_wait_hours * 3600)} if spot else {}),
    )
    checkpoints = (
        CheckpointConfig(s3_uri=out("checkpoints"), local_path="/opt/ml/checkpoints")
        if spot
        else None
    )
    trainer = ModelTrainer(
        training_image=images["model"],
        role=s.role_arn,
        base_job_name=f"{manifest.product.name}-train",
        compute=Compute(
            instance_type=model.training_instance_type,
            instance_count=model.training_instance_count,
            volume_kms_key_id=volume_key(model.training_instance_type, s.kms_key_arn),
            enable_managed_spot_training=spot or None,
        ),
        stopping_condition=stopping,
        checkpoint_config=checkpoints,
        hyperparameters=hyperparameters,
        environment=environment or None,
        output_data_config=OutputDataConfig(
            s3_output_path=f"{run}/models", kms_key_id=s.kms_key_arn
        ),
        networking=Networking(
            enable_network_isolation=training_isolated,
            enable_inter_container_traffic_encryption=True,
        ),
        sagemaker_session=session,
    )
    train = TrainingStep(
        name=STEP_TRAIN,
        description=_training_description(manifest),
        step_args=trainer.train(input_data_config=channels),
    )
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts

    report = PropertyFile(name=PROPERTY_FILE, output_name="evaluation", path=REPORT_FILE)
    # Evaluate logs the training job as SageMaker describes it (its hyper-parameters and final
    # metrics): the one record of a built-in algorithm's training.
    evaluate_env = {**tracking, "MLGATE_TRAINING_JOB": train.properties.TrainingJobName}
    evaluate_code = step_code("evaluate", s.evaluate_code_uri)
    run_file = PropertyFile(
        name=TRACKING_PROPERTY_FILE, output_name="evaluation", path=TRACKING_FILE
    )
    evaluate = ProcessingStep(
        name=STEP_EVALUATE,
        description="Every manifest model metric on the held-out test split",
        step_args=processor("evaluate", evaluate_env if tracking else None).run(
            code=evaluate_code["code"],
            inputs=[
                s3_in("model", model_data, f"{PROCESSING}/model"),
                s3_in("test", split("test"), f"{PROCESSING}/test"),
                s3_in("contract", s.contract_uri, f"{PROCESSING}/contract"),
                *evaluate_code["inputs"],
            ],
            outputs=[s3_out("evaluation", f"{PROCESSING}/evaluation")],
            arguments=evaluate_code.get("arguments"),
        ),
        property_files=[report, run_file] if tracking else [report],
    )
    # The run is linked from the version: its id and experiment, read from evaluate's
    # mlflow-run.json as a property file (https://docs.aws.amazon.com/sagemaker/latest/dg/
    # build-and-manage-propertyfile.html; JsonGet in a later step's arguments, as the Fail
    # steps' messages use it: https://github.com/aws/sagemaker-python-sdk/issues/2426), and
    # the server, known now. The parent run is also named after the execution, which
    # mlgate:pipeline-execution names.
    run_link: dict[str, Any] = {}
    if tracking:
        run_link = {
            key: JsonGet(step_name=STEP_EVALUATE, property_file=run_file, json_path=field)
            for key, field in TRACKING_METADATA.items()
        }
        run_link["mlgate:mlflow-tracking"] = s.tracking_uri

    # Model Monitor's analyzer image builds the registered data-quality baseline only where the
    # product watches traffic with Model Monitor, which is closed to new customers
    # (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor.html). Elsewhere no step
    # runs that image: the Evidently job compares traffic with the preprocess's baseline split,
    # registered below as mlgate:baseline-dataset, and no version waits on Model Monitor.
    baseline: Any = None
    data_quality: dict[str, Any] = {}
    if manifest.monitoring.engine is MonitoringEngine.MODEL_MONITOR:
        baseline = QualityCheckStep(
            name=STEP_BASELINE,
            description="Data-quality baseline for Model Monitor, registered with the version",
            quality_check_config=DataQualityCheckConfig(
                baseline_dataset=split("baseline"),
                dataset_format=DatasetFormat.csv(header=True),
                output_s3_uri=out("data-quality-baseline"),
            ),
            check_job_config=CheckJobConfig(
                role=s.role_arn,
                instance_count=1,
                instance_type=model.processing_instance_type,
                volume_kms_key=volume_key(model.processing_instance_type, s.kms_key_arn),
                output_kms_key=s.kms_key_arn,
                sagemaker_session=session,
            ),
            skip_check=True,
            register_new_baseline=True,
            model_package_group_name=s.model_package_group,
            depends_on=[preprocess],
        )
        stats = MetricsSource(
            s3_uri=baseline.properties.CalculatedBaselineStatistics,
            content_type="application/json",
        )
        constraints = MetricsSource(
            s3_uri=baseline.properties.CalculatedBaselineConstraints,
            content_type="application/json",
        )
        data_quality = {
            "model_metrics": {
                "model_data_statistics": stats,
                "model_data_constraints": constraints,
            },
            "drift_check_baselines": DriftCheckBaselines(
                model_data_statistics=stats, model_data_constraints=constraints
            ),
        }

    builder = ModelBuilder(
        s3_model_data_url=model_data,
        image_uri=images["model"],
        role_arn=s.role_arn,
        sagemaker_session=session,
        **(
            {
                "env_vars": {
                    "SAGEMAKER_PROGRAM": program,
                    "SAGEMAKER_SUBMIT_DIRECTORY": SERVING_CODE_DIR,
                    "SAGEMAKER_REGION": s.region,
                }
            }
            if program is not None
            else {}
        ),
    )
    register = ModelStep(
        name=STEP_REGISTER,
        description="Register the version for the ML lead's review (PendingManualApproval)",
        step_args=builder.register(
            model_package_group_name=s.model_package_group,
            approval_status="PendingManualApproval",
            content_types=["text/csv"],
            response_types=["text/csv"],
            inference_instances=sorted(
                {manifest.serving.staging.instance_type, manifest.serving.prod.instance_type}
            ),
            transform_instances=[model.processing_instance_type],
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(
                    s3_uri=Join(on="/", values=[out("evaluation"), REPORT_FILE]),
                    content_type="application/json",
                ),
                **data_quality.get("model_metrics", {}),
            ),
            **(
                {"drift_check_baselines": data_quality["drift_check_baselines"]}
                if data_quality
                else {}
            ),
            customer_metadata_properties={
                "mlgate:product": manifest.product.name,
                "mlgate:manifest-sha256": s.manifest_sha256,
                "mlgate:code-sha256": s.code_sha256,
                "mlgate:pipeline-execution": ExecutionVariables.PIPELINE_EXECUTION_ARN,
                # The Evidently monitor compares live traffic with this dataset
                # (mlgate/runtime/monitoring_job/sources.py reads it from the live version).
                "mlgate:baseline-dataset": Join(on="/", values=[split("baseline"), "baseline.csv"]),
                **{
                    f"mlgate:threshold:{m.name.value}": f"{m.direction.value} {m.threshold}"
                    for m in manifest.metrics.model_metrics
                },
                **run_link,
            },
            description=f"{manifest.product.display_name}: trained by the mlgate pipeline",
        ),
    )

    # One condition per metric, chained, so a failure names exactly the metric that fell short.
    next_step: Any = register
    for metric in reversed(manifest.metrics.model_metrics):
        value = JsonGet(
            step_name=STEP_EVALUATE,
            property_file=report,
            json_path=metric_json_path(manifest, metric.name),
        )
        compare = (
            ConditionGreaterThanOrEqualTo
            if metric.direction is Direction.AT_LEAST
            else ConditionLessThanOrEqualTo
        )
        word = "at least" if metric.direction is Direction.AT_LEAST else "at most"
        name = metric.name.value.replace("_", "-").title().replace("-", "")
        next_step = ConditionStep(
            name=f"Check{name}",
            description=f"{metric.name.value} must be {word} {metric.threshold}",
            conditions=[compare(left=value, right=metric.threshold)],
            if_steps=[next_step],
            else_steps=[
                FailStep(
                    name=f"{name}BelowThreshold",
                    error_message=Join(
                        on=" ",
                        values=[
                            f"{metric.name.value} on the test split is",
                            value,
                            f"but the manifest requires {word} {metric.threshold};",
                            "the model version was not registered.",
                        ],
                    ),
                )
            ],
            # The checks read the evaluation (JsonGet); with Model Monitor, the registration
            # they lead to also needs the baseline.
            depends_on=[baseline] if baseline is not None else None,
        )

    pipeline = Pipeline(
        name=Names.of(manifest).training_pipeline(),
        steps=[step for step in (preprocess, train, evaluate, baseline, next_step) if step],
        sagemaker_session=session,
    )
    result: dict[str, Any] = json.loads(pipeline.definition())
    _drop_empty_environment(result)
    _isolate_checks(result)
    return result


def _isolate_checks(definition: dict[str, Any]) -> None:
    """The baseline step's job runs with network isolation too. Its arguments are a
    CreateProcessingJob request; the SDK cannot serialise a CheckJobConfig's network_config
    into the definition (TypeError: NetworkConfig is not JSON serializable), so it is set here
    in the request's own NetworkConfig."""
    for step in definition["Steps"]:
        if step["Type"] == "QualityCheck":
            step["Arguments"]["NetworkConfig"] = {
                "EnableNetworkIsolation": True,
                "EnableInterContainerTrafficEncryption": True,
            }


def _drop_empty_environment(node: Any) -> None:
    """Remove environment variables the SDK sets to "" (SAGEMAKER_PROGRAM and
    SAGEMAKER_SUBMIT_DIRECTORY on a built-in algorithm's container): an empty SAGEMAKER_PROGRAM
    sends the XGBoost container looking for a user script that does not exist."""
    if isinstance(node, dict):
        environment = node.get("Environment")
        if isinstance(environment, dict):
            for key in [k for k, v in environment.items() if v == ""]:
                del environment[key]
        for value in node.values():
            _drop_empty_environment(value)
    elif isinstance(node, list):
        for value in node:
            _drop_empty_environment(value)
