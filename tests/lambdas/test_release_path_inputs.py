"""Property-based: every field of every input of the release path's hooks (release, deployer,
deploy verifier, quality gate), made wrong, is refused cleanly or the work is done.

For each hook, Hypothesis takes a well-formed input that does the work and breaks one field of
it: in the event, in the action's UserParameters and the deployer's continuation token as
CodePipeline holds the job (GetJobDetails), in release.json at the execution's source revision.
A job hook reads only the job id of its event: any other field of the event, broken, changes
nothing (the work is done). The breakage is a wrong type (number, list, object or null where text is
expected), empty text, 200 KB of text, a control, format (right-to-left mark or override,
zero-width) or NUL character, a lone surrogate (raw, JSON-escaped, or as invalid UTF-8), a
URL-encoded surrogate, the field dropped, anything else (test_event_properties.anything), a
name AWS does not know (another product's: the fakes answer ValidationException as AWS does),
a foreign continuation token, or a missing artifact.

Each example must end in one of two ways, never in an exception:
- the work is done (the hook answers as for the well-formed input; a field the hook does not
  read may take any value);
- a clean refusal: "refused" (or released "false"), exactly one log line at WARNING carrying
  the reason, which names a field of what was broken and can be written as UTF-8; CodePipeline
  told exactly that reason (unless the job id itself is unusable: then nothing is told); and
  no AWS write before it: no release.json, no pipeline start, no stack update, no endpoint
  request, no audit event, no idempotency record left behind, no job success.
Or "failed": AWS refused a name the hook was given (ValidationException), the job is failed
saying so, and nothing was written either.

AWS is played by fakes that record every call (moto's DynamoDB for the idempotency records and
the audit trail); nothing reaches AWS.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from .conftest import (
    LambdaContext,
    create_audit_table,
    create_idempotency_table,
    event,
    moto,
)
from .test_event_properties import anything

NAMESPACE = "mlgate/fraud-detection/release"
JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"
EXECUTION = "4a2e8c1f-0b7d-4e59-9c3a-6f1d2b8e7a90"
STACK = "mlgate-fraud-detection-staging-serving"
ENDPOINT = "mlgate-fraud-detection-staging"
ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlgate-fraud-detection/7"
OLD_ARN = ARN.replace("/7", "/6")
ROLE = "arn:aws:iam::111111111111:role/mlgate-fraud-detection-staging-deploy"
ARTIFACTS = "artifacts"
PIPELINE = "mlgate-fraud-detection-release"
# release.json's S3 version id, the source revision CodePipeline records for EXECUTION.
REVISION = "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY"
REPORT = "s3://artifacts/training/fraud-detection/run-1/evaluation/evaluation.json"
SPLIT = ("artifacts", "training/fraud-detection/run-1/test/test.csv")
EXAMPLES = settings(
    max_examples=int(os.environ.get("MLGATE_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- what a field must not take ----------------------------------------------------------------

CONTROLS = ["\x00", "\u202e", "\u200f", "\u200e", "\u200b", "\x1b", "\x7f", "\u2066", "\ufeff"]
SURROGATES = ["\ud800", "\udfff"]
WRONG_TYPES = [None, 0, -1, 1.5, True, [], ["x"], {}, {"a": "b"}]


def inserted(original: str, chars: list[str]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda char, at: original[:at] + char + original[at:],
        st.sampled_from(chars),
        st.integers(0, len(original)),
    )


def another_products(text: str) -> str:
    """The same name, of another product (or another account): well-formed, unknown here."""
    return text.replace("fraud-detection", "other-product").replace("111111111111", "222222222222")


def bad(original: Any) -> st.SearchStrategy[Any]:
    """A value a field holding `original` must not take (or may, if the hook never reads it),
    and anything at all."""
    text = original if isinstance(original, str) else "x"
    return st.one_of(
        st.just(another_products(text)),
        st.sampled_from([*WRONG_TYPES, "", "x" * 200_000, text * (200_000 // max(len(text), 1))]),
        inserted(text, CONTROLS),
        inserted(text, SURROGATES),
        inserted(text, ["%ED%A0%80", "%00", "%E2%80%AE"]),
        anything,
    )


DROP = object()


def leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path in a JSON document, the root's children down to its leaves."""
    if path:
        yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from leaves(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from leaves(value, (*path, index))


def at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of `doc` with `path` set to `value` (DROP: deleted, where it can be)."""
    doc = copy.deepcopy(doc)
    parent = at(doc, path[:-1])
    if value is DROP and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = None if value is DROP else value
    return doc


@st.composite
def broken(draw: Any, doc: Any) -> tuple[tuple[Any, ...], Any]:
    """(the path broken, the document with one field broken or dropped)."""
    path = draw(st.sampled_from(list(leaves(doc))))
    value = draw(st.one_of(st.just(DROP), bad(at(doc, path))))
    return path, replaced(doc, path, value)


def as_json(doc: Any, raw: bool) -> str:
    """JSON text: lone surrogates escaped (\\ud800), or left raw in the text."""
    return json.dumps(doc, ensure_ascii=not raw)


# --- AWS, played by fakes that record every call ----------------------------------------------


def refusal(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


WRITES = {
    "s3.put_object", "s3.copy_object", "codepipeline.start_pipeline_execution",
    "codepipeline.put_job_success_result", "cloudformation.update_stack",
    "runtime.invoke_endpoint",
}  # fmt: skip


@dataclass
class World:
    """The fakes' shared record of calls ("service.operation") and the objects S3 holds."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def writes(self) -> list[str]:
        return [name for name in self.names() if name in WRITES]

    def fake(self, service: str, **answers: Callable[..., Any]) -> Any:
        world = self

        class Fake:
            def __getattr__(self, name: str) -> Any:
                if name.startswith("__"):
                    raise AttributeError(name)

                def call(**kwargs: Any) -> Any:
                    world.calls.append((f"{service}.{name}", kwargs))
                    answer = answers.get(name)
                    return answer(**kwargs) if answer else {}

                return call

        return Fake()

    def s3(self) -> Any:
        def get_object(Bucket: str, Key: str, Range: str = "", VersionId: str = "") -> Any:
            if (Bucket, Key) not in self.objects or VersionId not in ("", REVISION):
                raise refusal("GetObject", "NoSuchKey", "The specified key does not exist.")
            return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

        return self.fake("s3", get_object=get_object)

    def pipeline(self, params: str, token: str | None) -> Any:
        """CodePipeline holding the one job JOB_ID, with these UserParameters and token, of
        the release pipeline's execution EXECUTION, whose source revision is REVISION."""

        def get_job_details(jobId: str) -> dict[str, Any]:
            if jobId != JOB_ID:
                raise refusal("GetJobDetails", "JobNotFoundException", f"job {jobId} not found")
            data: dict[str, Any] = {
                "actionConfiguration": {"configuration": {"UserParameters": params}},
                "pipelineContext": {"pipelineName": PIPELINE, "pipelineExecutionId": EXECUTION},
            }
            if token is not None:
                data["continuationToken"] = token
            return {"jobDetails": {"id": JOB_ID, "accountId": "111111111111", "data": data}}

        def get_pipeline_execution(**_: Any) -> dict[str, Any]:
            return {"pipelineExecution": {"artifactRevisions": [{"revisionId": REVISION}]}}

        return self.fake("codepipeline", get_job_details=get_job_details,
                         get_pipeline_execution=get_pipeline_execution)  # fmt: skip

    def registry(self) -> Any:
        def describe_model_package(ModelPackageName: str) -> dict[str, Any]:
            if ModelPackageName != ARN:
                raise refusal("DescribeModelPackage", "ValidationException",
                              f"ModelPackage {ModelPackageName} does not exist.")  # fmt: skip
            return {"ModelPackageArn": ARN, "ModelPackageGroupName": "mlgate-fraud-detection",
                    "ModelApprovalStatus": "Approved"}  # fmt: skip

        return self.fake("sagemaker", describe_model_package=describe_model_package)


@dataclass
class Outcome:
    answer: dict[str, str]
    warnings: list[logging.LogRecord]
    world: World


def run(hook: Any, world: World, call: Callable[[], dict[str, str]], kind: str) -> Outcome:
    """Call the hook, keeping its log records (each must be writable as one UTF-8 line); the
    outcome is noted for Hypothesis' statistics (pytest --hypothesis-show-statistics)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    hook.logger.addHandler(handler)
    try:
        answer = call()
    finally:
        hook.logger.removeHandler(handler)
    for record in records:
        hook.logger.registered_formatter.format(record).encode("utf-8")
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    note(f"{kind}: {answer.get('result', answer.get('released'))}")
    return Outcome(answer, warnings, world)


def names_a_field(reason: str, path: tuple[Any, ...], prefix: str) -> bool:
    """The reason names the broken field: a key on its path, or the document it is in (the
    event as a whole, when it was replaced whole)."""
    if not path:
        return reason.startswith(("the event", "CodePipeline.job"))
    return any(isinstance(p, str) and p in reason for p in path) or prefix in reason


def assert_clean_refusal(outcome: Outcome, path: tuple[Any, ...], prefix: str) -> None:
    reason = outcome.answer["reason"]
    (warning,) = outcome.warnings
    assert getattr(warning, "reason", None) == reason
    assert reason.encode("utf-8")
    assert names_a_field(reason, path, prefix), (path, reason)
    assert outcome.world.writes() == [], (path, reason)


def assert_job_answered(outcome: Outcome, answered: bool) -> None:
    """CodePipeline heard the job's outcome once: its failure with the reason, or nothing
    when the job id is unusable."""
    reports = [(n, k) for n, k in outcome.world.calls if n.startswith("codepipeline.put_job")]
    if not answered:
        assert reports == []
        return
    ((name, sent),) = reports
    if outcome.answer["result"] in ("refused", "failed"):
        assert name == "codepipeline.put_job_failure_result"
        assert sent["failureDetails"]["message"] == outcome.answer["reason"][:5000]


def answerable(doc: Any) -> bool:
    """Whether the event's job id is the job CodePipeline holds (any other is not answered)."""
    from shared.models import JobReference, Refusal, read

    try:
        return read(doc, JobReference).job.id == JOB_ID
    except Refusal:
        return False


def check_job(
    outcome: Outcome,
    doc: Any,
    path: tuple[Any, ...],
    prefix: str,
    done: set[str],
    work: tuple[str, ...] = (),
) -> None:
    """The job hook's answer: the work done (`done`: its results; `work`: the writes it may
    make then), or a clean refusal or failure with no write."""
    result = outcome.answer["result"]
    assert result in {"refused", "failed", *done}, outcome.answer
    if path[:1] == ("CodePipeline.job",) and path[1:2] != ("id",) and answerable(doc):
        # Only the job id is read from the event: the rest, forged, changes nothing.
        assert result in done, (path, outcome.answer)
    if result == "refused":
        assert_clean_refusal(outcome, path, prefix)
        assert_job_answered(outcome, answerable(doc))
    elif result == "failed":
        (warning,) = outcome.warnings
        assert getattr(warning, "reason", None) == outcome.answer["reason"]
        assert outcome.world.writes() == [], outcome.answer
        assert_job_answered(outcome, True)
    else:
        assert outcome.warnings == []
        assert set(outcome.world.writes()) <= {*work, "codepipeline.put_job_success_result"}


# --- the job hooks: the documented job event, made whole ----------------------------------------


def job_event() -> dict[str, Any]:
    """AWS's sample job event: the hooks read its job id only."""
    return copy.deepcopy(event("codepipeline_job.json"))


FOLDER = "s3://artifacts/released/fraud-detection/7"
RELEASE = {
    "model_package_arn": ARN,
    "model_package_group": "mlgate-fraud-detection",
    "model_version": 7,
    "model_data_url": f"{FOLDER}/model.tar.gz",
    "approved_by": "arn:aws:sts::111111111111:assumed-role/ml-lead/amara",
    "approved_at": "2026-11-24T09:30:00Z",
    "metrics": {"precision": 0.97, "recall": 0.71, "auc": 0.95},
    "evaluation_report_uri": REPORT,
    "baseline_statistics_uri": f"{FOLDER}/baseline/statistics.json",
    "baseline_constraints_uri": f"{FOLDER}/baseline/constraints.json",
    "baseline_dataset_uri": f"{FOLDER}/baseline/dataset/baseline.csv",
    "manifest_sha256": "abc",
    "code_sha256": "def",
    "training_execution": "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/p/execution/e",
}
CONTEXT = LambdaContext(invoked_function_arn="arn:aws:lambda:eu-west-1:111111111111:function:h")


@dataclass
class JobInput:
    kind: str
    path: tuple[Any, ...]
    event: Any
    params: str
    token: str | None
    body: bytes | None


@st.composite
def job_inputs(draw: Any, params: dict[str, Any], token: dict[str, Any] | None = None) -> JobInput:
    """What was broken: the event, the job's UserParameters or token as CodePipeline holds
    them, release.json at the execution's source revision, or its absence."""
    kinds = ["event", "params", "release", "missing"] + (["token"] if token else [])
    kind = draw(st.sampled_from(kinds))
    raw = draw(st.booleans())
    token_text = json.dumps(token) if token else None
    body: bytes | None = json.dumps(RELEASE).encode()
    held = json.dumps(params)
    if kind == "event":
        if draw(st.integers(0, 9)) == 0:  # not a job event at all
            return JobInput(kind, (), draw(st.one_of(anything, st.text())), held, token_text, body)
        path, doc = draw(broken(job_event()))
        return JobInput(kind, path, doc, held, token_text, body)
    if kind == "params":
        path, changed = draw(broken(params))
        return JobInput(kind, path, job_event(), as_json(changed, raw), token_text, body)
    if kind == "token":
        assert token is not None
        foreign = st.sampled_from([
            "A continuation token if continuing job", "null", "[]", '["a"]', "{}", '""', "7",
            json.dumps({"stack": STACK}), json.dumps({**token, "stack": "other-stack"}),
            json.dumps({**token, "waiting": True}),
        ])  # fmt: skip
        if draw(st.booleans()):
            return JobInput(kind, ("continuationToken",), job_event(), held, draw(foreign), body)
        path, changed = draw(broken(token))
        return JobInput(kind, path, job_event(), held, as_json(changed, raw), body)
    if kind == "release":
        path, changed = draw(broken(RELEASE))
        text = as_json(changed, raw).encode("utf-8", "surrogatepass")
        return JobInput(kind, path, job_event(), held, token_text, text)
    return JobInput(kind, ("release.json",), job_event(), held, token_text, None)


def settle(w: World, given: JobInput) -> None:
    """The world the job hook meets: release.json at the source revision, if any."""
    if given.body is not None:
        w.objects[("releases", "release.json")] = given.body


PREFIXES = {
    "event": "CodePipeline.job",
    "params": "UserParameters",
    "token": "continuationToken",
    "release": "release.json",
    "missing": "release.json",
}


# --- the deployer ----------------------------------------------------------------------------


def stack(status: str = "UPDATE_COMPLETE") -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackName": STACK,
                "StackStatus": status,
                "Parameters": [
                    {"ParameterKey": "ModelPackageArn", "ParameterValue": OLD_ARN},
                    {"ParameterKey": "ModelDataUrl", "ParameterValue": "s3://o/m.tar.gz"},
                    {"ParameterKey": "BaselineStatisticsUri", "ParameterValue": "s3://o/s.json"},
                ],
            }
        ]
    }


def source(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job hooks' release source settings (mlgate/infra/constructs/release_hooks.py)."""
    for key, value in {
        "RELEASE_PIPELINE": PIPELINE, "RELEASE_BUCKET": "releases", "RELEASE_KEY": "release.json",
        "MODEL_PACKAGE_GROUP": "mlgate-fraud-detection", "ARTIFACT_BUCKET": ARTIFACTS,
        "RELEASED_PREFIX": "released/fraud-detection",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)


@pytest.fixture
def deployer(monkeypatch: pytest.MonkeyPatch) -> Any:
    from deployer import handler

    monkeypatch.setattr(handler.metrics, "namespace", NAMESPACE)
    source(monkeypatch)

    def world(given: JobInput) -> World:
        w = World()
        settle(w, given)

        def describe_stacks(StackName: str) -> dict[str, Any]:
            if StackName != STACK:
                raise refusal("DescribeStacks", "ValidationException",
                              f"Stack with id {StackName} does not exist")  # fmt: skip
            return stack()

        cfn = w.fake("cloudformation", describe_stacks=describe_stacks)
        monkeypatch.setattr(handler, "codepipeline", w.pipeline(given.params, given.token))
        monkeypatch.setattr(handler, "cloudformation", lambda job: cfn)
        monkeypatch.setattr(handler, "s3", w.s3())
        monkeypatch.setattr(handler, "sagemaker", w.registry())
        return w

    return handler, world


DEPLOY = {"environment": "staging", "stack": STACK, "role_arn": ROLE, "service_role": ROLE}


@EXAMPLES
@given(data=st.data())
def test_the_deployer_starts_an_update_or_refuses_cleanly(deployer: Any, data: Any) -> None:
    handler, world = deployer
    given = data.draw(job_inputs(DEPLOY))
    w = world(given)
    outcome = run(handler, w, lambda: handler.handler(given.event, CONTEXT), given.kind)
    check_job(outcome, given.event, given.path, PREFIXES[given.kind], {"in_progress", "succeeded"},
              work=("cloudformation.update_stack",))  # fmt: skip
    if outcome.answer["result"] == "in_progress":
        assert w.writes().count("cloudformation.update_stack") == 1


TOKEN = {"stack": STACK, "model_package_arn": ARN}


@EXAMPLES
@given(data=st.data())
def test_the_deployer_follows_its_own_token_or_refuses_cleanly(deployer: Any, data: Any) -> None:
    handler, world = deployer
    given = data.draw(job_inputs(DEPLOY, TOKEN))
    w = world(given)
    outcome = run(handler, w, lambda: handler.handler(given.event, CONTEXT), given.kind)
    # A dropped token makes a first job of it: then the update starts.
    check_job(outcome, given.event, given.path, PREFIXES[given.kind], {"succeeded", "in_progress"},
              work=("cloudformation.update_stack",))  # fmt: skip
    if outcome.answer["result"] == "refused":
        assert "cloudformation.describe_stacks" not in w.names()


# --- the deploy verifier -----------------------------------------------------------------------


@pytest.fixture
def verifier(monkeypatch: pytest.MonkeyPatch) -> Any:
    from deploy_verifier import handler

    monkeypatch.setattr(handler.metrics, "namespace", NAMESPACE)
    monkeypatch.setenv("SAMPLE_PAYLOAD", "120.5,1,0.3")
    source(monkeypatch)
    handler.sample_payload.cache_clear()

    def world(given: JobInput) -> World:
        w = World()
        settle(w, given)

        def describe_endpoint(EndpointName: str) -> dict[str, Any]:
            if EndpointName != ENDPOINT:
                raise refusal("DescribeEndpoint", "ValidationException",
                              f'Could not find endpoint "{EndpointName}".')  # fmt: skip
            return {"EndpointStatus": "InService", "EndpointConfigName": "config-7"}

        sagemaker = w.fake(
            "sagemaker",
            describe_endpoint=describe_endpoint,
            describe_endpoint_config=lambda **_: {"ProductionVariants": [{"ModelName": "m-7"}]},
            describe_model=lambda **_: {
                "Containers": [{"ModelDataUrl": RELEASE["model_data_url"]}]
            },
        )
        runtime = w.fake("runtime", invoke_endpoint=lambda **_: {"Body": io.BytesIO(b"0.01")})
        clients = {"sagemaker": sagemaker, "sagemaker-runtime": runtime}
        monkeypatch.setattr(handler, "codepipeline", w.pipeline(given.params, given.token))
        monkeypatch.setattr(
            handler, "session", lambda role, purpose: SimpleNamespace(client=clients.get)
        )
        monkeypatch.setattr(handler, "s3", w.s3())
        monkeypatch.setattr(handler, "registry", w.registry())
        return w

    return handler, world


@EXAMPLES
@given(data=st.data())
def test_the_verifier_verifies_or_refuses_cleanly(verifier: Any, data: Any) -> None:
    handler, world = verifier
    params = {"environment": "staging", "endpoint": ENDPOINT, "role_arn": ROLE}
    given = data.draw(job_inputs(params))
    w = world(given)
    outcome = run(handler, w, lambda: handler.handler(given.event, CONTEXT), given.kind)
    # The sample invocation is the verifier's work: made only once everything was read.
    check_job(outcome, given.event, given.path, PREFIXES[given.kind], {"succeeded"},
              work=("runtime.invoke_endpoint",))  # fmt: skip
    if outcome.answer["result"] == "succeeded":
        assert w.names().count("runtime.invoke_endpoint") == 1


# --- AWS's DynamoDB (moto) for the hooks with idempotency records and an audit trail ------------


VERIFIED_EMPTY: set[str] = set()
"""The tables an example's own scan found empty (stored()), with no call to DynamoDB since:
the next example's world need not scan them again before it starts."""


@pytest.fixture
def tables() -> Iterator[Callable[[], None]]:
    """The idempotency and audit tables under moto; the function empties both."""
    with moto():
        ddb = boto3.client("dynamodb")
        made = [create_idempotency_table(ddb), create_audit_table(ddb)]
        VERIFIED_EMPTY.clear()
        VERIFIED_EMPTY.update(made)  # new tables hold nothing

        def empty() -> None:
            for table, keys in ((os.environ["IDEMPOTENCY_TABLE"], ["id"]), ("audit", ["pk", "sk"])):
                if table in VERIFIED_EMPTY:
                    continue
                # The keys alone: what deleting an item takes.
                names = {f"#k{i}": key for i, key in enumerate(keys)}
                found = ddb.scan(TableName=table, ProjectionExpression=", ".join(names),
                                 ExpressionAttributeNames=names)["Items"]  # fmt: skip
                for item in found:
                    ddb.delete_item(TableName=table, Key={k: item[k] for k in keys})
            VERIFIED_EMPTY.clear()  # the example about to run may write to either

        yield empty


def stored(table: str) -> list[dict[str, Any]]:
    """What `table` holds; read last in an example (nothing writes after it)."""
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=table)["Items"]
    if not items:
        VERIFIED_EMPTY.add(table)
    return items


# --- the quality gate -----------------------------------------------------------------------


@pytest.fixture
def gate(tables: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> Any:
    from quality_gate import handler

    from mlgate.infra.gates import thresholds
    from mlgate.manifest import load_manifest

    from ..conftest import DEFAULT_MANIFEST

    monkeypatch.setattr(handler.metrics, "namespace", NAMESPACE)
    monkeypatch.setenv("MLGATE_THRESHOLDS", json.dumps(thresholds(load_manifest(DEFAULT_MANIFEST))))
    monkeypatch.setenv("SMOKE_REQUESTS", "2")
    monkeypatch.setenv("AUDIT_TABLE", "audit")
    source(monkeypatch)
    monkeypatch.setattr(handler, "pause", lambda seconds: None)
    handler.settings.cache_clear()

    def world(given: JobInput) -> World:
        tables()
        w = World()
        settle(w, given)

        def describe_endpoint(EndpointName: str) -> dict[str, Any]:
            if EndpointName != ENDPOINT:
                raise refusal("DescribeEndpoint", "ValidationException",
                              f'Could not find endpoint "{EndpointName}".')  # fmt: skip
            return {"EndpointStatus": "InService", "EndpointConfigName": "config-7"}

        w.objects[SPLIT] = b"0,120.5,1,0.3\n1,99.5,0,0.1\n"
        monkeypatch.setattr(handler, "codepipeline", w.pipeline(given.params, given.token))
        monkeypatch.setattr(handler, "registry", w.registry())
        monkeypatch.setattr(handler, "sagemaker", w.fake("sagemaker",
                            describe_endpoint=describe_endpoint))  # fmt: skip
        monkeypatch.setattr(handler, "runtime", w.fake(
            "runtime", invoke_endpoint=lambda **_: {"Body": io.BytesIO(b"0.01")}))  # fmt: skip
        monkeypatch.setattr(handler, "s3", w.s3())
        return w

    return handler, world


@EXAMPLES
@given(data=st.data())
def test_the_quality_gate_judges_or_refuses_before_its_smoke_load(gate: Any, data: Any) -> None:
    handler, world = gate
    given = data.draw(job_inputs({"endpoint": ENDPOINT, "execution": EXECUTION}))
    kind, path, doc = given.kind, given.path, given.event
    w = world(given)
    outcome = run(handler, w, lambda: handler.handler(doc, CONTEXT), kind)
    result = outcome.answer["result"]
    if result in ("refused", "failed") and "Quality gate failed" not in outcome.answer["reason"]:
        # No request was sent, nothing was recorded, no idempotency record is left.
        assert "runtime.invoke_endpoint" not in w.names(), outcome.answer
        assert stored("audit") == [], outcome.answer
        assert stored(os.environ["IDEMPOTENCY_TABLE"]) == [], outcome.answer
        check_job(outcome, doc, path, PREFIXES[kind], set())
    else:
        if kind == "event" and not answerable(doc):
            raise AssertionError(f"a job CodePipeline does not hold was judged: {outcome.answer}")
        # Judged: a verdict on record, reported once (a failing verdict is the work done).
        assert [i["event"]["S"] for i in stored("audit")].count("quality-gate") == 1
        assert w.names().count("runtime.invoke_endpoint") == 2
        ((name, _),) = [(n, k) for n, k in w.calls if n.startswith("codepipeline.put_job")]
        assert name.endswith("success_result" if result == "succeeded" else "failure_result")


# --- the release hook -------------------------------------------------------------------------

APPROVAL = event("model_package_state_change.json")
RELEASE_CONTEXT = LambdaContext(
    invoked_function_arn=f"arn:aws:lambda:{APPROVAL['region']}:{APPROVAL['account']}:function:r"
)
# Fields of the sample event the hook never reads: any value will do.
# Who approved it is the registry's answer, never the event's (LastModifiedBy, CreatedBy).
UNREAD = {"InferenceSpecification", "ModelPackageStatus", "ModelPackageStatusDetails",
          "CertifyForMarketplace", "UserProfileArn", "DomainId", "LastModifiedBy",
          "CreatedBy"}  # fmt: skip
RUN = "s3://artifacts/training/fraud-detection/run-1"


@pytest.fixture
def release(tables: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> Any:
    from release import handler

    monkeypatch.setattr(handler.metrics, "namespace", NAMESPACE)
    group = APPROVAL["detail"]["ModelPackageGroupName"]
    for key, value in {"MODEL_PACKAGE_GROUP": group,
                       "RELEASE_BUCKET": "releases", "RELEASE_PIPELINE": "release",
                       "AUDIT_TABLE": "audit", "ARTIFACT_BUCKET": "artifacts",
                       "TRAINING_PREFIX": "training/fraud-detection",
                       "RELEASED_PREFIX": "released/fraud-detection"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    handler.settings.cache_clear()
    report = f"{RUN}/evaluation/evaluation.json"

    def world() -> World:
        tables()
        w = World()
        w.objects[("artifacts", "training/fraud-detection/run-1/evaluation/evaluation.json")] = (
            json.dumps({"binary_classification_metrics": {"auc": {"value": 0.95}}}).encode()
        )

        def describe_model_package(ModelPackageName: str) -> dict[str, Any]:
            if ModelPackageName != APPROVAL["detail"]["ModelPackageArn"]:
                raise refusal("DescribeModelPackage", "ValidationException",
                              f"ModelPackage {ModelPackageName} does not exist.")  # fmt: skip
            return {
                "ModelPackageArn": ModelPackageName, "ModelPackageGroupName": group,
                "ModelApprovalStatus": "Approved",
                "LastModifiedBy": {"UserProfileName": "amara"},
                "InferenceSpecification": {"Containers": [
                    {"ModelDataUrl": f"{RUN}/train/model.tar.gz"}]},
                "ModelMetrics": {"ModelQuality": {"Statistics": {"S3Uri": report}}},
            }  # fmt: skip

        monkeypatch.setattr(handler, "sagemaker", w.fake(
            "sagemaker", describe_model_package=describe_model_package))  # fmt: skip
        monkeypatch.setattr(handler, "codepipeline", w.fake(
            "codepipeline", start_pipeline_execution=lambda **_: {
                "pipelineExecutionId": EXECUTION}))  # fmt: skip
        monkeypatch.setattr(handler, "s3", w.s3())
        return w

    return handler, world


@EXAMPLES
@given(data=st.data())
def test_the_release_hook_releases_or_refuses_without_an_aws_write(release: Any, data: Any) -> None:
    handler, world = release
    path, doc = data.draw(st.one_of(broken(APPROVAL), anything.map(lambda d: ((), d))))
    w = world()
    outcome = run(handler, w, lambda: handler.handler(doc, RELEASE_CONTEXT), "event")
    answer = outcome.answer
    assert answer["released"] in ("true", "false"), answer
    if answer["released"] == "true":
        assert outcome.warnings == []
        assert w.writes() == ["s3.copy_object", "s3.put_object",
                              "codepipeline.start_pipeline_execution"]  # fmt: skip
        assert len(stored("audit")) == 1
        return
    reason = answer["reason"]
    (warning,) = outcome.warnings
    assert getattr(warning, "reason", None) == reason
    assert names_a_field(reason, path, "the event") or path == (), (path, reason)
    assert not set(path) & UNREAD, (path, reason)
    assert w.writes() == []
    assert stored("audit") == []
    assert stored(os.environ["IDEMPOTENCY_TABLE"]) == []
