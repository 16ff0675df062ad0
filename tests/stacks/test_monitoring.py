"""Monitoring stacks: the Evidently monitor by default, Model Monitor only when the manifest
asks for it and only in the Monitoring stack, each on the manifest's schedule, thresholds and
features."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from mlgate.infra.constructs import evidently
from mlgate.infra.constructs.evidently import ENTRYPOINT, PUBLISH_ENTRYPOINT, STAGE_ENTRYPOINT
from mlgate.infra.ml import pipeline
from mlgate.infra.ml.images import monitoring_image
from mlgate.manifest import ENV_NAMES, MonitoringEngine, load_manifests
from mlgate.manifest.schedules import schedule_interval_hours

from ..conftest import EXAMPLES, ROOT, Synth, _synthesize

MODEL_MONITOR_KINDS = (
    "AWS::SageMaker::MonitoringSchedule",
    "AWS::SageMaker::DataQualityJobDefinition",
    "AWS::SageMaker::ModelQualityJobDefinition",
)


def watched(manifest: Any, env: str) -> bool:
    """An environment whose endpoint captures its traffic: every mode but serverless (AWS's
    serverless endpoints have no data capture; the manifest checks refuse monitoring there)."""
    return bool(manifest.monitored(env))


def monitoring(synth: Any, product: Any, env: str) -> Any:
    if not watched(product.manifest, env):
        assert f"monitoring-{env}" not in product.extra, "a serverless endpoint is not watched"
        pytest.skip(f"{env} is serverless: no data capture, so no monitoring stack")
    return synth.template(product.extra[f"monitoring-{env}"])


def steps(template: Any) -> dict[str, dict[str, Any]]:
    """The Processing requests of the Evidently pipeline's steps, by step name, in order."""
    (pipeline,) = template.find_resources("AWS::SageMaker::Pipeline").values()
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in body["Fn::Join"][1])
    found = json.loads(text)["Steps"]
    assert all(step["Type"] == "Processing" for step in found)
    return {step["Name"]: step["Arguments"] for step in found}


def job(template: Any) -> dict[str, Any]:
    """The Processing request of the Evidently step, the one that runs Evidently."""
    return steps(template)[evidently.STEP]


def unisolated_work(requests: dict[str, dict[str, Any]]) -> list[str]:
    """Steps that install the monitoring lock (Evidently and its ~90 pins) or read staged
    prod data, and yet may reach the network: none may."""
    return [
        name
        for name, request in requests.items()
        if ("-r requirements.txt" in request["AppSpecification"]["ContainerEntrypoint"][2]
            or any(i["InputName"] == "staged" for i in request["ProcessingInputs"]))
        and request.get("NetworkConfig", {}).get("EnableNetworkIsolation") is not True
    ]  # fmt: skip


def argument(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


@pytest.mark.parametrize("env", ENV_NAMES)
def test_the_evidently_job_reads_exactly_the_payload_and_the_manifest_thresholds(
    synth: Any, product: Any, env: str
) -> None:
    manifest = product.manifest
    request = job(monitoring(synth, product, env))
    args = request["AppSpecification"]["ContainerArguments"]
    assert argument(args, "--features") == ",".join(manifest.payload_columns)
    assert argument(args, "--drift-threshold") == str(manifest.monitoring.drift_threshold)
    window = schedule_interval_hours(manifest.monitoring.schedule)
    assert argument(args, "--window-hours") == str(window)
    overrides = manifest.monitoring.feature_drift_thresholds
    expected = ",".join(f"{k}={v}" for k, v in overrides.items()) if overrides else None
    assert argument(args, "--feature-thresholds") == expected
    # The drift share counts the product's features: every payload column that is not itself a
    # feature (a one-hot column) is grouped under the feature it carries, as the job reads it.
    from mlgate.runtime.monitoring_job.run import _groups

    groups = _groups(argument(args, "--feature-of") or "")
    for column in manifest.payload_columns:
        carried = [f for f in manifest.features if column.startswith((f"{f}=", f"{f}_"))]
        if column in manifest.features or not carried:
            assert column not in groups, column  # a feature, or a column of its own
        else:
            assert groups[column] == max(carried, key=len), column
    owners = {groups.get(c, c) for c in manifest.payload_columns}
    assert len(owners) < len(manifest.payload_columns) or not groups
    # The isolated step reads what Stage staged, and publishes nothing itself.
    for option in (
        "--capture-s3-uri",
        "--release-parameter",
        "--ground-truth-s3-uri",
        "--namespace",
        "--publish",
    ):
        assert option not in args, option
    assert argument(args, "--release-file") == "/opt/ml/processing/staged/release.json"
    assert str(argument(args, "--capture-dir")).startswith("/opt/ml/processing/staged/")
    requests = steps(monitoring(synth, product, env))
    publish = requests[evidently.PUBLISH_STEP]["AppSpecification"]["ContainerArguments"]
    assert argument(publish, "--namespace") == f"mlgate/{manifest.product.name}"
    assert argument(publish, "--dimensions") == (
        f"Product={manifest.product.name},Environment={env}"
    )
    stage = requests[evidently.STAGE_STEP]["AppSpecification"]["ContainerArguments"]
    assert argument(stage, "--release-parameter") == (
        f"/mlgate/{manifest.product.name}/{env}/live-model-package"
    )
    # A batch environment's monitor reads its runs' predictions, an endpoint's its capture.
    expected = (
        f"/batch/{env}/predictions/"
        if manifest.is_batch(env)
        else f"/datacapture/{env}/mlgate-{manifest.product.name}-{env}/AllTraffic"
    )
    assert str(argument(stage, "--capture-s3-uri")).endswith(expected)
    assert (argument(stage, "--source") == "batch") is manifest.is_batch(env)
    # Baselines come from where the release hook copied the released version, in the home
    # artifact bucket.
    home = manifest.environments.staging
    assert argument(stage, "--released-uri") == (
        f"s3://mlgate-{manifest.product.name}-artifacts-{home.account}-{home.region}"
        f"/released/{manifest.product.name}"
    )
    labelled = manifest.monitoring.ground_truth_s3_uri
    assert argument(stage, "--ground-truth-s3-uri") == labelled
    if labelled:
        metrics = ",".join(m.name.value for m in manifest.metrics.model_metrics)
        assert argument(args, "--metrics") == metrics
        assert argument(args, "--problem-type") == manifest.model.problem_type.value


@pytest.mark.parametrize("env", ENV_NAMES)
def test_the_job_runs_script_mode_in_the_py312_sklearn_image_encrypted(
    synth: Any, product: Any, env: str
) -> None:
    requests = steps(monitoring(synth, product, env))
    stack = product.extra[f"monitoring-{env}"]
    assert list(requests) == [evidently.STAGE_STEP, evidently.STEP, evidently.PUBLISH_STEP]
    entries = {
        evidently.STAGE_STEP: STAGE_ENTRYPOINT,
        evidently.STEP: ENTRYPOINT,
        evidently.PUBLISH_STEP: PUBLISH_ENTRYPOINT,
    }
    for name, request in requests.items():
        app = request["AppSpecification"]
        assert app["ImageUri"] == monitoring_image(stack.region)
        assert app["ContainerEntrypoint"] == ["/bin/bash", "-c", entries[name], "mlgate-monitor"]
        inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
        assert {"code", "wheels"} <= inputs.keys()  # wheels: tests/test_vendored_wheels.py
        assert inputs["code"]["LocalPath"] == "/opt/ml/processing/input/code"
        assert request["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "TOKEN"
        assert request["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
    # Only the Evidently step installs the monitoring lock; Stage and Publish install boto3's
    # closure of it.
    assert "-r requirements.txt" in ENTRYPOINT
    for entry in (STAGE_ENTRYPOINT, PUBLISH_ENTRYPOINT):
        assert f"-r {evidently.AWS_CLIENT_REQUIREMENTS}" in entry
        assert "requirements.txt " not in entry.replace(evidently.AWS_CLIENT_REQUIREMENTS, "")
    monitor = requests[evidently.STEP]
    assert monitor["ProcessingOutputConfig"]["KmsKeyId"] == "TOKEN"
    (report,) = monitor["ProcessingOutputConfig"]["Outputs"]
    values = report["S3Output"]["S3Uri"]["Std:Join"]["Values"]
    assert values[0].endswith(f"/monitoring/{env}/evidently")
    # Each step reads the one before's output: Stage -> Monitor -> Publish.
    staged = {i["InputName"]: i["S3Input"] for i in monitor["ProcessingInputs"]}["staged"]
    assert staged["S3Uri"] == {
        "Get": "Steps.Stage.ProcessingOutputConfig.Outputs['staged'].S3Output.S3Uri"
    }
    (stage_out,) = requests[evidently.STAGE_STEP]["ProcessingOutputConfig"]["Outputs"]
    # Staged copies of capture live under the capture prefix, so they expire with it.
    assert stage_out["S3Output"]["S3Uri"]["Std:Join"]["Values"][0].endswith(
        f"/datacapture/{env}/monitor-staging"
    )
    # Evidently runs on prod's data with no network at all; Stage and Publish call AWS APIs.
    assert monitor["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert unisolated_work(requests) == []
    for name in (evidently.STAGE_STEP, evidently.PUBLISH_STEP):
        assert requests[name]["NetworkConfig"]["EnableNetworkIsolation"] is False


def test_the_isolation_check_catches_a_step_that_reaches_the_network(
    synth: Any, product: Any
) -> None:
    """unisolated_work fails on the broken form: isolation off, or a staged-data reader or
    lock installer moved to a networked step."""
    requests = steps(monitoring(synth, product, "prod"))
    off = json.loads(json.dumps(requests))
    off[evidently.STEP]["NetworkConfig"]["EnableNetworkIsolation"] = False
    assert unisolated_work(off) == [evidently.STEP]
    gone = json.loads(json.dumps(requests))
    del gone[evidently.STEP]["NetworkConfig"]["EnableNetworkIsolation"]
    assert unisolated_work(gone) == [evidently.STEP]
    moved = json.loads(json.dumps(requests))
    moved[evidently.PUBLISH_STEP]["AppSpecification"]["ContainerEntrypoint"][2] = ENTRYPOINT
    assert unisolated_work(moved) == [evidently.PUBLISH_STEP]


def test_the_job_source_holds_the_entry_point_and_the_pinned_requirements(
    synth: Any, product: Any
) -> None:
    import tarfile

    (env,) = [e for e in ENV_NAMES if watched(product.manifest, e)][:1]
    built = sorted(synth.outdir.glob(f"mlgate-build/{product.manifest.product.name}/{env}/*.gz"))
    (path,) = built
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert {"run.py", "sources.py", "drift.py", "window.py", "capture.py", "__init__.py",
            "requirements.txt"} <= names  # fmt: skip
    assert {"stage.py", "publish.py", "script.py", evidently.AWS_CLIENT_REQUIREMENTS} <= names
    assert "evidently==" in requirements


@pytest.mark.parametrize("env", ENV_NAMES)
def test_the_schedule_starts_the_pipeline_on_the_manifest_schedule(
    synth: Any, product: Any, env: str
) -> None:
    manifest = product.manifest
    template = monitoring(synth, product, env)
    name = f"mlgate-{manifest.product.name}-{env}-monitoring"
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": manifest.monitoring.schedule,
            "Targets": [
                Match.object_like(
                    {
                        "Arn": Match.string_like_regexp(f":pipeline/{name}$"),
                        "RoleArn": Match.any_value(),
                    }
                )
            ],
        },
    )
    template.has_resource_properties("AWS::SageMaker::Pipeline", {"PipelineName": name})
    for kind in MODEL_MONITOR_KINDS:
        assert template.find_resources(kind) == {}


@pytest.fixture(scope="module")
def model_monitor(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Every example product with `monitoring.engine: model-monitor`."""
    manifests = [
        m.model_copy(
            update={
                "monitoring": m.monitoring.model_copy(
                    update={"engine": MonitoringEngine.MODEL_MONITOR}
                )
            }
        )
        for m in load_manifests(EXAMPLES)
    ]

    # A changed manifest misses each example's training definition cache, and would rewrite
    # it in the repository or (uncached) build it with the SDK, seconds a product. Nothing
    # here reads the training stack: it gets the example's cached definition as it stands.
    def as_cached(manifest: Any, settings: Any) -> dict[str, Any]:
        cached = json.loads(manifest.path(str(pipeline.CACHE_FILE)).read_text())
        found: dict[str, Any] = cached["definition"]
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "cached_definition", as_cached)
        return _synthesize(manifests, tmp_path_factory.mktemp("model-monitor.out"))


def test_model_monitor_lives_in_the_monitoring_stack_only(model_monitor: Synth) -> None:
    for product in model_monitor.products:
        manifest = product.manifest
        for env in filter(lambda e: watched(manifest, e), ENV_NAMES):
            serving = Template.from_stack(product.extra[f"serving-{env}"])
            watcher = Template.from_stack(product.extra[f"monitoring-{env}"])
            for kind in MODEL_MONITOR_KINDS:
                assert serving.find_resources(kind) == {}
                # Nothing watches or is scheduled on an endpoint that no release has created
                # yet (which kinds exist is checked below: model quality only with ground truth).
                made = watcher.find_resources(kind).values()
                assert all(r.get("Condition") == "Released" for r in made), kind
            assert watcher.find_resources("AWS::SageMaker::Pipeline") == {}
            schedules = watcher.find_resources("AWS::SageMaker::MonitoringSchedule")
            kinds = sorted(
                s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"]
                for s in schedules.values()
            )
            labelled = manifest.monitoring.ground_truth_s3_uri is not None
            assert kinds == (["DataQuality", "ModelQuality"] if labelled else ["DataQuality"])
            for schedule in schedules.values():
                config = schedule["Properties"]["MonitoringScheduleConfig"]
                assert config["ScheduleConfig"]["ScheduleExpression"] == (
                    manifest.monitoring.schedule
                )
            # The baseline of the live version, from the parameters Serving keeps.
            watcher.has_resource_properties(
                "AWS::SageMaker::DataQualityJobDefinition",
                {
                    "NetworkConfig": {
                        "EnableNetworkIsolation": True,
                        "EnableInterContainerTrafficEncryption": True,
                    },
                    "DataQualityBaselineConfig": {
                        "ConstraintsResource": {"S3Uri": {"Ref": "LiveBaselineConstraints"}},
                        "StatisticsResource": {"S3Uri": {"Ref": "LiveBaselineStatistics"}},
                    },
                },
            )
            parameters = watcher.to_json()["Parameters"]
            assert parameters["LiveBaselineStatistics"]["Type"] == (
                "AWS::SSM::Parameter::Value<String>"
            )
            assert parameters["LiveBaselineStatistics"]["Default"] == (
                f"/mlgate/{manifest.product.name}/{env}/live-baseline-statistics"
            )


def test_model_quality_reads_the_prediction_as_aws_expects(model_monitor: Synth) -> None:
    """Binary: the probability with its threshold; the window ends the manifest's ground-truth
    delay before each run. No ground truth: no model-quality monitor at all."""
    for product in model_monitor.products:
        manifest = product.manifest
        found = Template.from_stack(product.extra["monitoring-prod"]).find_resources(
            "AWS::SageMaker::ModelQualityJobDefinition"
        )
        if manifest.monitoring.ground_truth_s3_uri is None:
            assert found == {}
            continue
        (definition,) = found.values()
        endpoint = definition["Properties"]["ModelQualityJobInput"]["EndpointInput"]
        delay = manifest.monitoring.ground_truth_delay_hours
        assert endpoint["EndTimeOffset"] == f"-PT{delay}H"
        assert endpoint["StartTimeOffset"].startswith("-PT")
        if manifest.model.problem_type.value == "binary_classification":
            assert endpoint["ProbabilityAttribute"] == "0"
            assert "InferenceAttribute" not in endpoint


def test_with_model_monitor_its_violations_start_the_responder(model_monitor: Synth) -> None:
    for product in model_monitor.products:
        Template.from_stack(product.extra["serving-prod"]).has_resource_properties(
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


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_the_job_image_is_the_sdk_s_py312_scikit_learn_image(region: str) -> None:
    from sagemaker.core import image_uris

    expected = image_uris.retrieve(
        "sklearn", region=region, version="1.4-2-py312", instance_type="ml.m5.large"
    )
    assert monitoring_image(region) == expected


def test_the_job_arguments_are_built_without_cdk() -> None:
    """The rehearsal builds the job's command line as the Monitoring stack does, without
    starting jsii's Node runtime: mlgate.infra.monitoring_args must not import aws_cdk."""
    code = (
        "import sys\n"
        "from mlgate.manifest import load_manifests\n"
        "from mlgate.infra.monitoring_args import job_arguments\n"
        f"for m in load_manifests({str(EXAMPLES)!r}):\n"
        "    assert '--features' in job_arguments(m, 'staging', capture_uri='s3://b/c')\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('aws_cdk', 'jsii')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"


# --- issue 29: monitors read the baselines of released versions only ------------------------


def home_reads(template: dict[str, Any], manifest: Any) -> list[str]:
    """Every object the monitoring stack's roles may read in the home artifact bucket."""
    home = manifest.environments.staging
    bucket = f"arn:aws:s3:::mlgate-{manifest.product.name}-artifacts-{home.account}-{home.region}"
    reads = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            if not any(a in ("s3:GetObject", "s3:*", "s3:Get*") for a in actions):
                continue
            resources = statement["Resource"]
            for arn in [resources] if isinstance(resources, str) else resources:
                if isinstance(arn, str) and arn.startswith(f"{bucket}/"):
                    reads.append(arn.removeprefix(f"{bucket}/"))
    return reads


def baseline_problems(template: dict[str, Any], manifest: Any, env: str) -> list[str]:
    """The monitor may read baselines under released/<product>/<version>/baseline/ (and, in
    the home account, its own capture, staging and reports), and nothing of any training run."""
    released = f"released/{manifest.product.name}/*/baseline/*"
    reads = home_reads(template, manifest)
    predictions = (f"batch/{env}/predictions/",) if manifest.is_batch(env) else ()
    own = ("datacapture/", "monitoring/", *predictions) if not manifest.is_remote(env) else ()
    problems = [read for read in reads if read != released and not read.startswith(own)]
    if released not in reads:
        problems.append(f"no read of {released}")
    return problems


@pytest.mark.parametrize("env", ENV_NAMES)
def test_the_evidently_monitor_reads_released_baselines_only(
    synth: Any, product: Any, env: str
) -> None:
    template = monitoring(synth, product, env).to_json()
    assert baseline_problems(template, product.manifest, env) == []
    # The broken form: the monitor reads every training run again.
    broken = json.loads(
        json.dumps(template).replace(
            f"/released/{product.manifest.product.name}/*/baseline/*",
            f"/training/{product.manifest.product.name}/*",
        )
    )
    assert baseline_problems(broken, product.manifest, env)


def test_model_monitor_reads_released_baselines_only(model_monitor: Synth) -> None:
    for product in model_monitor.products:
        for env in filter(lambda e: watched(product.manifest, e), ENV_NAMES):
            template = Template.from_stack(product.extra[f"monitoring-{env}"]).to_json()
            assert baseline_problems(template, product.manifest, env) == [], env
