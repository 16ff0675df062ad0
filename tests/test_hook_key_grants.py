"""Issue 29, on every template of every example product and of a scaffolded one:

- no Lambda function's role may use a KMS key (kms:Decrypt, kms:GenerateDataKey) except
  through an AWS service (kms:ViaService): a hook reads its encrypted table, queue, topic,
  secret or objects through that service and never calls KMS itself;
- the audit trail is append-only by IAM: no role may update or delete its "gate#" event items
  (dynamodb:LeadingKeys), and no role touches it without a key-prefix condition;
- every hook's dead-letter queue is encrypted with a KMS key and keeps an event only as long as
  what it carries allows (mlgate/infra/constructs/hooks.py);
- the public gate callback URL has no CORS, and on-call hears of a flood of requests to it.

Each check fails on its broken form, shown beside it."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

import pytest

from mlgate.infra.service_rules import App, Resource
from mlgate.infra.stacks.delivery import DeliveryProps

from .conftest import APPS

# Functions that call KMS themselves (kms:Decrypt / GenerateDataKey in their own code), each
# with its reason. None does: every hook uses the key through a service.
DIRECT_KMS: dict[str, str] = {}
KEY_USE = ("kms:decrypt", "kms:generatedatakey")
# What changes or removes an item (https://docs.aws.amazon.com/service-authorization/latest/
# reference/list_amazondynamodb.html): never on an audit event.
CHANGES = ("dynamodb:updateitem", "dynamodb:deleteitem", "dynamodb:batchwriteitem",
           "dynamodb:partiqlupdate", "dynamodb:partiqldelete")  # fmt: skip
AUDIT_EVENT = "gate#pipeline#execution"


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(statement: dict[str, Any], wanted: tuple[str, ...]) -> bool:
    """The statement allows one of `wanted` (IAM actions match without case, `*` wildcards)."""
    if statement.get("Effect") != "Allow":
        return False
    if "NotAction" in statement:
        return True  # allows everything it does not name: counted as a grant
    actions = [str(a).lower() for a in listed(statement.get("Action", []))]
    return any(fnmatchcase(action, pattern) for action in wanted for pattern in actions)


def role_statements(role: Resource) -> list[dict[str, Any]]:
    """The statements of a role's inline policies and of the AWS::IAM::Policy resources of its
    stack attached to it."""
    found = [s for p in role.props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for policy in role.app.resources("AWS::IAM::Policy"):
        if policy.stack.name != role.stack.name:
            continue
        if any(policy.ref(r) is not None and policy.ref(r).is_(role)  # type: ignore[union-attr]
               for r in policy.props.get("Roles", [])):  # fmt: skip
            found += policy.props["PolicyDocument"]["Statement"]
    return found


def key_use(app: App) -> list[tuple[str, dict[str, Any]]]:
    """Each function's statements that let its role use a key."""
    found = []
    for function in app.resources("AWS::Lambda::Function"):
        role = function.ref(function.props.get("Role"))
        if role is None or function.id in DIRECT_KMS:
            continue
        found += [(f"{function.stack.name}/{function.id}", statement)
                  for statement in role_statements(role) if grants(statement, KEY_USE)]  # fmt: skip
    return found


def unconditioned_key_use(app: App) -> list[str]:
    """Each function whose role may use a key other than through a service."""
    return [
        f"{where}: {statement['Action']}"
        for where, statement in key_use(app)
        if "kms:ViaService" not in json.dumps(statement.get("Condition") or {})
    ]


def audit_tables(app: App) -> list[Resource]:
    return [t for kind in ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table")
            for t in app.resources(kind)
            if str(t.props.get("TableName", "")).endswith("-audit")]  # fmt: skip


def on_audit_table(policy: Resource, statement: dict[str, Any], tables: list[Resource]) -> bool:
    for resource in listed(statement.get("Resource", [])):
        target = policy.ref(resource)
        if resource == "*" or any(target is not None and target.is_(t) for t in tables):
            return True
    return False


def audit_statements(app: App) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM policy statement that allows a DynamoDB action on the audit table."""
    tables = audit_tables(app)
    found = []
    for policy in app.resources("AWS::IAM::Policy"):
        for statement in policy.props["PolicyDocument"]["Statement"]:
            actions = [str(a).lower() for a in listed(statement.get("Action", []))]
            dynamodb = "NotAction" in statement or any(
                a == "*" or a.startswith("dynamodb:") for a in actions
            )
            if (
                statement.get("Effect") == "Allow"
                and dynamodb
                and on_audit_table(policy, statement, tables)
            ):
                found.append((f"{policy.stack.name}/{policy.id}: {actions}", statement))
    return found


def audit_trail_breaches(app: App) -> list[str]:
    """Each statement on the audit table that is not limited to key prefixes, or that lets a
    role update or delete an event item."""
    found = []
    for where, statement in audit_statements(app):
        prefixes = (
            (statement.get("Condition") or {})
            .get("ForAllValues:StringLike", {})
            .get("dynamodb:LeadingKeys")
        )
        if not prefixes:
            found.append(f"{where}: not limited to key prefixes")
        elif grants(statement, CHANGES) and any(
            fnmatchcase(AUDIT_EVENT, p) for p in listed(prefixes)
        ):
            found.append(f"{where}: may change or delete audit events ({prefixes})")
    return found


@pytest.mark.usefixtures("synth")  # on the synthesis' worker (conftest.GROUPS)
@pytest.mark.parametrize("app", APPS)
def test_no_function_uses_a_key_except_through_a_service(
    request: pytest.FixtureRequest, app: str
) -> None:
    found = request.getfixturevalue(app)
    assert len({where for where, _ in key_use(found)}) >= 5, "the hooks' key grants are read"
    assert unconditioned_key_use(found) == []


@pytest.mark.usefixtures("synth")
@pytest.mark.parametrize("app", APPS)
def test_no_role_may_change_or_delete_an_audit_event(
    request: pytest.FixtureRequest, app: str
) -> None:
    found = request.getfixturevalue(app)
    assert audit_tables(found), "every product has an audit trail"
    assert len(audit_statements(found)) >= 4, "the hooks' grants on it are read"
    assert audit_trail_breaches(found) == []


# --- the broken forms ------------------------------------------------------------------------


def function_with(*statements: dict[str, Any], table: bool = False) -> App:
    """One function whose role's default policy holds `statements` (and the audit table)."""
    resources: dict[str, Any] = {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        "Policy": {"Type": "AWS::IAM::Policy", "Properties": {
            "Roles": [{"Ref": "Role"}],
            "PolicyDocument": {"Statement": list(statements)}}},
        "Fn": {"Type": "AWS::Lambda::Function",
               "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
    }  # fmt: skip
    if table:
        resources["Audit"] = {"Type": "AWS::DynamoDB::GlobalTable",
                              "Properties": {"TableName": "mlgate-p-audit"}}  # fmt: skip
    return App.of(resources)


KEY = {"Fn::ImportValue": "foundation:ProductKeyArn"}
VIA_DYNAMODB = {"StringEquals": {"kms:ViaService": "dynamodb.eu-west-1.amazonaws.com"}}


@pytest.mark.parametrize(
    ("actions", "condition", "flagged"),
    [
        # CDK's send grant on a KMS-encrypted queue, as the dead-letter queues had it.
        (["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"], None, True),
        (["kms:Decrypt"], None, True),
        ("kms:*", None, True),
        ("*", None, True),
        (["kms:Decrypt", "kms:GenerateDataKey"], VIA_DYNAMODB, False),
        (["kms:DescribeKey"], None, False),
    ],
)
def test_the_key_check_finds_a_grant_without_kms_via_service(
    actions: Any, condition: Any, flagged: bool
) -> None:
    statement = {"Effect": "Allow", "Action": actions, "Resource": KEY}
    if condition:
        statement["Condition"] = condition
    assert bool(unconditioned_key_use(function_with(statement))) is flagged


def leading(*prefixes: str) -> dict[str, Any]:
    return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(prefixes)}}


AUDIT = {"Fn::GetAtt": ["Audit", "Arn"]}


@pytest.mark.parametrize(
    ("actions", "condition", "flagged"),
    [
        # The callback's grant before issue 29: UpdateItem on request and event items alike.
        (["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:Query"],
         leading("request#*", "gate#*"), True),
        (["dynamodb:DeleteItem"], leading("*"), True),
        (["dynamodb:*"], leading("gate#*"), True),
        (["dynamodb:PutItem"], None, True),
        (["dynamodb:GetItem", "dynamodb:UpdateItem"], leading("request#*"), False),
        (["dynamodb:PutItem", "dynamodb:Query"], leading("gate#*"), False),
    ],
)  # fmt: skip
def test_the_audit_check_finds_a_role_that_may_rewrite_events(
    actions: list[str], condition: Any, flagged: bool
) -> None:
    statement = {"Effect": "Allow", "Action": actions, "Resource": AUDIT}
    if condition:
        statement["Condition"] = condition
    assert bool(audit_trail_breaches(function_with(statement, table=True))) is flagged


# --- dead-letter queues, the callback URL and its flood alarms (every example) ------------


def test_every_dead_letter_queue_keeps_events_only_as_long_as_they_may_be_redriven(
    synth: Any,
) -> None:
    """Job events (artifact credentials) an hour, approval notifications (approval tokens) the
    longest manual gate's timeout, others 14 days (a batch environment's run events and sample
    starts carry neither); each queue encrypted with the product key."""
    from mlgate.infra.constructs.hooks import dead_letter_retention
    from mlgate.manifest import GateKind

    seen = {}
    for product in synth.products:
        manifest = product.manifest
        longest = max(g.timeout_hours for g in manifest.gates if g.kind is GateKind.MANUAL)
        expected = {
            "Deployer": 3600,
            "DeployVerifier": 3600,
            "QualityGate": 3600,
            "GateNotifier": longest * 3600,
            "GateCallback": 14 * 86400,
            "Release": 14 * 86400,
            "DriftResponder": 14 * 86400,
            "PipelineStarter": 14 * 86400,
            "ModelCards": 14 * 86400,
            "RollbackHook": 14 * 86400,
            "BatchRun": 14 * 86400,
        }
        for path in synth.template_files:
            template = json.loads(path.read_text())
            if f"-{manifest.product.name}-" not in path.name:
                continue
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] != "AWS::SQS::Queue" or "DeadLetters" not in logical_id:
                    continue
                hook = logical_id.split("DeadLetters")[0]
                props = resource["Properties"]
                assert props["MessageRetentionPeriod"] == expected[hook], (path.name, hook)
                assert "ProductKey" in json.dumps(props["KmsMasterKeyId"]), (path.name, hook)
                seen[hook] = props["MessageRetentionPeriod"]
        hours = DeliveryProps.of(manifest).approval_hours
        assert dead_letter_retention("gate_notifier", approval_hours=hours)[0].to_seconds() == (
            longest * 3600
        )
    assert {"Deployer", "GateNotifier", "GateCallback", "Release", "BatchRun"} <= set(seen)
    assert dead_letter_retention("batch_run")[0].to_seconds() == 14 * 86400


def callback_of(synth: Any, product: Any) -> dict[str, Any]:
    """The delivery stack's resources (the callback's)."""
    return dict(synth.template(product.extra["delivery"]).to_json()["Resources"])


def test_the_callback_url_has_no_cors_and_takes_no_iam_auth(synth: Any, product: Any) -> None:
    resources = callback_of(synth, product)
    (url,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Url"]
    assert url["Properties"]["AuthType"] == "NONE"
    assert "Cors" not in url["Properties"], "Slack posts from its servers: no CORS"


def test_on_call_hears_of_a_flood_of_requests_to_the_callback(synth: Any, product: Any) -> None:
    """Url4xxCount of the callback's URL over FLOOD_REFUSALS in five minutes, and any
    throttled invocation, each alarm to on-call."""
    from mlgate.infra.constructs.gate_hooks import FLOOD_REFUSALS

    resources = callback_of(synth, product)
    (function,) = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"
                   and k.startswith("GateCallbackFunction")]  # fmt: skip
    alarms = {r["Properties"]["MetricName"]: r["Properties"] for r in resources.values()
              if r["Type"] == "AWS::CloudWatch::Alarm"
              and r["Properties"].get("Namespace") == "AWS/Lambda"
              and r["Properties"].get("Dimensions") == [
                  {"Name": "FunctionName", "Value": {"Ref": function}}]}  # fmt: skip
    assert set(alarms) == {"Url4xxCount", "Throttles"}
    refused, throttled = alarms["Url4xxCount"], alarms["Throttles"]
    assert (refused["Threshold"], refused["Period"], refused["Statistic"]) == (
        FLOOD_REFUSALS, 300, "Sum")  # fmt: skip
    assert (throttled["Threshold"], throttled["Statistic"]) == (0, "Sum")
    for alarm in (refused, throttled):
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"], "to on-call"
        assert "CodePipeline console" in alarm["AlarmDescription"]


def test_every_audit_writer_keeps_items_for_the_manifest_s_audit_retention(
    synth: Any, product: Any
) -> None:
    """The audit table's TTL (expires_at) follows retention.audit: each hook that writes it is
    told the days (mlgate/runtime/hooks/shared/audit.py); a writer without them would keep items
    forever."""
    writers = [
        r["Properties"]["Environment"]["Variables"]
        for r in callback_of(synth, product).values()
        if r["Type"] == "AWS::Lambda::Function"
        and "AUDIT_TABLE" in r["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert len(writers) >= 3, "the notifier, the callback and the release hook at least"
    for variables in writers:
        assert variables.get("AUDIT_RETENTION_DAYS") == str(product.manifest.retention.audit)
