"""Vendored wheel sets: the third-party packages mlgate ships with what it deploys, so nothing
fetches them at run time and what runs on AWS is what the tests ran.

A set is a lock file (exact pins, each with the sha256 of its wheel for the set's target, in
pip's hash-checking format: https://pip.pypa.io/en/stable/topics/secure-installs/) and a
target platform. `tools/wheels.py build` (`make wheels`, part of `make setup`) downloads the
locked wheels once into a cache under .venv, keyed by the lock's content, and packs them the
way the service loads them; `tools/wheels.py lock` writes a lock again after a pin moves.

Synth only reads the packed zip: it names its CDK asset after the key (no fingerprinting of a
large file on every synth) and hard-links it into the cloud assembly (no copy). When the zip is
missing, synth stops with one line saying which command builds it: synth itself never reaches
the network.

- `powertools`: the hooks' Lambda layer (mlgate/infra/constructs/hooks.py), Powertools at
  requirements-dev.txt's pin with its parser extra (pydantic, at requirements.txt's pin) and
  what they need, for the python3.13 x86_64 runtime, with their bytecode compiled by a local
  python3.13 (tools/wheels.py compile_layer: Lambda's /opt is read-only, so a layer without
  bytecode compiles its imports at every cold start).
- `monitoring`: the Evidently job's wheelhouse (mlgate/infra/constructs/evidently.py), every pin of
  requirements-monitoring.txt, for the Python 3.12 x86_64 SageMaker scikit-learn image; the
  job installs it with `--no-index --require-hashes`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MLGATE_WHEEL_CACHE") or ROOT / ".venv" / "wheelsets")
"""Where `make wheels` keeps the packed sets (MLGATE_WHEEL_CACHE moves it, e.g. to a CI cache)."""
BUILD_COMMAND = "make wheels"
FORMAT = "1"
"""Part of every set's key: bump it when tools/wheels.py packs a set differently."""

POWERTOOLS_EXTRAS: tuple[str, ...] = ("parser",)
"""Extras of aws-lambda-powertools the hooks' layer carries: `parser` adds pydantic (and
pydantic-core's compiled wheel for the runtime), for Powertools' parser, which the hooks read
their events with (mlgate/runtime/hooks/shared/models.py). After a change: `python tools/wheels.py
lock powertools` and `make wheels`."""

_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_REQUIREMENT = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9,._-]*\])?==([^\s;]+)"
    r"((?:\s+--hash=sha256:[0-9a-f]{64})*)$"
)


class MissingWheelSet(SystemExit):
    """A wheel set synth needs is not built: Python prints the message, one line, and exits 1."""


def canonical(name: str) -> str:
    """A project name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def manylinux(glibc_minor: int, arch: str = "x86_64") -> tuple[str, ...]:
    """Every manylinux platform tag a system with glibc 2.<glibc_minor> runs, newest first, as
    pip lists them for its own platform (https://peps.python.org/pep-0600/): pip's --platform
    takes tags literally, so a target is given as all of them."""
    tags = []
    for minor in range(glibc_minor, 4, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY_MANYLINUX:
            tags.append(f"{_LEGACY_MANYLINUX[minor]}_{arch}")
    return tuple(tags)


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file (comments, options and hashes left out),
    by canonical name."""
    found = {}
    for line in _lines(path):
        match = _REQUIREMENT.match(line)
        if match:
            found[canonical(match[1])] = match[2]
    return found


def dev_pin(name: str) -> str:
    """The version requirements-dev.txt pins `name` at: what the tests run."""
    version = pins(ROOT / "requirements-dev.txt").get(canonical(name))
    if version is None:
        raise ValueError(f"requirements-dev.txt pins no {name}")
    return version


def _lines(path: Path) -> list[str]:
    """Logical lines of a requirements file: continuations joined, comments stripped."""
    text = path.read_text().replace("\\\n", " ")
    return [line.split(" #")[0].strip() for line in text.splitlines() if line.strip()[:1] != "#"]


@dataclass(frozen=True)
class LockedWheel:
    name: str
    version: str
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class WheelSet:
    """One vendored set: its lock, its target (CPython `python` on x86_64 Linux with glibc
    2.`glibc`) and how it is packed (`layer`: Lambda's python/ layout; `wheelhouse`: the
    wheels themselves, for `pip install --no-index --find-links`)."""

    name: str
    lock: Path
    source: str
    python: str
    glibc: int
    layout: Literal["layer", "wheelhouse"]
    target: str

    @property
    def platforms(self) -> tuple[str, ...]:
        return manylinux(self.glibc)

    @cached_property
    def wheels(self) -> tuple[LockedWheel, ...]:
        """The lock's pins and hashes; a line without a hash is refused, as pip would."""
        found = []
        for line in _lines(self.lock):
            match = _REQUIREMENT.match(line)
            if not match or not match[3]:
                raise ValueError(f"{self.lock.name}: not a pinned, hashed requirement: {line!r}")
            hashes = tuple(h.removeprefix("--hash=sha256:") for h in match[3].split())
            found.append(LockedWheel(match[1], match[2], hashes))
        return tuple(found)

    @property
    def pins(self) -> dict[str, str]:
        return {canonical(w.name): w.version for w in self.wheels}

    @cached_property
    def key(self) -> str:
        """The set's content hash: the locked wheels, the target and the packing. It names the
        cached zip and is the CDK asset's hash."""
        content = {
            "format": FORMAT,
            "name": self.name,
            "python": self.python,
            "platforms": self.platforms,
            "layout": self.layout,
            "wheels": sorted((canonical(w.name), w.version, sorted(w.hashes)) for w in self.wheels),
        }
        if self.layout == "layer":  # compiled for the runtime (tools/wheels.py compile_layer)
            content["bytecode"] = f"cpython-{self.python.replace('.', '')}"
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    @property
    def zip_path(self) -> Path:
        return CACHE / f"{self.name}-{self.key[:16]}.zip"

    @property
    def asset_hash(self) -> str:
        """The hash CDK gives the set's asset, whose custom hash is the key (the sha256 of it:
        aws-cdk-lib's AssetStaging); it names the S3 object and the staged file."""
        return hashlib.sha256(self.key.encode()).hexdigest()

    def built(self) -> Path:
        """The packed set, as synth uses it; missing, synth stops here (never downloads)."""
        path = self.zip_path
        if not path.is_file():
            raise MissingWheelSet(
                f"mlgate: the {self.name} wheel set ({self.lock.name}) is not built in {CACHE}: "
                f"run `{BUILD_COMMAND}` (it downloads the locked wheels once)"
            )
        return path

    def staged(self, asset_outdir: str) -> Path:
        """The packed set for a CDK asset, hard-linked first to where CDK would copy it in the
        cloud assembly (`asset.<hash>.zip`): CDK stages nothing that is there already, so each
        synth skips a copy of the set (200 MB for the wheelhouse, into every test's output
        folder too). Where no link can be made (another file system) CDK copies it as before;
        the bytes are the same either way. Nothing writes to a staged file (the cache is only
        ever replaced whole), so sharing it with the cache is safe."""
        path = self.built()
        with contextlib.suppress(OSError):  # already there, or another file system
            os.link(path, Path(asset_outdir) / f"asset.{self.asset_hash}{path.suffix}")
        return path


POWERTOOLS = WheelSet(
    name="powertools",
    lock=ROOT / "requirements-powertools.lock",
    source="aws-lambda-powertools at requirements-dev.txt's pin, its dependencies at the "
    "versions the tests run",
    python="3.13",
    # The python3.13 runtime runs on Amazon Linux 2023 (glibc 2.34):
    # https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
    glibc=34,
    layout="layer",
    target="the hooks' Lambda runtime, python3.13 on x86_64 (Amazon Linux 2023)",
)
MONITORING = WheelSet(
    name="monitoring",
    lock=ROOT / "requirements-monitoring.lock",
    source="requirements-monitoring.txt",
    python="3.12",
    # The 1.4-2-py312 image is built on Ubuntu 24.04 (glibc 2.39): https://github.com/aws/
    # sagemaker-scikit-learn-container/blob/master/docker/1.4-2-py312/base/Dockerfile.cpu
    glibc=39,
    layout="wheelhouse",
    target="the SageMaker scikit-learn 1.4-2-py312 image, CPython 3.12 on x86_64 (Ubuntu 24.04)",
)
SETS = {s.name: s for s in (POWERTOOLS, MONITORING)}
