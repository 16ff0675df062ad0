"""The events the non-release-path hooks act on (the gate notifier's, the gate callback's, the
pipeline starter's, the drift responder's), checked whole without pydantic (shared/fields.py:
issue 28's cold start), and the check that an EventBridge event comes from where the hook's own
rule would deliver it from (issue 28). The job hooks read theirs with Powertools' parser
(shared/models.py).

Checked: every text field is text only (a number, list, object or null is refused), not empty,
no longer than the service that writes it allows, and free of control characters, NUL, format
characters (right-to-left marks and overrides, zero-width characters), lone surrogates,
private-use and unassigned characters (Unicode categories C*). A refusal is one `Refused`: the
field's path and what is wrong with it, never the value itself beyond a short, escaped excerpt.

Trusted: a delivery rule is not trusted alone. A hook that EventBridge invokes compares the
event's source, account, region and resource with its own before any AWS call: its account,
region and partition are those of its function's ARN in the Lambda context (`Origin`), the names
it expects come from its environment (set by its construct).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from shared.fields import (
    Invalid,
    Lit,
    Loc,
    Map,
    Obj,
    Opt,
    Seq,
    Spec,
    Tagged,
    Text,
    check,
    printable,
)


def timestamp(value: str) -> str:
    """An ISO 8601 time as the services write it (2016-07-07T20:22Z, 2026-11-24T09:00:00.000Z);
    kept as written, so a retry records the same text."""
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("is not an ISO 8601 time") from None
    return value


def text(max_length: int, pattern: str | None = None) -> Text:
    """Printable text of 1 to `max_length` characters matching `pattern`."""
    return Text(max_length, pattern, after=(printable,))


TEXT = text(1024)
NAME = text(255)
SHORT = text(32)
ARN = text(2048, r"^arn:[a-z-]+:[a-z0-9-]+:")
STAMP = Text(64, after=(printable, timestamp))
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html: a
# 12-digit account, a Region, a Version 4 UUID as id (any id of letters, digits and dashes here).
ACCOUNT = Text(12, r"^[0-9]{12}$")
REGION = Text(32, r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
EVENT_ID = Text(128, r"^[A-Za-z0-9_-]+$")
# CodePipeline's names: https://docs.aws.amazon.com/codepipeline/latest/APIReference/
# API_PutApprovalResult.html (1 to 100 of A-Z a-z 0-9 . @ - _).
PIPELINE_NAME = Text(100, r"^[A-Za-z0-9.@_-]+$")


def _scheduler(event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge Scheduler writes an empty detail as the text '{}' (Powertools'
    EventBridgeModel reads it as an empty object, and so does this)."""
    if event.get("source") == "aws.scheduler" and event.get("detail") == "{}":
        return {**event, "detail": {}}
    return event


def envelope(name: str, detail_type: str, detail: Spec) -> Obj:
    """EventBridge's envelope (Powertools' EventBridgeModel's fields, in its order) with every
    field checked as above, `detail-type` `detail_type` and its `detail`."""
    return Obj(
        name,
        {
            "version": SHORT,
            "id": EVENT_ID,
            "source": NAME,
            "account": ACCOUNT,
            "time": STAMP,
            "region": REGION,
            "resources": Seq(ARN, max_length=50),
            "detail_type": Lit((detail_type,)),
            "detail": detail,
            "replay_name": Opt(NAME),
        },
        aliases={"detail_type": "detail-type", "replay_name": "replay-name"},
        by_name=True,
        before=_scheduler,
    )


def kinds(*envelopes: Obj) -> Tagged:
    """One of `envelopes`, told by its detail-type."""
    tags = {}
    for found in envelopes:
        literal = found.fields["detail_type"]
        tags[literal.values[0]] = found  # type: ignore[attr-defined]
    return Tagged("detail_type", "detail-type", tags)


EMPTY = Map(max_length=0)


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


def first_problem(
    errors: list[tuple[Loc, str, str]], tags: tuple[str, ...] = (), root: str = ""
) -> tuple[str, str]:
    """(field, what is wrong) of the first error found, the field's path under `root`; `tags`
    are the detail-types of a discriminated union, which come first in an error's location."""
    loc, msg, kind = errors[0]
    if loc and loc[0] in tags:
        loc = loc[1:]
    field = "detail-type" if kind.startswith("union_tag") else path(loc, root)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return field, f"{field}: {excerpt(msg.removeprefix('Value error, '), 160)}{more}"


def read_as(event: Any, spec: Spec, error: type[R], what: str, tags: tuple[str, ...] = ()) -> Any:
    """`event` checked whole with `spec`; an `error` naming the field otherwise."""
    try:
        return check(event, spec)
    except Invalid as err:
        field, reason = first_problem(err.errors, tags)
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


def from_here(event: Any, origin: Origin, source: str, error: type[R]) -> None:
    """The event's source is `source`, its account and region this function's own."""
    expect(error, "source", event.source, source, "the service that emits these events")
    expect(error, "account", event.account, origin.account, FROM_CONTEXT)
    expect(error, "region", event.region, origin.region, FROM_CONTEXT)


def resources_within(
    event: Any, arn: str, whence: str, error: type[R], *, prefix: bool = False
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


# CodePipeline's action execution state change (the gate callback's expired gates, the rollback
# hook's verified releases).
ACTION_TYPE = Obj("ActionType", {"category": SHORT, "provider": Opt(SHORT), "owner": Opt(SHORT)})
ACTION_DETAIL = Obj(
    "ActionDetail",
    {
        "pipeline": PIPELINE_NAME,
        "execution_id": Text(100, r"^[A-Za-z0-9-]+$", after=(printable,)),
        "stage": PIPELINE_NAME,
        "action": PIPELINE_NAME,
        "state": SHORT,
        "type": ACTION_TYPE,
    },
    aliases={"execution_id": "execution-id"},
)
# CodePipeline's action execution state change (https://docs.aws.amazon.com/codepipeline/
# latest/userguide/detect-state-changes-cloudwatch-events.html).
ACTION_EVENT = "CodePipeline Action Execution State Change"
ACTION_EVENT_SPEC = envelope("ActionEvent", ACTION_EVENT, ACTION_DETAIL)
