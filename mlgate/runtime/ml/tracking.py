"""Experiment tracking inside the training pipeline's jobs, with MLflow's own client.

One MLflow run per pipeline execution (tagged mlgate.step=pipeline and
mlgate.pipeline_execution=<execution id>), with a child run per step:

- preprocess: the split sizes and a data-quality summary of the data the model trains on
  (rows, label balance, constant and all-zero payload columns), as metrics and
  `data_quality.json`;
- train: in script mode, mlflow.autolog() around the product's train.py (script_mode_entry.py),
  the product writes no tracking code; evaluate adds the training job's hyper-parameters and
  final metrics as SageMaker reports them (DescribeTrainingJob), which is how a built-in
  algorithm's training is logged: no code of ours runs in its container;
- evaluate: every metric of evaluation.json and the report itself.

Evaluate writes `mlflow-run.json` beside evaluation.json (run id, experiment id, tracking
URI); the pipeline's register step stores them on the model version as customer metadata.

Configured by environment: MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_NAME (MLflow's own; a
SageMaker tracking server is named by its ARN, which the sagemaker-mlflow plugin signs calls
for), MLGATE_PIPELINE_EXECUTION (groups the steps), MLGATE_TRAINING_JOB (evaluate: the job to
describe), MLGATE_MLFLOW_INSTALL=index (the image lacks MLflow: pip-install the pins below
for its Python from the package index at start). Without MLFLOW_TRACKING_URI nothing is
logged and MLflow is never imported.

Tracking never decides a run: a tracking server that cannot be reached or a client that
cannot be installed is logged as a warning and recorded (mlflow-run.json says "untracked:
<reason>"); the step's own work and its outcome are the script's.

As a Processing entry point: `python3 tracking.py preprocess|evaluate` runs the step's script
(the only .py file under /opt/ml/processing/mlgate-script: mlgate's default or the product's)
as its __main__, then logs; given another base folder, it calls the script's
`main(argv, base=...)` instead, as the tests and tools/local_pipeline.py do. Runs on Python
3.8 and later (the framework containers'): no zip(strict=), no match.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import runpy
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("mlgate.tracking")

BASE = Path("/opt/ml/processing")
SCRIPT_DIR = "mlgate-script"
TRACKING_URI = "MLFLOW_TRACKING_URI"
EXPERIMENT = "MLFLOW_EXPERIMENT_NAME"
EXECUTION = "MLGATE_PIPELINE_EXECUTION"
TRAINING_JOB = "MLGATE_TRAINING_JOB"
INSTALL = "MLGATE_MLFLOW_INSTALL"
RUN_FILE = "mlflow-run.json"
STEP_TAG = "mlgate.step"
EXECUTION_TAG = "mlgate.pipeline_execution"
PARENT_TAG = "mlflow.parentRunId"  # what MLflow's UI nests child runs by
PIPELINE = "pipeline"
# An experiment mlgate creates is marked as model training: MLflow 3's UI otherwise opens a
# new experiment on its GenAI pages (traces), where training runs do not show.
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"

# The client installed where the image lacks it, by the image's Python: the newest
# mlflow-skinny each Python takes (3.17.2 needs 3.10 or later, 3.1.4 is the last for 3.9,
# 2.17.2 for 3.8), with the plugin that signs calls to SageMaker's tracking servers and
# MLflow Apps (https://github.com/aws/sagemaker-mlflow; it takes mlflow-skinny>=2.8). The
# first pin is what the tests run (requirements-dev.txt).
CLIENT_PINS: tuple[tuple[tuple[int, int], str], ...] = (
    ((3, 10), "mlflow-skinny==3.17.2"),
    ((3, 9), "mlflow-skinny==3.1.4"),
    ((3, 8), "mlflow-skinny==2.17.2"),
)
PLUGIN_PIN = "sagemaker-mlflow==0.5.0"
INSTALL_DIR = Path("/tmp/mlgate-mlflow")


def enabled(environ: dict[str, str] | None = None) -> bool:
    """A tracking server is configured: the steps log to it."""
    return bool((environ if environ is not None else os.environ).get(TRACKING_URI))


def client_pins(version: tuple[int, int]) -> list[str]:
    """The packages to install for a Python `version` (major, minor)."""
    for least, pin in CLIENT_PINS:
        if version >= least:
            return [pin, PLUGIN_PIN]
    raise RuntimeError(f"no MLflow client for Python {version[0]}.{version[1]} (3.8 or later)")


def import_mlflow() -> Any:
    """MLflow's client: the image's, or (MLGATE_MLFLOW_INSTALL=index) the pins for this Python
    installed from the package index into a folder of its own, put first on sys.path.

    MLflow's usage telemetry is turned off first: a job sends nothing but its runs, and
    MLflow 3's telemetry thread fetches its configuration over the network on import, holding
    the import lock while the call waits (seen here: mlflow.autolog() blocked behind it
    where the network is closed)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow

        return mlflow
    except ImportError:
        if os.environ.get(INSTALL) != "index":
            raise
    pins = client_pins(sys.version_info[:2])
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-cache-dir", "--target", str(INSTALL_DIR), *pins],
        check=True,
    )  # fmt: skip
    sys.path.insert(0, str(INSTALL_DIR))
    import importlib

    importlib.invalidate_caches()
    import mlflow

    log.info("installed %s in %.1f s", " ".join(pins), time.monotonic() - started)
    return mlflow


class Tracker:
    """One step's child run of its pipeline execution's run; every call is a no-op after a
    failure, which is kept in `error`."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.error: str | None = None
        self.client: Any = None
        self.mlflow: Any = None
        self.experiment_id = ""
        self.parent_id = ""
        self.run_id = ""
        self.tracking_uri = os.environ.get(TRACKING_URI, "")

    @classmethod
    def open(cls, step: str) -> Tracker:
        tracker = cls(step)
        if not enabled():
            tracker.error = f"no tracking server ({TRACKING_URI} unset)"
            return tracker
        tracker.guard(tracker._open)
        return tracker

    def guard(self, work: Callable[[], Any]) -> Any:
        """Run `work` unless tracking failed before; a failure is logged and kept."""
        if self.error is not None:
            return None
        try:
            return work()
        except Exception as err:  # tracking never decides the step: say why, go on
            self.error = f"{type(err).__name__}: {err}"[:200]
            log.warning("mlgate tracking (%s): %s; the step goes on untracked", self.step,
                        self.error)  # fmt: skip
            return None

    def _open(self) -> None:
        mlflow = import_mlflow()
        from mlflow.tracking import MlflowClient

        self.mlflow = mlflow
        self.client = client = MlflowClient(self.tracking_uri)
        name = os.environ.get(EXPERIMENT) or "Default"
        found = client.get_experiment_by_name(name)
        self.experiment_id = (
            found.experiment_id
            if found
            else client.create_experiment(name, tags={EXPERIMENT_KIND: MODEL_TRAINING})
        )
        execution = os.environ.get(EXECUTION) or "local"
        self.parent_id = (
            self._find(PIPELINE, execution)
            or client.create_run(
                self.experiment_id,
                run_name=execution,
                tags={STEP_TAG: PIPELINE, EXECUTION_TAG: execution},
            ).info.run_id
        )
        self.run_id = (
            self._find(self.step, execution)
            or client.create_run(
                self.experiment_id,
                run_name=self.step,
                tags={STEP_TAG: self.step, EXECUTION_TAG: execution, PARENT_TAG: self.parent_id},
            ).info.run_id
        )

    def _find(self, step: str, execution: str) -> str:
        """The run of `step` in this execution, when an earlier step made it."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{STEP_TAG}` = '{step}' and tags.`{EXECUTION_TAG}` = '{execution}'"
            ),
            max_results=1,
        )
        return str(runs[0].info.run_id) if runs else ""

    def log(
        self,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> None:
        """Params not logged yet (MLflow refuses to change a param's value), metrics, tags."""

        def work() -> None:
            from mlflow.entities import Metric, Param, RunTag

            target = run_id or self.run_id
            logged = self.client.get_run(target).data.params
            now = int(time.time() * 1000)
            self.client.log_batch(
                target,
                metrics=[Metric(k, float(v), now, 0) for k, v in sorted((metrics or {}).items())],
                params=[
                    Param(k, str(v)[:500])
                    for k, v in sorted((params or {}).items())
                    if k not in logged
                ],
                tags=[RunTag(k, str(v)) for k, v in sorted((tags or {}).items())],
            )

        self.guard(work)

    def log_dict(self, content: dict[str, Any], name: str) -> None:
        self.guard(lambda: self.client.log_dict(self.run_id, content, name))

    def close(self, status: str, *, last: bool = False) -> None:
        """End the step's run; the last step ends the execution's run too (a failed step
        fails it). Tried even after a logging call failed: a run left open reads as running."""
        if not self.run_id:
            return
        try:
            self.client.set_terminated(self.run_id, status)
            if last or status != "FINISHED":
                self.client.set_terminated(self.parent_id, status)
        except Exception as err:
            log.warning("mlgate tracking (%s): could not end the run: %s", self.step, err)

    def record(self) -> dict[str, str]:
        """What the register step stores on the model version: never empty, and only the
        characters a customer metadata value may hold (letters, digits, spaces and _.:/=+-@,
        at most 256: https://docs.aws.amazon.com/sagemaker/latest/APIReference/
        API_CreateModelPackage.html, CustomerMetadataProperties)."""
        if not self.run_id:
            found = {"run_id": f"untracked: {self.error}", "experiment_id": "-"}
        else:
            found = {"run_id": self.parent_id, "experiment_id": self.experiment_id}
        found["tracking_uri"] = self.tracking_uri or "-"
        return {key: metadata_value(value) for key, value in found.items()}


def metadata_value(text: str) -> str:
    """`text` as a customer metadata value: other characters become spaces."""
    return re.sub(r"[^\w\s.:/=+\-@]", " ", text, flags=re.ASCII)[:256] or "-"


# --- what each step logs ---------------------------------------------------------------------


def _read_split(path: Path) -> Any:
    import numpy as np

    files = sorted(path.glob("*.csv"))
    if not files:
        return np.zeros((0, 0))
    return np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])


def data_quality(base: Path, contract: dict[str, Any]) -> dict[str, Any]:
    """A summary of preprocess's outputs (mlgate's layout, whichever preprocess wrote them):
    rows per split, the label's balance or spread, and the payload columns that carry no
    information over the training split (constant, or zero in every row)."""
    import numpy as np

    problem = contract.get("problem_type", "")
    summary: dict[str, Any] = {"problem_type": problem, "splits": {}}
    columns: list[str] = []
    baseline = base / "baseline" / "baseline.csv"
    if baseline.is_file():
        with baseline.open(encoding="utf-8") as handle:
            columns = handle.readline().strip().split(",")
    for split in ("train", "validation", "test"):
        rows = _read_split(base / split)
        entry: dict[str, Any] = {"rows": int(rows.shape[0])}
        if rows.size:
            labels = rows[:, 0]
            if problem == "regression":
                entry["label_mean"] = float(labels.mean())
                entry["label_std"] = float(labels.std())
            else:
                values, counts = np.unique(labels.astype(int), return_counts=True)
                entry["label_share"] = {
                    str(v): round(float(c) / len(labels), 6)
                    for v, c in zip(values, counts)  # noqa: B905 (Python 3.8)
                }
            if split == "train":
                payload = rows[:, 1:]
                names = columns if len(columns) == payload.shape[1] else [
                    f"column_{i}" for i in range(payload.shape[1])
                ]  # fmt: skip
                constant = payload.min(axis=0) == payload.max(axis=0)
                zero = (payload == 0).all(axis=0)
                summary["constant_columns"] = [n for i, n in enumerate(names) if constant[i]]
                summary["all_zero_columns"] = [n for i, n in enumerate(names) if zero[i]]
                summary["payload_columns"] = len(names)
        summary["splits"][split] = entry
    return summary


def quality_metrics(summary: dict[str, Any]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for split, entry in summary["splits"].items():
        metrics[f"rows_{split}"] = entry["rows"]
        for value, share in (entry.get("label_share") or {}).items():
            metrics[f"label_share_{split}_{value}"] = share
        for key in ("label_mean", "label_std"):
            if key in entry:
                metrics[f"{key}_{split}"] = entry[key]
    metrics["constant_columns"] = len(summary.get("constant_columns", []))
    metrics["all_zero_columns"] = len(summary.get("all_zero_columns", []))
    return metrics


def read_contract(base: Path) -> dict[str, Any]:
    """contract/contract.json, or the folder's only JSON file (as the scripts read it)."""
    folder = base / "contract"
    path = folder / "contract.json"
    if not path.is_file():
        found = sorted(folder.glob("*.json"))
        if len(found) != 1:
            return {}
        path = found[0]
    contract: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return contract


def contract_params(contract: dict[str, Any]) -> dict[str, Any]:
    features = contract.get("features") or []
    return {
        "problem_type": contract.get("problem_type", ""),
        "target_column": contract.get("target_column", ""),
        "features": ",".join(str(f.get("name")) for f in features),
        "feature_count": len(features),
        "payload_columns": len(contract.get("payload_columns") or []),
        "split": "time" if contract.get("event_time_column") else "id hash",
    }


def log_preprocess(tracker: Tracker, base: Path) -> None:
    contract = read_contract(base)
    summary = data_quality(base, contract)
    tracker.log(params=contract_params(contract), metrics=quality_metrics(summary))
    tracker.log_dict(summary, "data_quality.json")


def flatten_report(report: dict[str, Any]) -> dict[str, float]:
    """`{section: {metric: {"value": v}}}` as `{metric: v}`."""
    found: dict[str, float] = {}
    for section in report.values():
        if isinstance(section, dict):
            for name, entry in section.items():
                if isinstance(entry, dict) and isinstance(entry.get("value"), (int, float)):
                    found[name] = float(entry["value"])
    return found


def training_job(name: str) -> dict[str, Any]:
    """The training job as SageMaker reports it (DescribeTrainingJob); a local run names a
    JSON file of the same shape instead (`file:<path>`: tools/rehearsal_tracking.py)."""
    if name.startswith("file:"):
        found: dict[str, Any] = json.loads(Path(name[len("file:") :]).read_text(encoding="utf-8"))
        return found
    import boto3

    description: dict[str, Any] = boto3.client("sagemaker").describe_training_job(
        TrainingJobName=name
    )
    return description


def log_training_job(tracker: Tracker, description: dict[str, Any]) -> None:
    """The training job's hyper-parameters (SageMaker's own sagemaker_* left out) and final
    metrics, on the execution's train run (made here when no script of ours ran in the
    training container)."""

    def work() -> None:
        execution = os.environ.get(EXECUTION) or "local"
        train = (
            tracker._find("train", execution)
            or tracker.client.create_run(
                tracker.experiment_id,
                run_name="train",
                tags={STEP_TAG: "train", EXECUTION_TAG: execution, PARENT_TAG: tracker.parent_id},
            ).info.run_id
        )
        hyper = {
            k: v
            for k, v in (description.get("HyperParameters") or {}).items()
            if not k.startswith("sagemaker_")
        }
        metrics = {
            str(m["MetricName"]): float(m["Value"])
            for m in description.get("FinalMetricDataList") or []
        }
        for key in ("TrainingTimeInSeconds", "BillableTimeInSeconds"):
            if key in description:
                metrics[key] = float(description[key])
        resources = description.get("ResourceConfig") or {}
        tags = {
            "sagemaker.training_job": str(description.get("TrainingJobName", "")),
            "sagemaker.image": str(
                (description.get("AlgorithmSpecification") or {}).get("TrainingImage", "")
            ),
            "sagemaker.instance": f"{resources.get('InstanceCount', '')} x "
            f"{resources.get('InstanceType', '')}",
        }
        tracker.log(params=hyper, metrics=metrics, tags=tags, run_id=train)
        tracker.client.set_terminated(train, "FINISHED")

    tracker.guard(work)


def log_evaluate(tracker: Tracker, base: Path) -> None:
    report_path = base / "evaluation" / "evaluation.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        tracker.log(metrics=flatten_report(report))
        tracker.log_dict(report, "evaluation.json")
    job = os.environ.get(TRAINING_JOB)
    if job:
        description = tracker.guard(lambda: training_job(job))
        if description:
            log_training_job(tracker, description)


def write_run_file(folder: Path, tracker: Tracker) -> dict[str, str]:
    record = tracker.record()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUN_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
    return record


def hyperparameters(argv: list[str]) -> dict[str, str]:
    """`--name value` pairs, as SageMaker's training toolkit passes the job's
    hyper-parameters to a script."""
    found: dict[str, str] = {}
    for i, arg in enumerate(argv):
        if arg.startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            found[arg[2:]] = argv[i + 1]
    return found


def run_training(work: Callable[[], Any], argv: list[str]) -> Any:
    """The product's training (`work`) inside the execution's `train` run with
    mlflow.autolog() on (models not logged: the registered version is the model of record),
    its hyper-parameters as the run's params."""
    tracker = Tracker.open("train")
    tracker.log(params=hyperparameters(argv))

    def start() -> None:
        tracker.mlflow.autolog(log_models=False, silent=True)
        tracker.mlflow.start_run(run_id=tracker.run_id)

    tracker.guard(start)
    try:
        result = work()
    except BaseException:
        tracker.guard(lambda: tracker.mlflow.end_run("FAILED"))
        tracker.close("FAILED")
        raise
    tracker.guard(lambda: tracker.mlflow.end_run("FINISHED"))
    return result


LOGGERS: dict[str, Callable[[Tracker, Path], None]] = {
    "preprocess": log_preprocess,
    "evaluate": log_evaluate,
}


def run_step(step: str, work: Callable[[], Any], base: Path = BASE) -> Any:
    """`work` (the step's script) inside the step's run, then what the step logs. Evaluate is
    the last step: it ends the execution's run and writes mlflow-run.json. Without a tracking
    server, `work` alone (MLflow is never imported)."""
    tracker = Tracker.open(step)
    try:
        result = work()
    except BaseException:
        tracker.close("FAILED")
        raise
    tracker.guard(lambda: LOGGERS[step](tracker, base))
    last = step == "evaluate"
    tracker.close("FINISHED", last=last)
    if last and enabled():
        write_run_file(base / "evaluation", tracker)
    return result


def step_script(base: Path) -> Path:
    """The step's own script, downloaded beside this entry point."""
    found = sorted((base / SCRIPT_DIR).glob("*.py"))
    if len(found) != 1:
        raise FileNotFoundError(
            f"expected the step's script alone in {base / SCRIPT_DIR}, found "
            f"{[p.name for p in found]}"
        )
    return found[0]


def main(argv: list[str] | None = None, base: Path = BASE) -> None:
    parser = argparse.ArgumentParser(description="Run a pipeline step's script and track it.")
    parser.add_argument("step", choices=sorted(LOGGERS))
    args, rest = parser.parse_known_args(argv)
    script = step_script(base)

    def work() -> None:
        if base == BASE:  # in the job: the script as SageMaker would run it
            sys.argv = [str(script), *rest]
            runpy.run_path(str(script), run_name="__main__")
        else:  # elsewhere (tests, the rehearsal): its main(argv, base), as they call it
            namespace = runpy.run_path(str(script), run_name=f"mlgate_{args.step}")
            namespace["main"](rest, base=base)

    run_step(args.step, work, base)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
