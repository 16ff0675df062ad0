"""Property-based: every hook's event parsing turns any input into a parsed event or its own
clear error, never another exception (so a malformed event writes nothing). The release path's
hooks, end to end and field by field: test_release_path_inputs.py."""

from __future__ import annotations

import base64
import copy
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import CONTEXT, event

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30)
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=15), inner, max_size=5)
    ),
    max_leaves=25,
)


_MUTATIONS: dict[int, tuple[Any, st.SearchStrategy[Any]]] = {}


def mutations(base: Any) -> st.SearchStrategy[Any]:
    """The documented sample event with one field replaced by anything, or dropped. Built
    once per sample, not per example (Hypothesis reads a composite's source and validates a
    strategy when it is first drawn from)."""
    known = _MUTATIONS.get(id(base))
    if known is None or known[0] is not base:
        known = _MUTATIONS[id(base)] = (base, _mutations(base))
    return known[1]


def _mutations(base: Any) -> st.SearchStrategy[Any]:
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(base, ())

    @st.composite
    def mutate(draw: Any) -> Any:
        path = draw(st.sampled_from(paths[1:]))
        doc = copy.deepcopy(base)
        node = doc
        for part in path[:-1]:
            node = node[part]
        if draw(st.booleans()) and isinstance(node, dict):
            del node[path[-1]]
        else:
            node[path[-1]] = draw(anything)
        return doc

    return mutate()


def parsers() -> list[tuple[str, Callable[[Any], Any], Any, Any]]:
    from drift_responder import handler as drift
    from gate_callback import handler as callback
    from gate_notifier import handler as notifier
    from pipeline_starter import handler as starter
    from release import handler as release

    from shared import jobs, models

    def deploy_job(answer: Any) -> Any:
        """The deployer's reading of GetJobDetails' answer: the job, its parameters, its
        token."""
        data = models.read(answer, models.JobDetailsAnswer, "GetJobDetails").jobDetails.data
        params = data.actionConfiguration.configuration.UserParameters
        models.read(params, models.DeployParameters, "UserParameters")
        token = data.continuationToken
        return models.read(token, models.DeployToken, "continuationToken") if token else data

    # GetJobDetails' answer for a deployer's job (https://docs.aws.amazon.com/codepipeline/
    # latest/APIReference/API_GetJobDetails.html), continuing an update.
    details = {"jobDetails": {
        "id": "11111111-abcd-1111-abcd-111111abcdef", "accountId": "111111111111",
        "data": {
            "actionConfiguration": {"configuration": {
                "FunctionName": "deployer",
                "UserParameters": json.dumps({
                    "environment": "staging", "stack": "mlgate-p-staging-serving",
                    "service_role": "arn:aws:iam::111111111111:role/mlgate-p-staging-serving-cfn"}),
            }},
            "pipelineContext": {"pipelineName": "mlgate-p-release",
                                "pipelineExecutionId": "4a2e8c1f-0b7d-4e59-9c3a-6f1d2b8e7a90",
                                "stage": {"name": "DeployStaging"}},
            "continuationToken": json.dumps({"stack": "mlgate-p-staging-serving",
                                             "waiting": True}),
        },
    }}  # fmt: skip

    # SNS's record as Lambda receives it (https://docs.aws.amazon.com/lambda/latest/dg/
    # with-sns.html), carrying CodePipeline's approval notification.
    topic = "arn:aws:sns:us-east-2:123456789012:MyApprovalTopic"
    approval = {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:c9135db0-26c4-47ec-8998-413945fb5a96",
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": "1",
                    "Timestamp": "2026-11-24T09:00:00.000Z",
                    "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
                    "SigningCertUrl": "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
                    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                    "Message": json.dumps(event("codepipeline_approval_notification.json")),
                    "MessageAttributes": {},
                    "Type": "Notification",
                    "UnsubscribeUrl": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe",
                    "TopicArn": topic,
                    "Subject": "APPROVAL NEEDED",
                },
            }
        ]
    }
    return [
        (
            "release",
            lambda e: release.read(e, release.ModelApproval),
            release.Refusal,
            event("model_package_state_change.json"),
        ),
        ("drift_responder", drift.parse, drift.EventError, event("monitoring_violations.json")),
        (
            "pipeline_starter",
            starter.describe,
            starter.EventError,
            event("glue_job_succeeded.json"),
        ),
        ("codepipeline jobs", jobs.job_id, jobs.Unanswerable, event("codepipeline_job.json")),
        ("deployer", deploy_job, models.Refusal, details),
        (
            "gate_notifier",
            lambda e: notifier.parse(e, {"MyApprovalStage": {}}),
            notifier.EventError,
            approval,
        ),
        (
            "gate_callback",
            callback.parse_click,
            callback.Refusal,
            "payload="
            + json.dumps(
                {"user": {"id": "U1"}, "actions": [{"action_id": "approve", "value": "r"}]}
            ),
        ),
    ]


PARSERS = parsers()


@pytest.mark.parametrize(("name", "parse", "error", "sample"), PARSERS, ids=[p[0] for p in PARSERS])
def test_the_documented_sample_parses(
    name: str, parse: Any, error: type[Exception], sample: Any
) -> None:
    assert parse(sample) is not None


# The events of these parsers are also swept deterministically, every field with every
# malformed class: the drift responder's and the starter's readers in test_fields_checker
# (test_every_field_malformed_*), the notifier's and the click's through their handlers in
# test_gate_and_drift_inputs (test_every_field_of_*). The random search adds breadth there:
# 60 examples each (120 before); the others keep 120. MLGATE_PROPERTY_EXAMPLES sets every
# count in this module.
SWEPT = {"drift_responder", "pipeline_starter", "gate_notifier", "gate_callback"}
THOROUGH = os.environ.get("MLGATE_PROPERTY_EXAMPLES")


def examples(name: str) -> int:
    return int(THOROUGH or (60 if name in SWEPT else 120))


@pytest.mark.parametrize(("name", "parse", "error", "sample"), PARSERS, ids=[p[0] for p in PARSERS])
def test_any_input_gives_a_result_or_the_hook_s_own_error(
    name: str, parse: Any, error: type[Exception], sample: Any
) -> None:
    @settings(max_examples=examples(name), deadline=None)
    @given(data=st.data())
    def any_input(data: st.DataObject) -> None:
        candidate = data.draw(
            st.one_of(anything, mutations(sample)) if not isinstance(sample, str) else st.text()
        )
        message = "parsed"
        try:
            parse(candidate)
        except error as err:
            message = str(err)
        assert message, f"{name}: an empty error message"

    any_input()


def function_url_requests() -> st.SearchStrategy[Any]:
    """Requests anyone on the internet can send to the callback's public URL: any header
    text, any body, base64 or not, in the function URL envelope Lambda always builds (header
    values and the body are always strings there, isBase64Encoded a boolean)."""
    header_values = st.one_of(st.text(max_size=80), st.from_regex(r"v0=[0-9a-f]{64}"),
                              st.integers(1_699_999_000, 1_700_001_000).map(str))  # fmt: skip
    names = st.sampled_from(
        ["x-slack-request-timestamp", "x-slack-signature", "content-type", "X-Slack-Signature"]
    )
    return st.builds(
        lambda headers, body, encoded: {
            "version": "2.0",
            "rawPath": "/",
            "headers": headers,
            "requestContext": {"stage": "$default", "http": {"method": "POST", "path": "/"}},
            "body": body,
            "isBase64Encoded": encoded,
        },
        st.dictionaries(names, header_values, max_size=3),
        st.one_of(
            st.text(max_size=200),
            st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
            st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()),
        ),
        st.booleans(),
    )


@settings(max_examples=int(THOROUGH or 200), deadline=None)
@given(request=function_url_requests())
def test_any_request_to_the_callback_url_is_answered_400_or_401_without_side_effects(
    request: dict[str, Any],
) -> None:
    """The unsigned junk of the internet never reaches the audit table or CodePipeline, never
    ends in an exception (which would page on-call), and reaches the signing secret only when
    it is fresh and well-formed (then the signature refuses it)."""
    from gate_callback import handler as callback

    env = {"SLACK_SIGNING_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:s",
           "AUDIT_TABLE": "audit"}  # fmt: skip
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    callback.settings.cache_clear()
    touched: list[str] = []
    secret, audit = callback.signing_secret, callback.AuditTrail
    forged = {"signing_secret": "not-the-signing-secret", "team_id": "T1", "app_id": "A1"}
    callback.signing_secret = lambda: touched.append("secret") or forged  # type: ignore[assignment]
    callback.AuditTrail = lambda *a: touched.append("audit")  # type: ignore[assignment, misc]
    try:
        answer = callback.handler(request, CONTEXT, now=1_700_000_000.0)
    finally:
        callback.signing_secret, callback.AuditTrail = secret, audit
        callback.settings.cache_clear()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert answer["statusCode"] in (400, 401), answer
    assert "audit" not in touched
