"""Gate notifier and gate callback under moto: the brief goes out with buttons, a signed click
by the gate's approver decides once, and every other click is refused and changes nothing.

The callback talks to CodePipeline through a real botocore client: a fake answers below it, on
the wire, like CodePipeline (conftest.FakeCodePipeline), and faults are injected into single
HTTP attempts there, so botocore's own retries run as they do against AWS."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.exceptions import ClientError

from mlgate.infra.gates import encoded, gate_context
from mlgate.manifest import load_manifest
from shared import slack
from shared.audit import AuditTrail

from ..conftest import DEFAULT_MANIFEST
from .conftest import (
    APPLIED_THEN_500,
    APPLIED_THEN_TIMEOUT,
    CALLBACK_ARN,
    CONTEXT,
    RESET,
    SERVER_ERROR,
    THROTTLED,
    TIMEOUT,
    FakeCodePipeline,
    Fault,
    Faults,
    Recorder,
    Wire,
    audit_items,
    bucket,
    emf,
    event,
    fail_then_retry,
)

MANIFEST = load_manifest(DEFAULT_MANIFEST)
NOTIFICATION = event("codepipeline_approval_notification.json")
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM, APP = "T0PRODUCT1", "A0MLGATE01"
ALICE, DANA = "U01ALICE01", "U01DANAS01"
# How the callback names Alice (the click's user name and id), and what it sends CodePipeline.
WHO = f"u01alice01 ({ALICE})"
NOW = time.mktime(time.strptime("2016-07-06T12:00:00", "%Y-%m-%dT%H:%M:%S")) - time.timezone
# SNS's Timestamp on the notifications below.
NOTIFIED = datetime(2026, 11, 24, 9, tzinfo=UTC).timestamp()


def release(version: int, recall: float) -> str:
    """Writes release.json for model `version`; its S3 object version id."""
    written = boto3.client("s3").put_object(
        Bucket="releases",
        Key="release.json",
        Body=json.dumps(
            {
                "model_package_arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/"
                f"mlgate-fraud-detection/{version}",
                "model_version": version,
                "approved_by": "bruno",
                "metrics": {"precision": 0.97, "recall": recall, "auc": 0.94},
            }
        ),
    )
    return str(written["VersionId"])


def approval(stage: str = "BusinessSignoff") -> dict[str, Any]:
    message = copy.deepcopy(NOTIFICATION)
    message["approval"]["stageName"] = stage
    return sns_record(message)


TOPIC = "arn:aws:sns:eu-west-1:123456789012:mlgate-fraud-detection-gate-business-signoff"


def sns_record(message: dict[str, Any], timestamp: Any = "2026-11-24T09:00:00.000Z") -> Any:
    """The SNS event Lambda receives, as AWS documents it (https://docs.aws.amazon.com/lambda/
    latest/dg/with-sns.html), carrying `message`."""
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{TOPIC}:21be56ed-a058-49f5-8c98-aedd2564c486",
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": "1",
                    "Timestamp": timestamp,
                    "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
                    "SigningCertUrl": "https://sns.eu-west-1.amazonaws.com/"
                    "SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
                    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                    "Message": json.dumps(message),
                    "MessageAttributes": {},
                    "Type": "Notification",
                    "UnsubscribeUrl": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"
                    f"&SubscriptionArn={TOPIC}:21be56ed-a058-49f5-8c98-aedd2564c486",
                    "TopicArn": TOPIC,
                    "Subject": "APPROVAL NEEDED: AWS CodePipeline MyFirstPipeline",
                },
            }
        ]
    }


@pytest.fixture
def gates(audit_table: str, wire: Wire, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str],
          caplog: pytest.LogCaptureFixture) -> dict[str, Any]:  # fmt: skip
    from gate_callback import handler as callback
    from gate_notifier import handler as notifier

    topic = boto3.client("sns").create_topic(Name="brief-business-signoff")["TopicArn"]
    secrets = boto3.client("secretsmanager")
    webhook = secrets.create_secret(Name="webhook", SecretString="https://hooks.slack.test/x")
    signing = secrets.create_secret(
        Name="signing",
        SecretString=json.dumps({"signing_secret": SIGNING_SECRET, "team_id": TEAM, "app_id": APP}),
    )
    bucket("releases")
    boto3.client("s3").put_bucket_versioning(
        Bucket="releases", VersioningConfiguration={"Status": "Enabled"}
    )
    source_revision = release(7, recall=0.58)
    context = gate_context(
        MANIFEST,
        brief_topics={"business-signoff": topic},
        dashboard_url="https://console.aws.amazon.com/cloudwatch/home#dashboards:name=x",
        monitoring_url=REPORTS,
    )
    for key, value in {
        "MLGATE_CONTEXT": encoded(context),
        "AUDIT_TABLE": audit_table,
        "RELEASE_BUCKET": "releases",
        "RELEASE_PIPELINE": NOTIFICATION["approval"]["pipelineName"],
        "SLACK_WEBHOOK_SECRET_ARN": webhook["ARN"],
        "SLACK_SIGNING_SECRET_ARN": signing["ARN"],
        "DQ_JOB": "mlgate-fraud-detection-quality",
        # The manifest's retention.audit, as the delivery stack sets it.
        "AUDIT_RETENTION_DAYS": str(MANIFEST.retention.audit),
    }.items():
        monkeypatch.setenv(key, value)

    posted: list[dict[str, Any]] = []
    monkeypatch.setattr(notifier.slack, "post", lambda url, msg: posted.append(msg) or 200)
    pipeline = Recorder(
        get_pipeline_state={
            "stageStates": [
                {"stageName": "BusinessSignoff", "latestExecution": {"pipelineExecutionId": "e-42"}}
            ]
        },
        # The S3 source action's revision is the object version it took.
        get_pipeline_execution={
            "pipelineExecution": {
                "pipelineExecutionId": "e-42",
                "artifactRevisions": [{"name": "Release", "revisionId": source_revision}],
            }
        },
    )
    glue = Recorder(
        list_data_quality_results={
            "Results": [
                {
                    "ResultId": "dqresult-1",
                    "JobName": "mlgate-fraud-detection-quality",
                    "StartedOn": datetime(2016, 7, 6, 2, 0, tzinfo=UTC),
                }
            ]
        },
        get_data_quality_result={
            "Score": 1.0,
            "RuleResults": [{"Name": "Rule_1", "Result": "PASS"}],
            "CompletedOn": "2016-07-06T02:10:00Z",
        },
    )
    monkeypatch.setattr(notifier, "codepipeline", pipeline)
    monkeypatch.setattr(notifier, "glue", glue)
    # Lambda's first try, ten seconds after SNS stamped the notification.
    monkeypatch.setattr(notifier, "clock", lambda: NOTIFIED + 10)
    approval_ = NOTIFICATION["approval"]
    codepipeline = FakeCodePipeline(
        pipeline=approval_["pipelineName"],
        stage="BusinessSignoff",
        action=approval_["actionName"],
        token=approval_["token"],
        execution="e-42",
        now=NOW,
    )
    wire.fakes["codepipeline"] = codepipeline
    # Clients of this test's own (botocore's retry quota is a client's), on the wire.
    monkeypatch.setattr(callback, "codepipeline", boto3.client("codepipeline"))
    monkeypatch.setattr(callback, "dynamodb", boto3.client("dynamodb"))
    # The stack sets POWERTOOLS_METRICS_NAMESPACE; Powertools reads it at import, as in Lambda.
    monkeypatch.setattr(callback.metrics, "namespace", "mlgate/gates")
    notifier.settings.cache_clear()
    callback.settings.cache_clear()
    callback.slack.SECRETS.clear()  # the hooks cache secrets for five minutes, by ARN
    return {
        "notifier": notifier,
        "callback": callback,
        "posted": posted,
        "pipeline": pipeline,
        "codepipeline": codepipeline,
        "wire": wire,
        "topic": topic,
        "capsys": capsys,
        "caplog": caplog,
        "stdout": [],
    }


@pytest.fixture
def inbox(gates: dict[str, Any]) -> str:
    """A mailbox subscribed to the brief's topic (gates["inbox"]), for the tests that read
    what was mailed: made before the test publishes, so every brief reaches it."""
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    boto3.client("sns").subscribe(TopicArn=gates["topic"], Protocol="sqs",
                                  Endpoint=arn["QueueArn"])  # fmt: skip
    gates["inbox"] = queue
    return str(queue)


def click(request_id: str, user: str, action: str = "approve", *, ts: float = NOW,
          secret: str = SIGNING_SECRET, b64: bool = False, team: str = TEAM,
          app: str = APP) -> dict[str, Any]:  # fmt: skip
    payload = {
        "type": "block_actions",
        "api_app_id": app,
        "team": {"id": team, "domain": "product"},
        "user": {"id": user, "username": user.lower(), "name": user.lower()},
        "actions": [{"action_id": action, "block_id": f"gate:{request_id}", "value": request_id}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = {
        "X-Slack-Request-Timestamp": str(int(ts)),
        "X-Slack-Signature": slack.sign(secret, str(int(ts)), body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    if b64:
        import base64

        return url_event(headers, base64.b64encode(body.encode()).decode(), encoded=True)
    return url_event(headers, body)


def url_event(headers: dict[str, Any], body: Any, encoded: Any = False) -> dict[str, Any]:
    """A Lambda function URL request (payload format 2.0, as AWS documents it:
    https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads) as Slack's
    POST arrives."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()} if isinstance(headers, dict)
        else headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "a1b2c3d4e5",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "Slackbot 1.0"},
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "06/Jul/2016:12:00:00 +0000",
            "timeEpoch": 1467806400000,
        },
        "body": body,
        "isBase64Encoded": encoded,
    }  # fmt: skip


REPORTS = "https://s3.console.aws.amazon.com/s3/buckets/a?region=eu-west-1&prefix=monitoring/"


def posted_request(gates: dict[str, Any]) -> str:
    result = gates["notifier"].handler(approval(), CONTEXT)
    assert result["posted"] == "true"
    return str(result["request_id"])


def test_brief_carries_the_evidence_and_buttons_without_the_token(
    gates: dict[str, Any], inbox: str
) -> None:
    request_id = posted_request(gates)
    (message,) = gates["posted"]
    text = json.dumps(message)
    assert "1a2b3c4d-573f-4ea7-a67E-XAMPLETOKEN" not in text, "the token must not reach chat"
    body = message["blocks"][1]["text"]["text"]
    assert "Cut card-fraud losses" in body
    assert "Approvers: Alice Moreau" in body
    assert "OK  precision 0.9700 (needs >= 0.95, owner Bruno Okafor)" in body
    assert f"Monitoring reports (staging, this version's traffic): {REPORTS}" in body
    assert "LOW recall 0.5800 (needs >= 0.6, owner Bruno Okafor)" in body
    assert "Data quality: all rules passed" in body
    assert "fraud-loss-rate: target at most 6.0 bps (owner Alice Moreau)" in body
    assert "R1 (score 16) Concept drift" in body
    buttons = message["blocks"][2]["elements"]
    assert [(b["action_id"], b.get("value")) for b in buttons[:2]] == [
        ("approve", request_id),
        ("reject", request_id),
    ]
    mail = boto3.client("sqs").receive_message(QueueUrl=gates["inbox"])["Messages"]
    assert (
        "gate 'business-signoff' waits for your decision" in json.loads(mail[0]["Body"])["Message"]
    )
    (requested,) = [i for i in audit_items() if i.get("event") == "requested"]
    assert requested["gate"] == "business-signoff"
    assert requested["execution"] == "e-42"
    assert len(requested["evidence_sha256"]) == 64


@pytest.mark.parametrize(("tested", "passed"), [("prod", True), ("prod", False), ("", True)])
def test_a_brief_after_a_shadow_test_shows_its_verdict(
    gates: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tested: str, passed: bool
) -> None:
    """Issue 34: the evidence in the brief; the notifier reads only the environments with a
    shadow test (SHADOW_TESTS: its role may read no other "shadow#" item)."""
    from shared.shadow import Thresholds, Variant, judge
    from shared.shadow_record import record_verdict

    limits = Thresholds(min_requests=10, max_latency_ratio=1.5, max_error_rate=0.01,
                        max_prediction_shift=0.1)  # fmt: skip
    shadow = Variant(400, 0 if passed else 40, 21_000)
    verdict = judge(Variant(800, 0, 20_000), shadow, ["0.1", "0.2"], ["0.1", "0.2"], limits)
    record_verdict("audit", "e-42", "prod", "7", verdict)
    monkeypatch.setenv("SHADOW_TESTS", tested)
    gates["notifier"].settings.cache_clear()
    posted_request(gates)
    body = gates["posted"][-1]["blocks"][1]["text"]["text"]
    word = "PASSED" if passed else "FAILED"
    if tested:
        assert f"Shadow test (prod): {word}: shadow test {word.lower()}" in body
    else:
        assert "Shadow test" not in body


def test_the_approver_decides_once_and_it_is_recorded(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    answer = gates["callback"].handler(click(request_id, ALICE), CONTEXT, now=NOW)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["text"] == (
        f"Approved: gate business-signoff by <@{ALICE}>, recorded."
    )
    # The fake takes only the approval's own pipeline, stage, action and token.
    assert gates["codepipeline"].applied == [
        {"decision": "Approved", "by": CALLBACK_ARN, "summary": f"Approved from chat by {WHO}"}
    ]
    assert gates["wire"].count("codepipeline.PutApprovalResult") == 1
    (decided,) = [i for i in audit_items() if i.get("event") == "decided"]
    assert decided["decision"] == "Approved"
    assert decided["who"] == WHO
    assert request_item(request_id)["claim_state"] == "recorded"


def test_every_audit_item_expires_after_the_manifest_s_audit_retention(
    gates: dict[str, Any],
) -> None:
    """The table's TTL attribute on the request, the brief's events and the decision: written
    time + retention.audit days (7 years by default), never without it."""
    before = int(time.time())
    request_id = posted_request(gates)
    gates["callback"].handler(click(request_id, ALICE), CONTEXT, now=NOW)
    items = boto3.client("dynamodb").scan(TableName="audit")["Items"]
    events = {i["event"]["S"] for i in items if "event" in i}
    assert {"requested", "decided", "chat-attempt", "mail-attempt"} <= events
    keep = MANIFEST.retention.audit * 86_400
    for item in items:
        assert "expires_at" in item, item["pk"]
        assert 0 <= int(item["expires_at"]["N"]) - before - keep < 60, item["pk"]


def test_a_second_click_changes_nothing(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    gates["callback"].handler(click(request_id, ALICE), CONTEXT, now=NOW)
    second = gates["callback"].handler(click(request_id, ALICE, "reject"), CONTEXT, now=NOW + 5)
    assert second["statusCode"] == 409
    assert "already approved" in json.loads(second["body"])["text"]
    assert gates["wire"].count("codepipeline.PutApprovalResult") == 1
    assert len([i for i in audit_items() if i.get("event") == "decided"]) == 1


def refusal_lines(gates: dict[str, Any]) -> list[Any]:
    """The callback's "decision refused" log records (Powertools' extra keys as attributes)."""
    return [r for r in gates["caplog"].records if r.getMessage() == "decision refused"]


def assert_refused(gates: dict[str, Any], answer: dict[str, Any], status: int, reason: str,
                   *, told: bool = False) -> None:  # fmt: skip
    """Refused with `status`, nothing applied or recorded. Someone not known as the gate's
    approver is answered the status's one fixed sentence and `reason` is in the log line
    only; the gate's approver (`told`) is answered the reason."""
    assert answer["statusCode"] == status
    text = json.loads(answer["body"])["text"]
    (line,) = refusal_lines(gates)
    assert reason in line.reason, line.reason
    assert line.status == status
    if told:
        assert reason in text
    else:
        assert text == gates["callback"].PUBLIC[status]
    assert line.answered == ("detail" if told else "generic")
    assert gates["wire"].count("codepipeline.PutApprovalResult") == 0
    assert [i for i in audit_items() if i.get("event") == "decided"] == []


def test_someone_who_is_not_the_gate_s_approver_is_refused(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    answer = gates["callback"].handler(click(request_id, DANA), CONTEXT, now=NOW)
    assert_refused(gates, answer, 403, f"{DANA} is not an approver of gate business-signoff")


def test_a_forged_signature_is_refused(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    forged = click(request_id, ALICE, secret="not-the-signing-secret")
    answer = gates["callback"].handler(forged, CONTEXT, now=NOW)
    assert_refused(gates, answer, 401, "signature does not match")


def test_a_stale_timestamp_is_refused_as_a_replay(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    answer = gates["callback"].handler(click(request_id, ALICE, ts=NOW - 600), CONTEXT, now=NOW)
    assert_refused(gates, answer, 401, "refused as a replay")


def test_an_unknown_request_is_refused(gates: dict[str, Any]) -> None:
    posted_request(gates)
    unknown = "0123456789abcdef01234567"
    answer = gates["callback"].handler(click(unknown, ALICE), CONTEXT, now=NOW)
    assert_refused(gates, answer, 404, f"unknown approval request {unknown}")


@pytest.mark.parametrize(
    "request_id", ["no-such-request", "release-arn:aws:sagemaker:eu-west-1:1:model-package/g/1"]
)
def test_a_value_that_is_no_request_id_is_refused(gates: dict[str, Any], request_id: str) -> None:
    posted_request(gates)
    answer = gates["callback"].handler(click(request_id, ALICE), CONTEXT, now=NOW)
    assert_refused(gates, answer, 400, "is not a request id")


def test_an_expired_approval_is_refused(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    later = NOW + 3 * 24 * 3600
    answer = gates["callback"].handler(click(request_id, ALICE, ts=later), CONTEXT, now=later)
    assert_refused(gates, answer, 410, "approval expired at 2016-07-07T20:22Z", told=True)


def test_an_approval_that_expired_at_the_deadline_is_recorded_as_expired(
    gates: dict[str, Any],
) -> None:
    """A click just before the stored expiry, when CodePipeline's clock has already expired the
    approval (InvalidApprovalToken): the stage's state says Failed at the deadline, by no one;
    recorded as expired, not as a decision."""
    request_id = posted_request(gates)
    deadline = datetime(2016, 7, 7, 20, 22, tzinfo=UTC).timestamp()
    gates["codepipeline"].expire(at=deadline - 20)
    answer = gates["callback"].handler(click(request_id, ALICE, ts=deadline - 30), CONTEXT,
                                       now=deadline - 30)  # fmt: skip
    assert answer["statusCode"] == 410
    assert json.loads(answer["body"])["text"] == (
        "the business-signoff approval closed in CodePipeline undecided (expired); recorded. "
        "Your approval was not applied."
    )
    assert [i for i in audit_items() if i.get("event") == "decided"] == []
    (closed,) = [i for i in audit_items() if i.get("event") == "closed"]
    assert closed["decision"] == "Expired"
    assert "InvalidApprovalTokenException" in closed["detail"]
    assert (request_item(request_id)["claim_state"], request_item(request_id)["decision"]) == (
        "recorded", "Expired")  # fmt: skip
    agree(gates, request_id)
    # The expiry alarm still counts it: an expiry is no decision.
    assert gates["callback"].handler(failed_approval(), CONTEXT, now=EXPIRED)["expired"] == "true"


def test_base64_bodies_from_function_urls_are_understood(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    answer = gates["callback"].handler(click(request_id, ALICE, b64=True), CONTEXT, now=NOW)
    assert answer["statusCode"] == 200


def test_a_malformed_click_is_refused(gates: dict[str, Any]) -> None:
    posted_request(gates)
    body = "payload=not-json"
    headers = {"X-Slack-Request-Timestamp": str(int(NOW)),
               "X-Slack-Signature": slack.sign(SIGNING_SECRET, str(int(NOW)), body)}  # fmt: skip
    answer = gates["callback"].handler(url_event(headers, body), CONTEXT, now=NOW)
    assert_refused(gates, answer, 400, "not a gate button click")


def test_notifier_refuses_unknown_stages_and_malformed_notifications(gates: dict[str, Any]) -> None:
    unknown = gates["notifier"].handler(approval("Deploy"), CONTEXT)
    assert unknown["posted"] == "false"
    assert "stage Deploy is not a gate of this product" in unknown["reason"]
    broken = gates["notifier"].handler({"Records": [{"Sns": {"Message": "{}"}}]}, CONTEXT)
    assert "not a CodePipeline approval notification" in broken["reason"]
    assert gates["posted"] == []
    assert audit_items() == []


def test_a_retried_notification_posts_the_brief_once(gates: dict[str, Any]) -> None:
    posted_request(gates)
    again = gates["notifier"].handler(approval(), CONTEXT)
    assert again["posted"] == "false"
    assert len(gates["posted"]) == 1


def request_item(request_id: str) -> dict[str, str]:
    got = boto3.client("dynamodb").get_item(
        TableName="audit", Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}}
    )
    return {k: v["S"] for k, v in got.get("Item", {}).items() if "S" in v}


def test_a_decision_codepipeline_refuses_outright_gives_the_claim_back(
    gates: dict[str, Any],
) -> None:
    """A 4xx on the first and only try (not throttling, not "closed"): nothing was applied, so
    the gate is open again, for anyone."""
    request_id = posted_request(gates)
    refusal = Fault("validation", status=400, code="ValidationException")
    gates["wire"].fail("codepipeline.PutApprovalResult", refusal)
    answer = gates["callback"].handler(click(request_id, ALICE), CONTEXT, now=NOW)
    assert answer["statusCode"] == 502
    assert "it was not applied and nothing was recorded; the gate is open" in (
        json.loads(answer["body"])["text"])  # fmt: skip
    assert "decision" not in request_item(request_id)
    assert gates["codepipeline"].applied == []
    answer = gates["callback"].handler(click(request_id, ALICE), CONTEXT, now=NOW + 1)
    assert answer["statusCode"] == 200
    agree(gates, request_id)


@dataclass(frozen=True)
class StaleFirstRead(AuditTrail):
    """The audit trail as a click sees it when another click decides between its read of the
    request and its claim."""

    snapshot: dict[str, str] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def request(self, request_id: str) -> dict[str, str] | None:
        self.reads.append(request_id)
        return self.snapshot if len(self.reads) == 1 else super().request(request_id)


def test_a_second_decision_in_the_same_moment_loses_cleanly(gates: dict[str, Any]) -> None:
    """Two clicks read the request before either claimed it: one decides, the other is told
    who did, and CodePipeline hears of one decision."""
    callback = gates["callback"]
    request_id = posted_request(gates)
    dynamodb = boto3.client("dynamodb")
    snapshot = AuditTrail(dynamodb, "audit").request(request_id) or {}
    first = callback.Click(ALICE, "alice", "Approved", request_id)
    assert callback.decide(first, AuditTrail(dynamodb, "audit"), callback.codepipeline, NOW)
    late = StaleFirstRead(dynamodb, "audit", snapshot)
    second = callback.Click(ALICE, "alice", "Rejected", request_id)
    with pytest.raises(callback.Refusal) as refused:
        callback.decide(second, late, callback.codepipeline, NOW)
    assert refused.value.status == 409
    assert "was approved by alice (U01ALICE01) a moment ago" in refused.value.reason
    assert gates["wire"].count("codepipeline.PutApprovalResult") == 1
    assert request_item(request_id)["decision"] == "Approved"
    assert len([i for i in audit_items() if i.get("event") == "decided"]) == 1


def test_a_non_approver_learns_nothing_about_a_decided_gate(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    gates["callback"].handler(click(request_id, ALICE), CONTEXT, now=NOW)
    answer = gates["callback"].handler(click(request_id, DANA, "reject"), CONTEXT, now=NOW + 2)
    text = json.loads(answer["body"])["text"]
    assert answer["statusCode"] == 403
    assert "u01alice01" not in text
    assert "approved" not in text


@pytest.mark.parametrize(("team", "app"), [("T0OTHERORG", APP), (TEAM, "A0OTHERAPP")])
def test_a_click_from_another_workspace_or_app_is_refused(
    gates: dict[str, Any], team: str, app: str
) -> None:
    request_id = posted_request(gates)
    foreign = click(request_id, ALICE, team=team, app=app)
    answer = gates["callback"].handler(foreign, CONTEXT, now=NOW)
    assert_refused(gates, answer, 403, "not the app this gate trusts")


def routed(method: str, path: str) -> Any:
    def change(event: dict[str, Any]) -> dict[str, Any]:
        event["requestContext"]["http"].update(method=method, path=path)
        event["rawPath"] = path
        return event

    return change


# Every kind of refusal someone who is not the gate's approver can get, from the URL's junk to
# a signed click of a colleague: (the request, given the posted request's id; its status; the
# field its log line names; whether the signature was verified).
OUTSIDERS: list[tuple[str, Any, int, str, bool]] = [
    ("no function URL request", lambda r: {**click(r, ALICE), "body": 7}, 400, "body", False),
    ("not POST", lambda r: routed("GET", "/")(click(r, ALICE)), 404,
     "requestContext.http.method", False),
    ("another path", lambda r: routed("POST", "/admin")(click(r, ALICE)), 404, "rawPath", False),
    ("not a click", lambda r: url_event(signed("payload=not-json"), "payload=not-json"), 400,
     "payload", False),
    ("no request id", lambda r: click("release-1", ALICE), 400, "payload.actions[0].value",
     False),
    ("stale", lambda r: click(r, ALICE, ts=NOW - 600), 401, "headers", False),
    ("forged", lambda r: click(r, ALICE, secret="forged"), 401, "headers.x-slack-signature",
     False),
    ("another workspace", lambda r: click(r, ALICE, team="T0OTHERORG"), 403, "payload.team.id",
     True),
    ("unknown request", lambda r: click("0123456789abcdef01234567", ALICE), 404,
     "payload.actions[0].value", True),
    ("not an approver", lambda r: click(r, DANA), 403, "payload.user.id", True),
]  # fmt: skip


@pytest.mark.parametrize(("name", "request_", "status", "field", "verified"), OUTSIDERS,
                         ids=[o[0] for o in OUTSIDERS])  # fmt: skip
def test_a_refusal_answers_outsiders_generically_and_logs_what_an_operator_needs(
    gates: dict[str, Any], name: str, request_: Any, status: int, field: str, verified: bool
) -> None:
    """The public URL's answer to anyone not known as the gate's approver is the status's
    one sentence: no gate, no approver, no request, no reason. The one log line has the
    status, the field, the reason, who clicked (their Slack ids, and whether the signature
    proved it), the request and its gate once known, and where the request came from."""
    request_id = posted_request(gates)
    answer = gates["callback"].handler(request_(request_id), CONTEXT, now=NOW)
    text = json.loads(answer["body"])["text"]
    assert (answer["statusCode"], text) == (status, gates["callback"].PUBLIC[status])
    for secret in ("Alice", "business-signoff", request_id, ALICE, DANA, "approver"):
        assert secret not in text
    (line,) = refusal_lines(gates)
    assert (line.status, line.field, line.answered) == (status, field, "generic")
    assert line.reason
    assert line.reason != text
    assert line.source_ip == "203.0.113.7"
    assert line.signature_verified is verified
    if name in ("forged", "another workspace", "unknown request", "not an approver"):
        assert line.user in (ALICE, DANA), "the clicker, as the payload names them"
    if name == "not an approver":
        assert (line.user, line.team, line.gate, line.request) == (
            DANA, TEAM, "business-signoff", request_id)  # fmt: skip
    assert gates["wire"].count("codepipeline.PutApprovalResult") == 0
    assert [i for i in audit_items() if i.get("event") == "decided"] == []


def test_aws_failing_a_check_is_answered_generically(gates: dict[str, Any]) -> None:
    """Secrets Manager fails on every try: a 503 with the fixed sentence (no AWS error code),
    and the error in the log line."""
    request_id = posted_request(gates)
    # botocore's event name for the service: secrets-manager.
    gates["wire"].fail("secrets-manager.GetSecretValue", every=SERVER_ERROR)
    answer = gates["callback"].handler(click(request_id, ALICE), CONTEXT, now=NOW)
    text = json.loads(answer["body"])["text"]
    assert (answer["statusCode"], text) == (503, gates["callback"].PUBLIC[503])
    assert "InternalFailure" not in text
    (line,) = [r for r in gates["caplog"].records if r.getMessage() == "AWS call failed"]
    assert (line.error, line.user, line.request) == ("InternalFailure", ALICE, request_id)
    gates["wire"].heal()
    assert gates["callback"].handler(click(request_id, ALICE), CONTEXT, now=NOW)[
        "statusCode"] == 200  # fmt: skip


def signed(body: str, *, ts: float = NOW) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": str(int(ts)),
            "X-Slack-Signature": slack.sign(SIGNING_SECRET, str(int(ts)), body)}  # fmt: skip


def hostile_requests() -> list[tuple[str, dict[str, Any], int]]:
    """Inputs written by others that once ended in unhandled exceptions, each with the answer
    it gets now (before any side effect)."""
    good = urlencode({"payload": json.dumps({"user": {"id": ALICE}, "actions": []})})
    payload = {"user": {"id": ALICE}, "team": {"id": TEAM}, "api_app_id": APP,
               "actions": [{"action_id": "approve", "value": "a" * 24}]}  # fmt: skip
    as_list = urlencode({"payload": json.dumps({**payload, "actions": [["approve"]]})})
    user_list = urlencode({"payload": json.dumps({**payload, "user": [ALICE]})})
    return [
        ("base64 that is not UTF-8", url_event(signed(good), "//79", encoded=True), 400),
        ("base64 with bad padding", url_event(signed(good), "cGF5bG9hZA=", encoded=True), 400),
        ("base64 with non-ASCII", url_event(signed(good), "é", encoded=True), 400),
        (
            "non-ASCII signature",
            url_event({**signed(good), "X-Slack-Signature": "v0=é"}, good),
            401,
        ),
        (
            "non-ASCII timestamp",
            url_event({**signed(good), "X-Slack-Request-Timestamp": "١٢"}, good),
            401,
        ),
        (
            "huge timestamp",
            url_event({**signed(good), "X-Slack-Request-Timestamp": "9" * 400}, good),
            401,
        ),
        # Lambda writes header values as text: anything else is no function URL request.
        (
            "signature as a list",
            url_event({**signed(good), "X-Slack-Signature": ["v0=1"]}, good),
            400,
        ),
        ("body as a list", url_event(signed(good), ["payload"]), 400),
        ("actions as a list of lists", url_event(signed(as_list), as_list), 400),
        ("user as a list", url_event(signed(user_list), user_list), 400),
        ("no payload", url_event(signed("a=b"), "a=b"), 400),
    ]


HOSTILE = hostile_requests()


@pytest.mark.parametrize(("name", "request_", "status"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_requests_get_400_or_401_and_change_nothing(
    gates: dict[str, Any], name: str, request_: dict[str, Any], status: int
) -> None:
    posted_request(gates)
    answer = gates["callback"].handler(request_, CONTEXT, now=NOW)
    assert answer["statusCode"] == status, (name, answer["body"])
    assert gates["wire"].count("codepipeline.PutApprovalResult") == 0
    assert [i for i in audit_items() if i.get("event") == "decided"] == []


def test_an_unparseable_stored_expiry_is_refused_not_crashed(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    boto3.client("dynamodb").update_item(
        TableName="audit",
        Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}},
        UpdateExpression="SET expires = :e",
        ExpressionAttributeValues={":e": {"S": "next tuesday"}},
    )
    answer = gates["callback"].handler(click(request_id, ALICE), CONTEXT, now=NOW)
    assert_refused(gates, answer, 409, "stored expiry 'next tuesday' is unreadable", told=True)


def test_the_signing_secret_is_not_fetched_for_a_request_that_cannot_be_valid(
    gates: dict[str, Any], faults: Faults
) -> None:
    request_id = posted_request(gates)
    stale = click(request_id, ALICE, ts=NOW - 3600)
    faults.seen.clear()
    assert gates["callback"].handler(stale, CONTEXT, now=NOW)["statusCode"] == 401
    assert faults.seen == []


def test_the_signing_secret_is_cached_between_clicks(gates: dict[str, Any], faults: Faults) -> None:
    request_id = posted_request(gates)
    faults.seen.clear()
    for _ in range(3):
        gates["callback"].handler(click(request_id, DANA), CONTEXT, now=NOW)
    assert faults.seen.count("secretsmanager.get_secret_value") <= 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda a: a.update(approval=["x"]), "not a CodePipeline approval notification: "
         "Records[0].Sns.Message.approval: Input should be a valid dictionary"),
        (lambda a: a["approval"].update(stageName=["BusinessSignoff"]),
         "Records[0].Sns.Message.approval.stageName: Input should be a valid string"),
        (lambda a: a["approval"].update(expires="whenever"),
         "Records[0].Sns.Message.approval.expires: is not an ISO 8601 time"),
        (lambda a: a["approval"].update(pipelineName="another-pipeline"),
         "comes from pipeline another-pipeline, but this notifier serves MyFirstPipeline only"),
    ],
)  # fmt: skip
def test_notifier_refuses_malformed_or_foreign_notifications(
    gates: dict[str, Any], change: Any, reason: str
) -> None:
    message = copy.deepcopy(NOTIFICATION)
    message["approval"]["stageName"] = "BusinessSignoff"
    change(message)
    answer = gates["notifier"].handler(sns_record(message), CONTEXT)
    assert (answer["posted"], answer["status"]) == ("false", "refused")
    assert reason in answer["reason"]
    assert gates["posted"] == []
    assert audit_items() == []


@pytest.mark.parametrize("timestamp", [None, 42, "yesterday"])
def test_a_notification_without_snss_timestamp_is_refused(
    gates: dict[str, Any], timestamp: Any
) -> None:
    """SNS stamps every message; the audit record takes that time, the same on every retry."""
    message = copy.deepcopy(NOTIFICATION)
    message["approval"]["stageName"] = "BusinessSignoff"
    event = sns_record(message, timestamp)
    if timestamp is None:
        del event["Records"][0]["Sns"]["Timestamp"]
    answer = gates["notifier"].handler(event, CONTEXT)
    assert (answer["posted"], answer["status"]) == ("false", "refused")
    assert answer["reason"].startswith(
        "not a CodePipeline approval notification: Records[0].Sns.Timestamp: "
    )
    assert gates["posted"] == []
    assert audit_items() == []


@pytest.mark.parametrize("index", range(17))
def test_a_transient_fault_in_any_call_then_the_retry_posts_the_brief_exactly_once(
    gates: dict[str, Any], inbox: str, faults: Faults, index: int
) -> None:
    """Each AWS call of the notifier (the idempotency store's included) fails once in turn;
    the retry posts the brief with its buttons once, mails it once, records it once.

    The one exception is physical: when the record of a step is lost right after its side
    effect (the chat post, the mail: neither has an idempotency token), the retry cannot know
    it happened and repeats that one step, marked as a resend (at least once, never lost)."""
    answer = fail_then_retry(faults, index, lambda: gates["notifier"].handler(approval(), CONTEXT))
    if not faults.failed:
        pytest.skip(f"the notifier makes fewer than {index + 1} AWS calls")
    assert answer.get("request_id"), (faults.failed, answer)
    chat = 2 if faults.failed == "dynamodb.update_item[gate_notifier.chat]" else 1
    assert len(gates["posted"]) == chat, faults.seen
    assert [resend_note(m) for m in gates["posted"]] == [None, "Resent (try 2)"][:chat]
    mails = 2 if faults.failed == "dynamodb.update_item[gate_notifier.mail]" else 1
    resent = [m["Subject"].startswith("[resent]") for m in mailed(gates)]
    # A publish that failed after its try was recorded may have gone out: its retry says so.
    assert resent == ([True] if faults.failed == "sns.publish" else [False, True][:mails])
    assert len([i for i in audit_items() if i.get("event") == "requested"]) == 1
    assert request_item(answer["request_id"])["token"] == NOTIFICATION["approval"]["token"]


def test_the_brief_shows_the_release_of_its_own_execution(gates: dict[str, Any]) -> None:
    """Execution e-42 took release 7 and waits at the gate; release 8 was written since (a
    queued execution of its own). The brief and the audit trail show release 7."""
    release(8, recall=0.75)
    posted_request(gates)
    body = gates["posted"][0]["blocks"][1]["text"]["text"]
    assert "Model version 7 (" in body
    assert "mlgate-fraud-detection/7" in body
    assert "LOW recall 0.5800" in body
    (requested,) = [i for i in audit_items() if i.get("event") == "requested"]
    assert requested["model_version"] == "7"
    ((_, asked),) = [c for c in gates["pipeline"].calls if c[0] == "get_pipeline_execution"]
    assert asked == {"pipelineName": "MyFirstPipeline", "pipelineExecutionId": "e-42"}


def test_no_brief_when_the_execution_s_release_cannot_be_found(gates: dict[str, Any]) -> None:
    """Rather no brief than one that shows another execution's release; and since no retry
    brings a missing source revision back, the notification is answered "refused" (one log
    line, naming it), not failed into the dead-letter queue."""
    gates["pipeline"].responses["get_pipeline_execution"] = {
        "pipelineExecution": {"pipelineExecutionId": "e-42", "artifactRevisions": []}
    }
    answer = gates["notifier"].handler(approval(), CONTEXT)
    assert (answer["posted"], answer["status"]) == ("false", "refused")
    assert "has 0 source revisions" in answer["reason"]
    assert "decide this gate in the CodePipeline console" in answer["reason"]
    assert gates["posted"] == []
    assert audit_items() == []


def test_no_brief_when_the_execution_s_release_json_version_is_gone(
    gates: dict[str, Any],
    inbox: str,
) -> None:
    """The object version the execution took no longer exists (S3: NoSuchVersion): refused,
    naming it, with nothing posted, mailed or recorded; a retry would meet the same answer."""
    gates["pipeline"].responses["get_pipeline_execution"] = {
        "pipelineExecution": {
            "pipelineExecutionId": "e-42",
            "artifactRevisions": [{"name": "Release", "revisionId": "3HL4kqtJvjVBH40Nrjfkd"}],
        }
    }
    answer = gates["notifier"].handler(approval(), CONTEXT)
    assert (answer["posted"], answer["status"]) == ("false", "refused")
    assert "cannot be read (NoSuchVersion)" in answer["reason"]
    assert gates["posted"] == []
    assert mailed(gates) == []
    assert audit_items() == []


PIPELINE = NOTIFICATION["approval"]["pipelineName"]


def failed_approval(pipeline: str = "", stage: str = "BusinessSignoff") -> dict[str, Any]:
    """CodePipeline's documented action execution event: an Approval action FAILED, in the
    callback's own account and region (its context's ARN)."""
    return {
        "version": "0",
        "id": "CWE-event-id",
        "detail-type": "CodePipeline Action Execution State Change",
        "source": "aws.codepipeline",
        "account": "123456789012",
        "time": "2016-07-07T20:23:00Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:codepipeline:eu-west-1:123456789012:{pipeline or PIPELINE}"],
        "detail": {
            "pipeline": pipeline or PIPELINE,
            "execution-id": "e-42",
            "stage": stage,
            "action": "MyApprovalAction",
            "state": "FAILED",
            "region": "eu-west-1",
            "type": {"owner": "AWS", "provider": "Manual", "category": "Approval", "version": "1"},
            "version": 1,
        },
    }


def gate_expired_points(gates: dict[str, Any]) -> float:
    """GateExpired data points written so far for the wait alarm: its namespace, the Pipeline
    dimension set alone (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
    CloudWatch_Embedded_Metric_Format_Specification.html)."""
    gates["stdout"].append(gates["capsys"].readouterr().out)
    return sum(
        m["value"]
        for m in emf("".join(gates["stdout"]))
        if (m["namespace"], m["name"]) == ("mlgate/gates", "GateExpired")
        and {"Pipeline": PIPELINE} in m["dimensions"]
    )


EXPIRED = time.mktime(time.strptime("2016-07-07T20:23:00", "%Y-%m-%dT%H:%M:%S")) - time.timezone


def test_a_rejected_approval_publishes_nothing(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    gates["callback"].handler(click(request_id, ALICE, "reject"), CONTEXT, now=NOW)
    outcome = gates["callback"].handler(failed_approval(), CONTEXT, now=NOW + 10)
    assert outcome["expired"] == "false"
    assert "rejected by" in outcome["reason"]
    assert gate_expired_points(gates) == 0


def test_a_rejection_outside_chat_before_expiry_publishes_nothing(gates: dict[str, Any]) -> None:
    posted_request(gates)
    outcome = gates["callback"].handler(failed_approval(), CONTEXT, now=NOW + 10)
    assert outcome["expired"] == "false"
    assert "failed before it expired" in outcome["reason"]
    assert gate_expired_points(gates) == 0


def test_an_expired_approval_publishes_exactly_one_data_point(gates: dict[str, Any]) -> None:
    posted_request(gates)
    outcome = gates["callback"].handler(failed_approval(), CONTEXT, now=EXPIRED)
    assert outcome["expired"] == "true", outcome
    assert "expired at 2016-07-07T20:22Z undecided" in outcome["reason"]
    assert gate_expired_points(gates) == 1


def test_a_failed_approval_of_another_pipeline_is_refused(gates: dict[str, Any]) -> None:
    posted_request(gates)
    outcome = gates["callback"].handler(failed_approval("someone-else"), CONTEXT, now=EXPIRED)
    assert outcome["expired"] == "refused"
    assert outcome["reason"] == (
        f"untrusted event: detail.pipeline 'someone-else' is not '{PIPELINE}' (this product's "
        "release pipeline, from RELEASE_PIPELINE); nothing was done"
    )
    assert gate_expired_points(gates) == 0


@pytest.mark.parametrize(
    "mangle",
    [
        lambda e: e.pop("detail"),
        lambda e: e.update(detail="text"),
        lambda e: e["detail"].pop("execution-id"),
        lambda e: e["detail"].update(stage=7),
        lambda e: e["detail"].update(type=None),
        lambda e: e["detail"].update(state="SUCCEEDED"),
        lambda e: e.update({"detail-type": "Something Else"}),
        lambda e: e.update({"detail-type": ["list"]}),
    ],
)
def test_a_malformed_failed_approval_event_is_refused_not_raised(
    gates: dict[str, Any], mangle: Any
) -> None:
    posted_request(gates)
    event = failed_approval()
    mangle(event)
    outcome = gates["callback"].handler(event, CONTEXT, now=EXPIRED)
    assert outcome["expired"] == "refused"
    assert outcome["reason"]
    assert gate_expired_points(gates) == 0


def test_a_failed_approval_with_no_stored_request_publishes_nothing(
    gates: dict[str, Any],
) -> None:
    outcome = gates["callback"].handler(failed_approval(), CONTEXT, now=EXPIRED)
    assert outcome["expired"] == "unknown"
    assert gate_expired_points(gates) == 0


def test_the_brief_reads_the_quality_job_s_newest_result_as_glue_lists_them() -> None:
    """The quality job evaluates a DataFrame read from S3, so its results carry its job name and
    no table: they are listed by JobName, across pages, and the newest by StartedOn is read
    (ListDataQualityResults promises no order). Stubbed with the documented response shape:
    moto has no Data Quality API."""
    import gate_notifier.handler as notifier
    from botocore.stub import ANY, Stubber

    glue = boto3.client("glue", region_name="eu-west-1")
    job = "mlgate-some-product-quality"
    now = datetime(2026, 12, 1, tzinfo=UTC)

    def described(result: str, day: int) -> dict[str, Any]:
        return {"ResultId": result, "JobName": job, "JobRunId": f"jr_{day}",
                "StartedOn": datetime(2026, 11, day, tzinfo=UTC)}  # fmt: skip

    with Stubber(glue) as stub:
        expected = {"Filter": {"JobName": job, "StartedAfter": ANY}, "MaxResults": 100}
        stub.add_response(
            "list_data_quality_results",
            {"Results": [described("older", 3), described("newest", 28)], "NextToken": "p2"},
            expected,
        )
        stub.add_response(
            "list_data_quality_results",
            {"Results": [described("middle", 14)]},
            {**expected, "NextToken": "p2"},
        )
        stub.add_response(
            "get_data_quality_result",
            {
                "ResultId": "newest",
                "Score": 0.5,
                "JobName": job,
                "JobRunId": "jr_28",
                "RuleResults": [
                    {"Name": "Rule_1", "Result": "PASS"},
                    {"Name": "Rule_2", "Result": "FAIL", "EvaluationMessage": "nulls"},
                ],
            },
            {"ResultId": "newest"},
        )
        quality = notifier.data_quality(glue, job, now=now)
        stub.assert_no_pending_responses()
    assert quality["status"] == "1 rule(s) failed"
    assert quality["failed_rules"] == ["Rule_2"]
    assert quality["job_run"] == "jr_28"

    with Stubber(glue) as stub:
        stub.add_response("list_data_quality_results", {"Results": []})
        assert "no data-quality run of" in notifier.data_quality(glue, job, now=now)["status"]


# --- Faults below botocore (issue 28): the audit trail and CodePipeline agree after any single
# fault and its retry, and every answer says what is true.


def agree(gates: dict[str, Any], request_id: str) -> None:
    """What CodePipeline applied is the request's recorded decision and its one audit event;
    nothing applied, nothing recorded (at most a pending claim)."""
    codepipeline = gates["codepipeline"]
    item = request_item(request_id)
    events = [i for i in audit_items() if i.get("event") in ("decided", "closed")]
    assert len(codepipeline.applied) <= 1, codepipeline.applied
    if codepipeline.status == "InProgress":
        assert events == [], events
        assert item.get("claim_state") != "recorded", item
        return
    if codepipeline.expired:
        decision = "Expired"
    else:
        decision = {"Succeeded": "Approved", "Failed": "Rejected"}[codepipeline.status]
    assert (item.get("claim_state"), item.get("decision")) == ("recorded", decision), item
    assert [e["decision"] for e in events] == [decision], events


def decide_as(gates: dict[str, Any], request_id: str, user: str = ALICE,
              action: str = "approve", now: float = NOW) -> tuple[int, str]:  # fmt: skip
    """A signed click through the function URL: the answer's status and text."""
    answer = gates["callback"].handler(click(request_id, user, action, ts=now), CONTEXT, now=now)
    return answer["statusCode"], json.loads(answer["body"])["text"]


def decided_events() -> list[dict[str, str]]:
    return [i for i in audit_items() if i.get("event") == "decided"]


# botocore's standard retry mode tries a call 3 times, a DynamoDB call 4 times.
TRIES, DYNAMODB_TRIES = 3, 4
READ_BACK = (
    f"Approved: gate business-signoff by <@{ALICE}>, recorded (read back from CodePipeline, "
    "which had applied it already)."
)
NOT_CONFIRMED = "it may or may not have been applied. It is kept for you: click Approve again"


@pytest.mark.parametrize("fault", [APPLIED_THEN_500, APPLIED_THEN_TIMEOUT], ids=str)
def test_an_approval_applied_whose_answer_was_lost_is_read_back_by_botocores_retry(
    gates: dict[str, Any], fault: Fault
) -> None:
    """CodePipeline applies the approval, and its answer is lost (a 500, a timeout): botocore's
    retry is told ApprovalAlreadyCompleted. The callback reads the stage's state, finds its own
    decision (its summary) and records it: the approver hears it is applied."""
    request_id = posted_request(gates)
    wire = gates["wire"]
    wire.fail("codepipeline.PutApprovalResult", fault)
    assert decide_as(gates, request_id) == (200, READ_BACK)
    assert wire.count("codepipeline.PutApprovalResult") == 2
    assert wire.count("codepipeline.GetPipelineState") == 1
    assert len(gates["codepipeline"].applied) == 1
    (decided,) = decided_events()
    assert (decided["decision"], decided["who"]) == ("Approved", WHO)
    assert "ApprovalAlreadyCompletedException" in decided["detail"]
    assert "this claim's own call" in decided["detail"]
    agree(gates, request_id)


def test_an_approval_applied_whose_every_answer_was_lost_is_recorded_by_the_next_click(
    gates: dict[str, Any],
) -> None:
    """Applied on the first try, and no try gets an answer: the approver hears it may or may
    not be applied, another approver that a decision by Alice is being applied, and Alice's
    second click reads it back and records it."""
    request_id = posted_request(gates)
    wire = gates["wire"]
    wire.fail("codepipeline.PutApprovalResult", APPLIED_THEN_TIMEOUT, every=TIMEOUT)
    status, text = decide_as(gates, request_id)
    assert status == 503
    assert NOT_CONFIRMED in text
    assert "ReadTimeoutError" in text
    assert wire.count("codepipeline.PutApprovalResult") == TRIES
    assert len(gates["codepipeline"].applied) == 1
    assert request_item(request_id)["claim_state"] == "claimed"
    assert decided_events() == []
    wire.heal()
    add_approver(request_id, DANA)
    status, text = decide_as(gates, request_id, DANA, "reject")
    assert status == 409
    assert text.startswith(
        f"a decision on gate business-signoff by {WHO} (approval) is being applied to "
        "CodePipeline; this click changes nothing"
    )
    assert decide_as(gates, request_id) == (200, READ_BACK)
    assert len(gates["codepipeline"].applied) == 1
    agree(gates, request_id)


def add_approver(request_id: str, user: str) -> None:
    boto3.client("dynamodb").update_item(
        TableName="audit",
        Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}},
        UpdateExpression="SET approvers = :a",
        ExpressionAttributeValues={":a": {"S": f"{ALICE},{user}"}},
    )


@pytest.mark.parametrize("fault", [TIMEOUT, RESET, SERVER_ERROR, THROTTLED], ids=str)
def test_a_decision_that_never_reached_codepipeline_is_retried_by_the_same_approver(
    gates: dict[str, Any], fault: Fault
) -> None:
    """Every try botocore makes fails before CodePipeline applies anything: the claim is kept
    for its approver (not "already approved"), whose click of the same button sends it again;
    the other button is refused until then."""
    request_id = posted_request(gates)
    wire = gates["wire"]
    wire.fail("codepipeline.PutApprovalResult", every=fault)
    status, text = decide_as(gates, request_id)
    assert status == 503
    assert NOT_CONFIRMED in text
    assert wire.count("codepipeline.PutApprovalResult") == TRIES
    assert gates["codepipeline"].applied == []
    agree(gates, request_id)
    wire.heal()
    status, text = decide_as(gates, request_id, action="reject")
    assert status == 409
    assert text == (
        "your approval of gate business-signoff is not confirmed by CodePipeline yet: click "
        "Approve again to finish it; this click changes nothing"
    )
    assert gates["codepipeline"].applied == []
    status, text = decide_as(gates, request_id)
    assert (status, text) == (200, f"Approved: gate business-signoff by <@{ALICE}>, recorded.")
    assert len(gates["codepipeline"].applied) == 1
    agree(gates, request_id)


def test_a_throttled_decision_event_is_written_by_the_next_click(gates: dict[str, Any]) -> None:
    """CodePipeline applied the approval; the decision event's write is throttled on every try.
    The answer says so (not "recorded"), the request item is not marked recorded without its
    event, and the next click reads the decision back and writes the one event."""
    request_id = posted_request(gates)
    wire = gates["wire"]
    wire.fail("dynamodb.PutItem", every=THROTTLED, match="#decided#")
    status, text = decide_as(gates, request_id)
    assert status == 503
    assert text == (
        "CodePipeline has approved gate business-signoff (your approval), but writing it to the "
        "audit trail did not complete (ThrottlingException): click Approve again to record it"
    )
    assert wire.met == ["dynamodb.PutItem: throttled"] * DYNAMODB_TRIES
    assert len(gates["codepipeline"].applied) == 1
    assert request_item(request_id)["claim_state"] == "claimed"
    assert decided_events() == []
    wire.heal()
    assert decide_as(gates, request_id) == (200, READ_BACK)
    assert len(decided_events()) == 1
    agree(gates, request_id)


def test_a_lost_mark_after_the_event_is_completed_without_a_second_event(
    gates: dict[str, Any],
) -> None:
    """The event is written, and the write that marks the item recorded fails: the next click
    finds the claim, writes the same event key (a no-op) and marks it."""
    request_id = posted_request(gates)
    wire = gates["wire"]
    wire.fail("dynamodb.UpdateItem", every=SERVER_ERROR, match='"recorded"')
    status, text = decide_as(gates, request_id)
    assert status == 503
    assert text == (
        "CodePipeline has approved gate business-signoff (your approval), and its audit event is "
        "written; marking the request recorded did not complete (InternalFailure): click "
        "Approve again to finish"
    )
    assert len(decided_events()) == 1
    assert request_item(request_id)["claim_state"] == "claimed"
    wire.heal()
    assert decide_as(gates, request_id) == (200, READ_BACK)
    assert len(decided_events()) == 1
    agree(gates, request_id)


def test_a_decision_made_in_the_console_meanwhile_is_recorded_as_codepipeline_applied_it(
    gates: dict[str, Any],
) -> None:
    """Alice's approval never reached CodePipeline; Bruno rejected in the console meanwhile.
    Her next click is told ApprovalAlreadyCompleted and records what the stage's state shows:
    a rejection, by Bruno's ARN, with his summary."""
    request_id = posted_request(gates)
    wire = gates["wire"]
    wire.fail("codepipeline.PutApprovalResult", every=TIMEOUT)
    assert decide_as(gates, request_id)[0] == 503
    bruno = "arn:aws:iam::123456789012:user/bruno"
    gates["codepipeline"].decide("Rejected", bruno, "recall too low for peak season")
    wire.heal()
    status, text = decide_as(gates, request_id)
    assert status == 409
    assert text == (
        f"gate business-signoff was already rejected in CodePipeline by {bruno}; recorded. "
        "Your approval was not applied."
    )
    (decided,) = decided_events()
    assert (decided["decision"], decided["who"]) == ("Rejected", bruno)
    assert "recall too low for peak season" in decided["detail"]
    agree(gates, request_id)
    again = decide_as(gates, request_id, action="reject")
    assert again == (409, f"gate business-signoff was already rejected by {bruno}; this click "
                          "changes nothing")  # fmt: skip


def test_a_read_back_that_fails_is_done_by_the_next_click(gates: dict[str, Any]) -> None:
    """Applied, answer lost, and the stage's state cannot be read either: the approver hears
    that CodePipeline reports the approval closed and nothing is recorded yet; the next click
    reads it back."""
    request_id = posted_request(gates)
    wire = gates["wire"]
    wire.fail("codepipeline.PutApprovalResult", APPLIED_THEN_500)
    wire.fail("codepipeline.GetPipelineState", every=SERVER_ERROR)
    status, text = decide_as(gates, request_id)
    assert status == 503
    assert text == (
        "CodePipeline reports the business-signoff approval closed "
        "(ApprovalAlreadyCompletedException), but its state could not be read (InternalFailure);"
        " nothing was recorded yet: click Approve again in a moment"
    )
    assert wire.count("codepipeline.GetPipelineState") == TRIES
    assert decided_events() == []
    wire.heal()
    assert decide_as(gates, request_id) == (200, READ_BACK)
    agree(gates, request_id)


def test_an_outcome_the_stage_no_longer_shows_is_not_guessed(gates: dict[str, Any]) -> None:
    """The limit of reading the stage's state: once the next execution's approval is at the
    stage, this one's outcome is not there. The approver is told so; nothing is recorded."""
    request_id = posted_request(gates)
    wire, codepipeline = gates["wire"], gates["codepipeline"]
    wire.fail("codepipeline.PutApprovalResult", every=TIMEOUT)
    assert decide_as(gates, request_id)[0] == 503
    codepipeline.decide("Approved", "arn:aws:iam::123456789012:user/bruno", "ship it")
    codepipeline.execution, codepipeline.token = "e-43", "2b3c4d5e-0000-4000-8000-NEXTTOKEN00"
    codepipeline.status, codepipeline.summary, codepipeline.by = "InProgress", "", ""
    wire.heal()
    status, text = decide_as(gates, request_id)
    assert status == 409
    assert text == (
        "CodePipeline reports the business-signoff approval closed (InvalidApprovalTokenException)"
        " and its stage now shows execution e-43, not e-42: what was decided cannot be read from "
        "it; nothing was recorded (see the pipeline's execution history)"
    )
    assert decided_events() == []
    assert request_item(request_id)["claim_state"] == "claimed"


def test_a_pending_claim_is_no_decision_for_the_expiry_alarm(gates: dict[str, Any]) -> None:
    """A claim CodePipeline never confirmed, and the gate expires: GateExpired is published."""
    request_id = posted_request(gates)
    gates["wire"].fail("codepipeline.PutApprovalResult", every=TIMEOUT)
    assert decide_as(gates, request_id)[0] == 503
    outcome = gates["callback"].handler(failed_approval(), CONTEXT, now=EXPIRED)
    assert outcome["expired"] == "true", outcome
    assert gate_expired_points(gates) == 1


# A click's calls: the signing secret, the request, the claim, PutApprovalResult, the event,
# the mark (a read-back adds PutApprovalResult and GetPipelineState: tested above and below).
SWEEP = [(i, f) for i in range(6) for f in (SERVER_ERROR, APPLIED_THEN_TIMEOUT, APPLIED_THEN_500)]


@pytest.mark.parametrize(("index", "fault"), SWEEP, ids=[f"call{i}-{f}" for i, f in SWEEP])
def test_any_single_fault_in_a_decision_then_the_next_click_agrees_with_codepipeline(
    gates: dict[str, Any], index: int, fault: Fault
) -> None:
    """Each call of a click (the secret, the request, the claim, PutApprovalResult, the
    read-back, the event, the mark) meets a fault on every try botocore makes (a 500 before
    the service acts, or the service acts and every answer is lost), or once (acts, then 500:
    botocore's retry gets the service's next answer). The first answer says nothing untrue;
    after the approver's next click, CodePipeline applied one approval and the audit trail
    records exactly it."""
    request_id = posted_request(gates)
    wire = gates["wire"]
    wire.fail_call(index, fault, once=fault is APPLIED_THEN_500)
    status, text = decide_as(gates, request_id)
    if not wire.met:
        pytest.skip(f"a click makes fewer than {index + 1} calls")
    applied = len(gates["codepipeline"].applied)
    if status == 200:
        agree(gates, request_id)
    if "nothing was sent to CodePipeline" in text or "was not applied" in text:
        assert applied == 0, (wire.met, text)
    if text.startswith("CodePipeline has approved"):
        assert applied == 1, (wire.met, text)
    if status != 200:
        assert "recorded." not in text, text
    wire.heal()
    status, text = decide_as(gates, request_id, now=NOW + 5)
    assert status in (200, 409), (wire.met, text)
    if status == 409:
        assert text == f"gate business-signoff was already approved by {WHO}; this click " + (
            "changes nothing"), (wire.met, text)  # fmt: skip
    assert len(gates["codepipeline"].applied) == 1, wire.met
    assert gates["codepipeline"].status == "Succeeded"
    agree(gates, request_id)


# The notifier's side effects, with faults below botocore.


def mailed(gates: dict[str, Any]) -> list[dict[str, Any]]:
    got = boto3.client("sqs").receive_message(QueueUrl=gates["inbox"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def resend_note(message: dict[str, Any]) -> str | None:
    first = message["blocks"][0]
    if first["type"] != "context":
        return None
    return str(first["elements"][0]["text"]).split(":", 1)[0]


def attempts(step: str) -> list[str]:
    return sorted(i["sk"].rsplit("#", 1)[-1][-2:] for i in audit_items()
                  if i.get("event") == f"{step}-attempt")  # fmt: skip


def test_a_chat_post_whose_record_is_lost_is_resent_marked_as_a_resend(
    gates: dict[str, Any],
    inbox: str,
) -> None:
    """At least once: the brief is posted, and the write that marks the post done fails on
    every try (a 500 at the HTTP layer, botocore retries it). Lambda's retry cannot know the
    post went out: it posts again, marked as a resend; the audit trail shows both tries and
    the requested event says the post was resent."""
    wire = gates["wire"]
    wire.fail("dynamodb.UpdateItem", every=SERVER_ERROR, match='"gate_notifier.chat#')
    with pytest.raises(Exception, match="success in idempotency store"):
        gates["notifier"].handler(approval(), CONTEXT)
    assert len(gates["posted"]) == 1
    assert wire.met == ["dynamodb.UpdateItem: 500"] * DYNAMODB_TRIES
    wire.heal()
    answer = gates["notifier"].handler(approval(), CONTEXT)
    assert answer["posted"] == "true"
    first, second = gates["posted"]
    assert resend_note(first) is None
    assert resend_note(second) == "Resent (try 2)"
    assert second["text"].startswith("[resent] ")
    assert second["blocks"][1:] == first["blocks"], "the same buttons, the same request"
    assert attempts("chat") == ["-1", "-2"]
    assert len(mailed(gates)) == 1
    (requested,) = [i for i in audit_items() if i.get("event") == "requested"]
    assert "resent as try 2: may duplicate an earlier one" in requested["detail"]
    # The next redelivery posts nothing: both steps and the brief are recorded now.
    assert gates["notifier"].handler(approval(), CONTEXT)["posted"] == "false"
    assert len(gates["posted"]) == 2


def test_a_mail_whose_record_is_lost_is_resent_marked_as_a_resend(
    gates: dict[str, Any], inbox: str
) -> None:
    wire = gates["wire"]
    wire.fail("dynamodb.UpdateItem", every=SERVER_ERROR, match='"gate_notifier.mail#')
    with pytest.raises(Exception, match="success in idempotency store"):
        gates["notifier"].handler(approval(), CONTEXT)
    wire.heal()
    assert gates["notifier"].handler(approval(), CONTEXT)["posted"] == "true"
    first, second = mailed(gates)
    assert not first["Subject"].startswith("[resent]")
    assert second["Subject"].startswith("[resent] ")
    assert second["Message"].startswith("Resent (try 2): an earlier mail of this brief may")
    assert second["Message"].endswith(first["Message"])
    assert len(gates["posted"]) == 1, "the chat post was recorded: not repeated"
    assert attempts("mail") == ["-1", "-2"]


@dataclass
class FakeGlue:
    """Glue Data Quality's two read calls, as the API reference documents them (moto has
    none): one result of the quality job, all rules passed."""

    def list_data_quality_results(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Results": [{"ResultId": "dqresult-1", "JobName": params["Filter"]["JobName"],
                             "StartedOn": datetime(2026, 11, 24, 2, tzinfo=UTC)}]}  # fmt: skip

    def get_data_quality_result(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ResultId": params["ResultId"], "Score": 1.0, "JobRunId": "jr_1",
                "RuleResults": [{"Name": "Rule_1", "Result": "PASS"}],
                "CompletedOn": datetime(2026, 11, 24, 2, 10, tzinfo=UTC)}  # fmt: skip


@pytest.fixture
def glue_on_the_wire(gates: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Wire:
    wire: Wire = gates["wire"]
    wire.fakes["glue"] = FakeGlue()
    monkeypatch.setattr(gates["notifier"], "glue", boto3.client("glue"))
    return wire


def brief_line(gates: dict[str, Any], starts: str) -> str:
    (message,) = gates["posted"]
    body = message["blocks"][1]["text"]["text"]
    return next(line for line in body.split("\n") if line.startswith(starts))


@pytest.mark.parametrize("fault", [THROTTLED, SERVER_ERROR, TIMEOUT], ids=str)
def test_a_brief_waits_for_a_data_quality_lookup_glue_did_not_answer(
    gates: dict[str, Any], inbox: str, glue_on_the_wire: Wire, fault: Fault
) -> None:
    """Glue does not answer on any try botocore makes: the invocation fails before anything is
    stored or sent, and Lambda's retry (Glue answering again) posts a complete brief, once."""
    wire = glue_on_the_wire
    wire.fail("glue.ListDataQualityResults", every=fault)
    with pytest.raises(gates["notifier"].QualityUnavailable):
        gates["notifier"].handler(approval(), CONTEXT)
    assert wire.count("glue.ListDataQualityResults") == TRIES
    assert gates["posted"] == []
    assert mailed(gates) == []
    assert audit_items() == []
    wire.heal()
    assert gates["notifier"].handler(approval(), CONTEXT)["posted"] == "true"
    assert brief_line(gates, "Data quality:") == "Data quality: all rules passed"
    assert len(mailed(gates)) == 1


def test_after_lambdas_retries_the_brief_says_what_glue_did_not_answer(
    gates: dict[str, Any], glue_on_the_wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda's last try (three minutes after SNS's timestamp) does not wait any longer: the
    brief goes out and its data-quality line says what is missing and since when."""
    monkeypatch.setattr(gates["notifier"], "clock", lambda: NOTIFIED + 190)
    glue_on_the_wire.fail("glue.ListDataQualityResults", every=THROTTLED)
    assert gates["notifier"].handler(approval(), CONTEXT)["posted"] == "true"
    assert brief_line(gates, "Data quality:") == (
        "Data quality: unavailable: Glue did not answer (ThrottlingException) on any try since "
        "2026-11-24T09:00:00.000Z; see the quality job's latest result before deciding"
    )


def test_glue_refusing_the_lookup_is_said_at_once(
    gates: dict[str, Any], glue_on_the_wire: Wire
) -> None:
    """A refusal no retry changes (access denied) does not hold the brief back."""
    glue_on_the_wire.fail("glue.ListDataQualityResults",
                          Fault("denied", status=400, code="AccessDeniedException"))  # fmt: skip
    assert gates["notifier"].handler(approval(), CONTEXT)["posted"] == "true"
    assert brief_line(gates, "Data quality:") == "Data quality: unavailable (AccessDeniedException)"


def test_a_step_done_is_not_repeated_when_the_brief_changed_between_tries(
    gates: dict[str, Any], inbox: str, glue_on_the_wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chat post went out (complete), the mail failed; by Lambda's last try Glue is
    throttled and the brief's data-quality line differs. The post is not repeated (a step done
    is done), and the mail goes out with what is true now."""
    wire = glue_on_the_wire
    wire.fail("sns.Publish", every=SERVER_ERROR)
    with pytest.raises(ClientError):
        gates["notifier"].handler(approval(), CONTEXT)
    wire.heal()
    monkeypatch.setattr(gates["notifier"], "clock", lambda: NOTIFIED + 190)
    wire.fail("glue.ListDataQualityResults", every=THROTTLED)
    assert gates["notifier"].handler(approval(), CONTEXT)["posted"] == "true"
    assert len(gates["posted"]) == 1
    assert brief_line(gates, "Data quality:") == "Data quality: all rules passed"
    (mail,) = mailed(gates)
    assert "Data quality: unavailable: Glue did not answer" in mail["Message"]


# --- a gate that needs every approver (manifest gates[].requires: all) ----------------------
# Each approver's Approve is recorded and CodePipeline told nothing until the last one; one
# rejection rejects at once; a click is never counted twice. The broken form beside them: the
# same gate with `requires: one` is decided by the first click.

DANA_WHO = f"u01danas01 ({DANA})"
ALICE_WHO = f"u01alice01 ({ALICE})"


def needs(request_id: str, requires: str) -> None:
    """The request as the notifier stores it for a gate of Alice and Dana."""
    boto3.client("dynamodb").update_item(
        TableName="audit",
        Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}},
        UpdateExpression="SET approvers = :a, approver_names = :n, requires = :r",
        ExpressionAttributeValues={
            ":a": {"S": f"{ALICE},{DANA}"},
            ":n": {"S": "Alice Moreau, Dana Schulz"},
            ":r": {"S": requires},
        },
    )


def approvals() -> list[dict[str, str]]:
    return [i for i in audit_items() if i.get("event") == "approval"]


def test_the_notifier_stores_what_the_gate_requires(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    assert request_item(request_id)["requires"] == "one"  # business-signoff: the default
    body = gates["posted"][0]["blocks"][1]["text"]["text"]
    assert "Approvers: Alice Moreau (any one decides)." in body


def test_every_approver_must_approve_before_codepipeline_hears(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    needs(request_id, "all")
    status, text = decide_as(gates, request_id, ALICE)
    assert status == 200
    assert text == (
        "Your approval of gate business-signoff is recorded (1 of 2): the gate needs every "
        "approver, and waits for Dana Schulz. CodePipeline is told once all have approved; a "
        "rejection by any one rejects it."
    )
    assert gates["wire"].count("codepipeline.PutApprovalResult") == 0
    assert request_item(request_id).get("decision") is None
    (first,) = approvals()
    assert (first["who"], first["decision"]) == (ALICE_WHO, "Approved")
    assert first["detail"].startswith("1 of 2 approvals")
    # The same approver again: still waiting, counted once.
    status, again = decide_as(gates, request_id, ALICE, now=NOW + 5)
    assert (status, again) == (200, text)
    assert len(approvals()) == 1
    # The last approver decides for both.
    status, text = decide_as(gates, request_id, DANA, now=NOW + 10)
    assert (status, text) == (200, f"Approved: gate business-signoff by <@{DANA}>, recorded.")
    both = f"{ALICE_WHO} and {DANA_WHO}".replace(ALICE_WHO, f"Alice Moreau ({ALICE})").replace(
        DANA_WHO, f"Dana Schulz ({DANA})"
    )
    assert gates["codepipeline"].applied == [
        {"decision": "Approved", "by": gates["codepipeline"].applied[0]["by"],
         "summary": f"Approved from chat by {both}"}
    ]  # fmt: skip
    (decided,) = decided_events()
    assert (decided["decision"], decided["who"]) == ("Approved", both)
    assert len(approvals()) == 2
    assert request_item(request_id)["claim_state"] == "recorded"


def test_one_rejection_rejects_a_gate_that_needs_every_approver(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    needs(request_id, "all")
    assert decide_as(gates, request_id, ALICE)[0] == 200
    status, text = decide_as(gates, request_id, DANA, "reject", now=NOW + 10)
    assert (status, text) == (200, f"Rejected: gate business-signoff by <@{DANA}>, recorded.")
    assert [a["decision"] for a in gates["codepipeline"].applied] == ["Rejected"]
    # Alice's earlier approval changes nothing now.
    status, text = decide_as(gates, request_id, ALICE, now=NOW + 20)
    assert status == 409
    assert "already rejected" in text
    assert gates["wire"].count("codepipeline.PutApprovalResult") == 1


def test_one_approver_decides_a_gate_that_needs_one(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    needs(request_id, "one")
    status, text = decide_as(gates, request_id, ALICE)
    assert (status, text) == (200, f"Approved: gate business-signoff by <@{ALICE}>, recorded.")
    assert approvals() == []
    assert gates["wire"].count("codepipeline.PutApprovalResult") == 1


def test_an_approval_after_the_gate_expired_is_not_counted(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    needs(request_id, "all")
    expires = request_item(request_id)["expires"]
    status, text = decide_as(gates, request_id, ALICE, now=NOW + 10 * 86_400)
    assert status == 410
    assert f"expired at {expires}" in text
    assert approvals() == []
    assert "approved_by" not in json.dumps(
        boto3.client("dynamodb").get_item(
            TableName="audit", Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}}
        )["Item"]
    )
