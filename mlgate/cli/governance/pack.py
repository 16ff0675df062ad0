"""The evidence pack: sections of (heading, prose, tables), rendered to Markdown and HTML."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from mlgate.cli.governance import cards, figures
from mlgate.cli.governance.evidence import Assumer, Conditions, Evidence, Grant, collect
from mlgate.cli.reporting import duration, esc, page, percent, quantity, when
from mlgate.infra.naming import Names
from mlgate.manifest import (
    ARTIFACT_PREFIXES,
    ENV_NAMES,
    UNBOUNDED_METRICS,
    GateKind,
    Manifest,
    ModelMetric,
    ModelMetricName,
    MonitoringEngine,
    Retention,
    Slo,
    SloKind,
)

Table = tuple[list[str], list[list[str]]]


@dataclass
class Section:
    title: str
    purpose: str
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, Table]] = field(default_factory=list)
    figures: list[tuple[str, str, str]] = field(default_factory=list)
    """(caption, figure name, SVG): drawn before the tables; the Markdown links
    <product>-<figure name>.svg."""


def _metric_target(metric: ModelMetric) -> str:
    """A model metric's threshold in its unit: rates as %, scores 0-1, errors in the target's."""
    direction = metric.direction.value.replace("_", " ")
    if metric.name in UNBOUNDED_METRICS:
        return f"{direction} {metric.threshold:g} in the target's unit"
    if metric.name in (ModelMetricName.AUC, ModelMetricName.R2):
        return f"{direction} {metric.threshold:g} (a score of at most 1)"
    return f"{direction} {percent(metric.threshold)}"


def _slo_target(slo: Slo) -> str:
    """An SLO's threshold in its unit, and how long a breach lasts before the alarm fires."""
    limit = (
        f"{slo.threshold:g} ms" if slo.name is SloKind.LATENCY_P99_MS else percent(slo.threshold)
    )
    return (
        f"at most {limit}; alarms after {slo.evaluation_periods} consecutive "
        f"{duration(slo.period_seconds)} periods above it"
    )


def one_pager(m: Manifest) -> Section:
    c = m.contact
    s = Section("The one-pager", "What the product is for, who owns it, how it is measured.")
    s.notes = [
        f"**{m.product.display_name}** ({m.product.name}): {m.product.objective}",
        f"Owners: PM {c(m.product.owners.product_manager).name}, ML lead "
        f"{c(m.product.owners.ml_lead).name}, on-call {c(m.product.owners.on_call).name}.",
        f"RICE score {m.rice.score:,} (reach {m.rice.reach:,}, impact {m.rice.impact:g}, "
        f"confidence {percent(m.rice.confidence)}, effort {m.rice.effort:g} person-months).",
    ]
    rows = [
        [
            "business KPI",
            k.name,
            f"{k.direction.value.replace('_', ' ')} {quantity(k.target, k.unit)}",
            c(k.owner).name,
        ]
        for k in m.metrics.business_kpis
    ]
    rows += [
        ["model metric", x.name.value, _metric_target(x), c(x.owner).name]
        for x in m.metrics.model_metrics
    ]
    rows += [["system SLO", x.name.value, _slo_target(x), c(x.owner).name] for x in m.metrics.slos]
    s.tables.append(("Metrics, by tier", (["tier", "metric", "target", "owner"], rows)))
    risks = sorted(m.risks, key=lambda r: (-r.score, r.id))
    s.figures.append(
        ("Risk register: likelihood x impact, colored by score", "risks",
         figures.risk_matrix_svg(m))
    )  # fmt: skip
    s.tables.append(
        (
            "Risk register, by score",
            (
                ["id", "risk", "likelihood x impact", "score", "status", "owner", "mitigation"],
                [
                    [
                        r.id,
                        r.title,
                        f"{r.likelihood} x {r.impact}",
                        str(r.score),
                        r.status,
                        c(r.owner).name,
                        r.mitigation,
                    ]
                    for r in risks
                ],
            ),
        )
    )
    return s


def architecture(m: Manifest, e: Evidence) -> Section:
    s = Section("Architecture", "What will be deployed, stack by stack, and how data flows.")
    s.figures.append(
        (
            "Stacks by account and region, the data flow between them, cross-account trusts",
            "architecture",
            figures.architecture_svg(m, e),
        )
    )
    s.tables.append(
        (
            "Stacks",
            (
                ["stack", "resources", "largest resource types"],
                [
                    [
                        stack,
                        str(sum(kinds.values())),
                        ", ".join(f"{n} {t.split('::', 1)[1]}" for t, n in kinds.most_common(5)),
                    ]
                    for stack, kinds in e.stacks.items()
                ],
            ),
        )
    )
    # Each resource under what it does (mlgate's names tell a raw-data bucket from a release
    # bucket, a training pipeline from a monitoring one), not under its type.
    held: dict[str, list[str]] = {}
    for part in figures.parts(m, e):
        held.setdefault(part.role, []).append(part.name)
    batches = [env for env in ENV_NAMES if m.is_batch(env)]
    endpoints = [env for env in ENV_NAMES if not m.is_batch(env)]
    written = (
        " and ".join(
            [
                *(["captured requests"] if endpoints else []),
                *(["batch predictions"] if batches else []),
            ]
        )
        + " and artifacts"
    )
    flow = [
        ("raw data", [figures.RAW]),
        ("Glue ETL and data-quality jobs", [figures.ETL, figures.QUALITY]),
        ("curated data", [figures.CURATED]),
        ("SageMaker training pipeline", [figures.TRAINING]),
        ("model registry", [figures.REGISTRY]),
        ("release pipeline", [figures.RELEASE]),
        *([("endpoints", [figures.ENDPOINT])] if endpoints else []),
        *([("batch runs (Batch Transform)", [figures.BATCH])] if batches else []),
        (written, [figures.ARTIFACTS]),
        ("monitoring", [figures.MONITORING]),
    ]
    line = [
        f"{label} ({', '.join(x for r in roles for x in held.get(r, [])) or 'none'})"
        for label, roles in flow
    ]
    s.notes.append(" → ".join(line) + "; drift starts the training pipeline again.")
    records = ", ".join(held.get(figures.RELEASES, [])) or "none"
    own = ", ".join(held.get(figures.PIPELINE_ARTIFACTS, [])) or "none"
    s.notes.append(
        f"The release pipeline keeps its records in {records} and its own artifacts in {own}."
    )
    return s


def security(e: Evidence) -> Section:
    s = Section(
        "Security posture",
        "Encryption at rest and in transit, what the internet can "
        "reach, and what every role may do.",
    )
    unencrypted = [x for x in e.stores if not x.encrypted]
    s.notes.append(
        f"{len(e.stores)} data stores, {len(unencrypted)} NOT ENCRYPTED"
        + (": " + ", ".join(f"{x.kind} {x.name}" for x in unencrypted) if unencrypted else ".")
    )
    s.tables.append(
        (
            "Encryption at rest",
            (
                ["stack", "store", "name", "encryption", "key"],
                [
                    [
                        x.stack,
                        x.kind,
                        x.name,
                        x.encryption if x.encrypted else "NOT ENCRYPTED",
                        x.key,
                    ]
                    for x in e.stores
                ],
            ),
        )
    )
    s.tables.append(
        (
            "Encryption in transit: stores that refuse plain HTTP",
            (["store"], [[x] for x in e.ssl_only]),
        )
    )
    s.tables.append(
        (
            "Reachable from the internet",
            (["entry point and protection"], [[x] for x in e.public] or [["nothing"]]),
        )
    )
    open_to_account = [t for t in e.trusts if not t.principals]
    if not e.trusts:
        note = "No statement lets another account in: the product lives in one account."
    elif not open_to_account:
        note = (
            f"{len(e.trusts)} statements let another account in; each admits only the roles it "
            "names."
        )
    else:
        note = (
            f"{len(e.trusts)} statements let another account in; "
            f"{len(e.trusts) - len(open_to_account)} admit only the roles they name, "
            f"{len(open_to_account)} leave the choice to that account's own IAM."
        )
    s.notes.append(note)
    if e.trusts:
        s.tables.append(
            (
                "Cross-account access: who from another account may act here",
                (
                    ["stack", "resource", "account", "admits only", "actions"],
                    [
                        [t.stack, t.resource, t.account,
                         ", ".join(t.principals) or "ANY principal its IAM allows",
                         ", ".join(t.actions)]
                        for t in e.trusts
                    ],
                ),
            )
        )  # fmt: skip
    s.tables.append(("What each role may do", roles_in_words(e)))
    wild = [g for g in e.grants if g.wildcards]
    s.notes.append(
        f"{len(e.grants)} IAM statements; {len(wild)} contain a WILDCARD (listed first)."
    )
    grants = sorted(e.grants, key=lambda g: (not g.wildcards, g.stack, g.role))
    s.tables.append(
        (
            "IAM: every role's grants",
            (
                ["stack", "role", "actions", "resources", "wildcards"],
                [
                    [
                        g.stack,
                        g.role,
                        ", ".join(g.actions),
                        ", ".join(g.resources),
                        "WILDCARD " + ", ".join(g.wildcards) if g.wildcards else "",
                    ]
                    for g in grants
                ],
            ),
        )
    )
    return s


# --- What each role may do, in words -------------------------------------------------------
# Read off the same statements as the grants table: each action becomes a verb by its access
# level, each service prefix the service's name, each resource the name a reviewer knows it by,
# each condition what it narrows the grant to. An action this cannot translate is shown as the
# template states it, never left out.

_SERVICES = {
    "application-autoscaling": "Application Auto Scaling",
    "athena": "Athena",
    "cloudformation": "CloudFormation",
    "cloudwatch": "CloudWatch",
    "codebuild": "CodeBuild",
    "codepipeline": "CodePipeline",
    "dynamodb": "DynamoDB",
    "ec2": "EC2",
    "ecr": "ECR",
    "events": "EventBridge",
    "glue": "Glue",
    "iam": "IAM",
    "kms": "KMS",
    "lambda": "Lambda",
    "logs": "CloudWatch Logs",
    "s3": "S3",
    "sagemaker": "SageMaker",
    "scheduler": "EventBridge Scheduler",
    "secretsmanager": "Secrets Manager",
    "sns": "SNS",
    "sqs": "SQS",
    "ssm": "SSM Parameter Store",
    "states": "Step Functions",
    "sts": "STS",
    "xray": "X-Ray",
}
# What a bare name stands for, by service (a table's name, a topic's ARN).
_DEFAULT_KINDS = {
    "codepipeline": "pipeline",
    "dynamodb": "table",
    "iam": "role",
    "kms": "key",
    "lambda": "function",
    "logs": "log group",
    "secretsmanager": "secret",
    "sns": "topic",
    "sqs": "queue",
    "sts": "role",
}
# The kinds mlgate.cli.reporting names a resource of a template by, as this table says them.
_NAMED_KINDS = {
    "KMS key": "key",
    "S3 bucket": "",
    "SNS topic": "topic",
    "SQS queue": "queue",
    "Lambda function": "function",
    "IAM role": "role",
    "DynamoDB table": "table",
    "DynamoDB GlobalTable": "table",
    "log group": "log group",
    "alarm": "alarm",
    "release pipeline": "pipeline",
    "endpoint": "endpoint",
}
# Actions whose verb their name does not say, then verbs by how an action's name starts.
_ACTIONS = {
    "iam:PassRole": "pass",
    "sts:AssumeRole": "assume",
    "kms:Decrypt": "decrypt",
    "kms:Encrypt": "encrypt",
    "kms:ReEncrypt*": "encrypt",
    "kms:ReEncryptFrom": "encrypt",
    "kms:ReEncryptTo": "encrypt",
    "kms:GenerateDataKey": "encrypt",
    "kms:GenerateDataKey*": "encrypt",
    "kms:GenerateDataKeyWithoutPlaintext": "encrypt",
    "kms:CreateGrant": "grant use of",
    "sns:Publish": "publish to",
}
_PREFIXES = (
    ("AddTags", "tag"),
    ("RemoveTags", "tag"),
    ("DeleteTags", "tag"),
    ("Untag", "tag"),
    ("Tag", "tag"),
    ("BatchGet", "read"),
    ("BatchWrite", "write"),
    ("BatchCreate", "create"),
    ("BatchDelete", "delete"),
    ("BatchUpdate", "update"),
    ("Get", "read"),
    ("List", "read"),
    ("Describe", "read"),
    ("Query", "read"),
    ("Scan", "read"),
    ("Head", "read"),
    ("Search", "read"),
    ("Lookup", "read"),
    ("Select", "read"),
    ("Receive", "read"),
    ("Download", "read"),
    ("Create", "create"),
    ("Register", "create"),
    ("Put", "write"),
    ("Upload", "write"),
    ("Copy", "write"),
    ("Abort", "write"),
    ("Associate", "write"),
    ("Publish", "write"),
    ("Restore", "write"),
    ("Update", "update"),
    ("Modify", "update"),
    ("Set", "update"),
    ("Replace", "update"),
    ("Start", "start"),
    ("Stop", "stop"),
    ("Send", "send messages to"),
    ("Invoke", "invoke"),
    ("Delete", "delete"),
    ("Deregister", "delete"),
    ("Remove", "delete"),
)
_VERB_ORDER = (
    "read",
    "create",
    "write",
    "update",
    "tag",
    "start",
    "stop",
    "invoke",
    "publish to",
    "send messages to",
    "grant use of",
    "delete",
    "decrypt",
    "encrypt",
)
_CRYPTO = {"decrypt", "encrypt"}
_MOST_NAMES = 6
"""Names of one kind listed before the rest are only counted ("... and 4 more")."""
_ARN = re.compile(r"^arn:[a-z-]+:([a-z0-9-]+):[a-z0-9-]*:(\d{12}|aws)?:(.*)$")
_ROOT = re.compile(r"^(?:arn:[a-z-]+:iam::)?(\d{12})(?::root)?$")
_LOGICAL_ID = re.compile(r"^([A-Za-z][A-Za-z0-9]*?[a-z][A-Za-z0-9]*?)[0-9A-F]{8}$")
_DIGEST = re.compile(r"\b([0-9a-f]{8})[0-9a-f]{56}\b")
_NARROWING = ("StringEquals", "StringLike", "ArnEquals", "ArnLike", "Bool")


def _service(prefix: str) -> str:
    return _SERVICES.get(prefix, prefix)


def _principal_service(host: str) -> str:
    """cloudformation.amazonaws.com, sqs.eu-west-1.amazonaws.com -> CloudFormation, SQS."""
    return _service(host.split(".", 1)[0])


def _verb(action: str) -> tuple[str, str] | None:
    """(service prefix, verb) of an action; None for one shown as the template states it."""
    if action == "*":
        return "", "do anything to"
    service, sep, name = action.partition(":")
    if not sep or not re.fullmatch(r"[a-z0-9-]+", service) or not name:
        return None
    if action in _ACTIONS:
        return service, _ACTIONS[action]
    if name == "*":
        return service, "do anything to"
    for prefix, verb in _PREFIXES:
        if name.startswith(prefix) and (
            len(name) == len(prefix) or not name[len(prefix)].islower()
        ):
            return service, verb
    return None


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _few(names: list[str]) -> str:
    """A list, cut after a few names with the rest counted."""
    if len(names) <= _MOST_NAMES:
        return ", ".join(names)
    return f"{', '.join(names[: _MOST_NAMES - 1])} and {len(names) - _MOST_NAMES + 1} more"


def _label(resource: str, service: str, account: str) -> tuple[str, str]:
    """(kind, name) a reviewer knows a resource by: bucket/prefix, a table's or stack's name,
    a role's name ("in account N" when it is another account's); "*" stays "*"."""
    if resource == "*":
        return "", "*"
    text = _DIGEST.sub(r"\1…", resource)
    arn = _ARN.match(text)
    if arn:
        kind, name = _arn_label(arn.group(1), arn.group(3))
        owner = arn.group(2) or ""
        if owner.isdigit() and account.isdigit() and owner != account:
            name = f"{name} in account {owner}"
        return kind, name
    text = re.sub(r" of stack \S+$", "", text.removeprefix("the "))
    for named, kind in _NAMED_KINDS.items():
        if text.startswith(f"{named} "):
            name = text.removeprefix(f"{named} ")
            # A resource without a physical name is named by its logical id: its hash
            # suffix tells a reader nothing (a role keeps it: the role column shows it).
            bare, _, qualifier = name.partition(":")
            if kind == "function":  # a function's versions and aliases are the function
                name, qualifier = bare, ""
            logical = _LOGICAL_ID.match(bare)
            if logical and kind != "role":
                name = logical.group(1) + (f":{qualifier}" if qualifier else "")
            return kind, name
    return _DEFAULT_KINDS.get(service, ""), text


def _arn_label(service: str, rest: str) -> tuple[str, str]:
    if service == "s3":
        return "", rest
    if service == "iam" and rest.startswith("role/"):
        return "role", rest.rsplit("/", 1)[-1]
    if service == "cloudformation" and rest.startswith("stack/"):
        return "stack", rest.split("/")[1]
    if service == "ssm" and rest.startswith("parameter/"):
        return "parameter", rest.removeprefix("parameter")
    if service == "logs" and rest.startswith("log-group:"):
        group = rest.removeprefix("log-group:").split(":log-stream:")[0]
        return "log group", group.removesuffix(":*")
    if service in ("sns", "sqs", "codepipeline") and ":" not in rest:
        return _DEFAULT_KINDS[service], rest  # a pipeline's ARN may go on to its stages
    cut = re.search(r"[/:]", rest)
    if cut is None:
        return (_DEFAULT_KINDS[service], rest) if service in _DEFAULT_KINDS else (rest, "")
    kind, name = rest[: cut.start()], rest[cut.end() :]
    if service == "lambda":
        name = name.split(":")[0]  # a function's versions and aliases are the function
    if service == "secretsmanager":
        name = re.sub(r"-[A-Za-z0-9]{6}$", "", name)
    return re.sub(r"([a-z])([A-Z])", r"\1 \2", kind).replace("-", " ").lower(), name


def _plural(kind: str, count: int) -> str:
    if count == 1 or not kind or kind.endswith("s"):
        return kind
    return kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


def _objects(service: str, labels: list[tuple[str, str]]) -> str:
    """Resources grouped by kind: "S3 b/x/*", "any SageMaker endpoint config, any model",
    "IAM roles a, b"; a bucket is left out where a prefix of it is named."""
    unique = list(dict.fromkeys(labels))
    unique = [
        (kind, name)
        for kind, name in unique
        if kind or not any(other.startswith(f"{name}/") for _, other in unique)
    ]
    kinds: dict[str, list[str]] = {}
    for kind, name in unique:
        kinds.setdefault(kind, []).append(name)
    groups = []
    for kind, names in kinds.items():
        if len(names) == 1 and (names[0] == "*" or names[0].startswith("* in account ")):
            groups.append(f"any {kind or 'resource'}{names[0].removeprefix('*')}")
        else:
            groups.append(" ".join(x for x in (_plural(kind, len(names)), _few(names)) if x))
    first = groups[0]
    if service and first.startswith("any "):
        return ", ".join([f"any {service} {first.removeprefix('any ')}", *groups[1:]])
    return ", ".join([" ".join(x for x in (service, first) if x), *groups[1:]])


def condition_words(
    conditions: Conditions, account: str = "", skip: tuple[str, ...] = ()
) -> list[str]:
    """What each condition narrows a statement to; one it does not know is stated as the
    template states it."""
    out: list[str] = []
    tags: dict[str, list[str]] = {"request": [], "resource": []}
    for operator, keys in conditions.items():
        base = operator.split(":")[-1]
        for key, values in keys.items():
            if key in skip:
                continue
            listed = _few(values)
            if base not in _NARROWING:
                out.append(f"only if {key} {operator} {listed}")
            elif key == "kms:ViaService":
                out.append(
                    f"only through {_join(list(dict.fromkeys(map(_principal_service, values))))}"
                )
            elif key == "kms:EncryptionContext:aws:s3:arn":
                objects = _objects("S3", [_label(v, "s3", account) for v in values])
                out.append(f"only for objects of {objects}")
            elif key == "iam:PassedToService":
                out.append(f"only when passed to {_join([_principal_service(v) for v in values])}")
            elif key.startswith("aws:RequestTag/"):
                tags["request"] += [f"{key.removeprefix('aws:RequestTag/')}={v}" for v in values]
            elif key.startswith("aws:ResourceTag/"):
                tags["resource"] += [f"{key.removeprefix('aws:ResourceTag/')}={v}" for v in values]
            elif key == "dynamodb:LeadingKeys":
                out.append(f"only items with keys {listed}")
            elif key == "s3:prefix":
                out.append(f"only under prefixes {listed}")
            elif key == "cloudwatch:namespace":
                out.append(f"only in namespace {listed}")
            elif key == "kms:GrantIsForAWSResource" and values == ["true"]:
                out.append("only for AWS services acting for it")
            elif key == "iam:AWSServiceName":
                out.append(f"only for {listed}")
            elif key == "aws:SourceAccount":
                out.append(f"only from account {listed}")
            elif key in ("aws:SourceArn", "aws:PrincipalArn"):
                names = [" ".join(x for x in _label(v, "iam", account) if x) for v in values]
                out.append(f"only for {_few(names)}")
            else:
                out.append(f"only if {key} {operator} {listed}")
    if tags["request"]:
        out.insert(0, f"only creating with tags {', '.join(tags['request'])}")
    if tags["resource"]:
        out.insert(0, f"only on resources tagged {', '.join(tags['resource'])}")
    return out


@dataclass(frozen=True)
class _Clause:
    form: str
    """generic, use (a key, to decrypt or encrypt), pass, assume, anything, as-is."""
    service: str
    verbs: tuple[str, ...]
    objects: tuple[tuple[str, str], ...]
    conditions: tuple[str, ...]
    target: str = ""
    """Where a passed role may go."""
    through: tuple[str, ...] = ()
    """The services a key may be used through (kms:ViaService)."""

    @property
    def anywhere(self) -> bool:
        return ("", "*") in self.objects


def _equals(conditions: Conditions, key: str) -> list[str]:
    """The values a condition key must equal (or match), if an Equals or Like states it."""
    return [
        v
        for operator in ("StringEquals", "StringLike")
        for v in conditions.get(operator, {}).get(key, [])
    ]


def _clauses(grant: Grant, account: str) -> list[_Clause]:
    found: list[_Clause] = []
    by_form: dict[tuple[str, str], list[str]] = {}
    for action in grant.actions:
        action = str(action)
        verb = _verb(action)
        if verb is None:
            prefix = action.partition(":")[0] if ":" in action else ""
            by_form.setdefault(("as-is", prefix if prefix in _SERVICES else ""), []).append(action)
            continue
        service, word = verb
        form = (
            "use"
            if word in _CRYPTO
            else word
            if word in ("pass", "assume")
            else "anything"
            if word == "do anything to"
            else "generic"
        )
        by_form.setdefault((form, service), []).append(word)
    for (form, service), verbs in by_form.items():
        label_service = "iam" if form == "assume" else service
        objects = tuple(_label(r, label_service, account) for r in grant.resources)
        if form in ("pass", "assume"):  # what is passed or assumed is a role
            objects = tuple(("role", "*") if o == ("", "*") else o for o in objects)
        target = ""
        skip: tuple[str, ...] = ()
        if form == "pass":
            passed = _equals(grant.conditions, "iam:PassedToService")
            target = _join([_principal_service(p) for p in passed]) if passed else "any service"
            skip = ("iam:PassedToService",)
        through = _equals(grant.conditions, "kms:ViaService")
        if through:
            skip += ("kms:ViaService",)
        found.append(
            _Clause(
                form,
                service,
                tuple(dict.fromkeys(verbs)),
                objects,
                tuple(condition_words(grant.conditions, account, skip)),
                target,
                tuple(dict.fromkeys(_principal_service(v) for v in through)),
            )
        )
    return found


def _render(c: _Clause) -> str:
    service = _service(c.service) if c.service else ""
    if c.form == "generic":
        verbs = sorted(c.verbs, key=_VERB_ORDER.index)
        text = f"{_join(verbs)} {_objects(service, list(c.objects))}"
    elif c.form == "use":
        verbs = sorted(c.verbs, key=_VERB_ORDER.index)
        text = f"use {_objects(service, list(c.objects))} to {_join(verbs)}"
    elif c.form == "pass":
        text = f"pass {_objects(service, list(c.objects))} to {c.target}"
    elif c.form == "assume":
        text = f"assume {_objects('', list(c.objects))}"
    elif c.form == "anything":
        text = f"WILDCARD: do anything to {_objects(service, list(c.objects))}"
    else:
        text = f"{', '.join(c.verbs)} on {_objects(service, list(c.objects))}"
    through = [f"only through {_join(list(c.through))}"] if c.through else []
    return ", ".join([text, *through, *c.conditions])


def grants_in_words(grants: list[Grant], account: str = "") -> str:
    """A role's statements as a few clauses: "read S3 b/x/*; pass IAM role r to
    CloudFormation; ...". Statements that differ only in their resources, or only in their
    verbs, read as one clause."""
    clauses: list[_Clause] = []
    for g in grants:
        if len(g.actions) == 1 and str(g.actions[0]).startswith("managed policy "):
            clauses.append(_Clause("as-is", "", (f"whatever {g.actions[0]} allows",), (), ()))
            continue
        clauses += _clauses(g, account)
    # The same verbs on more resources ("any resource" stays a clause of its own).
    merged = _merge(clauses, lambda c: (c.verbs, c.through, c.anywhere), "objects")
    # More verbs on the same resources.
    merged = _merge(merged, lambda c: (c.objects, c.through), "verbs")
    # A key used the same way through more services.
    merged = _merge(merged, lambda c: (c.verbs, c.objects, bool(c.through)), "through")
    return "; ".join(_render(c) for c in merged) or "nothing"


def _merge(
    clauses: list[_Clause],
    same: Callable[[_Clause], Any],
    field_: Literal["objects", "verbs", "through"],
) -> list[_Clause]:
    """Clauses equal in form, service, conditions, target and `same`, as one whose `field_`
    holds both's."""
    merged: dict[tuple[Any, ...], _Clause] = {}
    for c in clauses:
        key: tuple[Any, ...] = (c.form, c.service, c.conditions, c.target, same(c))
        if (c.form == "as-is" and field_ == "verbs") or (field_ == "through" and not c.through):
            key = (*key, len(merged))  # an untranslated action stays as the template has it
        if key in merged:
            first = merged[key]
            if field_ == "objects":
                c = replace(first, objects=tuple(dict.fromkeys(first.objects + c.objects)))
            elif field_ == "verbs":
                c = replace(first, verbs=tuple(dict.fromkeys(first.verbs + c.verbs)))
            else:
                c = replace(first, through=tuple(dict.fromkeys(first.through + c.through)))
        merged[key] = c
    return list(merged.values())


def assumers_in_words(assumers: list[Assumer], account: str = "") -> str:
    """Who may assume a role: a service, or the roles of another account it names."""
    out = []
    for a in assumers:
        principals = []
        named = [
            v
            for op in a.conditions.values()
            for key, values in op.items()
            if key == "aws:PrincipalArn"
            for v in values
        ]
        for p in a.principals:
            root = _ROOT.match(p)
            if p == "*":
                principals.append("ANYONE")
            elif ".amazonaws.com" in p:
                principals.append(_principal_service(p))
            elif root and named:
                principals += [" ".join(x for x in _label(v, "iam", account) if x) for v in named]
            elif root:
                principals.append(f"any principal of account {root.group(1)} its IAM allows")
            else:
                principals.append(" ".join(x for x in _label(p, "iam", account) if x))
        others = [x for x in a.actions if x != "sts:AssumeRole"]
        words = _join(list(dict.fromkeys(principals))) + (
            f" (also {', '.join(others)})" if others else ""
        )
        conditions = condition_words(
            a.conditions, account, skip=("aws:PrincipalArn",) if named else ()
        )
        out.append(", ".join([words, *conditions]))
    return "; ".join(dict.fromkeys(out)) or "no one (no trust policy in the template)"


def roles_in_words(e: Evidence) -> Table:
    """One row per role of the grants and trust policies: who may assume it, what it may do."""
    roles: dict[tuple[str, str], tuple[list[Grant], list[Assumer]]] = {}
    for g in e.grants:
        roles.setdefault((g.stack, g.role), ([], []))[0].append(g)
    for a in e.assumers:
        roles.setdefault((a.stack, a.role), ([], []))[1].append(a)
    rows = []
    for (stack, role), (grants, assumers) in sorted(roles.items()):
        account = e.accounts.get(stack, "")
        rows.append(
            [
                stack,
                role,
                assumers_in_words(assumers, account),
                grants_in_words(grants, account),
            ]
        )
    return ["stack", "role", "assumed by", "may"], rows


def retention(m: Manifest, e: Evidence) -> Section:
    """Each data class: the manifest's days, why, and the rules found in the templates that
    expire it (a class with none is NOT ENFORCED)."""
    s = Section(
        "Data retention",
        "How long each class of data is kept, why, and the rule that deletes it.",
    )
    prefixes = {prefix: data_class for data_class, prefix in ARTIFACT_PREFIXES.items()}
    names = Names.of(m)

    def where(data_class: str) -> list[str]:
        found = []
        for x in e.expiries:
            whole = x.prefix == ""
            if data_class in ("raw", "curated"):
                hit = whole and x.store.startswith(f"mlgate-{m.product.name}-{data_class}-")
            elif data_class == "audit":
                hit = x.store == names.audit_table()
            else:
                hit = prefixes.get(x.prefix) == data_class
            if hit:
                kept = (
                    f"objects after {x.days} days, old versions {x.noncurrent_days} days later"
                    if x.days is not None
                    else "items at the expires_at their writer sets (DynamoDB TTL)"
                )
                found.append(f"{x.store}{'/' + x.prefix if x.prefix else ''}: {kept}")
        return found

    rows = []
    for data_class, days in m.data_classes.items():
        field_ = Retention.model_fields[data_class]  # the default's reason
        enforced = where(data_class)
        rows.append(
            [
                data_class,
                f"{days} days",
                " ".join((field_.description or "").split()),
                "; ".join(enforced) or "NOT ENFORCED in the templates",
            ]
        )
    s.notes.append(
        "Each class is kept the manifest's days (retention:), then deleted by the rule shown; "
        "a deleted or overwritten object stays as an old version for at most 30 days more."
    )
    s.tables.append(("Retention per data class", (["class", "kept", "why", "deleted by"], rows)))
    return s


def compliance(e: Evidence) -> Section:
    s = Section(
        "Compliance",
        "Rule packs run on every synth, their findings and every "
        "acknowledgment with its reason; cfn-lint on every template.",
    )
    s.notes.append(
        "cdk-nag AwsSolutions ran in the synthesis that produced these templates; a synthesis "
        f"with an unacknowledged finding fails, so open findings: 0. Acknowledged: "
        f"{len(e.acknowledgments)}."
    )
    findings = sum(len(v) for v in e.lint.values())
    s.notes.append(f"cfn-lint: {findings} finding(s) over {len(e.lint)} templates.")
    s.tables.append(
        (
            "Acknowledgments",
            (["stack", "resource", "rule", "reason"], [list(a) for a in e.acknowledgments]),
        )
    )
    s.tables.append(
        (
            "cfn-lint",
            (
                ["stack", "findings"],
                [[stack, "; ".join(found) or "none"] for stack, found in e.lint.items()],
            ),
        )
    )
    return s


def gates(m: Manifest, e: Evidence) -> Section:
    s = Section(
        "Release gates",
        "Who decides what, in which order, on which evidence, and how "
        "each environment rolls out and back.",
    )
    brief = (
        "evidence brief: objective, model metrics against thresholds, data-quality result, "
        "KPI targets and owners, open risks, dashboard link"
    )
    auto = "registered metrics against thresholds; staging p99 latency, 5xx and error rates"
    s.tables.append(
        (
            "Gates, in release order",
            (
                ["#", "gate", "where", "decided by", "timeout", "evidence"],
                [
                    [
                        str(i),
                        g.name,
                        g.placement.value,
                        ", ".join(m.contact(a).name for a in g.approvers) or "automated",
                        duration(g.timeout_hours * 3600) if g.kind is GateKind.MANUAL else "-",
                        "evaluation report in the model registry"
                        if g.placement.value == "model_registry"
                        else (brief if g.kind is GateKind.MANUAL else auto),
                    ]
                    for i, g in enumerate(m.gates, 1)
                ],
            ),
        )
    )
    s.figures.append(
        ("The release in order, with each gate's approvers", "gates", figures.gates_svg(m, e))
    )
    rows = []
    for endpoint, config in e.rollouts.items():
        policy = config.get("BlueGreenUpdatePolicy", {})
        routing = policy.get("TrafficRoutingConfiguration", {})
        alarms = [
            str(a["AlarmName"])
            for a in config.get("AutoRollbackConfiguration", {}).get("Alarms", [])
        ]
        size = routing.get("CanarySize") or routing.get("LinearStepSize") or {}
        step = (
            f"{size['Value']:g} instance(s)"
            if size.get("Type") == "INSTANCE_COUNT"
            else f"{size['Value']:g} % of capacity"
            if size
            else "the whole fleet"
        )
        env = next((n for n in ENV_NAMES if endpoint.endswith(f"-{n}")), None)
        rows.append(
            [
                endpoint,
                str(routing.get("Type", "-")).replace("_", " ").lower(),
                step,
                m.rollout_summary(env) if env else "-",
                duration(int(routing.get("WaitIntervalInSeconds", 0))),
                ", ".join(alarms) or "no alarm",
            ]
        )
    if rows:  # a product that scores in batch everywhere has no endpoint
        s.tables.append(
            (
                "Rollout and rollback, per endpoint (from the templates)",
                (
                    [
                        "endpoint",
                        "traffic shifting",
                        "step",
                        "what a release does",
                        "bake",
                        "rolls back on",
                    ],
                    rows,
                ),
            )
        )
    batch_rows = [
        [
            env,
            f"{m.env_serving(env).instance_count} x {m.env_serving(env).instance_type}",
            m.env_serving(env).batch_settings.trigger(),
            f"{m.env_serving(env).batch_settings.sample_rows} rows",
            m.rollout_summary(env).split("; release: ", 1)[-1],
            duration(60 * m.env_serving(env).batch_settings.max_run_minutes),
            ", ".join(
                Names.of(m, env).alarm("system", f"batch-run-{what}", "critical")
                for what in ("failed", "late", "empty")
            ),
        ]
        for env in ENV_NAMES
        if m.is_batch(env)
    ]
    if batch_rows:
        s.tables.append(
            (
                "Batch environments: when runs start, how a release is checked (from the "
                "manifest; the runs' alarms from the templates)",
                (
                    ["environment", "instances per run", "runs start", "release sample",
                     "what a release does", "late after", "alarms"],
                    batch_rows,
                ),
            )
        )  # fmt: skip
    # Rolling back on demand (mlgate/cli/rollback.py): who the command accepts, and as what.
    names = Names.of(m)
    s.notes.append(
        "Roll back on demand: `python -m mlgate rollback` puts an environment back on a "
        "version it served before, through the same rollout and rollback alarms; it accepts "
        f"{', '.join(m.contact(c).name for c in m.rollback_approvers)} "
        "(delivery.rollback_approvers) and runs as the role "
        f"{names.rollback_role()}, which IAM in the home account says who may assume; each "
        "rollback's who, why and versions are in the audit trail."
    )
    shadowed = [(env, m.env_serving(env).shadow) for env in ENV_NAMES]
    shadow_rows = [
        [
            env,
            f"{test.minutes} min",
            f"{test.sampling_percent} %",
            f"{test.instance_count} x {m.env_serving(env).shadow_instance_type()}",
            str(test.min_requests),
            f"x{test.max_latency_ratio:g}",
            f"+{test.max_error_rate:.2%}",
            f"{test.max_prediction_shift:g}",
        ]
        for env, test in shadowed
        if test is not None
    ]
    if shadow_rows:
        s.tables.append(
            (
                "Shadow tests (before any traffic moves; a failed one stops the release)",
                (
                    [
                        "environment",
                        "runs",
                        "requests copied",
                        "shadow fleet",
                        "min requests",
                        "latency at most",
                        "error rate at most",
                        "prediction shift at most",
                    ],
                    shadow_rows,
                ),
            )
        )
    else:
        s.notes.append("Shadow tests: none (no environment's serving.<env>.shadow).")
    clickers = [m.contact(c).name for c in m.rollback_approvers if m.contact(c).slack_user_id]
    s.notes.append(
        "From chat: when prod is verified, the rollback hook posts the version it serves with "
        "a Roll back button; a signed click by "
        f"{', '.join(clickers) or 'no one (no rollback approver has a slack_user_id)'} starts "
        "the same rollback (the rollback state machine, as that role), and its outcome is "
        "posted back."
    )
    return s


def operations(m: Manifest, e: Evidence) -> Section:
    s = Section("Operations", "What on-call watches, who owns each alarm, how retraining runs.")
    s.notes.append(f"Dashboards: {', '.join(e.dashboards) or 'none'}.")
    mon = m.monitoring
    s.notes.append(
        f"Retraining: after each successful ETL run, {when(m.model.retrain_schedule)}, and on "
        f"drift (monitoring runs {when(mon.schedule)}), at most once per "
        f"{duration(mon.retrain_cooldown_hours * 3600)}."
    )
    s.tables.append(("Monitors", monitors(m)))
    s.tables.append(
        (
            "Alarms",
            (
                ["alarm", "owner and runbook", "notifies"],
                [
                    [
                        name,
                        description[description.find("Owner:") :]
                        if "Owner:" in description
                        else description,
                        actions,
                    ]
                    for name, description, actions in sorted(e.alarms)
                ],
            ),
        )
    )
    return s


def monitors(m: Manifest) -> Table:
    """What watches each environment's endpoint: the engine, its schedule, what declares
    drift, what model quality it computes, and where its reports go."""
    mon = m.monitoring
    evidently = mon.engine is MonitoringEngine.EVIDENTLY
    engine = (
        (
            "Evidently job (a SageMaker pipeline per environment of three Processing steps: "
            "stage, monitor with network isolation, publish)"
        )
        if evidently
        else "SageMaker Model Monitor schedules (their own stack)"
    )
    overrides = ", ".join(f"{f} {v}" for f, v in sorted(mon.feature_drift_thresholds.items()))
    drift = (
        f"share of drifted features above {percent(mon.drift_threshold)}"
        if evidently
        else "any execution that completes with violations"
    ) + (f"; per-feature score thresholds: {overrides}" if overrides else "")
    quality = (
        f"{', '.join(x.name.value for x in m.metrics.model_metrics)} on labels "
        f"{duration(mon.ground_truth_delay_hours * 3600)} after inference"
        if mon.ground_truth_s3_uri
        else "none: no ground truth declared"
    )
    rows = [
        [env, engine, when(mon.schedule), drift, quality,
         f"artifact bucket, {Names.of(m, env).monitoring_reports(evidently)}/"]
        # A serverless endpoint captures no traffic (SageMaker offers no data capture for it):
        # nothing watches it, and the pack says so.
        if m.monitored(env)
        else [env, "none: a serverless endpoint captures no traffic", "-", "-", "-", "-"]
        for env in ENV_NAMES
    ]  # fmt: skip
    return (["environment", "monitor", "runs", "drift declared when", "model quality", "reports"],
            rows)  # fmt: skip


RESOURCE_WORDS = {
    "AWS::S3::Bucket": "S3 buckets",
    "AWS::Lambda::Function": "Lambda functions",
    "AWS::DynamoDB::Table": "DynamoDB tables",
    "AWS::Logs::LogGroup": "CloudWatch log groups",
    "AWS::CloudWatch::Alarm": "CloudWatch alarms",
}
"""The resource types Trusted Advisor's checks look at (mlgate/infra/constructs/cost.py:
ADVISOR_CHECKS), as a reader names them."""


def resource_words(resource_type: str) -> str:
    """A CloudFormation type in words: 'AWS::S3::Bucket' -> 'S3 buckets'; a type without its
    own words still reads as words ('AWS::Foo::BarBaz' -> 'Foo bar baz resources')."""
    if resource_type in RESOURCE_WORDS:
        return RESOURCE_WORDS[resource_type]
    *_, service, kind = ["", "", *resource_type.split("::")]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", kind).lower()
    return f"{service} {words} resources".strip()


def costs(m: Manifest, e: Evidence) -> Section:
    """The budget, the month's estimate, and the Trusted Advisor checks that look at the
    product's resource types (those its synthesized templates create)."""
    from mlgate.cli.estimate import estimate
    from mlgate.infra.constructs.cost import SUPPORT_PLANS, advisor_checks

    s = Section(
        "Cost and Trusted Advisor",
        "What the product may spend, what it is expected to cost, and which Trusted Advisor "
        "checks watch its resources.",
    )
    c = m.cost
    s.notes.append(
        f"Budget: {c.monthly_budget:g} {c.currency} a month on cost tagged "
        f"mlgate:product={m.product.name}; alerts at {c.forecast_alert_percent} % forecast and "
        f"{c.actual_alert_percent} % actual to the PM and on-call."
        if c.monthly_budget is not None
        else "Budget: none (cost.monthly_budget is not set)."
    )
    found = estimate(m)
    s.notes.append(
        f"Estimate: {found.total:,.2f} USD a month at on-demand list prices ({found.region})"
        + (f"; spot training saves about {found.spot_saving:,.2f}" if found.spot_saving else "")
        + ". Assumes: "
        + "; ".join(found.assumptions)
        + "."
    )
    s.tables.append(
        (
            "Monthly estimate",
            (
                ["item", "USD a month", "basis"],
                [
                    [x.item, f"{x.monthly:,.2f}" if x.monthly is not None else "not estimated",
                     x.basis]
                    for x in found.lines
                ],
            ),
        )
    )  # fmt: skip
    types = {t for counted in e.stacks.values() for t in counted}
    checks = advisor_checks(types)
    s.notes.append(
        f"Trusted Advisor: errors page on-call, warnings mail the check's tier owner. Every "
        f"check below runs on {SUPPORT_PLANS}; on Basic or Developer support only the core ones "
        "do, and `mlgate preflight` warns (support-plan)."
    )
    s.tables.append(
        (
            "Trusted Advisor checks on the product's resource types",
            (
                ["check", "looks at", "warnings to", "support plan"],
                [[x.name, resource_words(x.resource_type), f"{x.tier} tier owner",
                  "any (core check)" if x.core else SUPPORT_PLANS]
                 for x in checks],
            ),
        )
    )  # fmt: skip
    return s


def model_cards(m: Manifest, rehearsal: Path | None) -> Section:
    """Each version's SageMaker Model Card: where it is, its statuses, and its content as the
    model card hook writes it (from the manifest and the last rehearsal's evaluation)."""
    s = Section(
        "Model cards",
        "The record of each model version: where its card is, how its status follows the "
        "gates, and what it says.",
    )
    s.notes, rows, caption = cards.model_cards(m, rehearsal)
    s.tables.append((caption, (["section", "field", "value"], rows)))
    return s


def build(m: Manifest, e: Evidence, rehearsal: Path | None = None) -> list[Section]:
    """The pack's sections; `rehearsal`: where `make rehearse` wrote each product's
    metrics.json (the model cards' evaluation), None for none."""
    return [
        one_pager(m),
        architecture(m, e),
        security(e),
        retention(m, e),
        compliance(e),
        gates(m, e),
        model_cards(m, rehearsal),
        operations(m, e),
        costs(m, e),
    ]


def markdown(m: Manifest, sections: list[Section]) -> str:
    out = [f"# Evidence pack: {m.product.display_name}", ""]
    for s in sections:
        out += [f"## {s.title}", f"_{s.purpose}_", ""] + [f"{n}\n" for n in s.notes]
        for caption, name, _ in s.figures:
            out += [f"![{caption}]({m.product.name}-{name}.svg)", ""]
        for caption, (head, rows) in s.tables:
            out += [f"**{caption}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            out += [
                "| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in r) + " |"
                for r in rows
            ]
            out.append("")
    return "\n".join(out)


def html(m: Manifest, sections: list[Section]) -> str:
    body = [f"<h1>Evidence pack: {esc(m.product.display_name)}</h1>"]
    for s in sections:
        body.append(f'<h2 id="{esc(s.title.lower().replace(" ", "-"))}">{esc(s.title)}</h2>')
        body.append(f"<p><em>{esc(s.purpose)}</em></p>")
        body += [f"<p>{esc(n).replace('**', '')}</p>" for n in s.notes]
        for caption, name, svg in s.figures:
            body.append(
                f'<figure class="{esc(name)}" style="margin: 8px 0 16px; overflow-x: auto;">'
                f"{svg}<figcaption>{esc(caption)}</figcaption></figure>"
            )
        for caption, (head, rows) in s.tables:
            cells = "".join(f"<th>{esc(h)}</th>" for h in head)
            body.append(f"<h3>{esc(caption)}</h3><table><tr>{cells}</tr>")
            for r in rows:
                tds = "".join(
                    f'<td class="bad">{esc(c)}</td>'
                    if (
                        "NOT ENCRYPTED" in c
                        or "WILDCARD" in c
                        or "AuthType NONE" in c
                        or "NOT ENFORCED" in c
                    )
                    else f"<td>{esc(c)}</td>"
                    for c in r
                )
                body.append(f"<tr>{tds}</tr>")
            body.append("</table>")
    return page(f"Evidence pack {m.product.name}", "\n".join(body))


def write(
    m: Manifest, outdir: Path, target: Path, lint: bool = True, rehearsal: Path | None = None
) -> tuple[Path, ...]:
    """The pack as Markdown and HTML, and each figure as an SVG file the Markdown links.
    `rehearsal`: the rehearsal's reports (default: `target`/rehearsal, where `make rehearse`
    writes them beside the pack)."""
    found = collect(outdir, lint=lint, product=m.product.name)
    sections = build(m, found, target / "rehearsal" if rehearsal is None else rehearsal)
    target.mkdir(parents=True, exist_ok=True)
    md, page_ = target / f"{m.product.name}-evidence.md", target / f"{m.product.name}-evidence.html"
    md.write_text(markdown(m, sections))
    page_.write_text(html(m, sections))
    svgs = []
    for s in sections:
        for _, name, svg in s.figures:
            path = target / f"{m.product.name}-{name}.svg"
            path.write_text(svg + "\n")
            svgs.append(path)
    return (md, page_, *svgs)
