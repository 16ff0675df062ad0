"""Gate notifier and gate callback under moto: the brief goes out with buttons, a signed click
by the gate's approver decides once, and every other click is refused and changes nothing."""

from __future__ import annotations

import copy
import json
import time
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.exceptions import ClientError

from mlgate.gates import encoded, gate_context
from mlgate.manifest import load_manifest
from shared import slack

from ..conftest import DEFAULT_MANIFEST
from .conftest import Recorder, audit_items, bucket, event

MANIFEST = load_manifest(DEFAULT_MANIFEST)
NOTIFICATION = event("codepipeline_approval_notification.json")
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ALICE, DANA = "U01ALICE01", "U01DANAS01"
NOW = time.mktime(time.strptime("2016-07-06T12:00:00", "%Y-%m-%dT%H:%M:%S")) - time.timezone


def approval(stage: str = "BusinessSignoff") -> dict[str, Any]:
    message = copy.deepcopy(NOTIFICATION)
    message["approval"]["stageName"] = stage
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message)}}]}


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
    signing = secrets.create_secret(Name="signing", SecretString=SIGNING_SECRET)
    bucket("releases")
    boto3.client("s3").put_object(
        Bucket="releases",
        Key="release.json",
        Body=json.dumps(
            {
                "model_package_arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/"
                "mlgate-fraud-detection/7",
                "model_version": 7,
                "approved_by": "bruno",
                "metrics": {"precision": 0.97, "recall": 0.58, "auc": 0.94},
            }
        ),
    )
    context = gate_context(
        MANIFEST,
        brief_topics={"business-signoff": topic},
        dashboard_url="https://console.aws.amazon.com/cloudwatch/home#dashboards:name=x",
    )
    for key, value in {
        "MLGATE_CONTEXT": encoded(context),
        "AUDIT_TABLE": audit_table,
        "RELEASE_BUCKET": "releases",
        "SLACK_WEBHOOK_SECRET_ARN": webhook["ARN"],
        "SLACK_SIGNING_SECRET_ARN": signing["ARN"],
        "DQ_DATABASE": "db",
        "DQ_TABLE": "curated",
    }.items():
        monkeypatch.setenv(key, value)

    posted: list[dict[str, Any]] = []
    monkeypatch.setattr(notifier.slack, "post", lambda url, msg: posted.append(msg) or 200)
    pipeline = Recorder(
        get_pipeline_state={
            "stageStates": [
                {"stageName": "BusinessSignoff", "latestExecution": {"pipelineExecutionId": "e-42"}}
            ]
        }
    )
    glue = Recorder(
        list_data_quality_results={"Results": [{"ResultId": "dqresult-1"}]},
        get_data_quality_result={
            "Score": 1.0,
            "RuleResults": [{"Name": "Rule_1", "Result": "PASS"}],
            "CompletedOn": "2016-07-06T02:10:00Z",
        },
    )
    real = boto3.client

    def client(name: str, *args: Any, **kwargs: Any) -> Any:
        return {"codepipeline": pipeline, "glue": glue}.get(name) or real(name, *args, **kwargs)

    monkeypatch.setattr(notifier.boto3, "client", client)
    monkeypatch.setattr(callback.boto3, "client", client)
    return {
        "notifier": notifier,
        "callback": callback,
        "posted": posted,
        "pipeline": pipeline,
        "inbox": inbox,
    }


def click(request_id: str, user: str, action: str = "approve", *, ts: float = NOW,
          secret: str = SIGNING_SECRET, b64: bool = False) -> dict[str, Any]:  # fmt: skip
    payload = {
        "type": "block_actions",
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

        return {"headers": headers, "body": base64.b64encode(body.encode()).decode(),
                "isBase64Encoded": True}  # fmt: skip
    return {"headers": headers, "body": body, "isBase64Encoded": False}


def posted_request(gates: dict[str, Any]) -> str:
    result = gates["notifier"].handler(approval(), None)
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
    ((name, sent),) = gates["pipeline"].calls[1:]
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
    answer = gates["callback"].handler(click("no-such-request", ALICE), None, now=NOW)
    assert_refused(gates, answer, 404, "unknown approval request no-such-request")


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
    answer = gates["callback"].handler({"headers": headers, "body": body}, None, now=NOW)
    assert_refused(gates, answer, 400, "not a gate button click")


def test_notifier_refuses_unknown_stages_and_malformed_notifications(gates: dict[str, Any]) -> None:
    unknown = gates["notifier"].handler(approval("Deploy"), None)
    assert unknown["posted"] == "false"
    assert "stage Deploy is not a gate of this product" in unknown["reason"]
    broken = gates["notifier"].handler({"Records": [{"Sns": {"Message": "{}"}}]}, None)
    assert "not a CodePipeline approval notification" in broken["reason"]
    assert gates["posted"] == []
    assert audit_items() == []


def test_a_retried_notification_posts_the_brief_once(gates: dict[str, Any]) -> None:
    posted_request(gates)
    again = gates["notifier"].handler(approval(), None)
    assert again["posted"] == "false"
    assert len(gates["posted"]) == 1
