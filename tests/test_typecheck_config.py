"""mypy follows only the aws_cdk modules pyproject.toml lists (the rest are skipped to keep
type checking fast): every module the code imports must be on that list, or its types would
silently become Any. The other packages it skips are the development tools' alone."""

from __future__ import annotations

import re
import tomllib

from .conftest import ROOT

IMPORT = re.compile(
    r"(?:from aws_cdk import (aws_\w+)|import aws_cdk\.(aws_\w+)|from aws_cdk\.(aws_\w+))"
)


def imported() -> set[str]:
    found = {"aws_cdk"}  # the core (Stack, Duration, ...), imported everywhere
    for path in [
        ROOT / "app.py",
        *(ROOT / "mlgate").rglob("*.py"),
        *(ROOT / "tools").rglob("*.py"),
    ]:
        for match in IMPORT.finditer(path.read_text(encoding="utf-8")):
            found.add("aws_cdk." + next(g for g in match.groups() if g))
    return found


def overridden(follow_imports: str) -> set[str]:
    """The modules pyproject.toml's mypy overrides give this `follow_imports`."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {
        module
        for override in config["tool"]["mypy"]["overrides"]
        if override.get("follow_imports") == follow_imports
        for module in override["module"]
    }


def followed() -> set[str]:
    return overridden("normal")


def test_mypy_follows_every_aws_cdk_module_the_code_imports() -> None:
    missing = sorted(imported() - followed())
    assert missing == [], f"add to pyproject.toml's followed aws_cdk modules: {missing}"


def test_the_scan_sees_both_import_forms() -> None:
    text = "from aws_cdk import aws_s3 as s3\nimport aws_cdk.aws_iam\n"
    assert {next(g for g in m.groups() if g) for m in IMPORT.finditer(text)} == {
        "aws_s3",
        "aws_iam",
    }


def skipped_packages() -> set[str]:
    """The packages besides aws_cdk whose types mypy skips."""
    return {m.removesuffix(".*") for m in overridden("skip") if not m.startswith("aws_cdk")}


def test_packages_mypy_skips_are_imported_by_development_tools_only() -> None:
    assert skipped_packages() == {"moto"}  # the scan below is not vacuous
    shipped = [ROOT / "app.py", *(ROOT / "mlgate").rglob("*.py")]
    for package in skipped_packages():
        pattern = re.compile(rf"^\s*(?:from|import) {package}\b", re.MULTILINE)
        found = [str(p.relative_to(ROOT)) for p in shipped if pattern.search(p.read_text())]
        assert found == [], f"shipped code imports {package}, whose types mypy skips: {found}"
        tools = [p for p in (ROOT / "tools").rglob("*.py") if pattern.search(p.read_text())]
        assert tools, f"nothing imports {package}: drop its override from pyproject.toml"
