"""Gate notifier hook: CodePipeline asks a gate's approvers to decide -> the evidence brief.

Subscribed to each manual gate's SNS topic. Parses CodePipeline's approval notification,
builds the gate's evidence brief (objective, the gate and its approvers, model metrics against
thresholds, the latest data-quality result, KPI targets and owners, open risks, links to decide
and to the dashboard), posts it to chat as a Slack Block Kit message with Approve / Reject
buttons, mails it through the gate's brief topic, and records the request in the audit trail.
The buttons carry only a request id; the approval token stays in the audit table.

Environment: MLGATE_CONTEXT (JSON built by the stack from the manifest), AUDIT_TABLE,
RELEASE_BUCKET, RELEASE_KEY, SLACK_WEBHOOK_SECRET_ARN, DQ_DATABASE, DQ_TABLE.
AWS calls: codepipeline:GetPipelineState, s3:GetObject (release.json),
glue:ListDataQualityResults, glue:GetDataQualityResult, secretsmanager:GetSecretValue,
sns:Publish, dynamodb:PutItem.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from shared import slack
from shared.audit import AuditTrail, digest

logger = Logger()


class EventError(ValueError):
    """Not a CodePipeline approval notification for one of this product's gates."""


def parse(event: Any, gates: dict[str, Any]) -> dict[str, Any]:
    try:
        message = json.loads(event["Records"][0]["Sns"]["Message"])
        approval = message["approval"]
        for key in ("pipelineName", "stageName", "actionName", "token", "expires"):
            if not approval.get(key):
                raise KeyError(key)
    except (KeyError, IndexError, TypeError, json.JSONDecodeError) as err:
        raise EventError(
            f"not a CodePipeline approval notification: missing or bad {err}"
        ) from None
    if approval["stageName"] not in gates:
        raise EventError(
            f"stage {approval['stageName']} is not a gate of this product; "
            f"gates: {', '.join(sorted(gates))}"
        )
    return {**approval, "consoleLink": message.get("consoleLink", "")}


def data_quality(glue: Any, database: str, table: str) -> dict[str, Any]:
    """The latest Glue Data Quality result of the curated table, or why there is none."""
    try:
        results = glue.list_data_quality_results(
            Filter={"DataSource": {"GlueTable": {"DatabaseName": database, "TableName": table}}},
            MaxResults=1,
        )["Results"]
        if not results:
            return {"status": "no data-quality run yet"}
        result = glue.get_data_quality_result(ResultId=results[0]["ResultId"])
    except ClientError as err:
        return {"status": f"unavailable ({err.response['Error']['Code']})"}
    outcomes = result.get("RuleResults", [])
    failed = [r["Name"] for r in outcomes if r.get("Result") != "PASS"]
    return {
        "status": "all rules passed" if not failed else f"{len(failed)} rule(s) failed",
        "score": result.get("Score"),
        "failed_rules": failed,
        "completed": str(result.get("CompletedOn", "")),
    }


def brief(context: dict[str, Any], gate: dict[str, Any], approval: dict[str, Any],
          release: dict[str, Any], quality: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The evidence a gate's approvers decide on, as data (rendered to chat and email)."""
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
    }


def text(b: dict[str, Any]) -> str:
    lines = [
        f"{b['product']}: gate '{b['gate']}' waits for your decision",
        f"Objective: {b['objective']}",
        f"Gate: {b['gate_description']} Approvers: {', '.join(b['approvers'])}. "
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
    lines.append(f"Approve or reject: {b['review_link']}")
    lines.append(f"Dashboard: {b['dashboard']}")
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


def execution_of(codepipeline: Any, pipeline: str, stage: str) -> str:
    state = codepipeline.get_pipeline_state(name=pipeline)
    for s in state.get("stageStates", []):
        if s.get("stageName") == stage:
            return str((s.get("latestExecution") or {}).get("pipelineExecutionId", "unknown"))
    return "unknown"


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    product = json.loads(os.environ["MLGATE_CONTEXT"])
    try:
        approval = parse(event, product["gates"])
    except EventError as err:
        logger.error("event refused", extra={"reason": str(err)})
        return {"posted": "false", "reason": str(err)}
    gate = product["gates"][approval["stageName"]]
    s3 = boto3.client("s3")
    key = os.environ.get("RELEASE_KEY", "release.json")
    release = json.loads(s3.get_object(Bucket=os.environ["RELEASE_BUCKET"], Key=key)["Body"].read())
    quality = data_quality(boto3.client("glue"), os.environ["DQ_DATABASE"], os.environ["DQ_TABLE"])
    evidence = brief(product, gate, approval, release, quality)
    request_id = hashlib.sha256(approval["token"].encode()).hexdigest()[:24]
    execution = execution_of(
        boto3.client("codepipeline"), approval["pipelineName"], approval["stageName"]
    )
    audit = AuditTrail(boto3.client("dynamodb"), os.environ["AUDIT_TABLE"])
    fresh = audit.open_request(
        request_id,
        {
            "gate": gate["name"],
            "pipeline": approval["pipelineName"],
            "stage": approval["stageName"],
            "action": approval["actionName"],
            "token": approval["token"],
            "expires": approval["expires"],
            "execution": execution,
            "approvers": ",".join(a["slack_user_id"] for a in gate["approvers"]),
            "approver_names": ", ".join(a["name"] for a in gate["approvers"]),
            "model_version": str(release.get("model_version", "")),
            "evidence_sha256": digest(evidence),
        },
    )
    if not fresh:
        return {"posted": "false", "reason": f"brief for request {request_id} was already posted"}
    secret = boto3.client("secretsmanager").get_secret_value(
        SecretId=os.environ["SLACK_WEBHOOK_SECRET_ARN"]
    )
    status = slack.post(secret["SecretString"], blocks(evidence, request_id))
    boto3.client("sns").publish(
        TopicArn=gate["brief_topic_arn"],
        Subject=f"[{product['product']}] {gate['name']}: decision needed"[:100],
        Message=text(evidence),
    )
    audit.record(
        pipeline=approval["pipelineName"],
        execution=execution,
        event="requested",
        gate=gate["name"],
        who=", ".join(a["name"] for a in gate["approvers"]),
        model_version=str(release.get("model_version", "")),
        evidence_sha256=digest(evidence),
        detail=f"brief posted to chat (HTTP {status}) and mailed; request {request_id}",
    )
    return {"posted": "true", "request_id": request_id}
