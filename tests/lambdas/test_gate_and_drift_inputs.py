"""Every field of every event the gate notifier, the gate callback, the drift responder and the
pipeline starter take, replaced by what a malformed, hostile or misdelivered event carries,
ends in the work done or a clean refusal: an answer (never an exception), one log line naming
the field, and no AWS call before it (issue 28, parts 2 and 3).

The values: a wrong type (number, list, object, null where text is expected), empty, 200 KB
long, control characters, NUL, right-to-left marks and overrides, zero-width characters, a lone
surrogate (in the JSON, and percent-encoded in the callback's form body), and names of another
product, account or region. Each AWS-documented sample event (tests/events) is the base; a
field the hook does not read may carry anything (the work is done), every other is refused.
Fields are reached through every nesting the hook parses: the SNS record and the approval JSON
inside its Message; the function URL request and the click JSON inside its form body."""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import slack
from shared.events import path

from .conftest import CONTEXT, Faults, context_of, create_retraining_target, emf, event
from .test_gates import (
    ALICE,
    APP,
    NOTIFICATION,
    NOW,
    SIGNING_SECRET,
    TEAM,
    audit_items,
    failed_approval,
    gates,
    posted_request,
    refusal_lines,
    sns_record,
    url_event,
)

__all__ = ["gates"]  # the fixture, shared with test_gates

# --- The values ------------------------------------------------------------------------------

WRONG_TYPES: list[Any] = [0, -1, 1.5, True, [], ["x"], {}, {"a": "b"}, None]
CONTROLS = ["\x00", "\x07", "\x1b[31m", "\x7f", "\u200b", "\u200f", "\u202e", "\u2066", "\ufeff",
            "\ud800"]  # fmt: skip
LONG = "x" * 200_000


def injected(original: Any) -> list[str]:
    """The field's own text with one control or format character in it."""
    text = original if isinstance(original, str) and original else "value"
    middle = len(text) // 2
    return [text[:middle] + c + text[middle:] for c in CONTROLS] + list(CONTROLS)


def elsewhere(original: Any) -> list[str]:
    """Names of resources that are not this product's: another account, region or product."""
    if not isinstance(original, str) or not original:
        return []
    found = {
        re.sub(r"\b\d{12}\b", "999999999999", original),
        re.sub(r"\b(eu|us)-(west|east)-\d\b", "ap-south-2", original),
        original.replace("fraud-detection", "other-product"),
        original.replace("MyFirstPipeline", "TheirPipeline"),
        original + "-other",
    }
    return sorted(found - {original})


def malformed(original: Any) -> list[Any]:
    """Every class of malformed value for a field whose sample value is `original`."""
    return [*WRONG_TYPES, "", LONG, *injected(original), *elsewhere(original)]


def fields(sample: Any) -> list[tuple[Any, ...]]:
    """The path of every field in `sample` (containers and leaves), not the root."""
    found: list[tuple[Any, ...]] = []

    def walk(node: Any, at: tuple[Any, ...]) -> None:
        if at:
            found.append(at)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*at, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*at, index))

    walk(sample, ())
    return found


DROP = object()


def copied(node: Any) -> Any:
    """A deep copy of a JSON document (the samples are): copy.deepcopy's result, in a third
    of its time; anything but JSON's types is left to copy.deepcopy."""
    kind = type(node)
    if kind is dict:
        return {key: copied(value) for key, value in node.items()}
    if kind is list:
        return [copied(value) for value in node]
    if node is None or kind in (str, int, float, bool):
        return node
    return copy.deepcopy(node)


def changed(sample: Any, at: tuple[Any, ...], value: Any) -> Any:
    """`sample` with the field at `at` set to `value`, or dropped (DROP)."""
    doc = copied(sample)
    node = doc
    for part in at[:-1]:
        node = node[part]
    if value is DROP:
        if isinstance(node, dict):
            del node[at[-1]]
        else:
            node.pop(at[-1])
    else:
        node[at[-1]] = value
    return doc


def value_at(sample: Any, at: tuple[Any, ...]) -> Any:
    for part in at:
        sample = sample[part]
    return sample


def cases(sample: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """(field, value) for every field of `sample` and every malformed value, and its absence."""
    return [(at, v) for at in fields(sample) for v in [DROP, *malformed(value_at(sample, at))]]


ANYTHING = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)  # fmt: skip
"""Anything Hypothesis makes of JSON: text of any characters, numbers, lists, objects."""

_MUTATIONS: dict[int, tuple[Any, st.SearchStrategy[tuple[tuple[Any, ...], Any]]]] = {}


def mutation(sample: Any) -> st.SearchStrategy[tuple[tuple[Any, ...], Any]]:
    """A field of `sample` and a value for it: a malformed one of the classes above, or
    ANYTHING. Built once per sample, not per example (Hypothesis reads a composite's source
    and validates a strategy when it is first drawn from)."""
    known = _MUTATIONS.get(id(sample))
    if known is None or known[0] is not sample:
        paths = fields(sample)
        values = {at: st.one_of(st.sampled_from([DROP, *malformed(value_at(sample, at))]),
                                ANYTHING) for at in paths}  # fmt: skip

        @st.composite
        def draw(draw: Any) -> tuple[tuple[Any, ...], Any]:
            at = draw(st.sampled_from(paths))
            return at, draw(values[at])

        known = _MUTATIONS[id(sample)] = (sample, draw())
    return known[1]


# --- The judge -------------------------------------------------------------------------------

# The calls that change something (an idempotency record's, named "[<prefix>]" by conftest's
# recorder, is the idempotency layer's own bookkeeping, not the hook's work).
WRITES = re.compile(r"\.(put_item|update_item|delete_item|put_approval_result|publish|"
                    r"start_pipeline_execution)$")  # fmt: skip


@dataclass
class Judge:
    """Runs a hook on one input and checks the answer, the log and the AWS calls."""

    faults: Faults
    caplog: pytest.LogCaptureFixture
    logger: str

    def __call__(
        self,
        run: Callable[[], Any],
        refused: Callable[[Any], bool],
        at: tuple[Any, ...] | None,
        *,
        reads_first: Callable[[Any], bool] = lambda answer: False,
    ) -> Any:
        """`refused(answer)` tells a refusal; `reads_first(answer)` a refusal that may follow
        reads (never writes). `at` is the field changed, None when the input is whole."""
        self.faults.seen.clear()
        self.caplog.clear()
        answer = run()  # an exception fails the test: none is expected, whatever the input
        if not refused(answer):
            return answer
        lines = [r for r in self.caplog.records if r.name == self.logger]
        assert len(lines) == 1, ([r.getMessage() for r in lines], at)
        (line,) = lines
        named = str(getattr(line, "field", ""))
        assert named, ("the refusal's log line names no field", line.__dict__)
        if reads_first(answer):
            # Refused for what AWS holds (decided already, another action's record), not for
            # the input: nothing written first.
            assert not [c for c in self.faults.seen if WRITES.search(c)], self.faults.seen
            return answer
        assert self.faults.seen == [], ("an AWS call before a refusal", self.faults.seen)
        if at is not None:
            assert related(named, at), (named, at, line.__dict__.get("reason"))
        return answer


def related(named: str, at: tuple[Any, ...]) -> bool:
    """The refusal names the field that was changed, one that contains it, or one inside it
    (or the detail-type, when the change made the event another kind)."""
    changed_field = path(at)
    return (
        named in ("detail-type", "the event")
        or named.startswith(changed_field)
        or changed_field.startswith(named)
        or at[-1] == "detail-type"
        # The payload is a field of the form body; base64 or not is how the body is read.
        or (changed_field in ("body", "isBase64Encoded") and named.startswith(("body", "payload")))
    )


@pytest.fixture
def judge(faults: Faults, caplog: pytest.LogCaptureFixture) -> Judge:
    caplog.set_level(logging.INFO)
    return Judge(faults, caplog, logging.getLogger("service_undefined").name)


# The deterministic sweeps above cover every field with every malformed class; the random
# search adds breadth. MLGATE_PROPERTY_EXAMPLES raises it (1,500 passed when written).
PROPERTY = settings(
    max_examples=int(os.environ.get("MLGATE_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip

# --- The drift responder ---------------------------------------------------------------------

ALARM = event("drift_alarm_state_change.json")
VIOLATIONS = event("monitoring_violations.json")
NOW_DRIFT = 1_795_514_800.0


@pytest.fixture
def drift(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The drift responder in prod, under moto: its pipeline, cool-down table and topic."""
    create_retraining_target("mlgate-fraud-detection-training")
    topic = boto3.client("sns").create_topic(Name="on-call")["TopicArn"]
    for key, value in {
        "PIPELINE_NAME": "mlgate-fraud-detection-training", "COOLDOWN_TABLE": "drift",
        "OWNERS_TOPIC_ARN": topic, "ENDPOINT_NAME": "mlgate-fraud-detection-prod",
        "PRODUCT": "fraud-detection", "ENVIRONMENT": "prod",
        "DRIFT_ALARM": ALARM["detail"]["alarmName"],
        "MONITORING_SCHEDULE": "mlgate-fraud-detection-prod-data-quality",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    from drift_responder import handler

    monkeypatch.setattr(handler.metrics, "namespace", "mlgate/monitoring")
    handler.settings.cache_clear()
    yield handler
    handler.settings.cache_clear()


def drift_refused(answer: dict[str, str]) -> bool:
    return answer.get("status") == "refused"


def handled_already(answer: dict[str, str]) -> bool:
    """A redelivered job with another exit message: told apart by the idempotency record."""
    return "was handled already" in answer.get("reason", "")


@pytest.mark.parametrize("sample", [ALARM, VIOLATIONS], ids=["alarm", "model-monitor"])
def test_every_field_of_a_drift_event_malformed_is_refused_or_handled(
    drift: Any, judge: Judge, sample: dict[str, Any]
) -> None:
    """Each field, each class of malformed value: the responder answers, and refuses before
    any AWS call with one line naming the field, or (a field it does not read) retrains once."""
    context = context_of(sample)
    for at, value in cases(sample):
        run = partial(drift.handler, changed(sample, at, value), context, now=NOW_DRIFT)
        judge(run, drift_refused, at, reads_first=handled_already)
    executions = boto3.client("sagemaker").list_pipeline_executions(
        PipelineName="mlgate-fraud-detection-training"
    )["PipelineExecutionSummaries"]
    assert len(executions) <= 1, "one drift, one retraining (the cool-down holds the rest)"


@pytest.mark.parametrize("sample", [ALARM, VIOLATIONS], ids=["alarm", "model-monitor"])
@PROPERTY
@given(data=st.data())
def test_any_drift_event_is_refused_cleanly_or_handled(
    drift: Any, judge: Judge, sample: dict[str, Any], data: st.DataObject
) -> None:
    at, value = data.draw(mutation(sample))
    judge(lambda: drift.handler(changed(sample, at, value), context_of(sample), now=NOW_DRIFT),
          drift_refused, at, reads_first=handled_already)  # fmt: skip


@PROPERTY
@given(candidate=st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers())))
def test_what_is_no_event_at_all_is_refused(drift: Any, judge: Judge, candidate: Any) -> None:
    answer = judge(lambda: drift.handler(candidate, CONTEXT, now=NOW_DRIFT), drift_refused, None)
    assert drift_refused(answer)


# --- The pipeline starter --------------------------------------------------------------------

GLUE = event("glue_job_succeeded.json")
SCHEDULE = event("scheduled_event.json")


@pytest.fixture
def starter(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    client = boto3.client("sagemaker")
    client.create_pipeline(
        PipelineName="mlgate-fraud-detection-training",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn="arn:aws:iam::123456789012:role/training",
    )
    from pipeline_starter import handler

    monkeypatch.setattr(handler, "sagemaker", client)
    for key, value in {
        "PIPELINE_NAME": "mlgate-fraud-detection-training",
        "QUALITY_JOB": "MyJob",
        "SCHEDULE_RULE": "my-scheduled-rule",
    }.items():
        monkeypatch.setenv(key, value)  # fmt: skip
    handler.settings.cache_clear()
    yield handler
    handler.settings.cache_clear()


@pytest.mark.parametrize("sample", [GLUE, SCHEDULE], ids=["glue", "schedule"])
def test_every_field_of_a_training_trigger_malformed_is_refused_or_starts(
    starter: Any, judge: Judge, sample: dict[str, Any]
) -> None:
    context = context_of(sample)
    for at, value in cases(sample):
        judge(partial(starter.handler, changed(sample, at, value), context), drift_refused, at)


@pytest.mark.parametrize("sample", [GLUE, SCHEDULE], ids=["glue", "schedule"])
@PROPERTY
@given(data=st.data())
def test_any_training_trigger_is_refused_cleanly_or_starts(
    starter: Any, judge: Judge, sample: dict[str, Any], data: st.DataObject
) -> None:
    at, value = data.draw(mutation(sample))
    judge(lambda: starter.handler(changed(sample, at, value), context_of(sample)),
          drift_refused, at)  # fmt: skip


# --- The gate notifier -----------------------------------------------------------------------

APPROVAL = {
    **NOTIFICATION,
    "approval": {**NOTIFICATION["approval"], "stageName": "BusinessSignoff"},
}
SNS = sns_record(APPROVAL)


def notification(at: tuple[Any, ...], value: Any) -> Any:
    """The SNS event with `at` changed; a path through Records[0].Sns.Message reaches into the
    approval JSON it carries."""
    message = ("Records", 0, "Sns", "Message")
    if at[: len(message)] == message and len(at) > len(message):
        return sns_record(changed(APPROVAL, at[len(message) :], value))
    return changed(SNS, at, value)


def notification_value(at: tuple[Any, ...]) -> Any:
    inner = at[4:] if len(at) > 4 and at[3] == "Message" else None
    return value_at(APPROVAL, inner) if inner is not None else value_at(SNS, at)


def notification_fields() -> list[tuple[Any, ...]]:
    inner = [("Records", 0, "Sns", "Message", *at) for at in fields(APPROVAL)]
    return [*fields(SNS), *inner]


def notifier_refused(answer: dict[str, str]) -> bool:
    return answer.get("status") == "refused"


def another_action_same_token(answer: dict[str, str]) -> bool:
    """A redelivery whose stage, action or expiry differ under the same token: told apart by
    the idempotency record."""
    return "with the same token" in answer.get("reason", "")


def test_every_field_of_an_approval_notification_malformed_is_refused_or_posted(
    gates: dict[str, Any], judge: Judge
) -> None:
    notifier = gates["notifier"]
    for at in notification_fields():
        for value in [DROP, *malformed(notification_value(at))]:
            judge(partial(notifier.handler, notification(at, value), CONTEXT), notifier_refused,
                  at, reads_first=another_action_same_token)  # fmt: skip
    assert len([i for i in audit_items() if i.get("event") == "requested"]) <= len(gates["posted"])


@PROPERTY
@given(data=st.data())
def test_any_approval_notification_is_refused_cleanly_or_posted(
    gates: dict[str, Any], judge: Judge, data: st.DataObject
) -> None:
    at = data.draw(st.sampled_from(notification_fields()))
    value = data.draw(st.one_of(st.sampled_from([DROP, *malformed(notification_value(at))]),
                                st.text(max_size=30), st.integers()))  # fmt: skip
    judge(lambda: gates["notifier"].handler(notification(at, value), CONTEXT), notifier_refused,
          at, reads_first=another_action_same_token)  # fmt: skip


# --- The gate callback: the expired gate's event ---------------------------------------------

FAILED = failed_approval()
# After the approval's expiry (2016-07-07T20:22Z): a failed approval now is an expired one.
EXPIRED_AT = 1_467_923_000.0


def expiry_refused(answer: dict[str, str]) -> bool:
    return answer.get("expired") == "refused"


def test_every_field_of_a_failed_approval_event_malformed_is_refused_or_judged(
    gates: dict[str, Any], judge: Judge
) -> None:
    posted_request(gates)
    callback = gates["callback"]
    for at, value in cases(FAILED):
        judge(partial(callback.handler, changed(FAILED, at, value), CONTEXT, now=NOW),
              expiry_refused, at)  # fmt: skip


@PROPERTY
@given(data=st.data())
def test_any_failed_approval_event_is_refused_cleanly_or_judged(
    gates: dict[str, Any], judge: Judge, data: st.DataObject
) -> None:
    at, value = data.draw(mutation(FAILED))
    judge(lambda: gates["callback"].handler(changed(FAILED, at, value), CONTEXT, now=NOW),
          expiry_refused, at)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"account": "999999999999"}, "account '999999999999' is not '123456789012' (this "
         "function's, from its ARN in the Lambda context)"),
        ({"region": "us-east-1"}, "region 'us-east-1' is not 'eu-west-1'"),
        ({"source": "custom.codepipeline"}, "source 'custom.codepipeline' is not "
         "'aws.codepipeline'"),
        ({"resources": ["arn:aws:codepipeline:eu-west-1:999999999999:MyFirstPipeline"]},
         "resources[0] 'arn:aws:codepipeline:eu-west-1:999999999999:MyFirstPipeline' is not"),
    ],
)  # fmt: skip
def test_an_expired_gate_event_from_elsewhere_publishes_nothing_and_calls_nothing(
    gates: dict[str, Any], faults: Faults, change: dict[str, Any], named: str
) -> None:
    posted_request(gates)
    faults.seen.clear()
    outcome = gates["callback"].handler({**FAILED, **change}, CONTEXT, now=EXPIRED_AT)
    assert outcome["expired"] == "refused"
    assert f"untrusted event: {named}" in outcome["reason"]
    assert faults.seen == []
    assert expired_points(gates) == 0


def expired_points(gates: dict[str, Any]) -> float:
    out = gates["capsys"].readouterr().out
    return sum(m["value"] for m in emf(out) if m["name"] == "GateExpired")


def test_an_expired_gate_is_one_emf_data_point_the_alarm_reads(gates: dict[str, Any]) -> None:
    """The wait alarm watches mlgate/gates GateExpired with the dimension Pipeline alone: the
    embedded metric files the data point under exactly that set (and the service set beside
    it), and the callback's role needs no cloudwatch:PutMetricData."""
    posted_request(gates)
    gates["capsys"].readouterr()
    assert gates["callback"].handler(FAILED, CONTEXT, now=EXPIRED_AT)["expired"] == "true"
    (point,) = [m for m in emf(gates["capsys"].readouterr().out) if m["name"] == "GateExpired"]
    assert point["namespace"] == "mlgate/gates"
    assert point["value"] == 1
    assert {"Pipeline": "MyFirstPipeline"} in point["dimensions"]


# --- The gate callback: the click ------------------------------------------------------------

PAYLOAD = {
    "type": "block_actions",
    "api_app_id": APP,
    "team": {"id": TEAM, "domain": "product"},
    "user": {"id": ALICE, "username": "u01alice01", "name": "u01alice01"},
    "actions": [{"action_id": "approve", "block_id": "gate:REQUEST", "value": "REQUEST"}],
}


def signed_click(payload: Any, *, raw: str | None = None) -> dict[str, Any]:
    """A function URL request whose body carries `payload` (or is `raw`), signed by Slack."""
    body = raw if raw is not None else urlencode({"payload": json.dumps(payload)})
    stamp = str(int(NOW))
    return url_event({"X-Slack-Request-Timestamp": stamp,
                      "X-Slack-Signature": slack.sign(SIGNING_SECRET, stamp, body),
                      "Content-Type": "application/x-www-form-urlencoded"}, body)  # fmt: skip


def with_request(payload: Any, request_id: str) -> Any:
    return json.loads(json.dumps(payload).replace("REQUEST", request_id))


def click_refused(answer: dict[str, Any]) -> bool:
    return int(answer["statusCode"]) >= 400


def after_reads(answer: dict[str, Any]) -> bool:
    """Refusals that follow the signing secret and the request's reads (a signature that does
    not match the changed body, another workspace, not an approver, decided already): no
    write before them. A malformed request (400) is refused before any call."""
    return int(answer["statusCode"]) != 400


def click_fields() -> list[tuple[Any, ...]]:
    envelope = signed_click(PAYLOAD)
    outer = [at for at in fields(envelope) if at[0] != "body"]
    return [*outer, ("body",), *[("payload", *at) for at in fields(PAYLOAD)]]


def click_value(at: tuple[Any, ...]) -> Any:
    if at[0] == "payload":
        return value_at(PAYLOAD, at[1:])
    return value_at(signed_click(PAYLOAD), at)


def click_with(request_id: str, at: tuple[Any, ...], value: Any) -> Any:
    payload = with_request(PAYLOAD, request_id)
    if at[0] == "payload":
        return signed_click(changed(payload, at[1:], value))
    return changed(signed_click(payload), at, value)


def test_every_field_of_a_click_malformed_is_refused_before_anything_is_written(
    gates: dict[str, Any], judge: Judge
) -> None:
    """The request Lambda builds and the click Slack signs inside it: each field, each class of
    malformed value. A click that is still whole after the change decides once; every other
    answer is a 4xx naming the field, with no write (and no call at all for a 400)."""
    request_id = posted_request(gates)
    callback = gates["callback"]
    for at in click_fields():
        for value in [DROP, *malformed(click_value(at))]:
            judge(partial(callback.handler, click_with(request_id, at, value), CONTEXT, now=NOW),
                  click_refused, at, reads_first=after_reads)  # fmt: skip
    assert len(gates["codepipeline"].applied) <= 1


@PROPERTY
@given(data=st.data())
def test_any_click_is_refused_cleanly_or_decides_once(
    gates: dict[str, Any], judge: Judge, data: st.DataObject
) -> None:
    request_id = gates.setdefault("request_id", None) or posted_request(gates)
    gates["request_id"] = request_id
    at = data.draw(st.sampled_from(click_fields()))
    value = data.draw(st.one_of(st.sampled_from([DROP, *malformed(click_value(at))]),
                                st.text(max_size=30), st.integers()))  # fmt: skip
    judge(lambda: gates["callback"].handler(click_with(request_id, at, value), CONTEXT, now=NOW),
          click_refused, at, reads_first=after_reads)  # fmt: skip
    assert len(gates["codepipeline"].applied) <= 1


@pytest.mark.parametrize(
    ("body", "named"),
    [
        # A lone surrogate, percent-encoded: not UTF-8, whatever the JSON around it.
        ("payload=%ED%A0%80", "body: a percent-escape is not UTF-8 text"),
        ("payload=" + quote('{"user": {"id": "U01ALICE01"}, "actions": [{"action_id": '
                            '"approve", "value": "%ED%A0%80"}]}', safe="%"),
         "body: a percent-escape is not UTF-8 text"),
        # The same surrogate as a JSON escape, NUL and a right-to-left override in fields.
        (urlencode({"payload": '{"user": {"id": "U01\\ud800"}, "actions": []}'}),
         "payload: Invalid JSON"),
        (urlencode({"payload": json.dumps({**PAYLOAD, "user": {"id": "U01\x00ALICE"}})}),
         "payload.user.id: String should match pattern"),
        (urlencode({"payload": json.dumps({**PAYLOAD, "user": {"id": ALICE,
                                                                "name": "alice\u202eecila"}})}),
         "payload.user.name: has a control or format character (U+202E)"),
        (urlencode({"payload": json.dumps(PAYLOAD)}) + "&payload=again",
         "body: it must carry one payload field and nothing else (it has payload)"),
        ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J",
         "body: it must carry one payload field and nothing else (it has team_id, token)"),
        ("payload=x\x00y", "body: not application/x-www-form-urlencoded text"),
    ],
)  # fmt: skip
def test_a_click_that_cannot_be_one_is_refused_before_the_signing_secret_is_fetched(
    gates: dict[str, Any], faults: Faults, body: str, named: str
) -> None:
    posted_request(gates)
    faults.seen.clear()
    answer = gates["callback"].handler(signed_click(None, raw=body), CONTEXT, now=NOW)
    assert answer["statusCode"] == 400, answer["body"]
    # The public URL answers one fixed sentence; the log line names what is wrong.
    assert json.loads(answer["body"])["text"] == gates["callback"].PUBLIC[400]
    (line,) = refusal_lines(gates)
    assert named in line.reason
    assert faults.seen == [], "not even the signing secret"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        # Powertools' own model checks raised (TypeError, AttributeError) on these.
        (lambda e: e["requestContext"]["http"].update(sourceIp=["203.0.113.7"]),
         "requestContext.http.sourceIp"),
        (lambda e: e["requestContext"]["http"].update(sourceIp=None),
         "requestContext.http.sourceIp"),
        (lambda e: e.update(isBase64Encoded="yes"), "isBase64Encoded"),
        (lambda e: e.update(body=7), "body"),
    ],
)  # fmt: skip
def test_a_function_url_request_lambda_could_not_have_built_is_a_400(
    gates: dict[str, Any], faults: Faults, change: Any, named: str
) -> None:
    request = signed_click(with_request(PAYLOAD, "a" * 24))
    change(request)
    faults.seen.clear()
    answer = gates["callback"].handler(request, CONTEXT, now=NOW)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["text"] == gates["callback"].PUBLIC[400]
    (line,) = refusal_lines(gates)
    assert line.reason.startswith(f"not a function URL request: {named}")
    assert faults.seen == []


@pytest.mark.parametrize("sns", [5, None, [], "text"])
def test_an_sns_record_that_is_no_object_is_refused_not_raised(
    gates: dict[str, Any], faults: Faults, sns: Any
) -> None:
    """Powertools' SnsNotificationModel iterated a record before validating it (TypeError on a
    number or null); the notifier's model refuses it, naming it."""
    broken = copy.deepcopy(SNS)
    broken["Records"][0]["Sns"] = sns
    faults.seen.clear()
    answer = gates["notifier"].handler(broken, CONTEXT)
    assert answer["status"] == "refused"
    assert "Records[0].Sns: Input should be a valid dictionary" in answer["reason"]
    assert faults.seen == []


def test_two_sns_records_are_no_notification(gates: dict[str, Any], faults: Faults) -> None:
    doubled = {"Records": SNS["Records"] * 2}
    faults.seen.clear()
    answer = gates["notifier"].handler(doubled, CONTEXT)
    assert answer["status"] == "refused"
    assert "Records: List should have at most 1 item" in answer["reason"]
    assert faults.seen == []


# --- What the stacks tell the hooks ----------------------------------------------------------


def hook_env(template: Any, hook: str) -> dict[str, Any]:
    (function,) = [
        f["Properties"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == f"{hook}.handler.handler"
    ]
    return dict(function["Environment"]["Variables"])


def rules(template: Any) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template.find_resources("AWS::Events::Rule").values()]


def alarm(template: Any, metric: str) -> dict[str, Any]:
    (found,) = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric
    ]
    return dict(found)


def test_each_hook_expects_the_names_its_own_rules_deliver(synth: Any, product: Any) -> None:
    """The hooks trust no rule alone: they compare each event with names their stack sets. Those
    are the names the rules match, so a rule's own event is never refused; and the metrics the
    hooks write land in the namespace and dimensions their alarms read."""
    training = synth.template(product.extra["training"])
    starter = hook_env(training, "pipeline_starter")
    (after_etl,) = [
        r for r in rules(training) if r.get("EventPattern", {}).get("source") == ["aws.glue"]
    ]
    assert after_etl["EventPattern"]["detail"]["jobName"] == [starter["QUALITY_JOB"]]
    (schedule,) = [r for r in rules(training) if "ScheduleExpression" in r]
    assert schedule["Name"] == starter["SCHEDULE_RULE"]

    delivery = synth.template(product.extra["delivery"])
    callback = hook_env(delivery, "gate_callback")
    (expired,) = [
        r
        for r in rules(delivery)
        if r["EventPattern"].get("source") == ["aws.codepipeline"]
        and r["EventPattern"]["detail"].get("state") == ["FAILED"]
    ]
    assert expired["EventPattern"]["detail"]["pipeline"] == [callback["RELEASE_PIPELINE"]]
    waiting = alarm(delivery, "GateExpired")
    assert waiting["Namespace"] == callback["POWERTOOLS_METRICS_NAMESPACE"]
    assert [d["Name"] for d in waiting["Dimensions"]] == ["Pipeline"]

    for env in ("staging", "prod"):
        serving = synth.template(product.extra[f"serving-{env}"])
        if getattr(product.manifest.serving, env).mode == "serverless":
            # No data capture, so nothing to drift on: no responder and no rule.
            assert "drift_responder" not in json.dumps(serving.to_json())
            assert rules(serving) == []
            continue
        drift = hook_env(serving, "drift_responder")
        assert drift["POWERTOOLS_METRICS_NAMESPACE"] == "mlgate/monitoring"
        (declared,) = [
            r
            for r in rules(serving)
            if r.get("EventPattern", {}).get("source") == ["aws.cloudwatch"]
        ]
        (resource,) = declared["EventPattern"]["resources"]
        assert resource.endswith(f":alarm:{drift['DRIFT_ALARM']}"), (resource, drift)
        assert "MONITORING_SCHEDULE" not in drift
        if product.manifest.is_batch(env):
            batch_rules_deliver_what_the_hook_expects(serving, product.manifest, env)


def batch_rules_deliver_what_the_hook_expects(serving: Any, manifest: Any, env: str) -> None:
    """A batch environment's batch_run hook checks each event against its settings: the rules
    that call it deliver exactly those names (its schedule or the ETL job, its jobs' prefix,
    its watch)."""
    from shared.batch import job_prefix

    hook = hook_env(serving, "batch_run")
    assert hook["POWERTOOLS_METRICS_NAMESPACE"] == "mlgate/batch"
    by_name = {r["Name"]: r for r in rules(serving)}
    assert by_name[hook["WATCH_RULE"]]["ScheduleExpression"] == "rate(15 minutes)"
    batch = manifest.env_serving(env).batch_settings
    if batch.schedule:
        assert by_name[hook["SCHEDULE_RULE"]]["ScheduleExpression"] == batch.schedule
        assert "ETL_JOB" not in hook
    else:
        (after_etl,) = [
            r for r in rules(serving) if r.get("EventPattern", {}).get("source") == ["aws.glue"]
        ]
        assert after_etl["EventPattern"]["detail"]["jobName"] == [hook["ETL_JOB"]]
    prefix = job_prefix(manifest.product.name, env)
    jobs = [
        r["EventPattern"]["detail"]
        for r in rules(serving)
        if r.get("EventPattern", {}).get("source") == ["aws.sagemaker"]
    ]
    assert sorted(next(iter(d.values()))[0]["prefix"] for d in jobs) == [prefix, prefix]
    failed = alarm(serving, "BatchRunsFailed")
    assert failed["Namespace"] == hook["POWERTOOLS_METRICS_NAMESPACE"]
    assert {d["Name"]: d["Value"] for d in failed["Dimensions"]} == {
        "Product": hook["PRODUCT"], "Environment": hook["ENVIRONMENT"],
    }  # fmt: skip


def test_with_model_monitor_the_responder_expects_the_schedule_its_rule_matches(
    synth: Any,
) -> None:
    """The Model Monitor engine's rule matches executions of the data-quality schedule; the
    responder is told that schedule (and no alarm)."""
    from mlgate.infra.stacks.serving import drift_trigger
    from mlgate.manifest import MonitoringEngine

    manifest = synth.product().manifest
    monitored = manifest.model_copy(
        update={"monitoring": manifest.monitoring.model_copy(
            update={"engine": MonitoringEngine.MODEL_MONITOR})}
    )  # fmt: skip
    trigger = drift_trigger(monitored, "prod", "eu-west-1", "111111111111")
    (arn,) = trigger["drift_event"].detail["MonitoringScheduleArn"]
    assert trigger["drift_source"] == {"MONITORING_SCHEDULE": arn["prefix"].rsplit("/", 1)[1]}
