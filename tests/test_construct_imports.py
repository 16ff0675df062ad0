"""Constructs take what they need, not the manifest (issue 30): no module of
mlgate/infra/constructs imports mlgate.manifest (types included, under TYPE_CHECKING too), and no
function or method there takes a `manifest` parameter or a `Manifest`. Each stack builds its
constructs' props from the manifest. Each check reads the sources (ast), and is shown failing on
the broken form."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

CONSTRUCTS = ROOT / "mlgate" / "infra" / "constructs"


def manifest_imports(source: str) -> list[str]:
    """Each import of mlgate.manifest (or of a module under it) in `source`, by line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "mlgate":
                modules += [f"mlgate.{alias.name}" for alias in node.names]
        found += [
            f"line {node.lineno} imports {m}"
            for m in modules
            if m == "mlgate.manifest" or m.startswith("mlgate.manifest.")
        ]
    return found


def manifest_parameters(source: str) -> list[str]:
    """Each parameter of a function in `source` named `manifest` or annotated with a type
    whose text names `Manifest`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = node.args
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
        for argument in every:
            annotation = ast.unparse(argument.annotation) if argument.annotation else ""
            if argument.arg == "manifest" or "Manifest" in annotation:
                found.append(f"line {node.lineno} {node.name}({argument.arg}: {annotation})")
    return found


SOURCES = sorted(CONSTRUCTS.glob("*.py"))


def test_the_constructs_are_all_read() -> None:
    assert len(SOURCES) >= 15, SOURCES
    assert CONSTRUCTS / "endpoint.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_construct_imports_the_manifest(path: Path) -> None:
    assert not manifest_imports(path.read_text()), manifest_imports(path.read_text())


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_construct_takes_the_manifest(path: Path) -> None:
    assert not manifest_parameters(path.read_text()), manifest_parameters(path.read_text())


BROKEN_IMPORTS = [
    "from mlgate.manifest import Manifest",
    "from mlgate.manifest.schedules import schedule_interval_hours",
    "import mlgate.manifest",
    "from mlgate import manifest",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mlgate.manifest import EnvName",
]


@pytest.mark.parametrize("source", BROKEN_IMPORTS)
def test_the_import_check_finds_each_form(source: str) -> None:
    assert manifest_imports(source)


BROKEN_SIGNATURES = [
    "def f(scope, id, *, manifest, key): ...",
    "def reports_prefix(m: Manifest, env: str) -> str: ...",
    "class C:\n    def __init__(self, *, source: 'Manifest | None') -> None: ...",
    "def g(m: mlgate.manifest.Manifest): ...",
]


@pytest.mark.parametrize("source", BROKEN_SIGNATURES)
def test_the_signature_check_finds_each_form(source: str) -> None:
    assert manifest_parameters(source)


def test_the_checks_pass_what_constructs_may_write() -> None:
    fine = (
        "from mlgate.infra.naming import EnvName, Names\n"
        "def f(scope, id, *, props: EndpointProps, names: Names, env: EnvName): ...\n"
        "# the manifest's SLOs arrive as props\n"
    )
    assert not manifest_imports(fine)
    assert not manifest_parameters(fine)
