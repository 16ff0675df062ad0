"""The pipeline starter, the drift responder, the gate notifier and Slack's click (the gate
callback's) are checked without pydantic (shared/fields.py, shared/events.py: issue 28's cold
start). Their refusals must stay what the pydantic models they replaced answered: the same
field, the same reason, the same values read. The models below are those models as they were (on
the former shared/eventbridge.py's Envelope, read with Powertools' parse): each sample event,
every field of it with every malformed value, and Hypothesis' mutations go through both, and the
answers are compared."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    EventBridgeModel,
    LambdaFunctionUrlModel,
    RequestContextV2,
    RequestContextV2Http,
    SnsModel,
    SnsNotificationModel,
    SnsRecordModel,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Json,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from shared import fields, slack
from shared.events import R, Refused, first_problem, read_as, timestamp
from shared.fields import printable

from .conftest import LAMBDAS, event
from .test_gate_and_drift_inputs import (
    DROP,
    FAILED,
    PAYLOAD,
    SNS,
    cases,
    changed,
    click_fields,
    click_value,
    click_with,
    malformed,
    mutation,
    notification,
    notification_fields,
    notification_value,
    value_at,
)
from .test_gate_and_drift_inputs import (
    fields as paths,
)

# --- The models as they were (the former shared/eventbridge.py's types, then the hooks') -----


def limits(max_length: int, pattern: str | None = None) -> StringConstraints:
    return StringConstraints(strict=True, min_length=1, max_length=max_length, pattern=pattern)


Printable = AfterValidator(printable)
Text = Annotated[str, limits(1024), Printable]
Name = Annotated[str, limits(255), Printable]
Short = Annotated[str, limits(32), Printable]
Arn = Annotated[str, limits(2048, r"^arn:[a-z-]+:[a-z0-9-]+:"), Printable]
Stamp = Annotated[str, limits(64), Printable, AfterValidator(timestamp)]
Account = Annotated[str, limits(12, r"^[0-9]{12}$")]
Region = Annotated[str, limits(32, r"^[a-z]{2}(-[a-z]+)+-[0-9]$")]
EventId = Annotated[str, limits(128, r"^[A-Za-z0-9_-]+$")]
PipelineName = Annotated[str, limits(100, r"^[A-Za-z0-9.@_-]+$")]


class Envelope(EventBridgeModel):
    model_config = ConfigDict(defer_build=True)
    version: Short
    id: EventId
    source: Name
    account: Account
    time: Stamp  # type: ignore[assignment]
    region: Region
    resources: Annotated[list[Arn], Field(max_length=50)]
    replay_name: Name | None = Field(None, alias="replay-name")


def problem(err: ValidationError, tags: tuple[str, ...] = (), root: str = "") -> tuple[str, str]:
    errors = err.errors(include_input=False, include_url=False, include_context=False)
    found = [(tuple(e["loc"]), e["msg"], str(e["type"])) for e in errors]
    return first_problem(found, tags, root)


def parse_as(event: Any, model: Any, error: type[R], what: str, tags: tuple[str, ...] = ()) -> Any:
    try:
        return parse(event=event, model=model)
    except ValidationError as err:
        field, reason = problem(err, tags)
        raise error(field, f"not {what}: {reason}") from None


class GlueJobDetail(BaseModel):
    jobName: Name
    state: Short
    jobRunId: Name


class GlueJobEvent(Envelope):
    detail_type: Literal["Glue Job State Change"] = Field(alias="detail-type")
    detail: GlueJobDetail


class ScheduledEvent(Envelope):
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    detail: Annotated[dict[str, Any], Field(max_length=0)]


Trigger = Annotated[GlueJobEvent | ScheduledEvent, Field(discriminator="detail_type")]


class AlarmState(BaseModel):
    value: Short
    reason: Text
    timestamp: Short


class AlarmDetail(BaseModel):
    alarmName: Name
    state: AlarmState


class AlarmEvent(Envelope):
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    detail: AlarmDetail


class S3Location(BaseModel):
    S3Uri: Text


class Output(BaseModel):
    S3Output: S3Location | None = None


class OutputConfig(BaseModel):
    Outputs: Annotated[list[Output], Field(max_length=20)] = []


JobName = Annotated[str, limits(63, r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]


class ProcessingDetail(BaseModel):
    ProcessingJobName: JobName
    ProcessingJobStatus: Short
    ExitMessage: Text | None = None
    MonitoringScheduleArn: Arn | None = None
    ProcessingOutputConfig: OutputConfig | None = None


class ProcessingEvent(Envelope):
    detail_type: Literal["SageMaker Processing Job State Change"] = Field(alias="detail-type")
    detail: ProcessingDetail


DriftEvent = Annotated[AlarmEvent | ProcessingEvent, Field(discriminator="detail_type")]

Token = Annotated[str, limits(128), Printable]
Url = Annotated[str, limits(2048, r"^https://"), Printable]
DEFERRED = ConfigDict(defer_build=True)


class Approval(BaseModel):
    model_config = DEFERRED
    pipelineName: PipelineName
    stageName: PipelineName
    actionName: PipelineName
    token: Token
    expires: Stamp
    externalEntityLink: Text | None = None
    approvalReviewLink: Text | None = None
    customData: Text | None = None


class ApprovalMessage(BaseModel):
    model_config = DEFERRED
    region: Name | None = None
    consoleLink: Text | None = None
    approval: Approval


class ApprovalNotification(SnsNotificationModel):
    model_config = DEFERRED
    Message: Json[ApprovalMessage]  # type: ignore[assignment]
    Timestamp: Stamp  # type: ignore[assignment]
    TopicArn: Arn
    MessageId: Name
    Subject: Text | None = None
    Signature: Text | None = None
    SignatureVersion: Short | None = None
    SigningCertUrl: Url | None = None  # type: ignore[assignment]
    UnsubscribeUrl: Url  # type: ignore[assignment]

    @model_validator(mode="before")
    @classmethod
    def check_sqs_protocol(cls, values: Any) -> Any:
        if isinstance(values, dict) and {"UnsubscribeURL", "SigningCertURL"} & set(values):
            values = dict(values)
            values["UnsubscribeUrl"] = values.pop("UnsubscribeURL", None)
            values["SigningCertUrl"] = values.pop("SigningCertURL", None)
        return values


class ApprovalRecord(SnsRecordModel):
    model_config = DEFERRED
    EventVersion: Short
    EventSubscriptionArn: Arn
    Sns: ApprovalNotification


class ApprovalEvent(SnsModel):
    model_config = DEFERRED
    Records: Annotated[list[ApprovalRecord], Field(min_length=1, max_length=1)]  # type: ignore[assignment]


UserId = Annotated[str, limits(32, r"^[UW][A-Z0-9]+$")]
TeamId = Annotated[str, limits(32, r"^T[A-Z0-9]+$")]
AppId = Annotated[str, limits(32, r"^A[A-Z0-9]+$")]
UserName = Annotated[str, limits(80), Printable]
Value = Annotated[str, limits(64), Printable]


class User(BaseModel):
    model_config = DEFERRED
    id: UserId
    username: UserName | None = None
    name: UserName | None = None


class Team(BaseModel):
    model_config = DEFERRED
    id: TeamId


class Action(BaseModel):
    model_config = DEFERRED
    action_id: Literal["approve", "reject", "rollback"]
    value: Value


class Interaction(BaseModel):
    model_config = DEFERRED
    user: User
    actions: Annotated[list[Action], Field(min_length=1, max_length=1)]
    team: Team | None = None
    api_app_id: AppId | None = None


class Http(RequestContextV2Http):
    model_config = DEFERRED
    path: Text
    protocol: Short
    userAgent: Text
    sourceIp: Annotated[str, limits(64), Printable]

    @field_validator("sourceIp", mode="before")
    @classmethod
    def _validate_source_ip(cls, value: Any) -> Any:
        return value


class UrlRequestContext(RequestContextV2):
    model_config = DEFERRED
    accountId: Short
    apiId: Short
    domainName: Name
    domainPrefix: Short
    requestId: Name
    routeKey: Short
    stage: Short
    time: Short
    http: Http


class UrlRequest(LambdaFunctionUrlModel):
    model_config = DEFERRED
    version: Short
    routeKey: Short
    rawPath: Text
    requestContext: UrlRequestContext
    body: str | None = None
    isBase64Encoded: StrictBool | None = None


class ActionType(BaseModel):
    model_config = DEFERRED
    category: Short
    provider: Short | None = None
    owner: Short | None = None


class ActionDetail(BaseModel):
    model_config = DEFERRED
    pipeline: PipelineName
    execution_id: Annotated[str, limits(100, r"^[A-Za-z0-9-]+$")] = Field(alias="execution-id")
    stage: PipelineName
    action: PipelineName
    state: Short
    type: ActionType


class ActionEvent(Envelope):
    detail_type: Literal["CodePipeline Action Execution State Change"] = Field(alias="detail-type")
    detail: ActionDetail


# --- The comparison --------------------------------------------------------------------------


def answer(read: Any, data: Any) -> tuple[str, Any]:
    """("refused", (field, reason)) or ("read", the value)."""
    try:
        return "read", read(data)
    except Refused as err:
        return "refused", (err.field, err.reason)


def same(found: Any, reference: Any) -> bool:
    """A Record and the pydantic model read from the same event hold the same values."""
    if isinstance(reference, datetime):
        return True  # a function URL's timeEpoch: kept as given (the callback never reads it)
    if isinstance(found, fields.Record):
        return all(same(v, getattr(reference, k)) for k, v in vars(found).items())
    if isinstance(found, list):
        return len(found) == len(reference) and all(map(same, found, reference))
    if isinstance(found, dict) and not isinstance(reference, dict):
        return False
    if isinstance(found, dict):
        return found.keys() == reference.keys() and all(same(found[k], reference[k]) for k in found)
    return bool(found == reference)


def agree(new: Any, old: Any, data: Any) -> None:
    (kind, found), (was, reference) = answer(new, data), answer(old, data)
    assert kind == was, (data, found, reference)
    if kind == "read":
        assert same(found, reference), (data, found, reference)
    elif "Invalid JSON: " in reference[1]:
        # Text read as JSON: Python's json words its errors unlike pydantic's (serde's): the
        # same field, the same refusal up to the parser's own words.
        cut = reference[1].index("Invalid JSON: ") + len("Invalid JSON: ")
        assert (found[0], found[1][:cut]) == (reference[0], reference[1][:cut]), data
    else:
        assert found == reference, data


def starter_pair() -> tuple[Any, Any]:
    from pipeline_starter import handler

    def old(e: Any) -> Any:
        what = f"a '{handler.GLUE_JOB}' or '{handler.SCHEDULED}' event"
        return parse_as(e, Trigger, handler.EventError, what, handler.KINDS)

    return handler.describe, old


def drift_pair() -> tuple[Any, Any]:
    from drift_responder import handler

    def old(e: Any) -> Any:
        what = f"a '{handler.ALARM_TYPE}' or '{handler.DETAIL_TYPE}' event"
        return parse_as(e, DriftEvent, handler.EventError, what, handler.KINDS)

    return handler.parse, old


SAMPLES = [
    ("glue", starter_pair, event("glue_job_succeeded.json")),
    ("schedule", starter_pair, event("scheduled_event.json")),
    ("alarm", drift_pair, event("drift_alarm_state_change.json")),
    ("model-monitor", drift_pair, event("monitoring_violations.json")),
]
IDS = [s[0] for s in SAMPLES]
NOT_EVENTS: list[Any] = [None, 0, 1.5, True, [], ["x"], {}, "", "x", "[1]", "{}", "null",
                         '{"detail-type": "Scheduled Event"}', b"{}", {"detail-type": 7},
                         {"detail_type": "Scheduled Event"}]  # fmt: skip


def notifier_pair() -> tuple[Any, Any]:
    from gate_notifier import handler

    what = "a CodePipeline approval notification"

    def new(e: Any) -> Any:
        return read_as(e, handler.APPROVAL_EVENT, handler.EventError, what)

    def old(e: Any) -> Any:
        return parse_as(e, ApprovalEvent, handler.EventError, what)

    return new, old


def pair_of(spec: Any, model: Any, what: str) -> tuple[Any, Any]:
    def new(e: Any) -> Any:
        return read_as(e, spec, Refused, what)

    def old(e: Any) -> Any:
        return parse_as(e, model, Refused, what)

    return new, old


def click_pair() -> tuple[Any, Any]:
    """Slack's click JSON (the payload field of the form body): the checker and the model."""

    def new(text: str) -> Any:
        try:
            return fields.check(text, slack.INTERACTION)
        except fields.Invalid as err:
            raise Refused(*first_problem(err.errors, root="payload")) from None

    def old(text: str) -> Any:
        try:
            return Interaction.model_validate_json(text)
        except ValidationError as err:
            raise Refused(*problem(err, root="payload")) from None

    return new, old


def hook_modules() -> dict[str, Any]:
    """The hooks' modules now loaded (the `shared` package and each hook's), by name."""
    return {
        name: module
        for name, module in list(sys.modules.items())
        if (where := getattr(module, "__file__", None)) and in_hooks(where)
    }


@functools.cache
def in_hooks(where: str) -> bool:
    """Whether a module's file is a hook's (resolved once per file: a few thousand modules
    are loaded, and each test looks at them all two or three times)."""
    return Path(where).resolve().is_relative_to(LAMBDAS)


SHARED = hook_modules()
"""The copies of shared/ this module compares with (its `fields`, `events`, `slack`)."""


def load(modules: dict[str, Any]) -> None:
    """Exactly these hook modules in sys.modules, no other."""
    for name in hook_modules():
        del sys.modules[name]
    sys.modules.update(modules)


def use_shared() -> None:
    """This module's copies of shared/ alone: a hook imported next uses them."""
    if any(sys.modules.get(name) is not module for name, module in SHARED.items()):
        load(SHARED)


@pytest.fixture(autouse=True)
def hook_env(aws: None) -> Iterator[None]:
    """The hooks make their clients at import (moto's world). Each hook is imported against
    the very shared/ modules this module holds: the rehearsal (tools/rehearsal.py:
    forget_hooks) unloads the hooks between products, and a hook imported again after it
    builds its specs and Records from a second copy of shared/fields.py, which this module's
    checks do not recognise (its Record is another class): every read would then differ from
    the model's for that reason alone. The hooks' modules are as before once the test is done."""
    before = hook_modules()
    use_shared()
    yield
    load(before)


def unload_hooks() -> None:
    """As the rehearsal does between products (tools/rehearsal.py: forget_hooks)."""
    load({})


def test_a_hook_imported_after_the_rehearsal_unloaded_the_hooks_is_compared_alike() -> None:
    """The broken form: after the hooks are unloaded, a hook imported again reads with a
    second copy of shared/, and the comparison fails on an event both read alike. Put back,
    the same comparison agrees."""
    request = click_with("a" * 24, ("version",), "2.0-other")
    unload_hooks()
    from gate_callback import handler

    assert sys.modules["shared.fields"] is not fields
    new, old = pair_of(handler.URL_REQUEST, UrlRequest, "a function URL request")
    with pytest.raises(AssertionError):
        agree(new, old, request)
    use_shared()
    from gate_callback import handler as again

    assert again is not handler
    new, old = pair_of(again.URL_REQUEST, UrlRequest, "a function URL request")
    agree(new, old, request)


# Every field of each sample with every malformed class (each text also with a final newline)
# goes through both readers in the deterministic tests here (test_every_*_malformed_*); the
# random search adds breadth: 60 examples (150 before), as test_gate_and_drift_inputs' property
# tests. MLGATE_PROPERTY_EXAMPLES raises it.
PROPERTY = settings(
    max_examples=int(os.environ.get("MLGATE_PROPERTY_EXAMPLES", "60")), deadline=None
)


@pytest.mark.parametrize(("name", "pair", "sample"), SAMPLES, ids=IDS)
def test_every_field_malformed_is_answered_as_the_pydantic_model_answered(
    name: str, pair: Any, sample: dict[str, Any]
) -> None:
    new, old = pair()
    assert answer(new, sample)[0] == "read"
    for at, value in cases(sample):
        agree(new, old, changed(sample, at, value))
        if isinstance(value, str) and value:
            # Python's $ matches before a final newline, pydantic's (Rust's) does not.
            agree(new, old, changed(sample, at, value + "\n"))
    for other in NOT_EVENTS:
        agree(new, old, other)


@pytest.mark.parametrize(("name", "pair", "sample"), SAMPLES, ids=IDS)
@PROPERTY
@given(data=st.data())
def test_any_mutation_is_answered_as_the_pydantic_model_answered(
    name: str, pair: Any, sample: dict[str, Any], data: st.DataObject
) -> None:
    new, old = pair()
    at, value = data.draw(mutation(sample))
    agree(new, old, changed(sample, at, value))


def test_every_notification_field_malformed_is_answered_as_the_model_answered() -> None:
    new, old = notifier_pair()
    assert answer(new, SNS)[0] == "read"
    for at in notification_fields():
        for value in [DROP, *malformed(notification_value(at))]:
            agree(new, old, notification(at, value))
            if isinstance(value, str) and value:
                agree(new, old, notification(at, value + "\n"))
    for other in NOT_EVENTS:
        agree(new, old, other)
    message = ("Records", 0, "Sns", "Message")
    for raw in ["", "x", "[1]", "5", "null", '{"approval": "\\ud800"}', "x\ud800", b"{}"]:
        agree(new, old, changed(SNS, message, raw))


@PROPERTY
@given(data=st.data())
def test_any_notification_is_answered_as_the_model_answered(data: st.DataObject) -> None:
    new, old = notifier_pair()
    at = data.draw(st.sampled_from(notification_fields()))
    value = data.draw(st.one_of(st.sampled_from([DROP, *malformed(notification_value(at))]),
                                st.text(max_size=30), st.integers()))  # fmt: skip
    agree(new, old, notification(at, value))


def test_every_click_field_malformed_is_answered_as_the_model_answered() -> None:
    import json

    new, old = click_pair()
    assert answer(new, json.dumps(PAYLOAD))[0] == "read"
    for at in paths(PAYLOAD):
        for value in [DROP, *malformed(value_at(PAYLOAD, at))]:
            agree(new, old, json.dumps(changed(PAYLOAD, at, value)))
    for raw in ["5", "[1]", "null", '{"user": 5, "actions": 5}', '{"user": {"id": "U\\ud800"}}',
                '{"user": {"id": "U1"}, "actions": [{"action_id": "approve", "value": "r"}], '
                '"team": null}']:  # fmt: skip
        agree(new, old, raw)


def test_every_function_url_field_malformed_is_answered_as_the_model_answered() -> None:
    """The request Lambda builds around a click. Its timeEpoch (a datetime the callback never
    reads) is read as pydantic reads one, but a refusal of it says so in fewer words."""
    from gate_callback import handler

    new, old = pair_of(handler.URL_REQUEST, UrlRequest, "a function URL request")
    for at in click_fields():
        if at[0] == "payload":
            continue
        for value in [DROP, *malformed(click_value(at))]:
            request = click_with("a" * 24, at, value)
            if at[-1] == "timeEpoch":
                (kind, found), (was, reference) = answer(new, request), answer(old, request)
                assert kind == was, (value, found, reference)
                if kind == "refused":
                    assert found[0] == reference[0], (value, found, reference)
                    assert reference[1].startswith(found[1].split(",")[0]), (found, reference)
                continue
            agree(new, old, request)


def test_every_action_event_field_malformed_is_answered_as_the_model_answered() -> None:
    from gate_callback import handler

    new, old = pair_of(handler.ACTION_EVENT_SPEC, ActionEvent, "a CodePipeline action event")
    assert answer(new, FAILED)[0] == "read"
    for at, value in cases(FAILED):
        agree(new, old, changed(FAILED, at, value))
    for other in NOT_EVENTS:
        agree(new, old, other)


@PROPERTY
@given(data=st.data())
def test_any_action_event_is_answered_as_the_model_answered(data: st.DataObject) -> None:
    from gate_callback import handler

    new, old = pair_of(handler.ACTION_EVENT_SPEC, ActionEvent, "a CodePipeline action event")
    at, value = data.draw(mutation(FAILED))
    agree(new, old, changed(FAILED, at, value))


def test_the_comparison_catches_a_checker_that_lets_a_control_character_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broken form: a checker whose text fields skip the printable check reads what the
    model refused, and the comparison says so."""
    from pipeline_starter import handler

    monkeypatch.setattr(handler.GLUE_JOB_DETAIL.fields["jobName"], "after", ())
    new, old = starter_pair()
    sample = event("glue_job_succeeded.json")
    with pytest.raises(AssertionError):
        agree(new, old, changed(sample, ("detail", "jobName"), "My\u202eJob"))
    assert DROP is not None


def test_the_comparison_catches_a_pattern_that_takes_a_final_newline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broken form: Python's own `$`, which matches before a final newline."""
    import re

    from shared import events

    monkeypatch.setattr(events.REGION, "_compiled", re.compile(events.REGION.pattern or ""))
    new, old = starter_pair()
    sample = event("glue_job_succeeded.json")
    with pytest.raises(AssertionError):
        agree(new, old, changed(sample, ("region",), sample["region"] + "\n"))
