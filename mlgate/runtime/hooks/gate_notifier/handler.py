"""Gate notifier hook: CodePipeline asks a gate's approvers to decide -> the evidence brief.

Subscribed to each manual gate's SNS topic. Reads CodePipeline's approval notification (checked
whole before any AWS call, without pydantic: shared/fields.py; the SNS record as Powertools'
SnsModel types it and, in its Message, the approval), builds the gate's evidence brief
(objective, the gate and its approvers, model metrics against thresholds, the latest
data-quality result, KPI targets and owners, open risks, links to decide and to the dashboard),
records the request in the audit trail, posts it to chat as a Slack Block Kit message with
Approve / Reject buttons and mails it through the gate's brief topic. The buttons carry only a
request id; the approval token stays in the audit table. A notification from another pipeline
than this product's release pipeline is refused, naming both; so is a notification that is
malformed (one log line naming the field, before any AWS call) or whose release cannot be read
(the execution's source revision or its release.json version is missing: no retry brings it
back, so the notifier answers "refused" and logs it rather than fail; decide that gate in the
CodePipeline console).

Idempotent with Powertools, keyed on the approval token (validated: pipeline, stage, action,
expiry): a redelivered notification answers "already posted". A run that fails (a chat
timeout, a throttled publish) leaves no record, and the retry finishes the work; the stored
request is kept as the first try wrote it (a click may already have decided it).

The side effects, and what a fault between one and the write that records it leaves:
- Chat post and mail: at least once; a repeat is visible, marked as a resend. Neither has an
  idempotency token (a Slack webhook, an SNS standard topic), so no write can be made atomic
  with them. Each is an idempotent step of its own (a completed step is never repeated), and
  before each try the audit trail records "<chat|mail>-attempt" n (a conditional put). A try
  whose result was never recorded (its answer lost, or the step's record failed after it) is
  tried again by Lambda's retry as try n+1, and that post or mail says it is a resend that may
  duplicate an earlier one. Both copies carry the same buttons, which decide the same request:
  a duplicate is harmless, a missing brief could let the gate expire unseen.
- The data-quality lookup: complete or visibly missing, never silently. botocore retries a
  throttled or failed call; when Glue still answers throttled, 5xx or not at all, the
  invocation fails before anything is stored or sent, as long as the notification is less than
  DQ_PATIENCE old (SNS's Timestamp), so Lambda's retries, one and three minutes later, post a
  complete brief. After that the brief goes out (a gate must not wait on it) and its
  data-quality line says that Glue did not answer and since when. Glue's refusals (access,
  validation) say "unavailable" with the reason at once: retrying does not change them.

The brief shows the release of the gate's own execution, not the latest release.json: with
executions queued, a later release may already have been written. CodePipeline's S3 source
action records the object version it took as the execution's source revision; the notifier
finds the execution waiting at the gate (GetPipelineState), its source revision
(GetPipelineExecution: artifactRevisions[].revisionId) and reads release.json at that version.

Every brief says how to open the version's experiment run in MLflow when the training pipeline
registered one (release.json's mlflow_* fields: the manifest's `tracking`).
The go-live brief (the last manual gate's) links the version's SageMaker Model Card, named from
MODEL_CARD_PREFIX and the version (model_card/card.py; the model card hook keeps it).

Environment: MLGATE_CONTEXT (JSON built by the stack from the manifest), AUDIT_TABLE,
RELEASE_BUCKET, RELEASE_PIPELINE, SLACK_WEBHOOK_SECRET_ARN, DQ_JOB (the quality job's name),
IDEMPOTENCY_TABLE; RELEASE_KEY (default release.json), MODEL_CARD_PREFIX (no card link without
it), AWS_REGION (Lambda's own), SHADOW_TESTS (the environments with a shadow test: each brief
shows this execution's verdicts so far, from the audit trail's "shadow#" items).
AWS calls: codepipeline:GetPipelineState, codepipeline:GetPipelineExecution,
s3:GetObjectVersion (release.json at the execution's source revision),
glue:ListDataQualityResults, glue:GetDataQualityResult, secretsmanager:GetSecretValue,
sns:Publish, dynamodb:PutItem (the request, its audit event, idempotency records),
dynamodb:GetItem (a retried request), dynamodb:UpdateItem, dynamodb:DeleteItem (idempotency
records).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError
from botocore.exceptions import BotoCoreError, ClientError
from model_card import card

from shared import idempotency, slack
from shared.audit import AuditTrail, digest
from shared.coldstart import settle
from shared.events import ARN, NAME, PIPELINE_NAME, SHORT, STAMP, TEXT, Refused, read_as
from shared.events import text as printable_text
from shared.fields import Dict, Json, Lit, Obj, Opt, Seq, Str
from shared.settings import read
from shared.shadow_record import read_verdict

logger = Logger()
s3 = boto3.client("s3")
glue = boto3.client("glue")
codepipeline = boto3.client("codepipeline")
sns = boto3.client("sns")
dynamodb = boto3.client("dynamodb")
FIELDS = ("pipelineName", "stageName", "actionName", "token", "expires")


@dataclass(frozen=True)
class Settings:
    product: dict[str, Any]
    table: str
    bucket: str
    key: str
    pipeline: str
    webhook_secret: str
    dq_job: str
    card_prefix: str = ""
    region: str = ""
    shadow_tests: tuple[str, ...] = ()
    """The environments with a shadow test (SHADOW_TESTS, comma-separated), whose verdicts
    the briefs show."""


@cache
def settings() -> Settings:
    env = read(
        "gate_notifier",
        ("MLGATE_CONTEXT", "AUDIT_TABLE", "RELEASE_BUCKET", "RELEASE_PIPELINE",
         "SLACK_WEBHOOK_SECRET_ARN", "DQ_JOB"),
        {"RELEASE_KEY": "release.json", "MODEL_CARD_PREFIX": "", "AWS_REGION": "",
         "SHADOW_TESTS": ""},
    )  # fmt: skip
    return Settings(
        shadow_tests=tuple(e for e in env["SHADOW_TESTS"].split(",") if e),
        product=json.loads(env["MLGATE_CONTEXT"]),
        table=env["AUDIT_TABLE"],
        bucket=env["RELEASE_BUCKET"],
        key=env["RELEASE_KEY"],
        pipeline=env["RELEASE_PIPELINE"],
        webhook_secret=env["SLACK_WEBHOOK_SECRET_ARN"],
        dq_job=env["DQ_JOB"],
        card_prefix=env["MODEL_CARD_PREFIX"],
        region=env["AWS_REGION"],
    )


class EventError(Refused):
    """Not a CodePipeline approval notification for one of this product's gates."""


TOKEN = printable_text(128)
URL = printable_text(2048, r"^https://")

# The approval in CodePipeline's notification (https://docs.aws.amazon.com/codepipeline/latest/
# userguide/approvals-json-format.html).
APPROVAL = Obj(
    "Approval",
    {
        "pipelineName": PIPELINE_NAME,
        "stageName": PIPELINE_NAME,
        "actionName": PIPELINE_NAME,
        "token": TOKEN,
        "expires": STAMP,
        "externalEntityLink": Opt(TEXT),
        "approvalReviewLink": Opt(TEXT),
        "customData": Opt(TEXT),
    },
)
APPROVAL_MESSAGE = Obj(
    "ApprovalMessage", {"region": Opt(NAME), "consoleLink": Opt(TEXT), "approval": APPROVAL}
)


def _sqs_spelling(values: dict[str, Any]) -> dict[str, Any]:
    """Powertools' renaming of SQS's spelling (UnsubscribeURL, SigningCertURL)."""
    if {"UnsubscribeURL", "SigningCertURL"} & set(values):
        values = dict(values)
        values["UnsubscribeUrl"] = values.pop("UnsubscribeURL", None)
        values["SigningCertUrl"] = values.pop("SigningCertURL", None)
    return values


# The SNS record as Powertools' SnsModel types it (https://docs.aws.amazon.com/lambda/latest/dg/
# with-sns.html), its fields in that model's order, every text field of it checked as above.
ATTRIBUTE = Obj("SnsMsgAttributeModel", {"Type": Str(), "Value": Str()})
NOTIFICATION = Obj(
    "ApprovalNotification",
    {
        "Subject": Opt(TEXT),
        "TopicArn": ARN,
        "UnsubscribeUrl": URL,
        "Type": Lit(("Notification",)),
        "MessageAttributes": Opt(Dict(ATTRIBUTE)),
        "Message": Json(APPROVAL_MESSAGE),
        "MessageId": NAME,
        "SigningCertUrl": Opt(URL),
        "Signature": Opt(TEXT),
        # SNS's own time for the message, the same on every retry of it: the audit record's
        # time, so a retry writes the same record. Kept as SNS wrote it.
        "Timestamp": STAMP,
        "SignatureVersion": Opt(SHORT),
    },
    before=_sqs_spelling,
)
RECORD = Obj(
    "ApprovalRecord",
    {
        "EventSource": Lit(("aws:sns",)),
        "EventVersion": SHORT,
        "EventSubscriptionArn": ARN,
        "Sns": NOTIFICATION,
    },
)
# Lambda receives one SNS message per invocation.
APPROVAL_EVENT = Obj("ApprovalEvent", {"Records": Seq(RECORD, max_length=1, min_length=1)})


def parse(event: Any, gates: dict[str, Any], pipeline: str | None = None) -> dict[str, Any]:
    """The approval of a notification for one of `gates` of `pipeline`; EventError naming the
    field otherwise."""
    found = read_as(event, APPROVAL_EVENT, EventError, "a CodePipeline approval notification")
    record = found.Records[0].Sns
    approval, link = record.Message.approval, record.Message.consoleLink
    if pipeline is not None and approval.pipelineName != pipeline:
        raise EventError(
            "Records[0].Sns.Message.approval.pipelineName",
            f"the notification comes from pipeline {approval.pipelineName}, but this notifier "
            f"serves {pipeline} only; subscribe it to that pipeline's gate topics",
        )
    if approval.stageName not in gates:
        raise EventError(
            "Records[0].Sns.Message.approval.stageName",
            f"stage {approval.stageName} is not a gate of this product; "
            f"gates: {', '.join(sorted(gates))}",
        )
    return {
        **{key: getattr(approval, key) for key in FIELDS},
        "consoleLink": link or "",
        "notifiedAt": record.Timestamp,
    }


# How far back a data-quality run still speaks for the data a release was trained on.
DQ_LOOKBACK = timedelta(days=30)
DQ_PAGES = 10
# How long after its notification a brief waits for Glue to answer the data-quality lookup:
# Lambda retries a failed asynchronous invocation twice, one and then two minutes apart
# (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html), so the
# first two tries wait and the last one posts.
DQ_PATIENCE = timedelta(seconds=150)
# Glue answers that a later try may not get (botocore has retried them already).
TRANSIENT = (
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "InternalServiceException",
    "OperationTimeoutException",
    "ServiceUnavailable",
)


def clock() -> float:
    return time.time()


class QualityUnavailable(RuntimeError):
    """Glue did not answer the data-quality lookup (throttled, 5xx, no answer): the invocation
    fails before anything is stored or sent, and Lambda's retry looks again."""

    def __init__(self, code: str) -> None:
        super().__init__(f"Glue did not answer the data-quality lookup ({code}); "
                         "Lambda's retry posts the brief")  # fmt: skip
        self.code = code


def transient(err: ClientError) -> bool:
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status >= 500 or err.response.get("Error", {}).get("Code") in TRANSIENT


def data_quality(glue: Any, job: str, now: datetime | None = None) -> dict[str, Any]:
    """The latest Glue Data Quality result of the product's quality job, or why there is none.

    The job evaluates its ruleset on a DataFrame read from S3 (mlgate/runtime/etl/quality_glue.py),
    not on a catalog table: its results carry the job's name and no GlueTable data source, so they
    are listed by JobName. ListDataQualityResults promises no order; the newest is the one
    with the latest StartedOn (https://docs.aws.amazon.com/glue/latest/webapi/
    API_ListDataQualityResults.html, API_DataQualityResultDescription.html)."""
    since = (now or datetime.now(UTC)) - DQ_LOOKBACK
    newest: dict[str, Any] | None = None
    token: str | None = None
    try:
        for _ in range(DQ_PAGES):
            page = glue.list_data_quality_results(
                Filter={"JobName": job, "StartedAfter": since},
                MaxResults=100,
                **({"NextToken": token} if token else {}),
            )
            for found in page.get("Results", []):
                if newest is None or found.get("StartedOn", since) > newest.get("StartedOn", since):
                    newest = found
            token = page.get("NextToken")
            if not token:
                break
        if newest is None:
            return {"status": f"no data-quality run of {job} in the last {DQ_LOOKBACK.days} days"}
        result = glue.get_data_quality_result(ResultId=newest["ResultId"])
    except BotoCoreError as err:
        raise QualityUnavailable(type(err).__name__) from err
    except ClientError as err:
        code = str(err.response["Error"]["Code"])
        if transient(err):
            raise QualityUnavailable(code) from err
        return {"status": f"unavailable ({code})"}
    outcomes = result.get("RuleResults", [])
    failed = [r["Name"] for r in outcomes if r.get("Result") != "PASS"]
    return {
        "status": "all rules passed" if not failed else f"{len(failed)} rule(s) failed",
        "score": result.get("Score"),
        "failed_rules": failed,
        "completed": str(result.get("CompletedOn", "")),
        "job_run": result.get("JobRunId", newest.get("JobRunId", "")),
    }


def card_link(context: dict[str, Any], gate: dict[str, Any], release: dict[str, Any],
              prefix: str, region: str) -> dict[str, str] | None:  # fmt: skip
    """The version's model card, for the go-live brief (the last manual gate's; the context's
    gates are in pipeline order): its name and console page. None for another gate, without a
    card prefix, or for a release whose version has no card name."""
    gates = list(context["gates"].values())
    version = release.get("model_version")
    if not prefix or not gates or gate["name"] != gates[-1]["name"]:
        return None
    if isinstance(version, bool) or not isinstance(version, int):
        return None
    try:
        name = card.card_name(prefix, version)
    except ValueError:
        return None
    return {"name": name, "url": card.card_url(region, name)}


def brief(context: dict[str, Any], gate: dict[str, Any], approval: dict[str, Any],
          release: dict[str, Any], quality: dict[str, Any],
          model_card: dict[str, str] | None = None,
          shadow_tests: list[dict[str, str]] | None = None) -> dict[str, Any]:  # fmt: skip
    """The evidence a gate's approvers decide on, as data (rendered to chat and email);
    `model_card`: the version's card (card_link), on the go-live brief; `shadow_tests`: the
    verdicts of this execution's shadow tests so far (shared/shadow_record.py)."""
    metrics = release.get("metrics", {})
    rows = []
    for m in context["model_metrics"]:
        value = metrics.get(m["name"])
        met = value is not None and (
            value >= m["threshold"] if m["direction"] == "at_least" else value <= m["threshold"]
        )
        rows.append({**m, "value": value, "met": met})
    return {
        "product": context["display_name"],
        "objective": context["objective"],
        "gate": gate["name"],
        "gate_description": gate["description"],
        "approvers": [a["name"] for a in gate["approvers"]],
        "requires": gate.get("requires", "one"),
        "decide_within_hours": gate["timeout_hours"],
        "expires": approval["expires"],
        "model_version": release.get("model_version"),
        "model_package_arn": release.get("model_package_arn"),
        "approved_in_registry_by": release.get("approved_by"),
        "model_metrics": rows,
        "data_quality": quality,
        "kpis": context["kpis"],
        "open_risks": context["risks"],
        # The pipeline's console page, where Review opens the approval. CodePipeline's own
        # approvalReviewLink embeds the token, which stays out of chat and email.
        "review_link": approval.get("consoleLink", ""),
        "dashboard": context["dashboard_url"],
        "monitoring": context.get("monitoring_url", ""),
        **({"model_card": model_card} if model_card else {}),
        **({"shadow_tests": shadow_tests} if shadow_tests else {}),
        **({"experiment_run": run} if (run := experiment_run(release)) else {}),
    }


SERVER_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-tracking-server/(.+)$")


def experiment_run(release: dict[str, Any]) -> dict[str, str] | None:
    """The version's experiment run in MLflow, from release.json (the registry's customer
    metadata, copied by the release hook): how to open it. None without tracking.

    A SageMaker managed tracking server opens through a presigned URL (AWS CLI
    `create-presigned-mlflow-tracking-server-url`,
    https://docs.aws.amazon.com/sagemaker/latest/dg/mlflow-launch-ui.html); any other server
    by its URI."""
    run, experiment = release.get("mlflow_run_id"), release.get("mlflow_experiment_id")
    tracking = release.get("mlflow_tracking")
    if not isinstance(run, str) or not run:
        return None
    if run.startswith("untracked"):
        return {"run": run, "open": f"the version was trained without its run in MLflow ({run})"}
    server = tracking if isinstance(tracking, str) else "the product's MLflow"
    page = f"#/experiments/{experiment}/runs/{run}"
    if found := SERVER_ARN.match(server):
        how = (f"aws sagemaker create-presigned-mlflow-tracking-server-url "
               f"--tracking-server-name {found[1]}, then {page}")  # fmt: skip
    elif server.startswith(("http://", "https://")):
        how = f"{server.rstrip('/')}/{page}"
    elif server.startswith("file:"):  # a local file store (the rehearsal): MLflow's own UI on it
        how = f"mlflow ui --backend-store-uri {server}, then http://127.0.0.1:5000/{page}"
    else:
        how = f"{server}, {page}"
    return {"run": run, "experiment": str(experiment), "server": server, "open": how}


def who_decides(b: dict[str, Any]) -> str:
    names = ", ".join(b["approvers"])
    if b.get("requires") == "all" and len(b["approvers"]) > 1:
        return (f"Needs every approver: {names} (each approves from chat; one rejection "
                "rejects).")  # fmt: skip
    return f"Approvers: {names} (any one decides)."


def text(b: dict[str, Any]) -> str:
    lines = [
        f"{b['product']}: gate '{b['gate']}' waits for your decision",
        f"Objective: {b['objective']}",
        f"Gate: {b['gate_description']} {who_decides(b)} "
        f"Decide within {b['decide_within_hours']} h (expires {b['expires']}).",
        f"Model version {b['model_version']} ({b['model_package_arn']}), approved in the "
        f"registry by {b['approved_in_registry_by']}.",
        "Model metrics (test split):",
    ]
    for m in b["model_metrics"]:
        word = ">=" if m["direction"] == "at_least" else "<="
        value = "not registered" if m["value"] is None else f"{m['value']:.4f}"
        lines.append(f"  {'OK ' if m['met'] else 'LOW'} {m['name']} {value} (needs {word} "
                     f"{m['threshold']}, owner {m['owner']})")  # fmt: skip
    lines.append(f"Data quality: {b['data_quality']['status']}")
    lines.append("Business KPIs:")
    lines += [f"  {k['name']}: target {k['direction'].replace('_', ' ')} {k['target']} "
              f"{k['unit']} (owner {k['owner']})" for k in b["kpis"]]  # fmt: skip
    lines.append("Open risks:")
    lines += [f"  {r['id']} (score {r['score']}) {r['title']} - owner {r['owner']}"
              for r in b["open_risks"]]  # fmt: skip
    if run := b.get("experiment_run"):
        lines.append(
            f"Experiment run: {run['run']} (experiment {run['experiment']}) on {run['server']}; "
            f"open: {run['open']}"
            if "server" in run
            else f"Experiment run: {run['open']}"
        )
    for test in b.get("shadow_tests", []):
        verdict = "PASSED" if test["passed"] == "true" else "FAILED"
        lines.append(f"Shadow test ({test['environment']}): {verdict}: {test['summary']}")
    if b.get("model_card"):
        card_line = (f"Model card: {b['model_card']['name']} (objective, intended use, risks, "
                     "evaluation; approved once prod is verified)")  # fmt: skip
        lines.append(f"{card_line}: {b['model_card']['url']}")
    lines.append(f"Approve or reject: {b['review_link']}")
    lines.append(f"Dashboard: {b['dashboard']}")
    if b["monitoring"]:
        lines.append(f"Monitoring reports (staging, this version's traffic): {b['monitoring']}")
    return "\n".join(lines)


def blocks(b: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The Slack Block Kit message: the brief and two buttons carrying the request id."""
    body = text(b).split("\n", 1)[1]
    return {
        "text": f"{b['product']}: gate '{b['gate']}' waits for a decision",
        "blocks": [
            {"type": "header",
             "text": {"type": "plain_text", "text": f"{b['gate']}: decision needed"[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
            {
                "type": "actions",
                "block_id": f"gate:{request_id}",
                "elements": [
                    {"type": "button", "style": "primary", "action_id": "approve",
                     "text": {"type": "plain_text", "text": "Approve"}, "value": request_id},
                    {"type": "button", "style": "danger", "action_id": "reject",
                     "text": {"type": "plain_text", "text": "Reject"}, "value": request_id},
                    {"type": "button", "action_id": "open_dashboard", "url": b["dashboard"],
                     "text": {"type": "plain_text", "text": "Dashboard"}},
                ],
            },
        ],
    }  # fmt: skip


def execution_of(client: Any, pipeline: str, stage: str) -> str:
    state = client.get_pipeline_state(name=pipeline)
    for s in state.get("stageStates", []):
        if s.get("stageName") == stage:
            return str((s.get("latestExecution") or {}).get("pipelineExecutionId", "unknown"))
    return "unknown"


class ReleaseUnknown(RuntimeError):
    """No execution is at the gate's stage yet: the brief is not sent rather than sent with
    another execution's release; the invocation fails and Lambda's retry looks again (its
    failure routing tells on-call if it never appears)."""


class ReleaseMissing(Refused):
    """The gate's execution has no single source revision, or its release.json version is
    gone or unreadable: no retry brings it back, so the brief is refused, not retried."""


# S3's answers for an object version that is not there (https://docs.aws.amazon.com/AmazonS3/
# latest/API/API_GetObject.html); CodePipeline's for an execution it does not know.
MISSING = ("NoSuchKey", "NoSuchVersion", "InvalidArgument", "PipelineExecutionNotFoundException")


def release_of(client: Any, s3: Any, config: Settings, pipeline: str, execution: str) -> Any:
    """release.json as the execution's source action took it: at the S3 object version
    CodePipeline recorded as the execution's source revision (the S3 source action's revision
    is the object's VersionId: https://docs.aws.amazon.com/codepipeline/latest/userguide/
    action-reference-S3.html, output variable VersionId)."""
    if execution == "unknown":
        raise ReleaseUnknown(f"no execution of {pipeline} is at the gate's stage")
    try:
        described = client.get_pipeline_execution(
            pipelineName=pipeline, pipelineExecutionId=execution
        )
        revisions = described["pipelineExecution"].get("artifactRevisions") or []
        versions = [r["revisionId"] for r in revisions if r.get("revisionId")]
        if len(versions) != 1:
            raise ReleaseMissing(
                "artifactRevisions",
                f"execution {execution} of {pipeline} has {len(versions)} source revisions; "
                "expected the one of its release.json source",
            )
        body = s3.get_object(Bucket=config.bucket, Key=config.key, VersionId=versions[0])["Body"]
        release = json.loads(body.read())
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code not in MISSING:
            raise
        raise ReleaseMissing(
            "release.json", f"the release of execution {execution} of {pipeline} cannot be "
            f"read ({code}): s3://{config.bucket}/{config.key} at its source revision",
        ) from None  # fmt: skip
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReleaseMissing("release.json", f"release.json of execution {execution} is not "
                                             f"JSON ({err})") from None  # fmt: skip
    if not isinstance(release, dict):
        raise ReleaseMissing("release.json", f"release.json of execution {execution} is not a "
                                             "JSON object")  # fmt: skip
    return release


def request_id_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def tries(step: dict[str, Any]) -> str:
    n = int(step.get("attempt", 1))
    return f", resent as try {n}: may duplicate an earlier one" if n > 1 else ""


def _replayed(response: dict[str, str]) -> dict[str, str]:
    if response.get("posted") != "true":
        return response
    request_id = response["request_id"]
    return {"posted": "false", "reason": f"brief for request {request_id} was already posted",
            "request_id": request_id}  # fmt: skip


# An approval waits at most 7 days in CodePipeline: its notification is never redelivered
# after that.
CONFIG = idempotency.config(
    "token", "[pipelineName, stageName, actionName, expires]", hours=24 * 8, replayed=_replayed
)
# A step done for a request is done, whatever the brief's text on a later try: the text may
# change between tries (a data-quality result that arrived, or a lookup that ran out of
# patience), and a request id belongs to one approval token (open_request checks it).
STEP = idempotency.config("request_id", hours=24 * 8)


RESENT = ("Resent (try {n}): an earlier {what} of this brief may have gone out; both carry "
          "the same request, a decision on either is the same decision.")  # fmt: skip


def attempt(brief: dict[str, Any], step: str) -> int:
    """Records the try of a side effect before it is made; its number (module docstring)."""
    audit = AuditTrail(dynamodb, settings().table)
    where = brief["where"]
    return audit.attempt(pipeline=where["pipeline"], execution=where["execution"], step=step,
                         gate=where["gate"], key=brief["request_id"], when=where["when"],
                         detail=f"request {brief['request_id']}")  # fmt: skip


def resent(message: dict[str, Any], n: int) -> dict[str, Any]:
    """The Block Kit message of try `n` > 1, marked as a possible duplicate."""
    note = {"type": "context",
            "elements": [{"type": "mrkdwn", "text": RESENT.format(n=n, what="post")}]}  # fmt: skip
    return {**message, "text": f"[resent] {message['text']}",
            "blocks": [note, *message["blocks"]]}  # fmt: skip


@idempotency.once(data="brief", config=STEP, prefix="gate_notifier.chat")
def post_to_chat(*, brief: dict[str, Any]) -> dict[str, int]:
    # The webhook URL changes when someone regenerates it in Slack: cached for five minutes.
    url = slack.secret(settings().webhook_secret)
    n = attempt(brief, "chat")
    message = brief["message"] if n == 1 else resent(brief["message"], n)
    return {"status": slack.post(str(url), message), "attempt": n}


@idempotency.once(data="brief", config=STEP, prefix="gate_notifier.mail")
def mail(*, brief: dict[str, Any]) -> dict[str, Any]:
    n = attempt(brief, "mail")
    subject, body = brief["subject"], brief["text"]
    if n > 1:
        subject, body = f"[resent] {subject}"[:100], f"{RESENT.format(n=n, what='mail')}\n\n{body}"
    sent = sns.publish(TopicArn=brief["topic"], Subject=subject, Message=body)
    return {"message_id": str(sent["MessageId"]), "attempt": n}


def looked_up(config: Settings, approval: dict[str, Any]) -> dict[str, Any]:
    """The data-quality line: Glue's answer; or, once DQ_PATIENCE has passed since the
    notification, what is missing and since when (module docstring)."""
    try:
        return data_quality(glue, config.dq_job)
    except QualityUnavailable as err:
        notified = datetime.fromisoformat(approval["notifiedAt"].replace("Z", "+00:00"))
        if clock() - notified.timestamp() < DQ_PATIENCE.total_seconds():
            raise
        logger.warning("brief without data quality", extra={"error": err.code})
        return {"status": f"unavailable: Glue did not answer ({err.code}) on any try since "
                          f"{approval['notifiedAt']}; see the quality job's latest result "
                          "before deciding"}  # fmt: skip


@idempotency.once(data="approval", config=CONFIG, prefix="gate_notifier")
def request_decision(*, approval: dict[str, Any]) -> dict[str, str]:
    config = settings()
    product = config.product
    gate = product["gates"][approval["stageName"]]
    execution = execution_of(codepipeline, approval["pipelineName"], approval["stageName"])
    release = release_of(codepipeline, s3, config, approval["pipelineName"], execution)
    quality = looked_up(config, approval)
    link = card_link(product, gate, release, config.card_prefix, config.region)
    shadows = [
        found
        for env in config.shadow_tests
        if (found := read_verdict(config.table, execution, env, dynamodb)) is not None
    ]
    evidence = brief(product, gate, approval, release, quality, link, shadows)
    request_id = request_id_of(approval["token"])
    audit = AuditTrail(dynamodb, config.table)
    stored = audit.open_request(
        request_id,
        {
            "kind": "approval",
            "gate": gate["name"],
            "pipeline": approval["pipelineName"],
            "stage": approval["stageName"],
            "action": approval["actionName"],
            "token": approval["token"],
            "expires": approval["expires"],
            "execution": execution,
            "approvers": ",".join(a["slack_user_id"] for a in gate["approvers"]),
            "approver_names": ", ".join(a["name"] for a in gate["approvers"]),
            # one: the first decision decides; all: every approver approves (the callback
            # collects them), and one rejection rejects.
            "requires": gate.get("requires", "one"),
            "model_version": str(release.get("model_version", "")),
            "evidence_sha256": digest(evidence),
        },
    )
    if not stored:
        return {"posted": "false", "reason": f"request id {request_id} is taken by another "
                "approval; decide this one in the CodePipeline console"}  # fmt: skip
    body = text(evidence)
    where = {"pipeline": approval["pipelineName"], "execution": execution, "gate": gate["name"],
             "when": approval["notifiedAt"]}  # fmt: skip
    chat = post_to_chat(
        brief={
            "request_id": request_id,
            "text": body,
            "message": blocks(evidence, request_id),
            "where": where,
        }
    )
    mailed = mail(
        brief={
            "request_id": request_id,
            "text": body,
            "topic": gate["brief_topic_arn"],
            "subject": f"[{product['product']}] {gate['name']}: decision needed"[:100],
            "where": where,
        }
    )
    audit.record(
        pipeline=approval["pipelineName"],
        execution=execution,
        event="requested",
        gate=gate["name"],
        key=request_id,
        when=approval["notifiedAt"],
        who=", ".join(a["name"] for a in gate["approvers"]),
        model_version=str(release.get("model_version", "")),
        evidence_sha256=digest(evidence),
        detail=f"brief posted to chat (HTTP {chat['status']}{tries(chat)}) and mailed"
        f"{tries(mailed)}; request {request_id}",
    )
    return {"posted": "true", "request_id": request_id}


def refuse(field: str, reason: str) -> dict[str, str]:
    logger.error("event refused", extra={"field": field, "reason": reason})
    return {"posted": "false", "status": "refused", "reason": reason}


@logger.inject_lambda_context(correlation_id_path="Records[0].Sns.MessageId")
def handler(event: Any, context: Any) -> dict[str, str]:
    config = settings()
    try:
        approval = parse(event, config.product["gates"], config.pipeline)
    except EventError as err:
        return refuse(err.field, err.reason)
    CONFIG.register_lambda_context(context)
    STEP.register_lambda_context(context)
    try:
        return request_decision(approval=approval)
    except ReleaseMissing as err:
        return refuse(err.field, f"no brief: {err.reason}; decide this gate in the "
                                 "CodePipeline console")  # fmt: skip
    except IdempotencyValidationError:
        reason = (
            f"request {request_id_of(approval['token'])} was posted for another gate action "
            "with the same token; this notification changes nothing"
        )
        return refuse("Records[0].Sns.Message.approval", reason)


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
