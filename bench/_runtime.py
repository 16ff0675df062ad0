"""The hooks' Lambda runtime, as near as this machine gets, for bench/hooks_latency.py --runtime.

- the runtime's Python version (python3.13, found as tools/wheels.py finds it);
- the layer as it ships: the powertools wheel set's zip, unpacked where Lambda mounts it
  (/opt/python: https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html), read-only
  in effect (the benchmark runs with PYTHONDONTWRITEBYTECODE, as a read-only /opt allows no
  cache to be written);
- boto3 where the runtime provides it, outside the layer, compiled: the requirements-dev.txt
  pin, installed offline from the monitoring wheel set (its boto3 wheels are pure Python).

Built once into the wheel-set cache (keyed by the layer's key and the pin), then reused.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from _common import ROOT

sys.path.insert(0, str(ROOT))

from mlgate.infra.wheelsets import CACHE, MONITORING, POWERTOOLS, dev_pin
from tools.wheels import runtime_python

SDK = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python_dateutil", "six")
"""boto3 and what it installs with: the wheels taken from the monitoring wheel set."""


def runtime() -> tuple[str, dict[str, str]] | None:
    """The runtime's interpreter and the environment that gives it the layer and boto3, or None
    when this machine has no python3.13 (the benchmark then says so and runs on its own
    Python)."""
    python = runtime_python(POWERTOOLS)
    if python is None:
        return None
    home = CACHE / f"runtime-{POWERTOOLS.key[:16]}-boto3-{dev_pin('boto3')}"
    if not home.is_dir():
        _build(python, home)
    paths = [home / "opt" / "python", home / "runtime"]
    return python, {"PYTHONPATH": ":".join(map(str, paths)), "PYTHONDONTWRITEBYTECODE": "1"}


def _build(python: str, home: Path) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="runtime-", dir=CACHE) as work:
        staged = Path(work) / "home"
        with zipfile.ZipFile(POWERTOOLS.built()) as layer:
            layer.extractall(staged / "opt")
        wheels = Path(work) / "wheels"
        wheels.mkdir()
        with zipfile.ZipFile(MONITORING.built()) as house:
            for name in house.namelist():
                if name.split("-")[0].lower() in SDK:
                    house.extract(name, wheels)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-index", "--find-links", str(wheels), "--target", str(staged / "runtime"),
             f"boto3=={dev_pin('boto3')}"],
            check=True,
        )  # fmt: skip
        shutil.rmtree(staged / "runtime" / "bin", ignore_errors=True)
        staged.replace(home)
