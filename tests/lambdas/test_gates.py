"""Gate notifier and gate callback under moto: the brief goes out with buttons, a signed click
by the gate's approver decides once, and every other click is refused and changes nothing."""

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

from mlgate.gates import encoded, gate_context
from mlgate.manifest import load_manifest
from shared import slack
from shared.audit import AuditTrail

from ..conftest import DEFAULT_MANIFEST
from .conftest import CONTEXT, Faults, Recorder, audit_items, bucket, event, fail_then_retry

MANIFEST = load_manifest(DEFAULT_MANIFEST)
NOTIFICATION = event("codepipeline_approval_notification.json")
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM, APP = "T0PRODUCT1", "A0MLGATE01"
ALICE, DANA = "U01ALICE01", "U01DANAS01"
NOW = time.mktime(time.strptime("2016-07-06T12:00:00", "%Y-%m-%dT%H:%M:%S")) - time.timezone


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


def sns_record(message: dict[str, Any], timestamp: Any = "2026-11-24T09:00:00.000Z") -> Any:
    sns = {"Message": json.dumps(message), "Timestamp": timestamp}
    return {"Records": [{"EventSource": "aws:sns", "Sns": sns}]}


@pytest.fixture
def gates(audit_table: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from gate_callback import handler as callback
    from gate_notifier import handler as notifier

    sns = boto3.client("sns")
    topic = sns.create_topic(Name="brief-business-signoff")["TopicArn"]
    sqs = boto3.client("sqs")
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
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
    monkeypatch.setattr(callback, "codepipeline", pipeline)
    notifier.settings.cache_clear()
    callback.settings.cache_clear()
    return {
        "notifier": notifier,
        "callback": callback,
        "posted": posted,
        "pipeline": pipeline,
        "inbox": inbox,
    }


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
    """A Lambda function URL request (payload format 2.0) as Slack's POST arrives."""
    return {
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()} if isinstance(headers, dict)
        else headers,
        "requestContext": {
            "stage": "$default",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "Slackbot 1.0"},
        },
        "body": body,
        "isBase64Encoded": encoded,
    }  # fmt: skip


REPORTS = "https://s3.console.aws.amazon.com/s3/buckets/a?region=eu-west-1&prefix=monitoring/"


def posted_request(gates: dict[str, Any]) -> str:
    result = gates["notifier"].handler(approval(), CONTEXT)
    assert result["posted"] == "true"
    return str(result["request_id"])


def test_brief_carries_the_evidence_and_buttons_without_the_token(gates: dict[str, Any]) -> None:
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


def test_the_approver_decides_once_and_it_is_recorded(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    answer = gates["callback"].handler(click(request_id, ALICE), None, now=NOW)
    assert answer["statusCode"] == 200
    assert "Approved: gate business-signoff" in json.loads(answer["body"])["text"]
    ((name, sent),) = [c for c in gates["pipeline"].calls if not c[0].startswith("get_")]
    assert name == "put_approval_result"
    assert sent["token"] == "1a2b3c4d-573f-4ea7-a67E-XAMPLETOKEN"
    assert sent["result"]["status"] == "Approved"
    assert (sent["stageName"], sent["actionName"]) == ("BusinessSignoff", "MyApprovalAction")
    (decided,) = [i for i in audit_items() if i.get("event") == "decided"]
    assert decided["decision"] == "Approved"
    assert decided["who"] == f"u01alice01 ({ALICE})"


def test_a_second_click_changes_nothing(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    gates["callback"].handler(click(request_id, ALICE), None, now=NOW)
    second = gates["callback"].handler(click(request_id, ALICE, "reject"), None, now=NOW + 5)
    assert second["statusCode"] == 409
    assert "already approved" in json.loads(second["body"])["text"]
    assert gates["pipeline"].names().count("put_approval_result") == 1
    assert len([i for i in audit_items() if i.get("event") == "decided"]) == 1


def assert_refused(gates: dict[str, Any], answer: dict[str, Any], status: int, reason: str) -> None:
    assert answer["statusCode"] == status
    assert reason in json.loads(answer["body"])["text"]
    assert "put_approval_result" not in gates["pipeline"].names()
    assert [i for i in audit_items() if i.get("event") == "decided"] == []


def test_someone_who_is_not_the_gate_s_approver_is_refused(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    answer = gates["callback"].handler(click(request_id, DANA), None, now=NOW)
    assert_refused(gates, answer, 403, f"<@{DANA}> is not an approver of gate business-signoff")


def test_a_forged_signature_is_refused(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    forged = click(request_id, ALICE, secret="not-the-signing-secret")
    answer = gates["callback"].handler(forged, None, now=NOW)
    assert_refused(gates, answer, 401, "signature does not match")


def test_a_stale_timestamp_is_refused_as_a_replay(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    answer = gates["callback"].handler(click(request_id, ALICE, ts=NOW - 600), None, now=NOW)
    assert_refused(gates, answer, 401, "refused as a replay")


def test_an_unknown_request_is_refused(gates: dict[str, Any]) -> None:
    posted_request(gates)
    unknown = "0123456789abcdef01234567"
    answer = gates["callback"].handler(click(unknown, ALICE), None, now=NOW)
    assert_refused(gates, answer, 404, f"unknown approval request {unknown}")


@pytest.mark.parametrize(
    "request_id", ["no-such-request", "release-arn:aws:sagemaker:eu-west-1:1:model-package/g/1"]
)
def test_a_value_that_is_no_request_id_is_refused(gates: dict[str, Any], request_id: str) -> None:
    posted_request(gates)
    answer = gates["callback"].handler(click(request_id, ALICE), None, now=NOW)
    assert_refused(gates, answer, 400, "is not a request id")


def test_an_expired_approval_is_refused(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    later = NOW + 3 * 24 * 3600
    answer = gates["callback"].handler(click(request_id, ALICE, ts=later), None, now=later)
    assert_refused(gates, answer, 410, "approval expired at 2016-07-07T20:22Z")


def test_a_token_codepipeline_no_longer_accepts_is_refused(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    gates["pipeline"].responses["put_approval_result"] = ClientError(
        {"Error": {"Code": "InvalidApprovalTokenException", "Message": "bad token"}},
        "PutApprovalResult",
    )
    answer = gates["callback"].handler(click(request_id, ALICE), None, now=NOW)
    assert answer["statusCode"] == 410
    assert "InvalidApprovalTokenException" in json.loads(answer["body"])["text"]
    assert [i for i in audit_items() if i.get("event") == "decided"] == []


def test_base64_bodies_from_function_urls_are_understood(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    answer = gates["callback"].handler(click(request_id, ALICE, b64=True), None, now=NOW)
    assert answer["statusCode"] == 200


def test_a_malformed_click_is_refused(gates: dict[str, Any]) -> None:
    posted_request(gates)
    body = "payload=not-json"
    headers = {"X-Slack-Request-Timestamp": str(int(NOW)),
               "X-Slack-Signature": slack.sign(SIGNING_SECRET, str(int(NOW)), body)}  # fmt: skip
    answer = gates["callback"].handler(url_event(headers, body), None, now=NOW)
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


def test_a_refused_decision_gives_the_claim_back(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    gates["pipeline"].responses["put_approval_result"] = ClientError(
        {"Error": {"Code": "InvalidApprovalTokenException", "Message": "bad token"}},
        "PutApprovalResult",
    )
    gates["callback"].handler(click(request_id, ALICE), None, now=NOW)
    assert "decision" not in request_item(request_id)
    gates["pipeline"].responses["put_approval_result"] = {}
    answer = gates["callback"].handler(click(request_id, ALICE), None, now=NOW + 1)
    assert answer["statusCode"] == 200


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
    assert callback.decide(first, AuditTrail(dynamodb, "audit"), gates["pipeline"], NOW)
    late = StaleFirstRead(dynamodb, "audit", snapshot)
    second = callback.Click(ALICE, "alice", "Rejected", request_id)
    with pytest.raises(callback.Refusal) as refused:
        callback.decide(second, late, gates["pipeline"], NOW)
    assert refused.value.status == 409
    assert "was approved by alice (U01ALICE01) a moment ago" in refused.value.reason
    assert gates["pipeline"].names().count("put_approval_result") == 1
    assert request_item(request_id)["decision"] == "Approved"
    assert len([i for i in audit_items() if i.get("event") == "decided"]) == 1


def test_a_non_approver_learns_nothing_about_a_decided_gate(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    gates["callback"].handler(click(request_id, ALICE), None, now=NOW)
    answer = gates["callback"].handler(click(request_id, DANA, "reject"), None, now=NOW + 2)
    text = json.loads(answer["body"])["text"]
    assert answer["statusCode"] == 403
    assert "u01alice01" not in text
    assert "approved" not in text


@pytest.mark.parametrize(("team", "app"), [("T0OTHERORG", APP), (TEAM, "A0OTHERAPP")])
def test_a_click_from_another_workspace_or_app_is_refused(
    gates: dict[str, Any], team: str, app: str
) -> None:
    request_id = posted_request(gates)
    answer = gates["callback"].handler(click(request_id, ALICE, team=team, app=app), None, now=NOW)
    assert_refused(gates, answer, 403, "not the app this gate trusts")


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
        (
            "signature as a list",
            url_event({**signed(good), "X-Slack-Signature": ["v0=1"]}, good),
            401,
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
    answer = gates["callback"].handler(request_, None, now=NOW)
    assert answer["statusCode"] == status, (name, answer["body"])
    assert "put_approval_result" not in gates["pipeline"].names()
    assert [i for i in audit_items() if i.get("event") == "decided"] == []


def test_an_unparseable_stored_expiry_is_refused_not_crashed(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    boto3.client("dynamodb").update_item(
        TableName="audit",
        Key={"pk": {"S": f"request#{request_id}"}, "sk": {"S": "request"}},
        UpdateExpression="SET expires = :e",
        ExpressionAttributeValues={":e": {"S": "next tuesday"}},
    )
    answer = gates["callback"].handler(click(request_id, ALICE), None, now=NOW)
    assert_refused(gates, answer, 409, "stored expiry 'next tuesday' is unreadable")


def test_the_signing_secret_is_not_fetched_for_a_request_that_cannot_be_valid(
    gates: dict[str, Any], faults: Faults
) -> None:
    request_id = posted_request(gates)
    stale = click(request_id, ALICE, ts=NOW - 3600)
    faults.seen.clear()
    assert gates["callback"].handler(stale, None, now=NOW)["statusCode"] == 401
    assert faults.seen == []


def test_the_signing_secret_is_cached_between_clicks(gates: dict[str, Any], faults: Faults) -> None:
    request_id = posted_request(gates)
    faults.seen.clear()
    for _ in range(3):
        gates["callback"].handler(click(request_id, DANA), None, now=NOW)
    assert faults.seen.count("secretsmanager.get_secret_value") <= 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda a: a.update(approval=["x"]), "not a CodePipeline approval notification"),
        (lambda a: a["approval"].update(stageName=["BusinessSignoff"]), "missing or bad"),
        (lambda a: a["approval"].update(expires="whenever"), "missing or bad"),
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
    assert answer["posted"] == "false"
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
    assert answer["posted"] == "false"
    assert "missing or bad" in answer["reason"]
    assert "Timestamp" in answer["reason"]
    assert gates["posted"] == []
    assert audit_items() == []


@pytest.mark.parametrize("index", range(16))
def test_a_transient_fault_in_any_call_then_the_retry_posts_the_brief_exactly_once(
    gates: dict[str, Any], faults: Faults, index: int
) -> None:
    """Each AWS call of the notifier (the idempotency store's included) fails once in turn;
    the retry posts the brief with its buttons once, mails it once, records it once.

    The one exception is physical: when the record of a step is lost right after its side
    effect (the chat post, the mail: neither has an idempotency token), the retry cannot know
    it happened and repeats that one step (at least once, never lost)."""
    answer = fail_then_retry(faults, index, lambda: gates["notifier"].handler(approval(), CONTEXT))
    if not faults.failed:
        pytest.skip(f"the notifier makes fewer than {index + 1} AWS calls")
    assert answer.get("request_id"), (faults.failed, answer)
    chat = 2 if faults.failed == "dynamodb.update_item[gate_notifier.chat]" else 1
    assert len(gates["posted"]) == chat, faults.seen
    mails = 2 if faults.failed == "dynamodb.update_item[gate_notifier.mail]" else 1
    mail = boto3.client("sqs").receive_message(QueueUrl=gates["inbox"], MaxNumberOfMessages=10)
    assert len(mail.get("Messages", [])) == mails, faults.seen
    assert len([i for i in audit_items() if i.get("event") == "requested"]) == 1
    assert request_item(answer["request_id"])["token"] == NOTIFICATION["approval"]["token"]


@pytest.mark.parametrize("index", range(8))
def test_a_transient_fault_in_any_call_then_a_second_click_decides_exactly_once(
    gates: dict[str, Any], faults: Faults, index: int
) -> None:
    """Each AWS call of a decision fails once in turn (the callback answers an error, or
    CodePipeline's refusal gives the claim back); the approver's second click decides: one
    approval reaches CodePipeline, the decision is recorded once."""
    request_id = posted_request(gates)
    faults.seen.clear()
    fail_then_retry(
        faults, index, lambda: gates["callback"].handler(click(request_id, ALICE), None, now=NOW)
    )
    if not faults.failed:
        pytest.skip(f"a decision makes fewer than {index + 1} AWS calls")
    assert gates["pipeline"].names().count("put_approval_result") == 1, faults.failed
    assert request_item(request_id)["decision"] == "Approved", faults.failed
    decided = [i for i in audit_items() if i.get("event") == "decided"]
    # Only a failed write of the decision event itself leaves the decision on the request
    # item alone (the approval has reached CodePipeline by then).
    assert len(decided) == (0 if faults.failed == "dynamodb.put_item" else 1), faults.failed


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
    """Rather a failed invocation (its failure routing tells on-call) than a brief that shows
    another execution's release."""
    gates["pipeline"].responses["get_pipeline_execution"] = {
        "pipelineExecution": {"pipelineExecutionId": "e-42", "artifactRevisions": []}
    }
    with pytest.raises(gates["notifier"].ReleaseUnknown, match="has 0 source revisions"):
        gates["notifier"].handler(approval(), CONTEXT)
    assert gates["posted"] == []
    assert [i for i in audit_items() if i.get("event") == "requested"] == []


def failed_approval(pipeline: str = "", stage: str = "BusinessSignoff") -> dict[str, Any]:
    """CodePipeline's documented action execution event: an Approval action FAILED."""
    return {
        "version": "0",
        "id": "CWE-event-id",
        "detail-type": "CodePipeline Action Execution State Change",
        "source": "aws.codepipeline",
        "account": "111111111111",
        "time": "2016-07-07T20:23:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "pipeline": pipeline or NOTIFICATION["approval"]["pipelineName"],
            "execution-id": "e-42",
            "stage": stage,
            "action": "MyApprovalAction",
            "state": "FAILED",
            "region": "eu-west-1",
            "type": {"owner": "AWS", "provider": "Manual", "category": "Approval", "version": "1"},
            "version": 1,
        },
    }


def gate_expired_points() -> float:
    stats = boto3.client("cloudwatch").get_metric_statistics(
        Namespace="mlgate/gates",
        MetricName="GateExpired",
        Dimensions=[{"Name": "Pipeline", "Value": NOTIFICATION["approval"]["pipelineName"]}],
        StartTime=datetime(2000, 1, 1, tzinfo=UTC),
        EndTime=datetime(2100, 1, 1, tzinfo=UTC),
        Period=86400 * 365,
        Statistics=["SampleCount"],
    )["Datapoints"]
    return sum(p["SampleCount"] for p in stats)


EXPIRED = time.mktime(time.strptime("2016-07-07T20:23:00", "%Y-%m-%dT%H:%M:%S")) - time.timezone


def test_a_rejected_approval_publishes_nothing(gates: dict[str, Any]) -> None:
    request_id = posted_request(gates)
    gates["callback"].handler(click(request_id, ALICE, "reject"), None, now=NOW)
    outcome = gates["callback"].handler(failed_approval(), None, now=NOW + 10)
    assert outcome["expired"] == "false"
    assert "rejected by" in outcome["reason"]
    assert gate_expired_points() == 0


def test_a_rejection_outside_chat_before_expiry_publishes_nothing(gates: dict[str, Any]) -> None:
    posted_request(gates)
    outcome = gates["callback"].handler(failed_approval(), None, now=NOW + 10)
    assert outcome["expired"] == "false"
    assert "failed before it expired" in outcome["reason"]
    assert gate_expired_points() == 0


def test_an_expired_approval_publishes_exactly_one_data_point(gates: dict[str, Any]) -> None:
    posted_request(gates)
    outcome = gates["callback"].handler(failed_approval(), None, now=EXPIRED)
    assert outcome["expired"] == "true", outcome
    assert "expired at 2016-07-07T20:22Z undecided" in outcome["reason"]
    assert gate_expired_points() == 1


def test_a_failed_approval_of_another_pipeline_is_refused(gates: dict[str, Any]) -> None:
    posted_request(gates)
    outcome = gates["callback"].handler(failed_approval("someone-else"), None, now=EXPIRED)
    assert outcome["expired"] == "refused"
    assert "pipeline 'someone-else', not of this product's release pipeline" in outcome["reason"]
    assert gate_expired_points() == 0


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
    outcome = gates["callback"].handler(event, None, now=EXPIRED)
    assert outcome["expired"] == "refused"
    assert outcome["reason"]
    assert gate_expired_points() == 0


def test_a_failed_approval_with_no_stored_request_publishes_nothing(
    gates: dict[str, Any],
) -> None:
    outcome = gates["callback"].handler(failed_approval(), None, now=EXPIRED)
    assert outcome["expired"] == "unknown"
    assert gate_expired_points() == 0


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
