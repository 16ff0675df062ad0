"""README.md is a front door and docs/ holds one page per user: every link resolves (file and
heading), every `make` target and `python -m mlgate` command they name exists, every MLGATE_
switch they name is read somewhere, and every page is reachable from the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings: lowercase, punctuation dropped, spaces to -."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no such heading)")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_check_fails_on_a_missing_page_or_heading(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Title\n\n[a](p.md#title) [b](gone.md) [c](p.md#nowhere) [d](https://x)\n")
    assert broken_links(page) == ["gone.md (no such file)", "p.md#nowhere (no such heading)"]


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, flags=re.MULTILINE))


def _cli_commands() -> set[str]:
    source = (ROOT / "mlgate" / "cli" / "commands.py").read_text()
    return set(re.findall(r'add_parser\(\s*"([a-z-]+)"', source))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_named_exists(page: Path) -> None:
    text = "\n".join(CODE.findall(page.read_text()))
    text += "\n" + "\n".join(re.findall(r"```[a-z]*\n(.*?)```", page.read_text(), flags=re.S))
    targets, commands = _make_targets(), _cli_commands()
    unknown = [f"make {t}" for t in re.findall(r"\bmake ([a-z][a-z-]*)", text) if t not in targets]
    unknown += [
        f"mlgate {c}" for c in re.findall(r"-m mlgate ([a-z][a-z-]*)", text) if c not in commands
    ]
    assert unknown == []


def _read_switches() -> str:
    sources = [*(ROOT / "mlgate").rglob("*.py"), *(ROOT / "mlgate").rglob("*.cjs")]
    sources += [*(ROOT / "tools").glob("*.py"), *(ROOT / "bench").glob("*.py")]
    sources += [p for p in (ROOT / "tests").rglob("*.py") if p.name != Path(__file__).name]
    sources += [ROOT / "Makefile", ROOT / "mlgate" / "synth_tuning" / "jsii-node"]
    return "\n".join(p.read_text() for p in sources)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_switch_named_is_read(page: Path) -> None:
    code = _read_switches()
    named = set(re.findall(r"\bMLGATE_[A-Z_]+\b", page.read_text()))
    assert sorted(s for s in named if s not in code) == []


def test_the_readme_is_a_front_door_to_every_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(readme)}
    assert sorted(p.name for p in PAGES[1:] if p.name not in linked) == []
