"""The events the hooks act on, typed, and the check that an EventBridge event comes from where
the hook's own rule would deliver it from (issue 28).

Typed: every hook validates its whole input at the edge with Powertools' parser
(`parse(event=..., model=...)`: pydantic models on its built-in EventBridgeModel, SnsModel and
LambdaFunctionUrlModel, https://docs.powertools.aws.dev/lambda/python/latest/utilities/parser/),
before any AWS call. Every text field is text only (a number, list, object or null is refused),
not empty, no longer than the service that writes it allows, and free of control characters,
NUL, format characters (right-to-left marks and overrides, zero-width characters), lone
surrogates, private-use and unassigned characters (Unicode categories C*). A refusal is one
`Refused`: the field's path and what is wrong with it, never the value itself beyond a short,
escaped excerpt.

Trusted: a delivery rule is not trusted alone. A hook that EventBridge invokes compares the
event's source, account, region and resource with its own before any AWS call: its account,
region and partition are those of its function's ARN in the Lambda context (`Origin`), the names
it expects come from its environment (set by its construct).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, ValidationError


def printable(value: str) -> str:
    """Refuses control, format, surrogate, private-use and unassigned characters."""
    for at, char in enumerate(value):
        if unicodedata.category(char)[0] == "C":
            raise ValueError(f"has a control or format character (U+{ord(char):04X}) at {at}")
    return value


def limits(max_length: int, pattern: str | None = None) -> StringConstraints:
    """A text field's constraints: a string (never coerced) of 1 to `max_length` characters,
    matching `pattern`; pair it with AfterValidator(printable)."""
    return StringConstraints(strict=True, min_length=1, max_length=max_length, pattern=pattern)


Printable = AfterValidator(printable)


def timestamp(value: str) -> str:
    """An ISO 8601 time as the services write it (2016-07-07T20:22Z, 2026-11-24T09:00:00.000Z);
    kept as written, so a retry records the same text."""
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("is not an ISO 8601 time") from None
    return value


Text = Annotated[str, limits(1024), Printable]
Name = Annotated[str, limits(255), Printable]
Short = Annotated[str, limits(32), Printable]
Arn = Annotated[str, limits(2048, r"^arn:[a-z-]+:[a-z0-9-]+:"), Printable]
Stamp = Annotated[str, limits(64), Printable, AfterValidator(timestamp)]
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html: a
# 12-digit account, a Region, a Version 4 UUID as id (any id of letters, digits and dashes here).
Account = Annotated[str, limits(12, r"^[0-9]{12}$")]
Region = Annotated[str, limits(32, r"^[a-z]{2}(-[a-z]+)+-[0-9]$")]
EventId = Annotated[str, limits(128, r"^[A-Za-z0-9_-]+$")]
# CodePipeline's names: https://docs.aws.amazon.com/codepipeline/latest/APIReference/
# API_PutApprovalResult.html (1 to 100 of A-Z a-z 0-9 . @ - _).
PipelineName = Annotated[str, limits(100, r"^[A-Za-z0-9.@_-]+$")]


class Envelope(EventBridgeModel):
    """EventBridge's envelope with every field typed as above; a hook's event narrows
    `detail_type` and `detail`. Built on first use, as every hook's model: an import builds no
    validator (pydantic's defer_build)."""

    model_config = ConfigDict(defer_build=True)
    version: Short
    id: EventId
    source: Name
    account: Account
    time: Stamp  # type: ignore[assignment]
    region: Region
    resources: Annotated[list[Arn], Field(max_length=50)]
    replay_name: Name | None = Field(None, alias="replay-name")


class Refused(ValueError):
    """An input refused before any AWS call: `field` names what is wrong, `reason` says it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


R = TypeVar("R", bound=Refused)


def excerpt(value: Any, limit: int = 60) -> str:
    """A value as a log line may show it: escaped (no control or format character reaches the
    log), cut to `limit` characters."""
    shown = str(value)
    cut = shown[:limit] + ("..." if len(shown) > limit else "")
    return "".join(c if unicodedata.category(c)[0] != "C" else f"\\u{ord(c):04x}" for c in cut)


def path(loc: tuple[int | str, ...], root: str = "") -> str:
    """A field's path as written in the event: detail.state.value, Records[0].Sns.Message."""
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the event"


def problem(err: ValidationError, tags: tuple[str, ...] = (), root: str = "") -> tuple[str, str]:
    """(field, what is wrong) of the first error pydantic found, the field's path under `root`;
    `tags` are the detail-types of a discriminated union, which pydantic puts first in an
    error's location."""
    errors = err.errors(include_input=False, include_url=False, include_context=False)
    first = errors[0]
    loc = tuple(first["loc"])
    if loc and loc[0] in tags:
        loc = loc[1:]
    tagged = str(first["type"]).startswith("union_tag")
    field = "detail-type" if tagged else path(loc, root)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return field, f"{field}: {excerpt(first['msg'].removeprefix('Value error, '), 160)}{more}"


def parse_as(event: Any, model: Any, error: type[R], what: str, tags: tuple[str, ...] = ()) -> Any:
    """Powertools' parse of `event` into `model`; an `error` naming the field otherwise."""
    try:
        return parse(event=event, model=model)
    except ValidationError as err:
        field, reason = problem(err, tags)
        raise error(field, f"not {what}: {reason}") from None


@dataclass(frozen=True)
class Origin:
    """Where the function runs: the partition, region and account of its ARN."""

    partition: str
    region: str
    account: str

    @classmethod
    def of(cls, context: Any) -> Origin:
        """From the Lambda context's invoked_function_arn (arn:aws:lambda:region:account:...)."""
        parts = str(getattr(context, "invoked_function_arn", "")).split(":")
        if len(parts) < 6 or parts[2] != "lambda" or not parts[3] or not parts[4]:
            raise RuntimeError("the Lambda context has no function ARN to read its account from")
        return cls(partition=parts[1], region=parts[3], account=parts[4])

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


# Where the expected values of the checks come from, as the refusals name them.
FROM_CONTEXT = "this function's, from its ARN in the Lambda context"


def expect(error: type[R], field: str, found: str, wanted: str, whence: str) -> None:
    """`found` (the event's `field`) must be `wanted` (taken from `whence`)."""
    if found != wanted:
        raise error(field, f"untrusted event: {field} {excerpt(found)!r} is not {wanted!r} "
                           f"({whence}); nothing was done")  # fmt: skip


def from_here(event: Envelope, origin: Origin, source: str, error: type[R]) -> None:
    """The event's source is `source`, its account and region this function's own."""
    expect(error, "source", event.source, source, "the service that emits these events")
    expect(error, "account", event.account, origin.account, FROM_CONTEXT)
    expect(error, "region", event.region, origin.region, FROM_CONTEXT)


def resources_within(
    event: Envelope, arn: str, whence: str, error: type[R], *, prefix: bool = False
) -> None:
    """Every resource the event names is `arn` (or, with `prefix`, starts with it); the
    services list them at their discretion: none listed passes. SageMaker writes the names in
    its ARNs in lower case: compared without case."""
    for at, resource in enumerate(event.resources):
        found, wanted = resource.lower(), arn.lower()
        if not (found.startswith(wanted) if prefix else found == wanted):
            raise error(f"resources[{at}]", f"untrusted event: resources[{at}] "
                        f"{excerpt(resource)!r} is not {arn!r}{'...' if prefix else ''} "
                        f"({whence}); nothing was done")  # fmt: skip
