"""The hooks' layer ships bytecode the runtime's Python reads without compiling: Lambda mounts
a layer read-only, so a module without it is compiled from source at every cold start
(tools/wheels.py compile_layer; bench/hooks_latency.py --runtime measures the difference)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mlgate.infra.wheelsets import POWERTOOLS
from tools.wheels import missing_bytecode, runtime_python


def test_every_module_of_the_layer_has_unchecked_bytecode_for_the_runtime() -> None:
    if runtime_python(POWERTOOLS) is None:
        pytest.skip(f"no python{POWERTOOLS.python} here: the layer ships sources only")
    assert missing_bytecode(POWERTOOLS.built(), POWERTOOLS.python) == []


def test_the_check_fails_on_a_layer_of_sources_or_of_timestamped_bytecode(tmp_path: Path) -> None:
    layer = tmp_path / "layer.zip"
    timestamped = (0).to_bytes(4, "little") * 4  # magic, flags 0 (mtime-based), mtime, size
    with zipfile.ZipFile(layer, "w") as out:
        out.writestr("python/pkg/__init__.py", "")
        out.writestr("python/pkg/mod.py", "x = 1\n")
        out.writestr("python/pkg/__pycache__/mod.cpython-313.pyc", timestamped)
    assert missing_bytecode(layer, "3.13") == [
        "python/pkg/__init__.py",
        "python/pkg/mod.py (its bytecode checks the source's mtime or hash)",
    ]
