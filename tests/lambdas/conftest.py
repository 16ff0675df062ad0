"""Hooks import as their Lambda runtime does (mlgate/runtime/hooks is the asset root), and share
fixtures: moto, the audit and idempotency tables, a recorder for calls moto lacks, a Lambda
context, transient faults injected into any one AWS call, and the wire: faults injected below
botocore, into single HTTP attempts, with fakes that answer like the services moto lacks."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import boto3
import botocore.client
import pytest
from aws_lambda_powertools import Logger
from botocore import xform_name
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from botocore.retries.standard import ExponentialBackoff
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

from ..conftest import tested

# Hooks build their idempotency stores at import, as in Lambda, from the stack's settings.
os.environ.setdefault("IDEMPOTENCY_TABLE", "idempotency")

LAMBDAS = Path(__file__).resolve().parents[2] / "mlgate" / "runtime" / "hooks"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

EVENTS = Path(__file__).resolve().parents[1] / "events"

# Powertools' Logger binds its handler to sys.stdout when the first Logger of a service is
# made, and every hook's Logger shares it. Made here, at collection, it writes to pytest's
# session capture, never to the capsys of the test that first imports a hook (closed after
# that test: later log lines would fail to write).
Logger()


def event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


class Recorder:
    """Stands in for CodePipeline calls moto does not implement, recording what was sent."""

    def __init__(self, **responses: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.responses = responses

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def call(**kwargs: Any) -> Any:
            FAULTS.call(f"recorder.{name}")
            self.calls.append((name, kwargs))
            response = self.responses.get(name, {})
            if isinstance(response, Exception):
                raise response
            return response(**kwargs) if callable(response) else response

        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@dataclass
class Faults:
    """Transient faults: the call at index `fail_at` (counting every AWS call a hook makes,
    through botocore or a Recorder) raises a throttling error, once. `seen` lists the calls."""

    fail_at: int | None = None
    seen: list[str] = field(default_factory=list)
    failed: str = ""

    def call(self, name: str) -> None:
        self.seen.append(name)
        if self.fail_at is not None and len(self.seen) - 1 == self.fail_at:
            self.failed = name
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": f"injected fault: {name}"}},
                name,
            )


FAULTS = Faults()
_real_call = botocore.client.BaseClient._make_api_call


def _faulty_call(self: Any, operation: str, params: Any) -> Any:
    name = f"{self.meta.service_model.service_name}.{xform_name(operation)}"
    item = params.get("Key") or params.get("Item")
    key = item.get("id", {}).get("S", "") if isinstance(item, dict) else ""
    # An idempotency record's call is named after its key prefix: the hook or one of its steps.
    FAULTS.call(f"{name}[{key.split('#')[0]}]" if key else name)
    return _real_call(self, operation, params)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    """Counts calls from now on; set `fail_at` to make one of them fail once."""
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", _faulty_call)
    FAULTS.fail_at, FAULTS.seen, FAULTS.failed = None, [], ""
    yield FAULTS
    FAULTS.fail_at, FAULTS.seen, FAULTS.failed = None, [], ""


def fail_then_retry(faults: Faults, index: int, run: Callable[[], Any]) -> Any:
    """Run with the `index`-th AWS call failing once, then run again as Lambda's retry does
    (a failed invocation is retried after a delay: the failed run's in-progress idempotency
    record has expired by then, see LambdaContext below); returns the retry's answer."""
    faults.fail_at = index
    with contextlib.suppress(Exception):  # any failure: the invocation failed, Lambda retries
        run()
    faults.fail_at = None
    return run()


@dataclass
class LambdaContext:
    """What Powertools reads of Lambda's context. The remaining time bounds how long a
    failed invocation's INPROGRESS record blocks a retry; 1 ms stands for Lambda's retry
    delay (a minute or more) having passed."""

    function_name: str = "hook"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:hook"
    aws_request_id: str = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return 1


CONTEXT = LambdaContext()


def context_in(account: str = "123456789012", region: str = "eu-west-1") -> LambdaContext:
    """A Lambda context of a function in `account` and `region`: the hooks that EventBridge
    invokes trust only events of their own account and region, read from this ARN."""
    return LambdaContext(invoked_function_arn=f"arn:aws:lambda:{region}:{account}:function:hook")


def context_of(event: dict[str, Any]) -> LambdaContext:
    """The context of a function in the account and region an EventBridge event names."""
    return context_in(event["account"], event["region"])


def emf(out: str) -> list[dict[str, Any]]:
    """The metrics Powertools Metrics wrote to stdout in CloudWatch's embedded metric format
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
    CloudWatch_Embedded_Metric_Format_Specification.html): per metric value, its namespace,
    name, value and every dimension set it is filed under, as {name: value} maps."""
    found = []
    for line in out.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                values = blob[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    found.append({
                        "namespace": directive["Namespace"],
                        "name": metric["Name"],
                        "value": value,
                        "dimensions": [{k: blob[k] for k in keys}
                                       for keys in directive["Dimensions"]],
                    })  # fmt: skip
    return found


def create_idempotency_table(ddb: Any) -> str:
    """The hooks' Powertools idempotency table, as the foundation stack makes it."""
    name = os.environ["IDEMPOTENCY_TABLE"]
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def create_audit_table(ddb: Any) -> str:
    """The audit trail, keyed as the delivery stack makes it."""
    ddb.create_table(
        TableName="audit",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return "audit"


def create_retraining_target(pipeline: str) -> None:
    """What the drift responder starts and where it keeps its cool-down: the training pipeline
    (empty) and the cool-down table, as the training and serving stacks make them."""
    boto3.client("sagemaker").create_pipeline(
        PipelineName=pipeline,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn="arn:aws:iam::123456789012:role/training",
    )
    boto3.client("dynamodb").create_table(
        TableName="drift",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


_SESSION: list[boto3.session.Session] = []


def shared_session() -> boto3.session.Session:
    """boto3's default session, made once per worker and handed to every moto world.

    mock_aws() drops boto3's default session at each start, so each test's first client made
    a new one (credential chain, config, endpoint data: about 30 ms a test). The session holds
    no AWS state: moto's backends hold that, and each mock_aws() still starts from empty ones.
    Its credentials are moto's fake ones, which every mock_aws() sets alike. Its clients come
    from ClientCache below."""
    if not _SESSION:
        session = boto3.session.Session()
        session.client = ClientCache(session.client)  # type: ignore[method-assign]
        _SESSION.append(session)
    return _SESSION[0]


@dataclass
class Cached:
    client: Any
    attributes: frozenset[str]
    spoiled: bool = False


class ClientCache:
    """One client per call site, made once per worker instead of at every call (about 4 ms
    each, a dozen per test). A client holds no AWS state (moto's backends do), and moto answers
    every client through the one handler it registers for all of them, so a client made under
    one mock_aws() answers from the next one's empty backends (test_client_cache.py).

    The key is the call site (file, line and instruction of the code calling boto3.client: a
    hook's module-level client, a fixture's, a helper's), the arguments and every AWS_* variable in
    the environment (region, endpoints, retry mode, credentials: what a new client would read),
    so two sites never share a client. A client is made afresh once it holds something of a
    test's, one of:
    - a handler registered on or removed from its events (botocore's Stubber, or a test's own),
      told by its emitter's register/unregister methods (wrapped on that instance);
    - an attribute set on it (a monkeypatched method: still on it after the undo);
    - a retried request: standard retries spend the client's retry quota
      (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html), and an S3
      client remembers a redirected bucket's region; told by the attempt number botocore writes
      in each attempt's `amz-sdk-request` header ("attempt=1; max=3").
    A call with any other argument than text, numbers or None (a botocore Config) is not
    cached."""

    EVENTS = ("register", "register_first", "register_last", "unregister")

    def __init__(self, make: Callable[..., Any]) -> None:
        self.make = make
        self.clients: dict[tuple[Any, ...], Cached] = {}
        self.made = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        values = [*args, *kwargs.values()]
        if not all(v is None or isinstance(v, (str, int, float)) for v in values):
            return self.make(*args, **kwargs)
        frame = sys._getframe(1)
        while frame.f_back and frame.f_globals.get("__name__", "").startswith("boto3"):
            frame = frame.f_back  # boto3.client, then its session's client
        key = self.key((frame.f_code.co_filename, frame.f_lineno, frame.f_lasti), args, kwargs)
        cached = self.clients.get(key)
        if cached is None or self.spoiled(cached):
            cached = self.clients[key] = self.made_for(args, kwargs)
        return cached.client

    @staticmethod
    def key(site: tuple[str, int, int], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
        return site, args, tuple(sorted(kwargs.items())), environment

    @staticmethod
    def spoiled(cached: Cached) -> bool:
        return cached.spoiled or set(vars(cached.client)) != cached.attributes

    def made_for(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Cached:
        client = self.make(*args, **kwargs)
        self.made += 1
        cached = Cached(client, frozenset(vars(client)))
        events = client.meta.events
        events.register("before-send", functools.partial(self.attempt, cached))
        for name in self.EVENTS:
            method = getattr(events, name)

            def changed(*a: Any, _method: Any = method, **k: Any) -> Any:
                cached.spoiled = True
                return _method(*a, **k)

            setattr(events, name, changed)
        return cached

    @staticmethod
    def attempt(cached: Cached, request: AWSPreparedRequest, **_: Any) -> None:
        if not header(request, "amz-sdk-request").startswith("attempt=1;"):
            cached.spoiled = True


@contextlib.contextmanager
def moto() -> Iterator[None]:
    """mock_aws() (empty backends, as every test's world starts), with the shared session."""
    with mock_aws():
        if tested("moto"):
            boto3.DEFAULT_SESSION = shared_session()  # mock_aws puts back its own on exit
        yield


@pytest.fixture
def aws() -> Iterator[None]:
    with moto():
        create_idempotency_table(boto3.client("dynamodb"))
        yield


@pytest.fixture
def audit_table(aws: None) -> str:
    return create_audit_table(boto3.client("dynamodb"))


def audit_items() -> list[dict[str, str]]:
    items = boto3.client("dynamodb").scan(TableName="audit")["Items"]
    return [{k: v["S"] for k, v in i.items() if "S" in v} for i in items]


def bucket(name: str) -> None:
    boto3.client("s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )


@dataclass(frozen=True)
class Fault:
    """What one HTTP attempt meets below botocore. `applied`: the service carries the request
    out first, and then the answer is lost (a 5xx, a timeout); otherwise it never does."""

    name: str
    applied: bool = False
    status: int = 0
    code: str = ""
    timeout: bool = False
    reset: bool = False

    def __str__(self) -> str:
        return self.name


SERVER_ERROR = Fault("500", status=500, code="InternalFailure")
THROTTLED = Fault("throttled", status=400, code="ThrottlingException")
TIMEOUT = Fault("timeout", timeout=True)
RESET = Fault("connection reset", reset=True)
APPLIED_THEN_500 = Fault("applied, then 500", applied=True, status=500, code="InternalFailure")
APPLIED_THEN_TIMEOUT = Fault("applied, then timeout", applied=True, timeout=True)


class AwsError(Exception):
    """Raised by a fake service: answered as the service's JSON error (`__type`, `message`)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Plan:
    operation: str
    match: str
    faults: list[Fault]
    every: Fault | None
    call: int | None = None


@dataclass
class Wire:
    """Below botocore: every HTTP attempt of every client passes here (moto's before-send hook,
    wrapped), so botocore signs, retries (standard mode: 3 tries, 4 for DynamoDB; its backoff
    set to 0 here) and parses as it does against AWS. `attempts` lists "service.Operation" per
    attempt; `fakes` answer for services moto lacks (JSON protocol, as the API reference
    documents);
    `fail` plans faults for the attempts of an operation whose body contains `match`, and
    `fail_call` for every attempt of the n-th call (`calls`: one per call, not per attempt)."""

    attempts: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    fakes: dict[str, Any] = field(default_factory=dict)
    plans: list[Plan] = field(default_factory=list)
    met: list[str] = field(default_factory=list)

    def fail(self, operation: str, *faults: Fault, match: str = "",
             every: Fault | None = None) -> None:  # fmt: skip
        """The next attempts of `operation` ("dynamodb.PutItem") meet `faults` in turn; with
        `every`, each later attempt meets it too, until `heal`."""
        self.plans.append(Plan(operation, match, list(faults), every))

    def fail_call(self, index: int, fault: Fault, *, once: bool = False) -> None:
        """Every attempt of the `index`-th call from now on (0 is the next) meets `fault`; with
        `once`, only its first (botocore's retry goes through)."""
        call = len(self.calls) + index
        self.plans.append(Plan("", "", [fault] if once else [], None if once else fault, call))

    def heal(self) -> None:
        self.plans.clear()

    def count(self, operation: str) -> int:
        return self.attempts.count(operation)

    def send(self, moto: Callable[..., Any], event_name: str,
             request: AWSPreparedRequest) -> AWSResponse | None:  # fmt: skip
        service, operation = event_name.split(".")[1:3]
        name = f"{service}.{operation}"
        # A streamed body (an S3 upload) is left to moto, unread.
        raw = request.body
        body = raw if isinstance(raw, bytes) else raw.encode() if isinstance(raw, str) else b""
        self.attempts.append(name)
        # botocore numbers its tries of one call: "amz-sdk-request: attempt=1; max=3".
        if header(request, "amz-sdk-request").startswith("attempt=1;"):
            self.calls.append(name)
        fault = self._fault(name, body.decode(errors="replace"))
        if fault and not fault.applied:
            return self._meet(fault, request, name)
        if service in self.fakes:
            answer = self._fake(self.fakes[service], operation, body, request)
        else:
            answer = moto(event_name=event_name, request=request)
        return self._meet(fault, request, name) if fault else answer

    def _fault(self, name: str, body: str) -> Fault | None:
        for plan in self.plans:
            if plan.call is not None:
                if plan.call == len(self.calls) - 1:
                    return plan.faults.pop(0) if plan.faults else plan.every
            elif plan.operation == name and plan.match in body:
                if plan.faults:
                    return plan.faults.pop(0)
                if plan.every:
                    return plan.every
        return None

    def _meet(self, fault: Fault, request: AWSPreparedRequest, name: str) -> AWSResponse:
        self.met.append(f"{name}: {fault}")
        if fault.timeout:
            raise ReadTimeoutError(endpoint_url=request.url, error=f"injected: {fault}")
        if fault.reset:
            raise ConnectionClosedError(endpoint_url=request.url)
        if "x-www-form-urlencoded" in header(request, "Content-Type"):
            # A query-protocol service (SNS) answers errors in XML.
            error = f"<Code>{fault.code}</Code><Message>{fault}</Message>"
            xml = (
                f"<ErrorResponse><Error>{error}</Error><RequestId>wire</RequestId></ErrorResponse>"
            )
            headers = {"Content-Type": "text/xml", "x-amzn-RequestId": "wire"}
            return AWSResponse(request.url, fault.status, headers, MockRawResponse(xml))
        return response(request, fault.status, {"__type": fault.code, "message": str(fault)})

    @staticmethod
    def _fake(fake: Any, operation: str, body: bytes, request: AWSPreparedRequest) -> AWSResponse:
        assert "json" in header(request, "Content-Type"), (
            "the fakes answer the JSON protocol; botocore chose another for this service"
        )
        try:
            answer = getattr(fake, xform_name(operation))(json.loads(body or b"{}"))
        except AwsError as err:
            return response(request, err.status, {"__type": err.code, "message": err.message})
        return response(request, 200, answer)


def header(request: AWSPreparedRequest, name: str) -> str:
    value = request.headers.get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def response(request: AWSPreparedRequest, status: int, body: dict[str, Any]) -> AWSResponse:
    """An AWS JSON-protocol answer; datetimes as epoch seconds, as the protocol sends them."""
    encoded = json.dumps(body, default=lambda d: d.timestamp())
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "wire"}
    return AWSResponse(request.url, status, headers, MockRawResponse(encoded))


@pytest.fixture
def wire(aws: None, monkeypatch: pytest.MonkeyPatch) -> Wire:
    """The HTTP layer under every client of the test (moto's own hook, wrapped)."""
    wire = Wire()
    original = BotocoreStubber.__call__

    def call(stubber: Any, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> Any:
        def moto(**given: Any) -> Any:
            return original(stubber, **given, **kwargs)

        return wire.send(moto, event_name, request)

    monkeypatch.setattr(BotocoreStubber, "__call__", call)
    # botocore's backoff between tries: none here (the tries, not the waits, are tested).
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    return wire


# Who CodePipeline names as having changed an approval the callback decided: its role.
CALLBACK_ARN = "arn:aws:sts::123456789012:assumed-role/mlgate-gate-callback/gate-callback"


@dataclass
class FakeCodePipeline:
    """One manual approval action as CodePipeline's API reference documents it, for the calls
    moto lacks: PutApprovalResult applies a decision once (then ApprovalAlreadyCompleted; a
    wrong or expired token: InvalidApprovalToken) and GetPipelineState shows it
    (stageStates[].latestExecution, actionStates[].latestExecution {status, summary,
    lastUpdatedBy, lastStatusChange, token}). `applied` lists every decision it applied."""

    pipeline: str
    stage: str
    action: str
    token: str
    execution: str
    now: float
    status: str = "InProgress"
    summary: str = ""
    by: str = ""
    changed: float = 0.0
    expired: bool = False
    applied: list[dict[str, str]] = field(default_factory=list)

    def put_approval_result(self, params: dict[str, Any]) -> dict[str, Any]:
        where = (params["pipelineName"], params["stageName"], params["actionName"])
        if where != (self.pipeline, self.stage, self.action):
            raise AwsError("ActionNotFoundException", f"no action {where}")
        if params["token"] != self.token or self.expired:
            raise AwsError("InvalidApprovalTokenException", "The approval request already "
                           "received a response or has expired")  # fmt: skip
        if self.status != "InProgress":
            raise AwsError("ApprovalAlreadyCompletedException", "already approved or rejected")
        result = params["result"]
        self.decide(result["status"], CALLBACK_ARN, result["summary"])
        return {"approvedAt": self.now}

    def decide(self, decision: str, by: str, summary: str) -> None:
        """A decision CodePipeline applies: from the callback, or in the console."""
        self.status = "Succeeded" if decision == "Approved" else "Failed"
        self.summary, self.by, self.changed = summary, by, self.now
        self.applied.append({"decision": decision, "by": by, "summary": summary})

    def expire(self, at: float) -> None:
        self.status, self.changed, self.expired = "Failed", at, True

    def get_pipeline_state(self, params: dict[str, Any]) -> dict[str, Any]:
        latest: dict[str, Any] = {"actionExecutionId": "a-1", "status": self.status,
                                  "token": self.token}  # fmt: skip
        if self.changed:
            latest["lastStatusChange"] = self.changed
        if self.summary:
            latest["summary"] = self.summary
        if self.by:
            latest["lastUpdatedBy"] = self.by
        return {
            "pipelineName": params["name"],
            "pipelineVersion": 1,
            "stageStates": [
                {"stageName": "Source",
                 "latestExecution": {"pipelineExecutionId": self.execution,
                                     "status": "Succeeded"}},
                {"stageName": self.stage,
                 "latestExecution": {"pipelineExecutionId": self.execution,
                                     "status": "InProgress"},
                 "actionStates": [{"actionName": self.action, "latestExecution": latest}]},
            ],
        }  # fmt: skip


# --- the release path's jobs: CodePipeline's job API, the release source, the registry ---------

JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"  # AWS's sample event's
EXECUTION = "4a2e8c1f-0b7d-4e59-9c3a-6f1d2b8e7a90"
PIPELINE = "mlgate-fraud-detection-release"
GROUP = "mlgate-fraud-detection"
RELEASED = "released/fraud-detection"
# Where the job hooks find releases (mlgate/infra/constructs/release_hooks.py: ReleaseSource).
SOURCE = {
    "RELEASE_PIPELINE": PIPELINE, "RELEASE_BUCKET": "releases", "RELEASE_KEY": "release.json",
    "MODEL_PACKAGE_GROUP": GROUP, "ARTIFACT_BUCKET": "artifacts", "RELEASED_PREFIX": RELEASED,
}  # fmt: skip


def aws_error(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def released(version: int, **fields: Any) -> dict[str, Any]:
    """A release.json of `version` of this product, its copies in the released folder."""
    folder = f"s3://artifacts/{RELEASED}/{version}"
    return {
        "model_package_arn": package_arn(version),
        "model_package_group": GROUP,
        "model_version": version,
        "model_data_url": f"{folder}/model.tar.gz",
        "baseline_statistics_uri": f"{folder}/baseline/statistics.json",
        **fields,
    }


def package_arn(version: int, group: str = GROUP, account: str = "111111111111") -> str:
    return f"arn:aws:sagemaker:eu-west-1:{account}:model-package/{group}/{version}"


class Jobs:
    """CodePipeline's job API as the job hooks call it (moto has none of it), as its API
    reference documents it: GetJobDetails answers the jobs it holds (any other id:
    JobNotFoundException), GetPipelineExecution each execution's source revision (the release
    source's S3 version id), and the job results are recorded. Every call counts as a FAULTS
    call ("recorder.<operation>")."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.revisions: dict[str, list[str]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.results = Recorder()
        """The job results reported only (PutJobSuccessResult, PutJobFailureResult)."""
        self.details_refused: str | None = None
        """An error code GetJobDetails answers every id with (None: it answers as above)."""

    def add(self, params: Any, *, job: str = JOB_ID, execution: str = EXECUTION,
            pipeline: str = PIPELINE, continuation: str | None = None,
            revision: str | None = None) -> str:  # fmt: skip
        """A job of `pipeline`'s `execution` with these UserParameters (JSON of a dict)."""
        data: dict[str, Any] = {
            "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda",
                             "version": "1"},
            "actionConfiguration": {"configuration": {
                "FunctionName": "hook",
                "UserParameters": params if isinstance(params, str) else json.dumps(params)}},
            "pipelineContext": {
                "pipelineName": pipeline, "stage": {"name": "DeployStaging"},
                "action": {"name": "UpdateServingStaging", "actionExecutionId": str(uuid4())},
                "pipelineArn": f"arn:aws:codepipeline:eu-west-1:111111111111:{pipeline}",
                "pipelineExecutionId": execution},
            "inputArtifacts": [], "outputArtifacts": [],
        }  # fmt: skip
        if continuation is not None:
            data["continuationToken"] = continuation
        self.jobs[job] = {"id": job, "accountId": "111111111111", "data": data}
        if revision is not None:
            self.revisions[execution] = [revision]
        return job

    def _call(self, name: str, kwargs: dict[str, Any]) -> None:
        FAULTS.call(f"recorder.{name}")
        self.calls.append((name, kwargs))
        if name.startswith("put_job_"):
            self.results.calls.append((name, kwargs))

    def get_job_details(self, **kwargs: Any) -> dict[str, Any]:
        self._call("get_job_details", kwargs)
        if self.details_refused is not None:
            raise aws_error("GetJobDetails", self.details_refused, "refused")
        if kwargs["jobId"] not in self.jobs:
            raise aws_error("GetJobDetails", "JobNotFoundException",
                            f"The job with id {kwargs['jobId']} was not found")  # fmt: skip
        return {"jobDetails": copy.deepcopy(self.jobs[kwargs["jobId"]])}

    def get_pipeline_execution(self, **kwargs: Any) -> dict[str, Any]:
        self._call("get_pipeline_execution", kwargs)
        execution = kwargs["pipelineExecutionId"]
        if kwargs["pipelineName"] != PIPELINE or execution not in self.revisions:
            raise aws_error("GetPipelineExecution", "PipelineExecutionNotFoundException",
                            f"execution {execution} not found")  # fmt: skip
        return {"pipelineExecution": {
            "pipelineName": PIPELINE, "pipelineExecutionId": execution, "status": "InProgress",
            "artifactRevisions": [{"name": "Release", "revisionId": r}
                                  for r in self.revisions[execution]]}}  # fmt: skip

    def put_job_success_result(self, **kwargs: Any) -> dict[str, Any]:
        self._call("put_job_success_result", kwargs)
        return {}

    def put_job_failure_result(self, **kwargs: Any) -> dict[str, Any]:
        self._call("put_job_failure_result", kwargs)
        if kwargs["jobId"] not in self.jobs:
            raise aws_error("PutJobFailureResult", "JobNotFoundException",
                            f"The job with id {kwargs['jobId']} was not found")  # fmt: skip
        return {}

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def reports(self) -> list[tuple[str, dict[str, Any]]]:
        return [(n, k) for n, k in self.calls if n.startswith("put_job_")]


class Registry:
    """SageMaker's DescribeModelPackage for the versions it holds (another name:
    ValidationException, as SageMaker answers)."""

    def __init__(self) -> None:
        self.packages: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def hold(self, arn: str, status: str = "Approved", group: str | None = None) -> None:
        self.packages[arn] = {"ModelPackageArn": arn,
                              "ModelPackageGroupName": group or arn.split("/")[-2],
                              "ModelApprovalStatus": status}  # fmt: skip

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:
        FAULTS.call("recorder.describe_model_package")
        self.calls.append(ModelPackageName)
        if ModelPackageName not in self.packages:
            raise aws_error("DescribeModelPackage", "ValidationException",
                            f"ModelPackage {ModelPackageName} does not exist.")  # fmt: skip
        return dict(self.packages[ModelPackageName])


def release_source(monkeypatch: pytest.MonkeyPatch, release: dict[str, Any] | bytes) -> str:
    """The job hooks' settings, and release.json written to the versioned release bucket
    (under moto); returns its version id, the execution's source revision."""
    for name, value in SOURCE.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")
    if "releases" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        bucket("releases")
        s3.put_bucket_versioning(Bucket="releases",
                                 VersioningConfiguration={"Status": "Enabled"})  # fmt: skip
    body = release if isinstance(release, bytes) else json.dumps(release).encode()
    return str(s3.put_object(Bucket="releases", Key="release.json", Body=body)["VersionId"])
