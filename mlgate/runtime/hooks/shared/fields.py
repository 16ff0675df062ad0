"""A field checker without pydantic, for the hooks whose events are not the release path's
(the gate notifier, the gate callback, the pipeline starter, the drift responder: issue 28's
cold start, where pydantic's import was most of what a hook added to a bare boto3 function's
init). It checks an input whole before any AWS call, as the pydantic models it replaces did,
and words its refusals as pydantic does (the same field path and reason, "(and N more)"), so the
refusals and their log lines stay the same; tests/lambdas/test_fields_checker.py compares it
with those models on the sample events, every field malformed, and Hypothesis' mutations. Two
differences, both in words only: a JSON syntax error's detail is Python's json's (pydantic's is
serde's), and a function URL's timeEpoch (never read) is refused in fewer words.

A spec is Text, Str, Lit, Bool, Moment, Json, Obj, Seq, Map, Dict or Tagged; `check(data,
spec)` answers the value read (an Obj as a Record: attributes under the fields' Python names,
None for an optional field left out) or raises Invalid with every error found, the first first.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any

Loc = tuple[int | str, ...]


class Invalid(ValueError):
    """Every error found, as (field location, message): pydantic's ValidationError.errors()."""

    def __init__(self, errors: list[tuple[Loc, str, str]]) -> None:
        super().__init__(errors[0][1])
        self.errors = errors


class Errors(list[tuple[Loc, str, str]]):
    """The errors found so far; `json_mode`: the input was JSON text, which pydantic words some
    errors for ("Input should be an object", "a valid array")."""

    json_mode = False


class Record:
    """An object read by an Obj: its fields as attributes."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Record({self.__dict__!r})"


def printable(value: str) -> str:
    """Refuses control, format, surrogate, private-use and unassigned characters."""
    for at, char in enumerate(value):
        if unicodedata.category(char)[0] == "C":
            raise ValueError(f"has a control or format character (U+{ord(char):04X}) at {at}")
    return value


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class Spec:
    """What a field must be."""

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        raise NotImplementedError


class Text(Spec):
    """A string (never coerced) of 1 to `max_length` characters matching `pattern`, then
    `after` (each raising ValueError: "Value error, ..." as pydantic's AfterValidator)."""

    def __init__(
        self, max_length: int, pattern: str | None = None,
        after: tuple[Callable[[str], str], ...] = (),
    ) -> None:  # fmt: skip
        self.max_length, self.pattern, self.after = max_length, pattern, after
        # pydantic's patterns are Rust regexes, whose $ is the end of the text; Python's $ also
        # matches before a final newline: \Z is the end.
        anchored = pattern[:-1] + r"\Z" if pattern and pattern.endswith("$") else pattern
        self._compiled = re.compile(anchored) if anchored else None

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if not isinstance(value, str):
            errors.append((loc, "Input should be a valid string", "string_type"))
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate
            errors.append((loc, "Input should be a valid string, unable to parse raw data as a "
                           "unicode string", "string_unicode"))  # fmt: skip
            return None
        if len(value) < 1:
            errors.append((loc, "String should have at least 1 character", "string_too_short"))
            return None
        if len(value) > self.max_length:
            most = _plural(self.max_length, "character")
            errors.append((loc, f"String should have at most {most}", "string_too_long"))
            return None
        if self._compiled is not None and not self._compiled.search(value):
            errors.append((loc, f"String should match pattern '{self.pattern}'",
                           "string_pattern_mismatch"))  # fmt: skip
            return None
        for after in self.after:
            try:
                value = after(value)
            except ValueError as err:
                errors.append((loc, f"Value error, {err}", "value_error"))
                return None
        return value


class Str(Spec):
    """Any string, empty included (pydantic's plain str, which takes a lone surrogate too)."""

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if not isinstance(value, str):
            errors.append((loc, "Input should be a valid string", "string_type"))
            return None
        return value


def _unicode(value: str, loc: Loc, errors: list[tuple[Loc, str, str]]) -> bool:
    """False, and the error pydantic's strict and literal strings give, for a lone surrogate."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        errors.append((loc, "Input should be a valid string, unable to parse raw data as a "
                       "unicode string", "string_unicode"))  # fmt: skip
        return False
    return True


class Moment(Spec):
    """A time, as pydantic's lax datetime takes it: a number (Unix seconds, or milliseconds past
    2e10), numeric text, or ISO 8601 text. Kept as given (the callers never read it)."""

    LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        number: Any = value
        if isinstance(value, str) and not _unicode(value, loc, errors):
            return None
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                try:
                    datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    errors.append((loc, "Input should be a valid datetime or date, invalid "
                                   "format", "datetime_from_date_parsing"))  # fmt: skip
                    return None
                return value
        if isinstance(number, bool) or not isinstance(number, int | float):
            errors.append((loc, "Input should be a valid datetime", "datetime_type"))
            return None
        ms = abs(number) if abs(number) > 2e10 else abs(number) * 1000
        if ms != ms or ms > self.LATEST_MS:  # NaN, infinite or past year 9999
            errors.append((loc, "Input should be a valid datetime, dates after 9999 are not "
                           "supported as unix timestamps", "datetime_parsing"))  # fmt: skip
            return None
        return value


def _quoted(values: tuple[Any, ...]) -> str:
    shown = [repr(v) if not isinstance(v, str) else f"'{v}'" for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


class Lit(Spec):
    """One of `values`, text (pydantic's Literal of strings)."""

    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = values

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if isinstance(value, str) and value in self.values:
            return value
        if isinstance(value, str) and not _unicode(value, loc, errors):
            return None
        errors.append((loc, f"Input should be {_quoted(self.values)}", "literal_error"))
        return None


class Bool(Spec):
    """True or False only (pydantic's StrictBool)."""

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if isinstance(value, bool):
            return value
        errors.append((loc, "Input should be a valid boolean", "bool_type"))
        return None


class Opt(Spec):
    """`spec`, or null (pydantic's `X | None`); `default` when the field is left out."""

    def __init__(self, spec: Spec, default: Any = None) -> None:
        self.spec, self.default = spec, default

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        return None if value is None else self.spec.read(value, loc, errors)


class Default(Spec):
    """`spec` when given; `default` when the field is left out (null is refused as the spec
    refuses it)."""

    def __init__(self, spec: Spec, default: Any) -> None:
        self.spec, self.default = spec, default

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        return self.spec.read(value, loc, errors)


def _too_long(kind: str, most: int, found: int | str) -> str:
    return f"{kind} should have at most {_plural(most, 'item')} after validation, not {found}"


class Seq(Spec):
    """A list of `item`, `min_length` to `max_length` long."""

    def __init__(self, item: Spec, max_length: int, min_length: int = 0) -> None:
        self.item, self.max_length, self.min_length = item, max_length, min_length

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if not isinstance(value, list | tuple):
            kind = "array" if getattr(errors, "json_mode", False) else "list"
            errors.append((loc, f"Input should be a valid {kind}", "list_type"))
            return None
        if len(value) > self.max_length:
            errors.append((loc, _too_long("List", self.max_length, len(value)), "too_long"))
            return None
        out = [self.item.read(v, (*loc, i), errors) for i, v in enumerate(value)]
        if len(value) < self.min_length:
            errors.append((loc, f"List should have at least {_plural(self.min_length, 'item')} "
                           f"after validation, not {len(value)}", "too_short"))  # fmt: skip
        return out


class Map(Spec):
    """An object of anything, at most `max_length` keys (pydantic's dict[str, Any])."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if not isinstance(value, dict):
            said = "an object" if getattr(errors, "json_mode", False) else "a valid dictionary"
            errors.append((loc, f"Input should be {said}", "dict_type"))
            return None
        if len(value) > self.max_length:
            errors.append((loc, _too_long("Dictionary", self.max_length, "more"),
                           "too_long"))  # fmt: skip
            return None
        return value


class Dict(Spec):
    """An object whose values are each `value` (pydantic's dict[str, X])."""

    def __init__(self, value: Spec) -> None:
        self.value = value

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if not isinstance(value, dict):
            said = "an object" if getattr(errors, "json_mode", False) else "a valid dictionary"
            errors.append((loc, f"Input should be {said}", "dict_type"))
            return None
        return {k: self.value.read(v, (*loc, k), errors) for k, v in value.items()}


class Obj(Spec):
    """An object with `fields` (Python name: spec); `aliases` maps a Python name to the key the
    event writes (detail_type: detail-type). A field whose spec is Opt or Default may be left
    out; keys the spec does not name are ignored. `name` is the model's, for the message.
    `by_name`: a field may also be given under its Python name (pydantic's populate_by_name);
    `before` is applied to the object before its fields are read (a before-validator)."""

    def __init__(
        self, name: str, fields: dict[str, Spec], aliases: dict[str, str] | None = None,
        by_name: bool = False, before: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        self.name, self.fields, self.aliases = name, fields, aliases or {}
        self.by_name, self.before = by_name, before

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if not isinstance(value, dict):
            said = f"a valid dictionary or instance of {self.name}"
            said = "an object" if getattr(errors, "json_mode", False) else said
            errors.append((loc, f"Input should be {said}", "model_type"))
            return None
        if self.before is not None:
            value = self.before(value)
        out = {}
        for name, spec in self.fields.items():
            key = self.aliases.get(name, name)
            if key not in value and self.by_name and name in value:
                key = name
            if key in value:
                out[name] = spec.read(value[key], (*loc, key), errors)
            elif isinstance(spec, Opt | Default):
                out[name] = spec.default
            else:
                errors.append(((*loc, key), "Field required", "missing"))
        return Record(**out)


class Tagged(Spec):
    """One of `kinds` (Obj by tag), told by the value at `key` (`name` is its Python name):
    pydantic's discriminated union."""

    def __init__(self, name: str, key: str, kinds: dict[str, Obj]) -> None:
        self.name, self.key, self.kinds = name, key, kinds

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        which = f"'{self.name}' | '{self.key}'"
        if not isinstance(value, dict):
            said = "a valid dictionary or object to extract fields from"
            said = "an object" if getattr(errors, "json_mode", False) else said
            errors.append((loc, f"Input should be {said}", "model_attributes_type"))
            return None
        if self.name not in value and self.key not in value:
            errors.append((loc, f"Unable to extract tag using discriminator {which}",
                           "union_tag_not_found"))  # fmt: skip
            return None
        tag = value[self.name] if self.name in value else value[self.key]
        kind = self.kinds.get(tag) if isinstance(tag, str) else None
        if kind is None:
            expected = ", ".join(f"'{k}'" for k in self.kinds)
            shown = str(tag).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            errors.append((loc, f"Input tag '{shown}' found using {which} does not match any of "
                           f"the expected tags: {expected}", "union_tag_invalid"))  # fmt: skip
            return None
        return kind.read(value, (*loc, tag), errors)


def loads(text: str) -> Any:
    """JSON text as pydantic reads it: ValueError for what is not JSON, a lone surrogate
    escape (\\ud800) included (Python's json takes it; pydantic's parser does not)."""
    found = json.loads(text)
    if "\\u" in text:
        try:
            json.dumps(found, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("lone surrogate in a \\u escape") from None
    return found


class Json(Spec):
    """JSON text holding `spec` (pydantic's Json[...])."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if not isinstance(value, str | bytes | bytearray):
            errors.append((loc, "JSON input should be string, bytes or bytearray", "json_type"))
            return None
        try:
            if isinstance(value, str):
                value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in the text itself
            errors.append((loc, "Input should be a valid string, unable to parse raw data as a "
                           "unicode string", "string_unicode"))  # fmt: skip
            return None
        try:
            found = loads(value if isinstance(value, str) else bytes(value).decode("utf-8"))
        except ValueError as err:
            errors.append((loc, f"Invalid JSON: {err}", "json_invalid"))
            return None
        return self.spec.read(found, loc, errors)


def check(data: Any, spec: Spec) -> Any:
    """`data` read with `spec` (a str is read as JSON first, as Powertools' parse does);
    Invalid with every error otherwise."""
    errors = Errors()
    if isinstance(data, str):
        try:
            data = loads(data)
        except ValueError as err:
            raise Invalid([((), f"Invalid JSON: {err}", "json_invalid")]) from None
        errors.json_mode = True
    found = spec.read(data, (), errors)
    if errors:
        raise Invalid(errors)
    return found
