"""Script-mode training entry point that mlgate ships in every product's sourcedir.tar.gz.

SageMaker's framework containers run `sagemaker_program` from the source directory. This entry
runs the product's train.py as its __main__, then copies the source directory into the model
directory's `code/` folder, so the model artifact carries the code that serves it. The
registered model then sets SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code, the layout the
SageMaker SDK's own repacking produces: the endpoint needs no read access to the bucket the
source was uploaded to, which a prod account of its own would lack.
https://sagemaker.readthedocs.io/en/stable/frameworks/sklearn/using_sklearn.html
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
from pathlib import Path

PROGRAM_ENV = "MLGATE_PROGRAM"
SERVING_CODE_DIR = "/opt/ml/model/code"


def main() -> None:
    source = Path(__file__).resolve().parent
    program = source / os.environ.get(PROGRAM_ENV, "train.py")
    sys.argv = [str(program), *sys.argv[1:]]
    runpy.run_path(str(program), run_name="__main__")
    target = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")) / "code"
    shutil.copytree(
        source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )


if __name__ == "__main__":
    main()
