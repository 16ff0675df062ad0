"""Evidence read off a cloud assembly: data stores and their keys, transport, public entry
points, IAM grants, acknowledgments, lint results, alarms, dashboards, rollout policies.

Everything here is derived from the templates; nothing is typed by hand.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgate.cli.governance import lint as cfn
from mlgate.cli.reporting import Assembly, Reader
from mlgate.infra.instance_storage import has_instance_storage


@dataclass
class Store:
    stack: str
    kind: str
    name: str
    encryption: str
    key: str

    @property
    def encrypted(self) -> bool:
        return self.encryption != "none"


Conditions = dict[str, dict[str, list[str]]]
"""A statement's Condition block made readable: operator -> condition key -> values."""


@dataclass
class Grant:
    stack: str
    role: str
    actions: list[str]
    resources: list[str]
    conditions: Conditions = field(default_factory=dict)
    """What narrows the grant (a tag, the service a key is used through), as the template
    states it."""

    @property
    def wildcards(self) -> list[str]:
        return [a for a in self.actions if "*" in a] + [r for r in self.resources if r == "*"]


@dataclass
class Assumer:
    """One statement of a role's trust policy: who may assume the role, and on what
    condition."""

    stack: str
    role: str
    principals: list[str]
    """Service principals as their host (lambda.amazonaws.com), others as the template
    names them (an account root or role ARN, a role of the stack by its name)."""
    actions: list[str]
    conditions: Conditions = field(default_factory=dict)


@dataclass
class Trust:
    """A policy statement that lets another account in."""

    stack: str
    resource: str
    account: str
    principals: list[str]
    actions: list[str]


@dataclass
class Expiry:
    """One S3 lifecycle rule that expires objects, or a DynamoDB table's time to live."""

    stack: str
    store: str
    prefix: str
    """The rule's prefix; "" for the whole bucket or table."""
    days: int | None
    """Days after which current objects expire (None: the rule expires none, or a TTL whose
    days the writer sets per item)."""
    noncurrent_days: int | None


@dataclass
class Evidence:
    stacks: dict[str, Counter[str]] = field(default_factory=dict)
    stores: list[Store] = field(default_factory=list)
    ssl_only: list[str] = field(default_factory=list)
    public: list[str] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    assumers: list[Assumer] = field(default_factory=list)
    trusts: list[Trust] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)
    """Each stack's account, where the assembly states it."""
    acknowledgments: list[tuple[str, str, str, str]] = field(default_factory=list)
    lint: dict[str, list[str]] = field(default_factory=dict)
    alarms: list[tuple[str, str, str]] = field(default_factory=list)
    dashboards: list[str] = field(default_factory=list)
    rollouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    located: list[tuple[str, str, str]] = field(default_factory=list)
    """(stack, resource type, name) of every resource `names` lists, and of monitoring
    schedules and dashboards: which stack holds what (the architecture diagram)."""
    regions: dict[str, str] = field(default_factory=dict)
    release_stages: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    """The release pipeline's stages in order: (stage, [(action, provider)])."""
    pipeline_artifacts: list[str] = field(default_factory=list)
    """The buckets CodePipeline keeps its own artifacts in (its ArtifactStore)."""
    expiries: list[Expiry] = field(default_factory=list)


def _name(logical: str, resource: dict[str, Any], reader: Reader) -> str:
    """A resource by its own name; a resource that only points at another (a permission,
    an invoke config) carries that one's name, so it is named by its construct path."""
    props = resource.get("Properties", {})
    for key in (
        "BucketName",
        "TableName",
        "TopicName",
        "LogGroupName",
        "Name",
        "EndpointName",
        "RoleName",
        "FunctionName",
        "PipelineName",
        "AlarmName",
        "DashboardName",
        "ModelPackageGroupName",
    ):
        value = props.get(key)
        points_elsewhere = isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value)
        if key in props and not points_elsewhere:
            return reader.display(value)
    path = resource.get("Metadata", {}).get("aws:cdk:path", logical)
    return str(path).removesuffix("/Resource")


def _stores(stack: str, reader: Reader) -> list[Store]:
    out = []
    for logical, r in reader.resources.items():
        t, p = r["Type"], r.get("Properties", {})
        name = _name(logical, r, reader)
        if t == "AWS::S3::Bucket":
            sse = (p.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration") or [{}])[
                0
            ]
            default = sse.get("ServerSideEncryptionByDefault", {})
            out.append(
                Store(
                    stack,
                    "S3 bucket",
                    name,
                    default.get("SSEAlgorithm", "none"),
                    reader.display(default.get("KMSMasterKeyID", "S3-managed")) if default else "-",
                )
            )
        elif t in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
            sse = p.get("SSESpecification", {})
            enabled = sse.get("SSEEnabled")
            out.append(
                Store(
                    stack,
                    "DynamoDB table",
                    name,
                    sse.get("SSEType", "KMS") if enabled else "AWS-owned key",
                    "product key" if enabled else "AWS-owned",
                )
            )
        elif t == "AWS::SNS::Topic":
            key = p.get("KmsMasterKeyId")
            out.append(
                Store(
                    stack,
                    "SNS topic",
                    name,
                    "KMS" if key else "none",
                    reader.display(key) if key else "-",
                )
            )
        elif t == "AWS::Logs::LogGroup":
            key = p.get("KmsKeyId")
            out.append(
                Store(
                    stack,
                    "log group",
                    name,
                    "KMS" if key else "service-managed",
                    reader.display(key) if key else "CloudWatch Logs default",
                )
            )
        elif t == "AWS::SecretsManager::Secret":
            key = p.get("KmsKeyId")
            out.append(
                Store(
                    stack,
                    "secret",
                    name,
                    "KMS",
                    reader.display(key) if key else "aws/secretsmanager",
                )
            )
        elif t == "AWS::SageMaker::EndpointConfig":
            out.append(_endpoint_store(stack, name, p, reader))
        elif t == "AWS::Glue::SecurityConfiguration":
            enc = p.get("EncryptionConfiguration", {})
            modes = [
                enc.get("S3Encryptions", [{}])[0].get("S3EncryptionMode", "none"),
                enc.get("CloudWatchEncryption", {}).get("CloudWatchEncryptionMode", "none"),
                enc.get("JobBookmarksEncryption", {}).get("JobBookmarksEncryptionMode", "none"),
            ]
            out.append(
                Store(stack, "Glue output, logs, bookmarks", name, "/".join(modes), "product key")
            )
    return out


def _endpoint_store(stack: str, name: str, p: dict[str, Any], reader: Reader) -> Store:
    """An endpoint config's data at rest. Without a KmsKeyId a serverless endpoint is still
    encrypted: it has no storage volume and captures nothing, and SageMaker "encrypts the copied
    image at rest with a SageMaker-owned AWS KMS key"
    (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html). An instance
    endpoint without one has its volume and captured files unencrypted by the product's key."""
    key = p.get("KmsKeyId")
    if key:
        return Store(stack, "endpoint volumes and capture", name, "KMS", reader.display(key))
    variants = p.get("ProductionVariants")
    variants = [v for v in variants if isinstance(v, dict)] if isinstance(variants, list) else []
    fleets = [str(v.get("InstanceType", "")) for v in variants]
    if variants and all(has_instance_storage(fleet) for fleet in fleets):
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html
        # (captured requests go to S3 under DataCaptureConfig's own key)
        return Store(
            stack,
            "endpoint instance storage",
            name,
            "instance hardware",
            "none allowed (instance storage)",
        )
    if variants and all("ServerlessConfig" in v for v in variants):
        return Store(
            stack,
            "serverless endpoint (image copy; no volume, no capture)",
            name,
            "SageMaker-owned key",
            "SageMaker-owned",
        )
    return Store(stack, "endpoint volumes and capture", name, "none", "-")


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _conditions(condition: Any, reader: Reader) -> Conditions:
    """A Condition block with every value displayed (an ARN built with Fn::Join, an account
    by Ref, an export by its name resolved)."""
    if not isinstance(condition, dict):
        return {}
    return {
        str(operator): {
            str(key): [reader.display(v) for v in _listed(values)]
            for key, values in (keys.items() if isinstance(keys, dict) else [])
        }
        for operator, keys in condition.items()
    }


def _grants(stack: str, reader: Reader) -> list[Grant]:
    roles = {k: r for k, r in reader.resources.items() if r["Type"] == "AWS::IAM::Role"}
    grants = []

    def add(role: str, statements: list[dict[str, Any]]) -> None:
        for s in statements:
            if s.get("Effect") != "Allow":
                continue
            actions = s.get("Action", [])
            targets = s.get("Resource", [])
            grants.append(
                Grant(
                    stack,
                    role,
                    [actions] if isinstance(actions, str) else list(actions),
                    [reader.display(t) for t in _listed(targets)],
                    _conditions(s.get("Condition"), reader),
                )
            )

    for logical, role in roles.items():
        name = _name(logical, role, reader)
        for policy in role.get("Properties", {}).get("Policies", []):
            add(name, policy["PolicyDocument"]["Statement"])
        for arn in role.get("Properties", {}).get("ManagedPolicyArns", []):
            grants.append(Grant(stack, name, [f"managed policy {reader.display(arn)}"], ["*"]))
    for r in reader.resources.values():
        if r["Type"] == "AWS::IAM::Policy":
            for ref in r["Properties"].get("Roles", []):
                role = ref.get("Ref") if isinstance(ref, dict) else ref
                name = _name(role, roles[role], reader) if role in roles else str(role)
                add(name, r["Properties"]["PolicyDocument"]["Statement"])
    return grants


def _assumers(stack: str, reader: Reader) -> list[Assumer]:
    """Each role's trust policy, statement by statement."""
    found = []
    for logical, role in reader.resources.items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        name = _name(logical, role, reader)
        document = role.get("Properties", {}).get("AssumeRolePolicyDocument") or {}
        for s in document.get("Statement", []):
            if s.get("Effect") != "Allow":
                continue
            principal = s.get("Principal", {})
            principals = (
                [reader.display(v) for values in principal.values() for v in _listed(values)]
                if isinstance(principal, dict)
                else [reader.display(principal)]
            )
            found.append(
                Assumer(
                    stack,
                    name,
                    principals,
                    [str(a) for a in _listed(s.get("Action", []))],
                    _conditions(s.get("Condition"), reader),
                )
            )
    return found


# Where a template states who may act on a resource, by resource type.
_RESOURCE_POLICIES = {
    "AWS::IAM::Role": ("role", "AssumeRolePolicyDocument"),
    "AWS::S3::BucketPolicy": ("bucket policy", "PolicyDocument"),
    "AWS::KMS::Key": ("KMS key policy", "KeyPolicy"),
    "AWS::SageMaker::ModelPackageGroup": ("model package group", "ModelPackageGroupPolicy"),
    "AWS::SNS::TopicPolicy": ("topic policy", "PolicyDocument"),
}
_ACCOUNT = re.compile(r"^(?:arn:aws[a-z-]*:iam::)?(\d{12})(?::|$)")


def _principal_arns(condition: Any) -> list[str]:
    """The aws:PrincipalArn values a condition block names, wherever it names them."""
    found: list[str] = []
    if isinstance(condition, dict):
        for key, value in condition.items():
            if key == "aws:PrincipalArn":
                found += [value] if isinstance(value, str) else list(value)
            else:
                found += _principal_arns(value)
    return found


def _trusts(stack: str, account: str, reader: Reader) -> list[Trust]:
    """Statements whose principal is another account than the stack's own."""
    found = []
    for logical, r in reader.resources.items():
        if r["Type"] not in _RESOURCE_POLICIES:
            continue
        kind, key = _RESOURCE_POLICIES[r["Type"]]
        props = r.get("Properties", {})
        target = props.get("Bucket") or props.get("Topics")
        name = reader.display(target) if target else _name(logical, r, reader)
        if r["Type"] == "AWS::KMS::Key":
            name = next(
                (
                    str(alias["Properties"]["AliasName"])
                    for alias in reader.resources.values()
                    if alias["Type"] == "AWS::KMS::Alias"
                    and logical in json.dumps(alias["Properties"].get("TargetKeyId"))
                ),
                name,
            )
        for statement in (props.get(key) or {}).get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            principal = statement.get("Principal", {})
            aws = principal.get("AWS", []) if isinstance(principal, dict) else []
            for value in [aws] if isinstance(aws, str) else aws:
                match = _ACCOUNT.match(value) if isinstance(value, str) else None
                if match and match.group(1) != account:
                    actions = statement.get("Action", [])
                    found.append(
                        Trust(
                            stack=stack,
                            resource=f"{kind} {name}",
                            account=match.group(1),
                            principals=_principal_arns(statement.get("Condition", {})),
                            actions=[actions] if isinstance(actions, str) else list(actions),
                        )
                    )
    return found


def _public(stack: str, reader: Reader) -> list[str]:
    found = []
    for logical, r in reader.resources.items():
        t, p = r["Type"], r.get("Properties", {})
        name = _name(logical, r, reader)
        if t == "AWS::Lambda::Url":
            target = reader.display(p.get("TargetFunctionArn"))
            how = (
                "no AWS authentication (AuthType NONE): every request must prove itself in "
                "the function (mlgate's gate callback checks Slack's signature and a "
                "five-minute timestamp)"
                if p.get("AuthType") == "NONE"
                else "IAM (SigV4)"
            )
            found.append(f"{stack}: Lambda function URL for {target}: {how}")
        elif t.startswith("AWS::ApiGateway") and t.endswith("RestApi"):
            found.append(f"{stack}: API Gateway REST API {name}")
        elif t == "AWS::S3::Bucket":
            block = p.get("PublicAccessBlockConfiguration", {})
            if not all(
                block.get(k)
                for k in (
                    "BlockPublicAcls",
                    "BlockPublicPolicy",
                    "IgnorePublicAcls",
                    "RestrictPublicBuckets",
                )
            ):
                found.append(f"{stack}: S3 bucket {name} does not block all public access")
    return found


def _ssl_only(stack: str, reader: Reader) -> list[str]:
    out = []
    for r in reader.resources.values():
        if r["Type"] not in ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
            continue
        for s in r["Properties"]["PolicyDocument"]["Statement"]:
            if s.get("Effect") == "Deny" and "aws:SecureTransport" in json.dumps(
                s.get("Condition", {})
            ):
                target = r["Properties"].get("Bucket") or r["Properties"].get("Topics")
                out.append(f"{stack}: {reader.display(target)}")
                break
    return out


def _expiries(stack: str, reader: Reader) -> list[Expiry]:
    """What the templates expire: bucket lifecycle rules, table TTLs."""
    out = []
    for logical, r in reader.resources.items():
        p = r.get("Properties", {})
        if r["Type"] == "AWS::S3::Bucket":
            for rule in p.get("LifecycleConfiguration", {}).get("Rules", []):
                if rule.get("Status") != "Enabled":
                    continue
                noncurrent = rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
                days = rule.get("ExpirationInDays")
                if days is None and noncurrent is None:
                    continue
                out.append(
                    Expiry(stack, _name(logical, r, reader), rule.get("Prefix", ""), days,
                           noncurrent)
                )  # fmt: skip
        elif r["Type"] in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
            ttl = p.get("TimeToLiveSpecification", {})
            if ttl.get("Enabled"):
                out.append(Expiry(stack, _name(logical, r, reader), "", None, None))
    return out


def collect(outdir: Path, lint: bool = True, product: str | None = None) -> Evidence:
    """Evidence from every template of the assembly, or only one product's stacks."""
    evidence = Evidence()
    assembly = Assembly.read(outdir)
    for stack in assembly.templates:
        if product and not stack.startswith(f"mlgate-{product}-"):
            continue
        reader = assembly.reader(stack)
        resources = reader.resources
        evidence.stacks[stack] = Counter(r["Type"] for r in resources.values())
        evidence.stores += _stores(stack, reader)
        evidence.grants += _grants(stack, reader)
        evidence.assumers += _assumers(stack, reader)
        account, region = assembly.environments.get(stack, ("", "us-east-1"))
        evidence.accounts[stack] = account
        evidence.regions[stack] = region
        evidence.trusts += _trusts(stack, account, reader)
        evidence.public += _public(stack, reader)
        evidence.ssl_only += _ssl_only(stack, reader)
        evidence.expiries += _expiries(stack, reader)
        for logical, r in reader.resources.items():
            for rule in r.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                evidence.acknowledgments.append(
                    (stack, _name(logical, r, reader), reader.tokens(rule["id"]), rule["reason"])
                )
            p = r.get("Properties", {})
            if r["Type"] in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
                actions = reader.display(p.get("AlarmActions", []))
                evidence.alarms.append(
                    (
                        reader.display(p.get("AlarmName", logical)),
                        str(p.get("AlarmDescription", "")),
                        actions,
                    )
                )
            if r["Type"] == "AWS::CloudWatch::Dashboard":
                evidence.dashboards.append(reader.display(p.get("DashboardName", logical)))
            if r["Type"] == "AWS::SageMaker::Endpoint":
                config = p.get("DeploymentConfig", {})
                rollback = config.get("AutoRollbackConfiguration", {})
                # Alarm names may be references to alarms of this or another stack.
                evidence.rollouts[reader.display(p["EndpointName"])] = {
                    **config,
                    "AutoRollbackConfiguration": {
                        **rollback,
                        "Alarms": [
                            {"AlarmName": reader.display(a.get("AlarmName"))}
                            for a in rollback.get("Alarms", [])
                        ],
                    },
                }
            if r["Type"] == "AWS::CodePipeline::Pipeline":
                evidence.release_stages += [
                    (
                        str(stage["Name"]),
                        [
                            (str(a["Name"]), str(a["ActionTypeId"]["Provider"]))
                            for a in stage.get("Actions", [])
                        ],
                    )
                    for stage in p.get("Stages", [])
                ]
                stores = [p.get("ArtifactStore", {})] + [
                    x.get("ArtifactStore", {}) for x in p.get("ArtifactStores", [])
                ]
                evidence.pipeline_artifacts += [
                    reader.display(x["Location"]) for x in stores if "Location" in x
                ]
            for kind, key in (
                ("AWS::S3::Bucket", "BucketName"),
                ("AWS::Glue::Job", "Name"),
                ("AWS::SageMaker::Pipeline", "PipelineName"),
                ("AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupName"),
                ("AWS::SageMaker::Endpoint", "EndpointName"),
                ("AWS::CodePipeline::Pipeline", "Name"),
                ("AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleName"),
                ("AWS::CloudWatch::Dashboard", "DashboardName"),
                # A batch environment's runs: its named batch_run function (figures.BATCH).
                ("AWS::Lambda::Function", "FunctionName"),
            ):
                if r["Type"] == kind and key in p:
                    name = reader.display(p[key])
                    if kind not in (
                        "AWS::SageMaker::MonitoringSchedule",
                        "AWS::CloudWatch::Dashboard",
                        "AWS::Lambda::Function",
                    ):
                        evidence.names.setdefault(kind, []).append(name)
                    evidence.located.append((stack, kind, name))
        if lint:
            evidence.lint[stack] = _lint(outdir / f"{stack}.template.json", region)
    return evidence


def _lint(path: Path, region: str) -> list[str]:
    return [f"{m.rule.id} {m.message}" for m in cfn.lint(path.read_text(), region)]
