"""Experiment tracking (issue 33, item 1): the manifest's `tracking`, the pipeline's logging
jobs and their permissions, and the scripts logging to a local file-based MLflow store for
every example product (preprocess, training, evaluate: what the pipeline's jobs do)."""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mlgate.infra.ml import tracking as infra
from mlgate.infra.ml.pipeline import (
    TRACKING_FILE,
    TRACKING_METADATA,
    definition,
    script_mode,
)
from mlgate.manifest import Algorithm, ManifestError
from mlgate.manifest.loading import parse_manifest
from mlgate.manifest.tracking import Tracking
from mlgate.runtime.ml import script_mode_entry
from mlgate.runtime.ml import tracking as runtime
from tools import rehearsal_tracking

from ..conftest import ROOT
from .conftest import pipeline_settings

# MLflow's usage telemetry off, as the jobs have it (mlgate/runtime/ml/tracking.py): its thread
# reaches for the network on import and can hold the import lock meanwhile.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# --- the manifest ------------------------------------------------------------------------------


def with_tracking(manifest: Any, **tracking: Any) -> Any:
    """The product with a tracking section, checked as a manifest file would be."""
    raw = yaml.safe_load((manifest.folder / "manifest.yaml").read_text())
    raw["tracking"] = tracking
    return parse_manifest(raw, manifest.folder / "manifest.yaml")


def server(manifest: Any, kind: str = "mlflow-tracking-server/shared") -> str:
    home = manifest.environments.staging
    return f"arn:aws:sagemaker:{home.region}:{home.account}:{kind}"


def test_tracking_names_one_server_and_what_the_jobs_need(manifest: Any) -> None:
    assert manifest.model_copy(update={"tracking": None}).experiment == manifest.product.name
    named = with_tracking(manifest, uri="https://mlflow.example.org", experiment="team-x")
    assert (named.tracking.kind, named.experiment) == ("uri", "team-x")
    assert Tracking(create=True).kind == "create"
    app = Tracking(server_arn=server(manifest, "mlflow-app/app-1"), artifact_store_uri="s3://b-1/a")
    assert app.is_app
    assert app.kind == "server_arn"
    broken = {
        "name one tracking server": {"create": True, "uri": "https://x.example.org"},
        "got none": {},
        "give its ArtifactStoreUri": {"server_arn": server(manifest)},
        "mlgate chooses the store": {"create": True, "artifact_store_uri": "s3://b-1/a"},
        "only a server mlgate creates takes a size": {"uri": "https://x.org", "size": "Large"},
    }
    for message, section in broken.items():
        with pytest.raises(ValueError, match=message):
            Tracking(**section)
    # Across sections: the server lives where the pipeline runs.
    foreign = server(manifest).replace(manifest.environments.staging.account, "999999999999")
    with pytest.raises(ManifestError, match=r"tracking\.server_arn: the server is in account 9"):
        with_tracking(manifest, server_arn=foreign, artifact_store_uri="s3://b-1/a")


# --- permissions: the actions SageMaker's MLflow documentation lists, on the server ------------

DOCUMENTED_TRACKING_SERVER_ACTIONS = frozenset(
    "sagemaker-mlflow:" + a
    for a in [
        "AccessUI",
        "CreateExperiment",
        "SearchExperiments",
        "GetExperiment",
        "GetExperimentByName",
        "DeleteExperiment",
        "RestoreExperiment",
        "UpdateExperiment",
        "CreateRun",
        "DeleteRun",
        "RestoreRun",
        "GetRun",
        "LogMetric",
        "LogBatch",
        "LogModel",
        "LogInputs",
        "SetExperimentTag",
        "SetTag",
        "DeleteTag",
        "LogParam",
        "GetMetricHistory",
        "SearchRuns",
        "ListArtifacts",
        "UpdateRun",
    ]
)
"""The run and experiment actions of "IAM actions supported for MLflow"
(https://docs.aws.amazon.com/sagemaker/latest/dg/mlflow-create-tracking-server-iam.html)."""
DOCUMENTED_APP_ACTIONS = frozenset({"sagemaker:CallMlflowAppApi"})
"""MLflow Apps' one data-plane action (https://docs.aws.amazon.com/sagemaker/latest/dg/
mlflow-app-setup-prerequisites-iam.html)."""


def overreach(statements: list[infra.Statement], arn: str, app: bool) -> list[str]:
    """Statements on the server that grant an undocumented or destructive action, a wildcard,
    or reach anything but the server."""
    allowed = DOCUMENTED_APP_ACTIONS if app else DOCUMENTED_TRACKING_SERVER_ACTIONS
    found = []
    for s in statements:
        if not any("mlflow" in a or "Mlflow" in a for a in s.actions):
            continue
        for action in s.actions:
            if (
                action not in allowed
                or "*" in action
                or action.split(":")[1].startswith(("Delete", "Restore"))
            ):
                found.append(action)
        if s.resources != (arn,):
            found.append(f"resources {s.resources}")
    return found


def test_the_pipeline_role_gets_the_documented_calls_its_jobs_make_on_the_server(
    manifest: Any,
) -> None:
    home = manifest.environments.staging
    created = with_tracking(manifest, create=True)
    arn = infra.server_arn(created, home.region, home.account)
    assert arn == server(manifest, f"mlflow-tracking-server/mlgate-{manifest.product.name}")
    statements = infra.pipeline_statements(created, home.region, home.account)
    # Its artifacts are under the training prefix the role writes already: one statement.
    assert [s.resources for s in statements] == [(arn,)]
    assert overreach(statements, arn, app=False) == []
    assert {"sagemaker-mlflow:CreateRun", "sagemaker-mlflow:LogBatch"} <= set(statements[0].actions)
    store = infra.artifact_store(created, "artifacts-bucket", "training/x")
    assert store == "s3://artifacts-bucket/training/x/mlflow"

    existing = with_tracking(
        manifest, server_arn=server(manifest), artifact_store_uri="s3://team-store/runs/"
    )
    statements = infra.pipeline_statements(existing, home.region, home.account)
    assert overreach(statements, server(manifest), app=False) == []
    assert statements[1:] == [
        infra.Statement(("s3:PutObject", "s3:GetObject"), ("arn:aws:s3:::team-store/runs/*",)),
        infra.Statement(("s3:ListBucket",), ("arn:aws:s3:::team-store",)),
    ]
    app_arn = server(manifest, "mlflow-app/app-1")
    app = with_tracking(manifest, server_arn=app_arn, artifact_store_uri="s3://team-store")
    statements = infra.pipeline_statements(app, home.region, home.account)
    assert statements[0] == infra.Statement(("sagemaker:CallMlflowAppApi",), (app_arn,))
    assert overreach(statements, app_arn, app=True) == []
    other = with_tracking(manifest, uri="https://mlflow.example.org")
    assert infra.pipeline_statements(other, home.region, home.account) == []
    assert infra.tracking_uri(other, home.region, home.account) == "https://mlflow.example.org"

    # The check fails on what it must refuse.
    broad = [infra.Statement(("sagemaker-mlflow:*",), ("*",))]
    assert overreach(broad, arn, app=False) == ["sagemaker-mlflow:*", "resources ('*',)"]
    deletes = [infra.Statement(("sagemaker-mlflow:DeleteRun",), (arn,))]
    assert overreach(deletes, arn, app=False) == ["sagemaker-mlflow:DeleteRun"]
    assert overreach(statements, arn, app=False) != []  # an App's action on a tracking server


def test_a_created_server_s_role_reaches_its_store_only() -> None:
    statements = infra.server_statements("arn:aws:s3:::bucket-a", "training/p")
    objects = "arn:aws:s3:::bucket-a/training/p/mlflow/*"
    assert statements == [
        infra.Statement(("s3:GetObject", "s3:PutObject"), (objects,)),
        infra.Statement(("s3:ListBucket", "s3:GetBucketLocation"), ("arn:aws:s3:::bucket-a",)),
    ]


def test_the_templates_carry_the_declared_server_and_its_permissions(
    product: Any, synth: Any
) -> None:
    """Every example, from the shared synthesis: with tracking declared, the pipeline role's
    statements on the server and (create) the server itself; without, neither."""
    manifest, stack = product.manifest, product.extra["training"]
    resources = synth.template(stack).to_json()["Resources"]
    servers = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::MlflowTrackingServer"]
    role_policy = next(
        r["Properties"]["PolicyDocument"]["Statement"]
        for key, r in resources.items()
        if key.startswith("ExecutionRoleDefaultPolicy")
    )

    def listed(value: Any) -> tuple[Any, ...]:
        return tuple(value) if isinstance(value, list) else (value,)

    granted = [
        infra.Statement(tuple(sorted(listed(s["Action"]))), listed(s["Resource"]))
        for s in role_policy
    ]
    home = manifest.environments.staging
    for statement in infra.pipeline_statements(manifest, home.region, home.account):
        wanted = dataclasses.replace(statement, actions=tuple(sorted(statement.actions)))
        assert wanted in granted, statement
    if manifest.tracking is None:
        assert servers == []
        assert not [s for s in granted if any("mlflow" in a.lower() for a in s.actions)]
    else:
        assert len(servers) == int(manifest.tracking.create)


# --- the pipeline definition ---------------------------------------------------------------------


def tracked_definition(manifest: Any, **tracking: Any) -> dict[str, Any]:
    home = manifest.environments.staging
    declared = with_tracking(manifest, **(tracking or {"create": True}))
    settings = dataclasses.replace(
        pipeline_settings(declared),
        tracking_uri=infra.tracking_uri(declared, home.region, home.account),
        tracking_code_uri="s3://assets-bucket/7e7e.py",
    )
    return definition(declared, settings)


@pytest.fixture(scope="module")
def created(manifest: Any) -> dict[str, Any]:
    """The product's definition with a tracking server mlgate creates (built once)."""
    return tracked_definition(manifest)


def jobs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Name"]: s for s in body["Steps"] if s["Type"] in ("Processing", "Training")}


def register(body: dict[str, Any]) -> dict[str, Any]:
    def walk(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for step in steps:
            yield step
            for branch in ("IfSteps", "ElseSteps"):
                yield from walk(step.get("Arguments", {}).get(branch, []))

    return next(s for s in walk(body["Steps"]) if s["Type"] == "RegisterModel")


def logging_jobs(body: dict[str, Any], uri: str) -> dict[str, str]:
    """Each job told to log to `uri`, with whether it may reach the server: its name -> what
    is wrong with it ("" when nothing)."""
    found = {}
    for name, step in jobs(body).items():
        args = step["Arguments"]
        environment = args.get("Environment") or {}
        if environment.get("MLFLOW_TRACKING_URI") != uri:
            continue
        isolated = (
            args.get("EnableNetworkIsolation")
            if step["Type"] == "Training"
            else args["NetworkConfig"].get("EnableNetworkIsolation")
        )
        problems = []
        if isolated is not False:
            problems.append("isolated from the server")
        if environment.get("MLGATE_PIPELINE_EXECUTION") != {"Get": "Execution.PipelineExecutionId"}:
            problems.append("no execution to group its run under")
        found[name] = "; ".join(problems)
    return found


def test_the_steps_that_log_reach_the_server_and_nothing_else_changes(
    manifest: Any, created: dict[str, Any]
) -> None:
    body = created
    home = manifest.environments.staging
    arn = infra.server_arn(with_tracking(manifest, create=True), home.region, home.account)
    scripted = script_mode(manifest) is not None
    # A built-in algorithm runs no code of ours: its training stays isolated and untold.
    expected = {"Preprocess": "", "Evaluate": "", **({"Train": ""} if scripted else {})}
    assert logging_jobs(body, arn) == expected
    if not scripted:
        assert jobs(body)["Train"]["Arguments"]["EnableNetworkIsolation"] is True
    evaluate = jobs(body)["Evaluate"]["Arguments"]
    assert evaluate["Environment"]["MLGATE_TRAINING_JOB"] == {"Get": "Steps.Train.TrainingJobName"}
    assert evaluate["Environment"]["MLFLOW_EXPERIMENT_NAME"] == manifest.product.name
    for name, step in (
        ("preprocess", jobs(body)["Preprocess"]),
        ("evaluate", jobs(body)["Evaluate"]),
    ):
        app = step["Arguments"]["AppSpecification"]
        assert app["ContainerEntrypoint"][-1].endswith("/7e7e.py")
        assert app["ContainerArguments"] == [name]
        inputs = {
            i["InputName"]: i["S3Input"]["LocalPath"] for i in step["Arguments"]["ProcessingInputs"]
        }
        assert inputs["script"] == f"/opt/ml/processing/{runtime.SCRIPT_DIR}"

    # The check names a logging job that cannot reach the server.
    broken = copy.deepcopy(body)
    jobs(broken)["Evaluate"]["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] = True
    assert logging_jobs(broken, arn)["Evaluate"] == "isolated from the server"


def test_the_registered_version_links_the_run_evaluate_logged(
    manifest: Any, created: dict[str, Any]
) -> None:
    body = created
    evaluate = jobs(body)["Evaluate"]
    files = {f["PropertyFileName"]: f for f in evaluate["PropertyFiles"]}
    run_file = files["TrackingRun"]
    assert (run_file["OutputName"], run_file["FilePath"]) == ("evaluation", TRACKING_FILE)
    outputs = [o["OutputName"] for o in evaluate["Arguments"]["ProcessingOutputConfig"]["Outputs"]]
    assert "evaluation" in outputs
    metadata = register(body)["Arguments"]["CustomerMetadataProperties"]
    home = manifest.environments.staging
    declared = manifest.model_copy(update={"tracking": Tracking(create=True)})
    assert metadata["mlgate:mlflow-tracking"] == infra.server_arn(
        declared, home.region, home.account
    )
    for key, field in TRACKING_METADATA.items():
        assert metadata[key] == {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.TrackingRun"},
                "Path": field,
            }
        }
    # ...fields the runtime writes (runtime.Tracker.record).
    assert set(TRACKING_METADATA.values()) <= set(runtime.Tracker("evaluate").record())


# --- the scripts, against a local file-based MLflow store --------------------------------------


def curated(manifest: Any, rows: int = 400, seed: int = 3) -> pd.DataFrame:
    """Rows of the product's curated schema, made from the manifest alone."""
    rng = np.random.default_rng(seed)
    schema = manifest.data.curated
    columns: dict[str, Any] = {}
    for column in schema.columns:
        kind = column.type
        if column.name == schema.target_column and kind in ("int", "bigint", "boolean"):
            columns[column.name] = rng.integers(0, 2, rows)
        elif column.values:
            columns[column.name] = rng.choice(list(column.values), rows)
        elif kind == "string":
            columns[column.name] = [f"{column.name}-{i:05d}" for i in range(rows)]
        elif kind in ("int", "bigint"):
            columns[column.name] = rng.integers(0, 24, rows)
        elif kind in ("double", "float"):
            columns[column.name] = rng.gamma(2.0, 10.0, rows) + 1.0
        elif kind == "boolean":
            columns[column.name] = rng.integers(0, 2, rows).astype(bool)
        else:  # date, timestamp
            start = pd.Timestamp("2026-01-01", tz="UTC")
            columns[column.name] = [
                start + pd.Timedelta(seconds=int(s)) for s in rng.integers(0, 10**7, rows)
            ]
    return pd.DataFrame(columns)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlruns")


@pytest.fixture
def tracked_env(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    # MLflow 3 keeps its file store only when asked (it prefers a database backend).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv(runtime.INSTALL, raising=False)


def place_script(base: Path, script: Path) -> None:
    folder = base / runtime.SCRIPT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / script.name).write_bytes(script.read_bytes())


def script_of(manifest: Any, role: str) -> Path:
    own = getattr(manifest.model.code, role)
    if own:
        return Path(manifest.path(own))
    return Path(runtime.__file__).parent / "scripts" / f"{role}.py"


def train(manifest: Any, base: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the training job does: the product's train.py through mlgate's entry (autolog),
    or the built-in XGBoost (no code of ours: nothing logged). Returns its argv."""
    model_dir = base / "trained"
    model_dir.mkdir()
    hyper = manifest.model.hyperparameters
    argv = [arg for k, v in hyper.items() for arg in (f"--{k}", str(v))]
    if manifest.model.algorithm.script_mode:
        monkeypatch.setenv("SM_MODEL_DIR", str(model_dir))
        monkeypatch.setenv("SM_CHANNEL_TRAIN", str(base / "train"))
        monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(base / "validation"))
        saved = sys.argv
        try:
            script_mode_entry.run(Path(manifest.path(manifest.model.code.train)), argv)
        finally:
            sys.argv = saved
    else:
        assert manifest.model.algorithm is Algorithm.XGBOOST
        import xgboost as xgb

        rows = np.loadtxt(base / "train" / "train.csv", delimiter=",", ndmin=2)
        params = {k: v for k, v in hyper.items() if k != "num_round"} | {"nthread": 1}
        booster = xgb.train(params, xgb.DMatrix(rows[:, 1:], label=rows[:, 0]), 5)
        booster.save_model(str(model_dir / "xgboost-model"))
    (base / "model").mkdir()
    with tarfile.open(base / "model" / "model.tar.gz", "w:gz") as tar:
        for file in model_dir.iterdir():
            if file.is_file():
                tar.add(file, arcname=file.name)
    return argv


def describe(manifest: Any, job: str) -> dict[str, Any]:
    """DescribeTrainingJob's answer, in its fields' shape (botocore's model)."""
    return {
        "TrainingJobName": job,
        "HyperParameters": {k: str(v) for k, v in manifest.model.hyperparameters.items()}
        | {"sagemaker_program": "mlgate_entry.py"},
        "FinalMetricDataList": [{"MetricName": "validation:score", "Value": 0.5}],
        "AlgorithmSpecification": {"TrainingImage": "image:1"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "TrainingTimeInSeconds": 61,
        "BillableTimeInSeconds": 61,
    }


@pytest.fixture(scope="module")
def client(store: Path) -> Any:
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(store.as_uri())


def runs_of(client: Any, experiment: str, execution: str) -> dict[str, Any]:
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs(
        [found.experiment_id], filter_string=f"tags.`{runtime.EXECUTION_TAG}` = '{execution}'"
    )
    return {r.data.tags[runtime.STEP_TAG]: r for r in runs}


def test_each_step_logs_to_one_run_per_execution(
    manifest: Any, tmp_path: Path, tracked_env: None, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlgate.infra.product_code import training_contract

    base = tmp_path / "processing"
    (base / "input").mkdir(parents=True)
    curated(manifest).to_parquet(base / "input" / "part-0.parquet")
    (base / "contract").mkdir()
    (base / "contract" / "contract.json").write_text(json.dumps(training_contract(manifest)))
    execution = f"exec-{manifest.product.name}"
    declared = manifest.model_copy(update={"tracking": Tracking(create=True)})
    store = Path(os.environ["MLFLOW_TRACKING_URI"].removeprefix("file://"))
    for key, value in rehearsal_tracking.environment(declared, store, execution).items():
        monkeypatch.setenv(key, value)

    place_script(base, script_of(manifest, "preprocess"))
    runtime.main(["preprocess"], base=base)
    argv = train(manifest, base, monkeypatch)
    for old in (base / runtime.SCRIPT_DIR).iterdir():
        old.unlink()
    place_script(base, script_of(manifest, "evaluate"))
    # The training job as DescribeTrainingJob answers (a local file of its shape).
    (base / "job.json").write_text(json.dumps(describe(manifest, "pipelines-abc-Train-1")))
    monkeypatch.setenv(runtime.TRAINING_JOB, f"file:{base / 'job.json'}")
    runtime.main(["evaluate"], base=base)

    runs = runs_of(client, declared.experiment, execution)
    # MLflow's UI opens the experiment on its training-run pages, not its GenAI traces.
    kind = client.get_experiment_by_name(declared.experiment).tags.get(runtime.EXPERIMENT_KIND)
    assert kind == runtime.MODEL_TRAINING
    assert set(runs) == {"pipeline", "preprocess", "train", "evaluate"}
    parent = runs["pipeline"]
    assert parent.info.status == "FINISHED"
    for step in ("preprocess", "train", "evaluate"):
        assert runs[step].data.tags[runtime.PARENT_TAG] == parent.info.run_id, step
        assert runs[step].info.status == "FINISHED", step

    # preprocess: the splits it wrote and their data-quality summary.
    written = {
        s: len((base / s / f"{s}.csv").read_text().splitlines())
        for s in ("train", "validation", "test")
    }
    metrics = runs["preprocess"].data.metrics
    assert {s: metrics[f"rows_{s}"] for s in written} == written
    quality = client.download_artifacts(
        runs["preprocess"].info.run_id, "data_quality.json", str(tmp_path)
    )
    summary = json.loads(Path(quality).read_text())
    assert summary["splits"]["train"]["rows"] == written["train"]
    assert runs["preprocess"].data.params["problem_type"] == manifest.model.problem_type.value

    # train: the job's hyper-parameters; in script mode autolog's estimator params beside them.
    params = runs["train"].data.params
    assert {k: params[k] for k in manifest.model.hyperparameters} == {
        k: str(v) for k, v in manifest.model.hyperparameters.items()
    }
    assert "sagemaker_program" not in params
    assert runs["train"].data.metrics["validation:score"] == 0.5
    if script_mode(manifest):
        assert argv
        assert len(params) > len(manifest.model.hyperparameters)  # autolog's own

    # evaluate: every metric of the report, and the report itself.
    report = json.loads((base / "evaluation" / "evaluation.json").read_text())
    assert runs["evaluate"].data.metrics == runtime.flatten_report(report)
    assert set(runtime.flatten_report(report)) == {
        m.name.value for m in manifest.metrics.model_metrics
    }
    logged = client.download_artifacts(
        runs["evaluate"].info.run_id, "evaluation.json", str(tmp_path / "e")
    )
    assert json.loads(Path(logged).read_text()) == report

    # The run file the register step reads names the execution's run...
    record = json.loads((base / "evaluation" / TRACKING_FILE).read_text())
    assert record["run_id"] == parent.info.run_id
    assert record["experiment_id"] == parent.info.experiment_id
    # ...which the rehearsal puts on the version and prints, with its URI.
    metadata = rehearsal_tracking.version_metadata(base)
    assert metadata["mlgate:mlflow-run-id"] == parent.info.run_id
    lines = rehearsal_tracking.summary(declared, store, execution)
    assert lines[0].startswith(f"MLflow run {parent.info.run_id} (runs:/{parent.info.run_id})")
    assert lines[-1].endswith(f"mlflow ui --backend-store-uri {store.resolve().as_uri()}")


def run_file_after(tmp_path: Path, work: Any) -> dict[str, str]:
    base = tmp_path / "b"
    runtime.run_step("evaluate", work, base)
    return dict(json.loads((base / "evaluation" / TRACKING_FILE).read_text()))


def test_an_unreachable_server_never_decides_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus-scheme://nowhere")
    done = []
    record = run_file_after(tmp_path, lambda: done.append(1))
    assert done == [1]
    assert record["run_id"].startswith("untracked: ")
    pattern = customer_metadata_pattern()
    assert all(re.fullmatch(pattern, v) for v in record.values()), record
    # The pattern check fails on a raw error text.
    assert not re.fullmatch(pattern, "untracked: MlflowException('bogus')")


def customer_metadata_pattern() -> str:
    """CustomerMetadataValue's pattern in botocore's SageMaker model (letters, separators,
    numbers and _.:/=+-@, 1 to 256), in Python's re for ASCII text."""
    import botocore

    path = Path(botocore.__file__).parent / "data" / "sagemaker" / "2017-07-24"
    shape = json.loads(gzip.decompress((path / "service-2.json.gz").read_bytes()))["shapes"]
    assert (
        shape["CustomerMetadataValue"]["pattern"] == "([\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@]*)${1,256}"
    )
    return r"[A-Za-z0-9 _.:/=+\-@]{1,256}"


def test_a_failing_step_fails_its_runs_and_raises(
    tmp_path: Path, tracked_env: None, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "failing")
    monkeypatch.setenv(runtime.EXECUTION, "exec-failing")

    def broken() -> None:
        raise ValueError("the script's own error")

    with pytest.raises(ValueError, match="the script's own error"):
        runtime.run_step("preprocess", broken, tmp_path)
    runs = runs_of(client, "failing", "exec-failing")
    assert {step: r.info.status for step, r in runs.items()} == {
        "pipeline": "FAILED",
        "preprocess": "FAILED",
    }


def test_without_a_server_nothing_is_logged_and_mlflow_is_not_imported(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from mlgate.runtime.ml import tracking as t\n"
        "done = []; t.run_step('preprocess', lambda: done.append(1), Path(sys.argv[1]))\n"
        "assert done == [1] and 'mlflow' not in sys.modules, sorted(sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=env, check=True)
    assert list(tmp_path.iterdir()) == []
    assert not runtime.enabled({})
    assert runtime.enabled({"MLFLOW_TRACKING_URI": "file:/x"})


def test_the_client_installed_in_each_image_takes_its_python() -> None:
    dev = re.search(r"^mlflow-skinny==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert dev is not None
    # The newest Pythons run what the tests run.
    assert runtime.client_pins((3, 12))[0] == f"mlflow-skinny=={dev[1]}"
    assert runtime.client_pins((3, 9)) == ["mlflow-skinny==3.1.4", runtime.PLUGIN_PIN]
    assert runtime.client_pins((3, 8))[0] == "mlflow-skinny==2.17.2"
    with pytest.raises(RuntimeError, match=r"3\.8 or later"):
        runtime.client_pins((3, 7))


def test_the_hyper_parameters_the_training_toolkit_passes_are_read() -> None:
    argv = [
        "--max-iter",
        "150",
        "--learning-rate",
        "0.1",
        "--flag",
        "--objective",
        "binary:logistic",
    ]
    assert runtime.hyperparameters(argv) == {
        "max-iter": "150", "learning-rate": "0.1", "objective": "binary:logistic"
    }  # fmt: skip


def test_the_jobs_get_the_tracking_entry_when_tracking_is_declared(
    manifest: Any, tmp_path: Path
) -> None:
    """The processing steps' entry point is an asset of its own; a script-mode sourcedir.tar.gz
    carries it beside mlgate's entry, which loads it by that name."""
    from mlgate.infra.stacks.training import product_code

    declared = with_tracking(manifest, create=True)
    files = product_code(declared, tmp_path / "tracked")
    assert files["tracking"] == Path(runtime.__file__)
    plain = product_code(manifest.model_copy(update={"tracking": None}), tmp_path / "plain")
    assert "tracking" not in plain
    if script_mode(manifest):
        with tarfile.open(files["train"]) as tar:
            names = set(tar.getnames())
        assert {script_mode_entry.TRACKING_MODULE, "mlgate_entry.py"} <= names
        with tarfile.open(plain["train"]) as tar:
            assert script_mode_entry.TRACKING_MODULE not in tar.getnames()
