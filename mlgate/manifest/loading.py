"""The one way in: YAML read with unique keys, validated, every problem reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from mlgate.manifest.document import Manifest
from mlgate.manifest.errors import _describe

# --- loading and errors --------------------------------------------------------------------


class ManifestError(Exception):
    """Every problem found in one manifest file, one `file: field: message` line each."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(self.lines))

    @property
    def lines(self) -> list[str]:
        return [
            _printable(f"{self.path}: {field or '(top level)'}: {msg}")
            for field, msg in self.problems
        ]


def _printable(line: str) -> str:
    """One problem, one line: control characters in keys or values are shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


class _UniqueKeys:
    """Refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key '{key}' appears twice in one mapping (first on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)  # type: ignore[misc]
        return mapping


class _UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """PyYAML's own parser: its messages say what it found where (libyaml's say less)."""


class _FastUniqueKeyLoader(_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser where PyYAML has it (its wheels do): 8x faster on a manifest, the
    same documents."""


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_FastUniqueKeyLoader)
    except yaml.YAMLError as fast:
        # A broken document: PyYAML's own parser says what is wrong in more words (it raises).
        yaml.load(text, Loader=_UniqueKeyLoader)
        raise fast from None


def load_manifest(path: str | Path) -> Manifest:
    """Read, parse and validate one manifest file; raise ManifestError naming every problem."""
    path = Path(path)
    try:
        raw = _load_yaml(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise ManifestError(path, [("", "file not found")]) from None
    except UnicodeDecodeError as err:
        raise ManifestError(
            path, [("", f"not UTF-8 text (byte {err.start}): save the manifest as UTF-8")]
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        reason = getattr(err, "problem", None) or str(err)
        raise ManifestError(path, [(where, f"not valid YAML: {reason}")]) from None
    return parse_manifest(raw, path)


def parse_manifest(raw: Any, path: Path = Path("<manifest>")) -> Manifest:
    """Validate an already-parsed document; its code paths start at `path`'s folder, and every
    file they name must exist; raise ManifestError naming every problem."""
    manifest = _validate(raw, path)
    manifest._folder = path.resolve().parent
    missing = [
        (field, f"no file {file.relative_to(manifest.folder)} beside the manifest "
         f"(looked for {file})")
        for field, file in manifest.code_files().items()
        if not file.is_file()
    ]  # fmt: skip
    missing += manifest.metrics.stand_in_problems(manifest.folder)
    if missing:
        raise ManifestError(path, missing)
    sample = manifest.sample_request
    if sample is not None and len(sample[0]) != len(sample[1].split(",")):
        raise ManifestError(
            path,
            [("serving.sample_request", f"the header names {len(sample[0])} features but the "
              f"record has {len(sample[1].split(','))} values")],
        )  # fmt: skip
    return manifest


def _validate(raw: Any, path: Path) -> Manifest:
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise ManifestError(path, [("", f"expected a mapping of sections, got {got}")])
    try:
        return Manifest.model_validate(raw)
    except ValidationError as err:
        raise ManifestError(path, _describe(err)) from None


MANIFEST_FILE = "manifest.yaml"


def manifest_paths(target: str | Path) -> list[Path]:
    """A manifest file; a product folder (holding manifest.yaml); or a folder of product
    folders (every */manifest.yaml), sorted."""
    target = Path(target)
    if target.is_dir():
        if (target / MANIFEST_FILE).is_file():
            return [target / MANIFEST_FILE]
        files = sorted(target.glob(f"*/{MANIFEST_FILE}"))
        if not files:
            raise ManifestBatchError(
                [
                    f"{target}: holds no product: a product is a folder with a {MANIFEST_FILE} "
                    f"(try `python -m mlgate new NAME` to scaffold one)"
                ]
            )
        return files
    return [target]


def load_manifests(target: str | Path) -> list[Manifest]:
    """Load every manifest under target; raise one ManifestError listing all files' problems."""
    manifests: list[Manifest] = []
    problems: list[str] = []
    for path in manifest_paths(target):
        try:
            manifests.append(load_manifest(path))
        except ManifestError as err:
            problems.extend(err.lines)
    names = [m.product.name for m in manifests]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{target}: product.name: '{name}' is declared by more than one manifest")
    if problems:
        raise ManifestBatchError(problems)
    return manifests


class ManifestBatchError(Exception):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))
