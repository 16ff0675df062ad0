"""Experiment tracking in the rehearsal: the product's preprocess, training and evaluate log to
a local file-based MLflow store, as the pipeline's jobs log to the manifest's tracking server
(mlgate/runtime/ml/tracking.py, the same code), and the rehearsal prints the run.

The store is `<work>/mlruns`; MLflow's UI opens on it (README: `mlflow ui
--backend-store-uri <store>`). A product that declares no `tracking` is rehearsed untracked.
A developer tool, not shipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlgate.infra.ml.pipeline import TRACKING_FILE, TRACKING_METADATA
from mlgate.manifest import Manifest
from mlgate.runtime.ml import tracking as runtime

JOB_FILE = "training-job.json"


def declared(manifest: Manifest) -> bool:
    return manifest.tracking is not None


def store_uri(store: Path) -> str:
    return store.resolve().as_uri()


def environment(manifest: Manifest, store: Path, execution: str) -> dict[str, str]:
    """What the jobs are told in AWS, with the local store for the server; MLflow 3 keeps a
    file store only when asked (it prefers a database), and sends no telemetry."""
    return {
        runtime.TRACKING_URI: store_uri(store),
        runtime.EXPERIMENT: manifest.experiment,
        runtime.EXECUTION: execution,
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def training_job(manifest: Manifest, base: Path, seconds: float) -> dict[str, str]:
    """The local training as DescribeTrainingJob would describe it (the manifest's
    hyper-parameters, its time), written where evaluate reads it: the record of a built-in
    algorithm's training. Returns the environment that names it."""
    description = {
        "TrainingJobName": f"local-{manifest.product.name}",
        "HyperParameters": {k: str(v) for k, v in manifest.model.hyperparameters.items()},
        "FinalMetricDataList": [],
        "AlgorithmSpecification": {"TrainingImage": "local (this machine's packages)"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1},
        "TrainingTimeInSeconds": round(seconds),
    }
    path = base / JOB_FILE
    path.write_text(json.dumps(description, indent=1))
    return {runtime.TRAINING_JOB: f"file:{path.resolve()}"}


def version_metadata(base: Path) -> dict[str, str]:
    """The registered version's customer metadata for the run, as the register step stores it
    from evaluate's mlflow-run.json."""
    record = json.loads((base / "evaluation" / TRACKING_FILE).read_text())
    found = {key: str(record[field]) for key, field in TRACKING_METADATA.items()}
    found["mlgate:mlflow-tracking"] = str(record["tracking_uri"])
    return found


def summary(manifest: Manifest, store: Path, execution: str) -> list[str]:
    """The rehearsal's lines on the execution's run: its id and URI, what each step logged,
    and how to open MLflow's UI on the store."""
    import os

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store_uri(store))
    experiment = client.get_experiment_by_name(manifest.experiment)
    if experiment is None:
        return [f"no run in {store_uri(store)}: the steps logged nothing"]
    runs: dict[str, Any] = {
        str(r.data.tags.get(runtime.STEP_TAG)): r
        for r in client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{runtime.EXECUTION_TAG}` = '{execution}'",
        )
    }
    parent = runs.get(runtime.PIPELINE)
    if parent is None:
        return [f"no run of execution {execution} in {store_uri(store)}"]
    uri = f"runs:/{parent.info.run_id}"
    lines = [
        f"MLflow run {parent.info.run_id} ({uri}) of experiment '{manifest.experiment}', "
        f"{parent.info.status.lower()}, in {store_uri(store)} [offline: a local file store "
        f"stands in for the {_server(manifest)}]"
    ]
    for step in ("preprocess", "train", "evaluate"):
        run = runs.get(step)
        if run is None:
            lines.append(f"  {step}: no run")
            continue
        data = run.data
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(data.metrics.items())[:6])
        lines.append(
            f"  {step}: {len(data.params)} params, {len(data.metrics)} metrics"
            + (f" ({shown})" if step == "evaluate" and shown else "")
        )
    lines.append(
        f"  open it: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {store_uri(store)}"
    )
    return lines


def _server(manifest: Manifest) -> str:
    tracking = manifest.tracking
    if tracking is None:
        return "tracking server"
    if tracking.create:
        return "SageMaker MLflow tracking server mlgate creates"
    return f"server {tracking.server_arn or tracking.uri}"
