"""The package shows its architecture (docs/contributor.md, "Layout"): a handful of entries at the
top of mlgate/, imports that run one way, and runtime code free of CDK and of the rest of mlgate.
Each check reads the sources' imports (ast), so it fails on the first import that breaks it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "mlgate"

# Who may import whom, by top-level component: cli -> infra -> manifest; synth_tuning stands
# alone; runtime imports none of mlgate (its code ships to AWS without the package).
ALLOWED = {
    "manifest": {"manifest"},
    "infra": {"infra", "manifest"},
    "cli": {"cli", "infra", "manifest"},
    "synth_tuning": {"synth_tuning"},
    "runtime": set(),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute module path a source imports (a relative import stays in its component)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module)]
            if node.module == "mlgate":
                found += [(node.lineno, f"mlgate.{alias.name}") for alias in node.names]
    return found


def _sources(component: str) -> list[Path]:
    return sorted((PACKAGE / component).rglob("*.py"))


def test_the_top_of_the_package_reads_as_the_architecture() -> None:
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 8, entries
    assert set(ALLOWED) <= set(entries), entries


@pytest.mark.parametrize("component", sorted(ALLOWED))
def test_imports_run_one_way(component: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _sources(component)
        for line, module in _imports(path)
        if module.startswith("mlgate.") and module.split(".")[1] not in ALLOWED[component]
    ]
    assert not wrong, "\n".join(wrong)


def test_constructs_do_not_import_stacks() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _sources("infra/constructs")
        for line, module in _imports(path)
        if module.startswith("mlgate.infra.stacks") or module == "mlgate.infra.app"
    ]
    assert not wrong, "\n".join(wrong)


def test_runtime_code_imports_no_cdk() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _sources("runtime")
        for line, module in _imports(path)
        if module.split(".")[0] in {"aws_cdk", "constructs", "cdk_nag", "jsii", "mlgate"}
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checks_see_a_wrong_import(tmp_path: Path) -> None:
    """The reader finds each form of import the checks rely on."""
    source = tmp_path / "m.py"
    source.write_text("import aws_cdk\nfrom mlgate import infra\nfrom mlgate.cli import x\n")
    assert [m for _, m in _imports(source)] == [
        "aws_cdk", "mlgate", "mlgate.infra", "mlgate.cli",
    ]  # fmt: skip
