"""pydantic's errors turned into one line per problem, naming the field and what is allowed."""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from mlgate.manifest.base import IMAGE_URI, RELATIVE_PATH, _CrossFieldErrors
from mlgate.manifest.document import Manifest

# pydantic names each branch of a union in the error's location ("...nested.int"); a reader
# wants the field once, with what it may be.
_BRANCHES = {
    "str": "text", "constrained-str": "text", "int": "an integer", "float": "a number",
    "bool": "true or false",
}  # fmt: skip


def _merge_branches(errors: list[Any]) -> list[Any]:
    """One error per field for a value no branch of its union takes."""
    merged: list[Any] = []
    by_field: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in errors:
        loc = tuple(e["loc"])
        if loc and loc[-1] in _BRANCHES and e["type"].endswith(("_type", "_parsing")):
            field = loc[:-1]
            if field in by_field:
                by_field[field]["expected"].append(_BRANCHES[loc[-1]])
                continue
            entry = {"loc": field, "type": "union_of", "input": e["input"],
                     "expected": [_BRANCHES[loc[-1]]], "msg": e["msg"]}  # fmt: skip
            by_field[field] = entry
            merged.append(entry)
        else:
            merged.append(e)
    return merged


def _describe(err: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    meant: set[str] = set()  # keys a misspelling was meant as: "is required" would repeat it
    for e in _merge_branches(err.errors()):
        loc = _dotted(e["loc"])
        ctx = e.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, _CrossFieldErrors):
            problems.extend((_join(loc, path), message) for path, message in inner.problems)
            continue
        kind = e["type"]
        if kind == "extra_forbidden":
            message, near = _unknown_key(e["loc"])
            problems.append((loc, message))
            if near:
                meant.add(_dotted((*e["loc"][:-1], near)))
        elif kind == "missing":
            problems.append((loc, "is required"))
        elif kind == "string_pattern_mismatch":
            pattern = ctx.get("pattern", "")
            problems.append(
                (
                    loc,
                    f"{e['input']!r} does not match {_PATTERN_HELP.get(pattern, pattern)}",
                )
            )
        elif kind in ("enum", "literal_error"):
            expected = str(ctx.get("expected"))
            close = difflib.get_close_matches(
                str(e["input"]), re.findall(r"'([^']*)'", expected), n=1
            )
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append((loc, f"{e['input']!r} is not allowed; expected {expected}{hint}"))
        elif kind == "too_short":
            have = len(e["input"]) if isinstance(e["input"], (list, tuple, dict)) else 0
            problems.append(
                (loc, f"needs at least {ctx.get('min_length', 1)} item(s), got {have}; see the "
                 "manifest reference in docs/manifest-reference.md for what belongs here")
            )  # fmt: skip
        elif kind == "string_type" and isinstance(e["input"], int | float):
            problems.append(
                (loc, f"{e['input']} reads as a number in YAML: quote it, '{e['input']}' (an "
                 "unquoted account id also loses any leading zero)")
            )  # fmt: skip
        elif kind == "union_of":
            kinds = list(dict.fromkeys(e["expected"]))
            what = ", ".join(kinds[:-1]) + f" or {kinds[-1]}" if len(kinds) > 1 else kinds[0]
            problems.append((loc, f"expected {what} (got {e['input']!r})"))
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            problems.append(
                (loc, f"expected a section of keys (got {e['input']!r}); leave the key out to "
                 "take its defaults")
            )  # fmt: skip
        elif kind == "value_error":
            problems.append((loc, str(inner) if inner is not None else e["msg"]))
        else:
            problems.append((loc, f"{e['msg'][0].lower()}{e['msg'][1:]} (got {e['input']!r})"))
    return [(loc, msg) for loc, msg in problems if not (loc in meant and msg == "is required")]


_PATTERN_HELP = {
    r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$": "a lowercase slug (letters, digits, dashes; 3-32 chars)",
    r"^[0-9]{12}$": "a 12-digit AWS account id",
    r"^ml\.[a-z0-9]+\.[a-z0-9]+$": "a SageMaker instance type such as ml.m5.large",
    r"^R[0-9]{1,3}$": "a risk id such as R1",
    r"^[UW][A-Z0-9]{6,}$": "a Slack member id such as U024BE7LH",
    r"^https://\S+$": "an https:// URL",
    r"^s3://\S+/$": "an s3://bucket/prefix/ URI ending in '/'",
    r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$": "an email address",
    r"^[a-z0-9][a-z0-9_/-]*/$": "an S3 prefix ending in '/'",
    r"^[A-Za-z][A-Za-z0-9]{1,100}$": "a CloudWatch metric name (letters and digits)",
    r"^[a-z_][a-z0-9_]*$": "a column name (lowercase letters, digits, underscores)",
    RELATIVE_PATH: "a path relative to the manifest's folder, such as etl/transform.py",
    IMAGE_URI: "an ECR image URI such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/repo:tag",
}


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not re.fullmatch(r"function-after\[.*\]|tagged-union\[.*\]", str(part)):
            out += f".{part}" if out else str(part)
    return out


def _unknown_key(loc: tuple[int | str, ...]) -> tuple[str, str | None]:
    """Name the unknown key and, when one is close, the key that was meant."""
    key = str(loc[-1])
    model: type[BaseModel] | None = Manifest
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_of(field.annotation) if field else None
    allowed = sorted(model.model_fields) if model else []
    near = difflib.get_close_matches(key, allowed, n=1)
    if near:
        return f"unknown key '{key}'; did you mean '{near[0]}'?", near[0]
    return f"unknown key '{key}'; allowed: {', '.join(allowed)}", None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found:
            return found
    return None
