"""Run one of this folder's modules as a script inside the job's source dir.

Processing runs `python3 <module>.py` in the unpacked source dir, whatever that folder is
called (/opt/ml/processing/input/code): load the folder as a package under a name of our own,
so the modules' relative imports work there as they do in the tests, then run the module in
it. Standard library only: the stage and publish steps import no third-party package but
boto3."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

PACKAGE = "monitoring_job"


def run_as_package(module: str) -> None:
    here = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location(
        PACKAGE, here / "__init__.py", submodule_search_locations=[str(here)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {here} as a package")
    sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[PACKAGE])
    runpy.run_module(f"{PACKAGE}.{module}", run_name="__main__", alter_sys=True)
