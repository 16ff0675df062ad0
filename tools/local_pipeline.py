"""A product's ETL and training pipeline, run locally the way the AWS services run them: its
transform on local Spark over its generated raw data (each source in its manifest format),
curated Parquet written as the Glue job writes it, then its preprocess, a local training run and
its evaluate inside a folder laid out like a Processing container's /opt/ml/processing.

Used by `make rehearse` and the tests; a developer tool, not shipped (it needs pyspark, xgboost
and scikit-learn).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mlgate.infra.product_code import (
    generator_module,
    load_module,
    training_contract,
    transform_module,
)
from mlgate.manifest import Algorithm, Manifest
from mlgate.runtime.ml import tracking
from mlgate.runtime.ml.scripts import evaluate, preprocess


@dataclass
class Curated:
    curated: int
    quarantined: int
    quarantine_reasons: dict[str, int]


@dataclass
class Run:
    """A Processing container's /opt/ml/processing after preprocess, training and evaluate."""

    manifest: Manifest
    base: Path
    model_dir: Path
    counts: dict[str, int]

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.base / "evaluation" / "evaluation.json").read_text())  # type: ignore[no-any-return]

    @property
    def curated_rows(self) -> int:
        import pandas as pd

        return len(pd.read_parquet(self.base / "input"))

    def split(self, name: str) -> Any:
        """A split as the training job reads it: label first, then the payload columns."""
        import numpy as np

        return np.loadtxt(self.base / name / f"{name}.csv", delimiter=",", ndmin=2)


def local_spark(shuffle_partitions: int = 4, **config: str) -> Any:
    """A local[2] Spark session as the rehearsal, the tests and the benchmarks use it: UTC, no
    UI or progress bars, bound to loopback, quiet logs."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.driver.host", "127.0.0.1")
    )
    for key, value in config.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def write_sources(spark: Any, manifest: Manifest, frames: dict[str, Any], folder: Path) -> Any:
    """The generator's pandas frames written in each source's format, read back by Spark as the
    Glue job reads them: CSV with a header (every column a string), JSON Lines, Parquet."""
    sources = {}
    for source in manifest.data.sources:
        path = folder / source.name
        path.mkdir(parents=True, exist_ok=True)
        frame = frames[source.name]
        if source.format == "csv":
            frame.to_csv(path / "part-0.csv", index=False)
            sources[source.name] = spark.read.option("header", True).csv(str(path))
        elif source.format == "json":
            frame.to_json(path / "part-0.json", orient="records", lines=True)
            sources[source.name] = spark.read.json(str(path))
        else:
            frame.to_parquet(path / "part-0.parquet", index=False)
            sources[source.name] = spark.read.parquet(str(path))
    return sources


def write_curated(curated: Any, manifest: Manifest, folder: Path) -> None:
    """Curated rows cast to the schema's types and written as the Glue job writes them:
    Parquet, partitioned by the schema's partition keys (key=value folders)."""
    from pyspark.sql import functions as F

    schema = manifest.data.curated
    typed = curated.select(*[F.col(c.name).cast(c.type) for c in schema.columns])
    writer = typed.write.mode("overwrite")
    if schema.partition_keys:
        writer = writer.partitionBy(*schema.partition_keys)
    writer.parquet(str(folder))


def transform_locally(
    spark: Any, manifest: Manifest, frames: dict[str, Any], folder: Path
) -> tuple[Any, Any]:
    """The product's transform over its sources' frames, written under `folder` and read back
    as the Glue job reads them: (curated, quarantined with a `reason`), lazy DataFrames."""
    sources = write_sources(spark, manifest, frames, folder)
    curated, quarantined = transform_module(manifest).transform(
        spark, sources, dict(manifest.data.transform_params)
    )
    return curated, quarantined


def curate_locally(spark: Any, manifest: Manifest, out: Path, *, rows: int, seed: int) -> Curated:
    """Generate raw data, run the product's transform, write curated Parquet to `out`."""
    frames = generator_module(manifest).sources(rows, seed=seed)
    curated, quarantined = transform_locally(spark, manifest, frames, out.parent / "raw")
    write_curated(curated, manifest, out)
    reasons = Counter(r["reason"] for r in quarantined.select("reason").collect())
    written = spark.read.parquet(str(out)).count()
    return Curated(written, sum(reasons.values()), dict(reasons))


def script(manifest: Manifest, role: str) -> Any:
    """The product's preprocess / evaluate / train module, or mlgate's default."""
    relative = getattr(manifest.model.code, role)
    if relative is None:
        return {"preprocess": preprocess, "evaluate": evaluate}[role]
    module: ModuleType = load_module(
        manifest.path(relative), f"local_{manifest.product.name.replace('-', '_')}_{role}"
    )
    return module


def write_contract(manifest: Manifest, base: Path) -> None:
    (base / "contract").mkdir(parents=True, exist_ok=True)
    (base / "contract" / "contract.json").write_text(json.dumps(training_contract(manifest)))


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def fit(manifest: Manifest, base: Path, model_dir: Path, *, quick: bool = True) -> None:
    """What the training job does: the built-in XGBoost on the manifest's hyper-parameters
    (`quick`: in fewer, larger steps), or the product's train.py with SageMaker's SM_*
    environment and hyper-parameters as arguments."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    hyperparameters = manifest.model.hyperparameters
    model_dir.mkdir(parents=True, exist_ok=True)
    # One thread: OpenMP's spinning threads crawl on a shared two-core machine. The training
    # code is imported before the limit is set: threadpool_limits only limits the thread pools
    # already loaded, and the OpenMP a product's scikit-learn brings in on import would
    # otherwise run on every core (delivery time's first training in a process took 12 s of
    # CPU instead of 2).
    if manifest.model.algorithm is Algorithm.XGBOOST:
        import xgboost as xgb

        rows = np.loadtxt(base / "train" / "train.csv", delimiter=",", ndmin=2)
        params = {k: v for k, v in hyperparameters.items() if k != "num_round"}
        rounds = int(hyperparameters.get("num_round", 40))
        if quick:
            params.update(eta=0.3, max_depth=4)
            rounds = min(rounds, 40)
        params["nthread"] = 1
        with threadpool_limits(limits=1):
            booster = xgb.train(
                params, xgb.DMatrix(rows[:, 1:], label=rows[:, 0]), num_boost_round=rounds
            )
        booster.save_model(str(model_dir / "xgboost-model"))
    elif manifest.model.algorithm.script_mode:
        channels = {
            "SM_MODEL_DIR": str(model_dir),
            "SM_CHANNEL_TRAIN": str(base / "train"),
            "SM_CHANNEL_VALIDATION": str(base / "validation"),
        }
        argv = [arg for k, v in hyperparameters.items() for arg in (f"--{k}", str(v))]
        with environment(channels):
            train = script(manifest, "train")
            with threadpool_limits(limits=1):
                if tracking.enabled():  # as mlgate's script-mode entry runs it: autologged
                    try:
                        tracking.run_training(lambda: train.main(argv), argv)
                    finally:
                        autolog_ends_with_the_training_job()
                else:
                    train.main(argv)
        copy_serving_code(manifest, model_dir)
    else:
        raise ValueError(
            f"{manifest.product.name}: a custom image trains in its container; no local run"
        )


def autolog_ends_with_the_training_job() -> None:
    """mlflow.autolog() lives as long as the training job's process; here the process goes on,
    and its patches would log every later predict (evaluate's, the endpoint's requests) to the
    training run, each call paying MLflow's run and tag lookups. Reverted, as the job's end
    reverts them."""
    import mlflow

    mlflow.autolog(disable=True, silent=True)


def copy_serving_code(manifest: Manifest, model_dir: Path) -> None:
    """What mlgate's script-mode entry does after training (mlgate/runtime/ml/
    script_mode_entry.py): the source directory (train.py, its dependencies, the entry) copied
    into the model directory's code/ folder, which the serving container imports."""
    import shutil

    from mlgate.infra.ml.pipeline import ENTRY_SCRIPT
    from mlgate.runtime.ml import script_mode_entry

    code = model_dir / "code"
    code.mkdir(parents=True, exist_ok=True)
    own = manifest.model.code
    for relative in (own.train, *own.dependencies):
        if relative is not None:
            source = manifest.path(relative)
            if source.is_dir():
                shutil.copytree(source, code / source.name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
            else:
                shutil.copy2(source, code / source.name)
    shutil.copy2(script_mode_entry.__file__, code / ENTRY_SCRIPT)


def train_locally(manifest: Manifest, base: Path, *, quick: bool = True) -> Run:
    """preprocess -> train -> evaluate on the curated Parquet under base/input (`quick`: the
    built-in algorithm in fewer, larger steps, for tests)."""
    write_contract(manifest, base)
    counts = step(manifest, "preprocess", base)
    model_dir = base / "trained"
    train_and_evaluate(manifest, base, model_dir, quick=quick)
    return Run(manifest, base, model_dir, dict(counts or {}))


def step(manifest: Manifest, role: str, base: Path) -> Any:
    """The product's preprocess or evaluate on `base`; with a tracking server configured
    (MLFLOW_TRACKING_URI), inside the step's MLflow run as the pipeline's Processing entry
    runs it (mlgate/runtime/ml/tracking.py: the same code)."""
    module = script(manifest, role)
    if not tracking.enabled():
        return module.main([], base=base)
    return tracking.run_step(role, lambda: module.main([], base=base), base)


def train_and_evaluate(manifest: Manifest, base: Path, model_dir: Path, *, quick: bool) -> None:
    """fit, the model artifact packed as the training job packs it, then evaluate. Tracked,
    the training is described as DescribeTrainingJob would (its hyper-parameters and time)
    for evaluate to log, as in the pipeline."""
    import time

    started = time.monotonic()
    fit(manifest, base, model_dir, quick=quick)
    seconds = time.monotonic() - started
    (base / "model").mkdir(exist_ok=True)
    with tarfile.open(base / "model" / "model.tar.gz", "w:gz") as tar:
        for file in model_dir.iterdir():
            tar.add(file, arcname=file.name)
    job: dict[str, str] = {}
    if tracking.enabled():
        from tools import rehearsal_tracking

        job = rehearsal_tracking.training_job(manifest, base, seconds)
    with environment(job):
        step(manifest, "evaluate", base)


SECOND_VERSION_SPLITS = ("train", "validation")


def train_another_version(
    manifest: Manifest, base: Path, out: Path, *, share: float = 0.7, seed: int = 2
) -> Run:
    """Another version of the model, as a later training run makes one: the same training (the
    product's scripts, the manifest's hyper-parameters) on a seeded sample of `share` of the
    training split under `base`; its validation and test splits are base's, so the two
    versions' evaluations and answers compare row for row. Written under `out` in the same
    layout (model/model.tar.gz, evaluation/evaluation.json)."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    for folder in ("contract", "validation", "test", "baseline"):
        if (base / folder).is_dir():
            shutil.copytree(base / folder, out / folder, dirs_exist_ok=True)
    lines = [
        line
        for split in SECOND_VERSION_SPLITS
        for line in (base / split / f"{split}.csv").read_text().splitlines(keepends=True)
    ]
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(lines), size=max(1, int(share * len(lines))), replace=False))
    (out / "train").mkdir(exist_ok=True)
    (out / "train" / "train.csv").write_text("".join(lines[i] for i in keep))
    model_dir = out / "trained"
    if tracking.enabled():  # the later run's own preprocess: its split sizes, its data quality
        tracking.run_step("preprocess", lambda: None, out)
    train_and_evaluate(manifest, out, model_dir, quick=False)
    return Run(manifest, out, model_dir, {"train": len(keep)})
