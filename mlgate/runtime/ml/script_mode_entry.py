"""Script-mode training entry point that mlgate ships in every product's sourcedir.tar.gz.

SageMaker's framework containers run `sagemaker_program` from the source directory. This entry
runs the product's train.py as its __main__, then copies the source directory into the model
directory's `code/` folder, so the model artifact carries the code that serves it. The
registered model then sets SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code, the layout the
SageMaker SDK's own repacking produces: the endpoint needs no read access to the bucket the
source was uploaded to, which a prod account of its own would lack.
https://sagemaker.readthedocs.io/en/stable/frameworks/sklearn/using_sklearn.html

With a tracking server (MLFLOW_TRACKING_URI set), the product's train.py runs inside the
pipeline execution's `train` MLflow run with mlflow.autolog() on: its framework's parameters
and training metrics are logged without a line of tracking code in train.py (models are not:
the registered version is the model of record), and the job's hyper-parameters, as train.py
receives them, become the run's params. mlgate_tracking.py (mlgate/runtime/ml/tracking.py)
ships beside this entry when the product declares tracking.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import shutil
import sys
from pathlib import Path
from types import ModuleType

PROGRAM_ENV = "MLGATE_PROGRAM"
SERVING_CODE_DIR = "/opt/ml/model/code"
TRACKING_MODULE = "mlgate_tracking.py"


def tracking_module(source: Path) -> ModuleType | None:
    """mlgate's tracking helper, loaded by path: mlgate_tracking.py beside this entry in the
    sourcedir.tar.gz, or tracking.py beside it in mlgate's package (local runs); None
    without either (a product that declares no tracking ships none)."""
    here = Path(__file__).resolve().parent
    for path in (source / TRACKING_MODULE, here / TRACKING_MODULE, here / "tracking.py"):
        if path.is_file():
            spec = importlib.util.spec_from_file_location("mlgate_tracking", path)
            if spec is None or spec.loader is None:
                return None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    return None


def run(program: Path, argv: list[str]) -> None:
    sys.argv = [str(program), *argv]
    tracking = tracking_module(program.parent)
    if tracking is not None and tracking.enabled():
        tracking.run_training(lambda: runpy.run_path(str(program), run_name="__main__"), argv)
    else:
        runpy.run_path(str(program), run_name="__main__")


def main() -> None:
    source = Path(__file__).resolve().parent
    program = source / os.environ.get(PROGRAM_ENV, "train.py")
    run(program, sys.argv[1:])
    target = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")) / "code"
    shutil.copytree(
        source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )


if __name__ == "__main__":
    main()
