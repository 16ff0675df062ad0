"""Property-based: whatever a manifest file holds, loading it gives a Manifest or a clear
ManifestError naming the file, never a traceback of another kind."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgate.manifest import Manifest, ManifestError, load_manifest, parse_manifest

from .conftest import DEFAULT_MANIFEST

BASE: dict[str, Any] = yaml.safe_load(DEFAULT_MANIFEST.read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += paths(value, (*prefix, i))
    return out


LEAF_PATHS = [p for p in paths(BASE) if p]


def check(doc: Any) -> None:
    lines: list[str] = []
    try:
        result = parse_manifest(doc, Path("prop.yaml"))
    except ManifestError as err:
        lines = err.lines
    else:
        assert isinstance(result, Manifest)
        return
    assert lines, "an error must name at least one problem"
    for line in lines:
        assert line.startswith("prop.yaml: "), line
        assert "\n" not in line


@settings(max_examples=150, deadline=None)
@given(documents)
def test_any_document_gives_a_manifest_or_a_clear_error(doc: Any) -> None:
    check(doc)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(LEAF_PATHS), documents)
def test_replacing_any_field_of_the_default_gives_a_manifest_or_a_clear_error(
    path: tuple[Any, ...], value: Any
) -> None:
    doc = copy.deepcopy(BASE)
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    check(doc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_any_bytes_in_a_file_give_a_manifest_or_a_clear_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_bytes(data)
        lines: list[str] = []
        try:
            load_manifest(path)
        except ManifestError as err:
            lines = err.lines
        assert all(line.startswith(f"{path}: ") and "\n" not in line for line in lines)
