"""What AWS documents for the properties mlgate sets and that neither cfn-lint nor CDK checks:
rules across fields and resources, limits that depend on the account, images and layers that
must exist in the stack's region, names and sizes.

One row per rule, each with the documentation page that says so and a small template that
breaks it. The test tests/test_service_rules.py holds every template of every example product
and of a product `python -m mlgate new` makes against every row, and each row against its
broken template. A row reads one resource type (`"*"`: every resource) and may look across the
whole synthesized app: the rules that target a function, the key policy of a topic's key, the
alarms of another stack in the same account and region.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

from mlgate.infra.instance_storage import has_instance_storage
from mlgate.manifest.catalog import TABLES

ACCOUNT = "111111111111"
REGION = "eu-west-1"
"""The account and region of a broken example's one stack."""

TOKEN_LENGTH = 64
"""How many characters a value CloudFormation resolves at deploy time (a Ref, a GetAtt, an
import) counts for in a size estimate: a generated name or ARN is usually shorter."""

RESERVED_CONCURRENCY_NOTE = "mlgate:reserved-concurrency"
"""The Metadata key a function carries when its manifest asks for reserved concurrency: the
note says why, and that the deploy's preflight checks the account has room for it."""

PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}


@dataclass(frozen=True)
class Stack:
    name: str
    account: str
    region: str
    template: Mapping[str, Any]

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        resources: Mapping[str, Mapping[str, Any]] = self.template.get("Resources", {})
        return resources


@dataclass(eq=False)
class App:
    """The synthesized templates, each with its stack's account and region."""

    stacks: Sequence[Stack]
    _memo: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cloud_assembly(cls, outdir: Path) -> App:
        """Every stack of a cloud assembly (`cdk.out`), from its manifest.json."""
        manifest = json.loads((outdir / "manifest.json").read_text())
        stacks = []
        for name, artifact in sorted(manifest["artifacts"].items()):
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            account, region = artifact["environment"].removeprefix("aws://").split("/")
            template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
            stacks.append(Stack(name, account, region, template))
        return cls(stacks)

    @classmethod
    def of(cls, resources: Mapping[str, Any]) -> App:
        """One stack in ACCOUNT and REGION holding `resources` (a broken example)."""
        return cls([Stack("example", ACCOUNT, REGION, {"Resources": resources})])

    def resources(self, type_: str = "*") -> Iterator[Resource]:
        for stack in self.stacks:
            for logical_id, resource in stack.resources.items():
                if type_ in ("*", resource.get("Type")):
                    yield Resource(self, stack, logical_id)

    def export(self, name: str) -> tuple[Stack, Any] | None:
        """The stack and value of the output exported as `name`."""
        exports: dict[str, tuple[Stack, Any]] = self._memo.setdefault("exports", {})
        if not exports:
            for stack in self.stacks:
                for output in stack.template.get("Outputs", {}).values():
                    export = output.get("Export", {}).get("Name")
                    if isinstance(export, str):
                        exports[export] = (stack, output["Value"])
        return exports.get(name)

    def target(self, stack: Stack, value: Any) -> Resource | None:
        """The resource a Ref, a GetAtt or an import of either names, if this app makes it."""
        if not isinstance(value, dict) or len(value) != 1:
            return None
        ((function, argument),) = value.items()
        if function == "Ref" and argument in stack.resources:
            return Resource(self, stack, argument)
        if function == "Fn::GetAtt":
            logical_id = argument[0] if isinstance(argument, list) else argument.split(".")[0]
            if logical_id in stack.resources:
                return Resource(self, stack, logical_id)
        if function == "Fn::ImportValue" and isinstance(argument, str):
            found = self.export(argument)
            if found is not None:
                return self.target(*found)
        return None


@dataclass(frozen=True)
class Resource:
    app: App
    stack: Stack
    id: str

    @property
    def definition(self) -> Mapping[str, Any]:
        return self.stack.resources[self.id]

    @property
    def type(self) -> str:
        type_: str = self.definition["Type"]
        return type_

    @property
    def props(self) -> Mapping[str, Any]:
        props: Mapping[str, Any] = self.definition.get("Properties", {})
        return props

    def ref(self, value: Any) -> Resource | None:
        return self.app.target(self.stack, value)

    def is_(self, other: Resource | None) -> bool:
        return other is not None and (other.stack.name, other.id) == (self.stack.name, self.id)

    def neighbours(self, type_: str) -> Iterator[Resource]:
        """The resources of `type_` in this resource's account and region."""
        for resource in self.app.resources(type_):
            if (resource.stack.account, resource.stack.region) == (
                self.stack.account,
                self.stack.region,
            ):
                yield resource

    def literal(self, value: Any) -> str | None:
        """`value` as text when the template fixes it: a string, or a join of strings and the
        stack's pseudo parameters; None when it depends on another resource."""
        if isinstance(value, str):
            return value
        if not isinstance(value, dict) or len(value) != 1:
            return None
        ((function, argument),) = value.items()
        if function == "Ref":
            known = {"AWS::Region": self.stack.region, "AWS::AccountId": self.stack.account}
            return {**PSEUDO, **known}.get(argument)
        if function == "Fn::Join":
            parts = [self.literal(part) for part in argument[1]]
            if any(part is None for part in parts):
                return None
            return str(argument[0]).join(part for part in parts if part is not None)
        return None

    def estimate(self, value: Any) -> Any:
        """`value` with every deploy-time token replaced by TOKEN_LENGTH characters (or its
        literal), for a size estimate."""
        if isinstance(value, list):
            return [self.estimate(item) for item in value]
        if isinstance(value, dict):
            if len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref")):
                known = self.literal(value)
                if known is not None:
                    return known
                if "Fn::Join" in value:
                    separator, parts = value["Fn::Join"]
                    return separator.join(str(self.estimate(part)) for part in parts)
                return "x" * TOKEN_LENGTH
            return {key: self.estimate(item) for key, item in value.items()}
        return value

    def text(self, value: Any) -> str:
        """Every string in `value` (tokens left out), one per line, to search."""
        found: list[str] = []

        def walk(item: Any) -> None:
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, list):
                for part in item:
                    walk(part)
            elif isinstance(item, dict):
                for part in item.values():
                    walk(part)

        walk(value)
        return "\n".join(found)


@dataclass(frozen=True)
class ServiceRule:
    id: str
    type: str
    """The CloudFormation resource type the rule reads; "*" for every resource."""
    rule: str
    """The rule, in words."""
    check: Callable[[Resource], str | None]
    """What is wrong with one resource, or None when it keeps the rule."""
    doc: str
    broken: Mapping[str, Any]
    """The Resources of a template (one stack in ACCOUNT and REGION) that break the rule."""


def violations(rule: ServiceRule, app: App) -> list[str]:
    found = []
    for resource in app.resources(rule.type):
        problem = rule.check(resource)
        if problem is not None:
            found.append(f"{resource.stack.name}/{resource.id}: {problem} ({rule.id}: {rule.doc})")
    return found


def _get(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statements_allow(policy: Any, service: str, actions: Sequence[str]) -> bool:
    """Whether an Allow statement of `policy` lets service principal `service` do every one of
    `actions` (wildcards in the policy count)."""
    granted: set[str] = set()
    for statement in _listed(_get(policy, "Statement")):
        if statement.get("Effect") != "Allow":
            continue
        principals = _listed(_get(statement, "Principal.Service"))
        if service not in principals:
            continue
        for allowed in _listed(statement.get("Action")):
            granted |= {a for a in actions if fnmatchcase(a.lower(), str(allowed).lower())}
    return granted == set(actions)


def _broken(type_: str, **props: Any) -> dict[str, Any]:
    return {"Subject": {"Type": type_, "Properties": props}}


# -- Names --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Name:
    type: str
    path: str
    """Where the name is: a property path, `[]` for each item of a list."""
    low: int
    high: int
    pattern: str
    """The characters a name may take (a full match)."""
    doc: str
    bad: str
    """A name that breaks the rule."""
    what: str
    extra: Callable[[str], str | None] | None = None
    scope: str = "region"
    """Where the name must be unique: "region" (the account's region), "account", "partition",
    or "parent" (within the resource it is embedded in, which this table does not check)."""
    folded: bool = False
    """Names that differ only in case are the same name."""


def _names_at(resource: Resource, path: str) -> Iterator[str]:
    values: list[Any] = [resource.props]
    for part in path.split("."):
        many = part.endswith("[]")
        key = part.removesuffix("[]")
        nxt: list[Any] = []
        for value in values:
            item = value.get(key) if isinstance(value, Mapping) else None
            nxt.extend(_listed(item) if many else [item])
        values = nxt
    for value in values:
        name = resource.literal(value)
        if name is not None:
            yield name


def _name_check(name: Name) -> Callable[[Resource], str | None]:
    def check(resource: Resource) -> str | None:
        for value in _names_at(resource, name.path):
            size = len(value.encode())
            if not name.low <= size <= name.high:
                return f"{name.path} {value!r} is {size} long, not {name.low} to {name.high}"
            if not re.fullmatch(name.pattern, value):
                return f"{name.path} {value!r} is not {name.what}"
            if name.extra is not None:
                problem = name.extra(value)
                if problem is not None:
                    return f"{name.path} {value!r}: {problem}"
        return None

    return check


def _bucket_name(name: str) -> str | None:
    if ".." in name:
        return "two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
        return "formatted as an IP address"
    except ValueError:
        pass
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            return f"the prefix {prefix} is reserved"
    for suffix in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(suffix):
            return f"the suffix {suffix} is reserved"
    return None


def _alias_name(name: str) -> str | None:
    return "alias/aws/ is reserved for AWS managed keys" if name.startswith("alias/aws/") else None


def _parameter_name(name: str) -> str | None:
    if re.match(r"/?(aws|ssm)", name, re.IGNORECASE):
        return 'a parameter name can\'t begin with "aws" or "ssm"'
    if "/" in name and not name.startswith("/"):
        return "a name in a hierarchy begins with /"
    if name.count("/") > 15:
        return "hierarchies are at most fifteen levels deep"
    # The 1,011 characters include the ARN before the name: arn:aws:ssm:<region>:<account>:parameter
    if len("arn:aws:ssm:ap-southeast-7:111111111111:parameter") + len(name) > 1011:
        return "longer than 1,011 characters with its ARN"
    return None


def _secret_name(name: str) -> str | None:
    if re.search(r"-[A-Za-z0-9]{6}$", name):
        return "ends with a hyphen and six characters, as the suffix Secrets Manager adds"
    return None


GLUE = "https://docs.aws.amazon.com/glue/latest/webapi/API_{}.html"
SAGEMAKER = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_{}.html"
SAGEMAKER_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
SINGLE_LINE = r"[^\r\n]*"
PRINTABLE = r"[^\x00-\x1f\x7f]+"

# fmt: off
NAMES: tuple[Name, ...] = (
    Name("AWS::Lambda::Function", "FunctionName", 1, 64, r"[a-zA-Z0-9_-]+",
         "https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html", "my.function",
         "letters, digits, hyphens and underscores"),
    Name("AWS::IAM::Role", "RoleName", 1, 64, r"[\w+=,.@-]+",
         "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html", "r" * 65,
         "alphanumerics and _+=,.@-", scope="account", folded=True),
    Name("AWS::IAM::Policy", "PolicyName", 1, 128, r"[\w+=,.@-]+",
         "https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html",
         "grants reads", "alphanumerics and _+=,.@-", scope="parent"),
    Name("AWS::S3::Bucket", "BucketName", 3, 63, r"[a-z0-9][a-z0-9.-]*[a-z0-9]",
         "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html",
         "xn--data-bucket",
         "lowercase letters, digits, periods and hyphens, begun and ended by a letter or digit",
         extra=_bucket_name, scope="partition"),
    Name("AWS::SageMaker::Endpoint", "EndpointName", 1, 63, SAGEMAKER_NAME,
         SAGEMAKER.format("CreateEndpoint"), "some_product",
         "alphanumerics and hyphens, begun and ended by an alphanumeric", folded=True),
    Name("AWS::SageMaker::EndpointConfig", "EndpointConfigName", 1, 63, SAGEMAKER_NAME,
         SAGEMAKER.format("CreateEndpointConfig"), "e" * 64,
         "alphanumerics and hyphens, begun and ended by an alphanumeric", folded=True),
    Name("AWS::SageMaker::InferenceComponent", "InferenceComponentName", 1, 63,
         r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?", SAGEMAKER.format("CreateInferenceComponent"),
         "model-", "alphanumerics and hyphens, begun and ended by an alphanumeric"),
    Name("AWS::SageMaker::Model", "ModelName", 1, 63, SAGEMAKER_NAME,
         SAGEMAKER.format("CreateModel"), "model-",
         "alphanumerics and hyphens, begun and ended by an alphanumeric", folded=True),
    Name("AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupName", 1, 63, SAGEMAKER_NAME,
         SAGEMAKER.format("CreateModelPackageGroup"), "m" * 64,
         "alphanumerics and hyphens, begun and ended by an alphanumeric"),
    Name("AWS::SageMaker::Pipeline", "PipelineName", 1, 256, r"[a-zA-Z0-9](-*[a-zA-Z0-9])*",
         SAGEMAKER.format("CreatePipeline"), "training_pipeline",
         "alphanumerics and hyphens, begun and ended by an alphanumeric"),
    Name("AWS::SageMaker::MlflowTrackingServer", "TrackingServerName", 1, 256,
         r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", SAGEMAKER.format("CreateMlflowTrackingServer"),
         "fraud_detection_mlflow",
         "alphanumerics and hyphens, begun and ended by an alphanumeric"),
    Name("AWS::Glue::Crawler", "Name", 1, 255, SINGLE_LINE, GLUE.format("CreateCrawler"), "c" * 256,
         "one line"),
    Name("AWS::Glue::Job", "Name", 1, 255, SINGLE_LINE, GLUE.format("CreateJob"), "curate\njob",
         "one line"),
    Name("AWS::Glue::Trigger", "Name", 1, 255, SINGLE_LINE, GLUE.format("CreateTrigger"), "t" * 256,
         "one line"),
    Name("AWS::Glue::Workflow", "Name", 1, 255, SINGLE_LINE, GLUE.format("CreateWorkflow"),
         "w" * 256, "one line"),
    Name("AWS::Glue::DataQualityRuleset", "Name", 1, 255, SINGLE_LINE,
         GLUE.format("CreateDataQualityRuleset"), "r" * 256, "one line"),
    Name("AWS::Glue::SecurityConfiguration", "Name", 1, 255, SINGLE_LINE,
         GLUE.format("CreateSecurityConfiguration"), "s" * 256, "one line"),
    Name("AWS::Events::Rule", "Name", 1, 64, r"[.\-_A-Za-z0-9]+",
         "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html",
         "mlgate/model-approved", "letters, digits and .-_"),
    Name("AWS::CloudWatch::Alarm", "AlarmName", 1, 255, PRINTABLE,
         "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html",
         "a" * 256, "free of ASCII control characters"),
    Name("AWS::CloudWatch::CompositeAlarm", "AlarmName", 1, 255, PRINTABLE,
         "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutCompositeAlarm.html",
         "model\tunhealthy", "free of ASCII control characters"),
    Name("AWS::CloudWatch::Dashboard", "DashboardName", 1, 255, r"[A-Za-z0-9_-]+",
         "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html",
         "mlgate/some-product", "letters, digits, - and _"),
    Name("AWS::SNS::Topic", "TopicName", 1, 256, r"[A-Za-z0-9_-]+(\.fifo)?",
         "https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html", "on.call",
         "ASCII letters, digits, _ and -"),
    Name("AWS::SQS::Queue", "QueueName", 1, 80, r"[A-Za-z0-9_-]+(\.fifo)?",
         "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html",
         "q" * 81, "alphanumerics, - and _"),
    Name("AWS::DynamoDB::GlobalTable", "TableName", 3, 255, r"[a-zA-Z0-9_.-]+",
         "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html",
         "ab", "letters, digits, _ - and ."),
    Name("AWS::KMS::Alias", "AliasName", 1, 256, r"alias/[a-zA-Z0-9/_-]+",
         "https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html",
         "alias/aws/mlgate", "alias/ and then alphanumerics, /, _ and -", extra=_alias_name),
    Name("AWS::SSM::Parameter", "Name", 1, 1011, r"[a-zA-Z0-9_.\-/]+",
         "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html",
         "/ssm/mlgate/live", "a-z A-Z 0-9 _ . - and /", extra=_parameter_name),
    Name("AWS::Logs::LogGroup", "LogGroupName", 1, 512, r"[.\-_/#A-Za-z0-9]+",
         "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html",
         "/aws-glue/jobs/my job", "letters, digits and ._-/#"),
    Name("AWS::SecretsManager::Secret", "Name", 1, 512, r"[A-Za-z0-9/_+=.@-]+",
         "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html",
         "mlgate/some-product/webhook-abcdef", "ASCII letters, digits and /_+=.@-",
         extra=_secret_name),
    Name("AWS::CodePipeline::Pipeline", "Name", 1, 100, r"[A-Za-z0-9.@\-_]+",
         "https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_PipelineDeclaration.html",
         "mlgate some release", "letters, digits and .@-_"),
    Name("AWS::CodePipeline::Pipeline", "Stages[].Name", 1, 100, r"[A-Za-z0-9.@\-_]+",
         "https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_StageDeclaration.html",
         "Deploy prod", "letters, digits and .@-_"),
    Name("AWS::ApplicationAutoScaling::ScalingPolicy", "PolicyName", 1, 256, r"[\x20-\x7e]+",
         "https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScalingPolicy.html",
         "p" * 257, "printable"),
)
# fmt: on


def _broken_name(name: Name) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if name.path.endswith("[]"):
        raise ValueError(name.path)
    if "[]." in name.path:
        outer, inner = name.path.split("[].")
        props[outer] = [{inner: name.bad}]
    else:
        props[name.path] = name.bad
    return {"Subject": {"Type": name.type, "Properties": props}}


# -- Glue ---------------------------------------------------------------------------------------


def _incremental_crawl_logs(crawler: Resource) -> str | None:
    if _get(crawler.props, "RecrawlPolicy.RecrawlBehavior") != "CRAWL_NEW_FOLDERS_ONLY":
        return None
    policy = crawler.props.get("SchemaChangePolicy") or {}
    update, delete = policy.get("UpdateBehavior"), policy.get("DeleteBehavior")
    if (update, delete) != ("LOG", "LOG"):
        return (
            "RecrawlBehavior CRAWL_NEW_FOLDERS_ONLY takes SchemaChangePolicy UpdateBehavior LOG "
            f"and DeleteBehavior LOG, not {update} and {delete}"
        )
    return None


def _glue_version(job: Resource) -> float:
    version = job.props.get("GlueVersion")
    try:
        return float(version) if version not in (None, "auto") else math.inf
    except (TypeError, ValueError):
        return math.inf


def _job_capacity(job: Resource) -> str | None:
    if _get(job.props, "Command.Name") not in ("glueetl", "gluestreaming"):
        return None
    if _glue_version(job) < 2.0:
        return None
    if "MaxCapacity" in job.props or "AllocatedCapacity" in job.props:
        return "Glue 2.0 and later take WorkerType and NumberOfWorkers, not MaxCapacity"
    if not ("WorkerType" in job.props and "NumberOfWorkers" in job.props):
        return "Glue 2.0 and later need WorkerType and NumberOfWorkers"
    return None


def _job_timeout(job: Resource) -> str | None:
    timeout = job.props.get("Timeout")
    if isinstance(timeout, int) and timeout > 10080:
        return f"Timeout {timeout} minutes is over 7 days (10,080 minutes)"
    return None


def _job_worker_type(job: Resource) -> str | None:
    kind, worker = _get(job.props, "Command.Name"), job.props.get("WorkerType")
    if not isinstance(worker, str):
        return None
    if kind == "glueray":
        return None if worker == "Z.2X" else f"Ray jobs take worker type Z.2X, not {worker}"
    if worker == "Z.2X":
        return "worker type Z.2X is for Ray jobs"
    if worker == "G.025X" and kind != "gluestreaming":
        return "worker type G.025X is for streaming jobs only"
    if kind in ("glueetl", "gluestreaming") and not re.fullmatch(r"[GR]\.\d+X|G\.025X", worker):
        return f"Spark jobs take G.* or R.* worker types, not {worker}"
    return None


def _expand(field_: str, low: int, high: int) -> set[int] | None:
    """The values a cron field takes, or None when it uses more than , - * and /."""
    values: set[int] = set()
    for part in field_.split(","):
        match = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", part)
        if match is None:
            return None
        start, end, step = match.groups()
        first = low if start == "*" else int(start)
        last = high if start == "*" or (end is None and step) else int(end or start)
        values |= set(range(first, last + 1, int(step or 1)))
    return values


def _cron_problem(expression: str, every: int) -> str | None:
    """What is wrong with a cron(...) expression that may run at most every `every` minutes."""
    match = re.fullmatch(r"cron\((.*)\)", expression.strip())
    if match is None:
        return f"{expression!r} is not cron(...)"
    fields = match.group(1).split()
    if len(fields) != 6:
        return f"{expression!r} has {len(fields)} fields, not six"
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        return f"{expression!r}: give ? in exactly one of day-of-month and day-of-week"
    minutes, hours = _expand(fields[0], 0, 59), _expand(fields[1], 0, 23)
    if minutes and hours and every > 1:
        times = sorted(h * 60 + m for h in hours for m in minutes)
        gaps = [b - a for a, b in zip(times, [*times[1:], times[0] + 1440], strict=True)]
        if len(times) > 1 and min(gaps) < every:
            return f"{expression!r} runs every {min(gaps)} minutes, more often than {every}"
    return None


def _trigger_schedule(trigger: Resource) -> str | None:
    schedule = trigger.props.get("Schedule")
    return _cron_problem(schedule, 5) if isinstance(schedule, str) else None


def _trigger_fields(trigger: Resource) -> str | None:
    kind = trigger.props.get("Type")
    if kind == "SCHEDULED" and "Schedule" not in trigger.props:
        return "a SCHEDULED trigger needs a Schedule"
    if kind == "CONDITIONAL" and "Predicate" not in trigger.props:
        return "a CONDITIONAL trigger needs a Predicate"
    if kind == "ON_DEMAND" and trigger.props.get("StartOnCreation") is True:
        return "StartOnCreation true is not supported for ON_DEMAND triggers"
    return None


def _catalog_name(value: Any, what: str, resource: Resource) -> str | None:
    name = resource.literal(value)
    if name is None:
        return None
    if name != name.lower() or name != name.lstrip() or not 1 <= len(name.encode()) <= 255:
        return f"{what} {name!r} is not lowercase, 1 to 255 bytes, without leading spaces"
    return None


def _database_name(database: Resource) -> str | None:
    name = _get(database.props, "DatabaseInput.Name")
    if name is None:
        return "no DatabaseInput.Name: Glue makes one up that Athena cannot use"
    return _catalog_name(name, "database name", database)


def _table_names(table: Resource) -> str | None:
    names = [("table name", _get(table.props, "TableInput.Name"))]
    columns = _listed(_get(table.props, "TableInput.StorageDescriptor.Columns"))
    columns += _listed(_get(table.props, "TableInput.PartitionKeys"))
    names += [("column name", column.get("Name")) for column in columns]
    for what, value in names:
        problem = _catalog_name(value, what, table)
        if problem is not None:
            return problem
    return None


# -- Lambda -------------------------------------------------------------------------------------


def _no_reserved_concurrency(function: Resource) -> str | None:
    if "ReservedConcurrentExecutions" not in function.props:
        return None
    if RESERVED_CONCURRENCY_NOTE in function.definition.get("Metadata", {}):
        return None
    return (
        f"reserves {function.props['ReservedConcurrentExecutions']} concurrent executions the "
        "manifest did not ask for: the account must keep 100 unreserved, and a new account's "
        "limit may be that low"
    )


def _managed_instances(function: Resource) -> bool:
    return "CapacityProviderConfig" in function.props


def _function_timeout(function: Resource) -> str | None:
    timeout = function.props.get("Timeout")
    if isinstance(timeout, int) and timeout > 900 and not _managed_instances(function):
        return f"Timeout {timeout} s is over Lambda's 900 s"
    return None


def _function_memory(function: Resource) -> str | None:
    memory = function.props.get("MemorySize")
    if isinstance(memory, int) and not 128 <= memory <= 10240 and not _managed_instances(function):
        return f"MemorySize {memory} MB is outside 128 to 10,240 MB"
    return None


@dataclass(frozen=True)
class LayerSource:
    """Layers AWS publishes in every commercial region under one account."""

    account: str
    name: str
    """A full-match pattern of the layer's name; groups `runtime` and `arch` when it has them."""
    versions: frozenset[int]
    doc: str


KNOWN_LAYERS: tuple[LayerSource, ...] = (
    LayerSource(
        account="017000801446",
        name=r"AWSLambdaPowertoolsPythonV3-(?P<runtime>python3\d+)-(?P<arch>x86_64|arm64)",
        versions=frozenset({27}),
        doc="https://docs.aws.amazon.com/powertools/python/latest/getting-started/install/",
    ),
)

LAYER_ARN = re.compile(
    r"arn:(?P<partition>[a-z-]+):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):layer:"
    r"(?P<name>[a-zA-Z0-9_-]+):(?P<version>\d+)"
)


def _layers(function: Resource) -> str | None:
    runtime = str(function.props.get("Runtime", "")).replace(".", "")
    arch = (_listed(function.props.get("Architectures")) or ["x86_64"])[0]
    for layer in _listed(function.props.get("Layers")):
        built = function.ref(layer)
        if built is not None and built.type == "AWS::Lambda::LayerVersion":
            runtimes = [
                str(r).replace(".", "") for r in _listed(built.props.get("CompatibleRuntimes"))
            ]
            arches = _listed(built.props.get("CompatibleArchitectures"))
            if (runtimes and runtime not in runtimes) or (arches and arch not in arches):
                return f"layer {built.id} is built for {runtimes} {arches}, not {runtime} {arch}"
            continue
        arn = function.literal(layer)
        match = LAYER_ARN.fullmatch(arn or "")
        if match is None:
            return f"layer {layer!r} is neither built by the app nor a layer version ARN"
        if match["region"] != function.stack.region:
            return f"layer {arn} is in {match['region']}, the function in {function.stack.region}"
        source = next(
            (
                s
                for s in KNOWN_LAYERS
                if s.account == match["account"] and re.fullmatch(s.name, match["name"])
            ),
            None,
        )
        if source is None or int(match["version"]) not in source.versions:
            return f"layer {arn} is not in KNOWN_LAYERS"
        named = re.fullmatch(source.name, match["name"])
        assert named is not None
        parts = named.groupdict()
        if parts.get("runtime", runtime) != runtime or parts.get("arch", arch) != arch:
            return f"layer {arn} is built for another runtime or architecture than {runtime} {arch}"
    return None


def _environment_size(function: Resource) -> str | None:
    variables = _get(function.props, "Environment.Variables")
    if not variables:
        return None
    size = len(json.dumps(function.estimate(variables), separators=(",", ":")).encode())
    if size > 4096:
        return f"environment variables take about {size} bytes, over Lambda's 4 KB"
    return None


def _log_level_json(function: Resource) -> str | None:
    logging = function.props.get("LoggingConfig") or {}
    levels = {"ApplicationLogLevel", "SystemLogLevel"} & set(logging)
    if levels and logging.get("LogFormat") != "JSON":
        return f"{', '.join(sorted(levels))} filter logs only with LogFormat JSON"
    return None


def _permissions_of(function: Resource) -> Iterator[Mapping[str, Any]]:
    for permission in function.app.resources("AWS::Lambda::Permission"):
        if function.is_(permission.ref(permission.props.get("FunctionName"))):
            yield permission.props


def _public_url(url: Resource) -> str | None:
    if url.props.get("AuthType") != "NONE":
        return None
    function = url.ref(url.props.get("TargetFunctionArn"))
    if function is None:
        return None
    permissions = list(_permissions_of(function))
    needed: dict[str, Callable[[Mapping[str, Any]], bool]] = {
        "lambda:InvokeFunctionUrl": lambda p: p.get("FunctionUrlAuthType") == "NONE",
        "lambda:InvokeFunction": lambda p: p.get("InvokedViaFunctionUrl") is True,
    }
    for action, condition in needed.items():
        if not any(
            p.get("Action") == action and p.get("Principal") == "*" and condition(p)
            for p in permissions
        ):
            return (
                f"a public function URL needs a permission for {action} to * (since October 2025)"
            )
    return None


# -- EventBridge --------------------------------------------------------------------------------


def _target_kind(rule: Resource, target: Mapping[str, Any]) -> tuple[str, Resource | None]:
    """A rule target's service (lambda, sns, sqs, logs, sagemaker, ...) and resource, if built."""
    arn = target.get("Arn")
    built = rule.ref(arn)
    if built is not None:
        return built.type.split("::")[1].lower(), built
    text = rule.literal(arn) or ""
    match = re.match(r"arn:[a-z-]+:([a-z0-9-]+):", text)
    return (match.group(1) if match else "unknown"), None


def _lambda_targets(rule: Resource) -> Iterator[Resource]:
    for target in _listed(rule.props.get("Targets")):
        kind, built = _target_kind(rule, target)
        if kind == "lambda" and built is not None and built.type == "AWS::Lambda::Function":
            yield built


def _on_failure(rule: Resource) -> str | None:
    for function in _lambda_targets(rule):
        if _get(function.props, "DeadLetterConfig.TargetArn"):
            continue
        configs = [
            c
            for c in function.app.resources("AWS::Lambda::EventInvokeConfig")
            if function.is_(c.ref(c.props.get("FunctionName")))
            and c.props.get("Qualifier", "$LATEST") == "$LATEST"
            and _get(c.props, "DestinationConfig.OnFailure.Destination")
        ]
        if not configs:
            return (
                f"targets {function.id}, which EventBridge invokes asynchronously, and it has "
                "neither an on-failure destination nor a dead-letter queue"
            )
    return None


def _metric_of(alarm: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if "MetricName" in alarm:
        yield alarm
    for query in _listed(alarm.get("Metrics")):
        metric = _get(query, "MetricStat.Metric")
        if metric:
            yield metric


def _failed_invocations_alarm(rule: Resource) -> str | None:
    kinds = {_target_kind(rule, t)[0] for t in _listed(rule.props.get("Targets"))}
    if not kinds & {"lambda", "sns"}:
        return None
    names = {rule.literal(rule.props.get("Name"))} - {None}
    for alarm in rule.neighbours("AWS::CloudWatch::Alarm"):
        if alarm.props.get("TreatMissingData") == "breaching":
            continue  # EventBridge sends FailedInvocations only when it isn't zero
        for metric in _metric_of(alarm.props):
            if (metric.get("Namespace"), metric.get("MetricName")) != (
                "AWS/Events",
                "FailedInvocations",
            ):
                continue
            for dimension in _listed(metric.get("Dimensions")):
                value = dimension.get("Value")
                if dimension.get("Name") == "RuleName" and (
                    alarm.literal(value) in names or rule.is_(alarm.ref(value))
                ):
                    return None
    return (
        f"targets {', '.join(sorted(kinds & {'lambda', 'sns'}))} and no alarm watches its "
        "AWS/Events FailedInvocations (dimension RuleName), so a dropped notice goes unseen"
    )


def _lambda_permission(rule: Resource) -> str | None:
    for function in _lambda_targets(rule):
        allowed = any(
            p.get("Principal") == "events.amazonaws.com"
            and p.get("Action") in ("lambda:InvokeFunction", "lambda:*")
            and (p.get("SourceArn") is None or rule.is_(rule.ref(p.get("SourceArn"))))
            for p in _permissions_of(function)
        )
        if not allowed:
            return f"no permission lets events.amazonaws.com invoke {function.id} for this rule"
    return None


def _no_role_for_policy_targets(rule: Resource) -> str | None:
    for target in _listed(rule.props.get("Targets")):
        kind, _ = _target_kind(rule, target)
        if kind in ("lambda", "sns", "sqs", "logs") and target.get("RoleArn") is not None:
            return f"a {kind} target takes a resource-based policy and no RoleArn"
    return None


def _schedule_expression(rule: Resource) -> str | None:
    expression = rule.props.get("ScheduleExpression")
    if not isinstance(expression, str):
        return None
    if expression.startswith("rate("):
        match = re.fullmatch(r"rate\((\d+) (minute|hour|day)(s?)\)", expression)
        if match is None or int(match.group(1)) < 1:
            return f"{expression!r} is not rate(value unit) with a positive value"
        if (int(match.group(1)) == 1) == (match.group(3) == "s"):
            return f"{expression!r}: the unit is singular for 1 and plural above"
        return None
    return _cron_problem(expression, 1)


def _event_pattern_size(rule: Resource) -> str | None:
    pattern = rule.props.get("EventPattern")
    if pattern is None:
        return None
    text = (
        pattern
        if isinstance(pattern, str)
        else json.dumps(rule.estimate(pattern), separators=(",", ":"))
    )
    if len(text) > 4096:
        return f"the event pattern takes {len(text)} characters, over 4,096"
    return None


# -- SNS and KMS --------------------------------------------------------------------------------


ALARM_TYPES = ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")


def _alarms_notifying(topic: Resource) -> Iterator[Resource]:
    """The alarms (metric and composite) with an action that publishes to `topic`."""
    for type_ in ALARM_TYPES:
        for alarm in topic.app.resources(type_):
            actions = [
                *_listed(alarm.props.get("AlarmActions")),
                *_listed(alarm.props.get("OKActions")),
                *_listed(alarm.props.get("InsufficientDataActions")),
            ]
            if any(topic.is_(alarm.ref(action)) for action in actions):
                yield alarm


def _publishers(topic: Resource) -> dict[str, str]:
    """The AWS services that publish to `topic`, each with one resource that makes it publish."""
    found: dict[str, str] = {}
    for rule in topic.app.resources("AWS::Events::Rule"):
        for target in _listed(rule.props.get("Targets")):
            if topic.is_(rule.ref(target.get("Arn"))):
                found.setdefault("events.amazonaws.com", f"{rule.stack.name}/{rule.id}")
    for alarm in _alarms_notifying(topic):
        found.setdefault("cloudwatch.amazonaws.com", f"{alarm.stack.name}/{alarm.id}")
    return found


def _alarm_arn(alarm: Resource) -> str | None:
    """The alarm's ARN when its name is fixed in the template (both alarm types: AlarmName)."""
    name = alarm.literal(alarm.props.get("AlarmName"))
    if name is None:
        return None
    where = alarm.stack
    return f"arn:aws:cloudwatch:{where.region}:{where.account}:alarm:{name}"


def _topic_policy_publishers(topic: Resource) -> str | None:
    """A topic policy replaces SNS's default one (which lets the owner account publish): each
    service that publishes here must be allowed sns:Publish by it, and an alarm must match the
    policy's aws:SourceArn pattern."""
    policies = [
        policy
        for policy in topic.app.resources("AWS::SNS::TopicPolicy")
        if any(topic.is_(policy.ref(t)) for t in _listed(policy.props.get("Topics")))
    ]
    if not policies:
        return None
    publishers = _publishers(topic)
    for service, source in sorted(publishers.items()):
        allowing = [
            statement
            for policy in policies
            for statement in _listed(_get(policy.props.get("PolicyDocument"), "Statement"))
            if statement.get("Effect") == "Allow"
            and service in _listed(_get(statement, "Principal.Service"))
            and any(
                fnmatchcase("sns:publish", str(a).lower()) for a in _listed(statement.get("Action"))
            )
        ]
        if not allowing:
            return (
                f"{source} makes {service} publish here, and the topic policy does not allow it "
                "sns:Publish (a topic policy replaces SNS's default one)"
            )
        if service != "cloudwatch.amazonaws.com":
            continue
        patterns = [
            topic.literal(_get(statement, "Condition.ArnLike.aws:SourceArn"))
            for statement in allowing
        ]
        if any(pattern is None for pattern in patterns):
            continue  # a statement without a literal pattern: not checked further
        for alarm in _alarms_notifying(topic):
            arn = _alarm_arn(alarm)
            if arn is not None and not any(fnmatchcase(arn, str(p)) for p in patterns):
                shown = ", ".join(map(str, patterns))
                return (
                    f"{alarm.stack.name}/{alarm.id} ({arn}) publishes here, and no "
                    f"aws:SourceArn of the topic policy matches it: {shown}"
                )
    return None


def _encrypted_topic_publishers(topic: Resource) -> str | None:
    key_id = topic.props.get("KmsMasterKeyId")
    if key_id is None:
        return None
    publishers = _publishers(topic)
    if not publishers:
        return None
    if topic.literal(key_id) == "alias/aws/sns":
        return f"{', '.join(publishers)} cannot use the AWS managed key alias/aws/sns"
    key = topic.ref(key_id)
    if key is None or key.type != "AWS::KMS::Key":
        return None
    for service, source in sorted(publishers.items()):
        if not _statements_allow(
            key.props.get("KeyPolicy"), service, ("kms:GenerateDataKey", "kms:Decrypt")
        ):
            return (
                f"{source} makes {service} publish here, and the key policy of {key.id} does not "
                "let it use kms:GenerateDataKey* and kms:Decrypt"
            )
    return None


def _log_group_key(group: Resource) -> str | None:
    key = group.ref(group.props.get("KmsKeyId"))
    if key is None or key.type != "AWS::KMS::Key":
        return None
    if key.stack.region != group.stack.region:
        return f"the key {key.id} is in {key.stack.region}, the log group in {group.stack.region}"
    service = f"logs.{group.stack.region}.amazonaws.com"
    actions = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey")
    if not _statements_allow(key.props.get("KeyPolicy"), service, actions):
        return f"the key policy of {key.id} does not let {service} encrypt and decrypt"
    return None


def _key_administrable(key: Resource) -> str | None:
    root = {
        f"arn:aws:iam::{key.stack.account}:root",
        key.stack.account,
    }
    for statement in _listed(_get(key.props, "KeyPolicy.Statement")):
        principals = {key.literal(p) for p in _listed(_get(statement, "Principal.AWS"))}
        actions = [str(a) for a in _listed(statement.get("Action"))]
        if (
            statement.get("Effect") == "Allow"
            and principals & root
            and any(fnmatchcase("kms:putkeypolicy", a.lower()) for a in actions)
        ):
            return None
    return "the key policy does not let the account (its root principal) change it: CreateKey fails"


# -- SageMaker ----------------------------------------------------------------------------------


def _volume_key_on_instance_storage(config: Resource) -> str | None:
    if config.props.get("KmsKeyId") is None:
        return None
    variants = [
        *_listed(config.props.get("ProductionVariants")),
        *_listed(config.props.get("ShadowProductionVariants")),
    ]
    local = sorted(
        {
            str(v.get("InstanceType"))
            for v in variants
            if isinstance(v, dict) and has_instance_storage(str(v.get("InstanceType", "")))
        }
    )
    if local:
        return (
            f"KmsKeyId with {', '.join(local)}, whose volumes are instance storage: "
            "CreateEndpointConfig fails"
        )
    return None


def _instance_count(endpoint: Resource) -> int | None:
    config = endpoint.ref(endpoint.props.get("EndpointConfigName"))
    if config is None:
        return None
    counts = [
        v.get("InitialInstanceCount")
        for v in _listed(config.props.get("ProductionVariants"))
        if isinstance(v.get("InitialInstanceCount"), int)
    ]
    return min(counts) if counts else None


def _step(size: Any, count: int | None) -> float | None:
    """A step's share of the fleet, in percent, when it can be known."""
    if not isinstance(size, Mapping) or not isinstance(size.get("Value"), int):
        return None
    if size.get("Type") == "CAPACITY_PERCENT":
        return float(size["Value"])
    if size.get("Type") == "INSTANCE_COUNT" and count:
        return 100.0 * float(size["Value"]) / count
    return None


def _traffic_routing(endpoint: Resource) -> str | None:
    routing = _get(
        endpoint.props, "DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration"
    )
    if not routing:
        return None
    kind, count = routing.get("Type"), _instance_count(endpoint)
    if kind == "CANARY":
        if "CanarySize" not in routing:
            return "a CANARY traffic shift needs a CanarySize"
        share = _step(routing["CanarySize"], count)
        if share is not None and share > 50:
            return f"the canary is {share:.0f}% of the fleet, over 50%"
    if kind == "LINEAR":
        if "LinearStepSize" not in routing:
            return "a LINEAR traffic shift needs a LinearStepSize"
        share = _step(routing["LinearStepSize"], count)
        if share is not None and not 10 <= share <= 50:
            return f"each linear step is {share:.0f}% of the fleet, not 10 to 50%"
    return None


def _deployment_timeout(endpoint: Resource) -> str | None:
    policy = _get(endpoint.props, "DeploymentConfig.BlueGreenUpdatePolicy")
    if not policy or not isinstance(policy.get("MaximumExecutionTimeoutInSeconds"), int):
        return None
    routing = policy.get("TrafficRoutingConfiguration") or {}
    kind, wait = routing.get("Type"), routing.get("WaitIntervalInSeconds", 0)
    steps = 1
    if kind == "CANARY":
        steps = 2
    elif kind == "LINEAR":
        share = _step(routing.get("LinearStepSize"), _instance_count(endpoint))
        steps = math.ceil(100 / share) if share else 1
    total = steps * wait + policy.get("TerminationWaitInSeconds", 0)
    if policy["MaximumExecutionTimeoutInSeconds"] <= total:
        return (
            f"MaximumExecutionTimeoutInSeconds {policy['MaximumExecutionTimeoutInSeconds']} is "
            f"not above the {total} s the deployment waits ({steps} baking periods and the "
            "termination wait)"
        )
    return None


def _rollback_alarms(endpoint: Resource) -> str | None:
    alarms = _get(endpoint.props, "DeploymentConfig.AutoRollbackConfiguration.Alarms")
    if alarms is None:
        return None
    if not 1 <= len(alarms) <= 10:
        return f"{len(alarms)} rollback alarms, not 1 to 10"
    made = {
        alarm.literal(alarm.props.get("AlarmName"))
        for type_ in ALARM_TYPES
        for alarm in endpoint.neighbours(type_)
    }
    for entry in alarms:
        name = endpoint.literal(entry.get("AlarmName"))
        if name is not None and name not in made:
            return f"rollback alarm {name!r} is no alarm the app creates in this account and region"
    return None


def _variant_kinds(config: Resource) -> str | None:
    variants = _listed(config.props.get("ProductionVariants"))
    serverless = [v for v in variants if "ServerlessConfig" in v]
    for variant in variants:
        instances = "InstanceType" in variant or "InitialInstanceCount" in variant
        if instances == ("ServerlessConfig" in variant):
            return (
                f"variant {variant.get('VariantName')!r} is not either instance-based or serverless"
            )
    if not serverless:
        return None
    if "DataCaptureConfig" in config.props:
        return "serverless endpoints do not support data capture"
    if len(variants) > 1:
        return "serverless endpoints do not support multiple production variants"
    model = config.ref(serverless[0].get("ModelName"))
    if model is not None and model.props.get("EnableNetworkIsolation") is True:
        return f"serverless endpoints do not support network isolation ({model.id})"
    return None


def _async_config(config: Resource) -> str | None:
    asynchronous = config.props.get("AsyncInferenceConfig")
    if not asynchronous:
        return None
    variants = _listed(config.props.get("ProductionVariants"))
    if any("ServerlessConfig" in v for v in variants):
        return "a serverless variant cannot serve asynchronous inference"
    output = asynchronous.get("OutputConfig") or {}
    if not output.get("S3OutputPath"):
        return "AsyncInferenceConfig needs OutputConfig.S3OutputPath, where results are written"
    return None


def _scale_to_zero(target: Resource) -> str | None:
    """MinCapacity 0 on a SageMaker variant: only an asynchronous endpoint scales to zero."""
    if target.props.get("MinCapacity") != 0 or target.props.get("ServiceNamespace") != "sagemaker":
        return None
    if target.props.get("ScalableDimension") != "sagemaker:variant:DesiredInstanceCount":
        return None
    resource_id = target.literal(target.props.get("ResourceId")) or ""
    match = re.fullmatch(r"endpoint/([^/]+)/variant/[^/]+", resource_id)
    if match is None:
        return None
    for logical in target.stack.resources:
        endpoint = Resource(target.app, target.stack, logical)
        if endpoint.type != "AWS::SageMaker::Endpoint":
            continue
        if endpoint.literal(endpoint.props.get("EndpointName")) != match.group(1):
            continue
        config = endpoint.ref(endpoint.props.get("EndpointConfigName"))
        if config is not None and not config.props.get("AsyncInferenceConfig"):
            return f"MinCapacity 0 on {match.group(1)}, which is not an asynchronous endpoint"
    return None


ROLLING_BATCH = (5, 50)
"""A rolling update's MaximumBatchSize, in % of the component's copies."""


def _inference_component(component: Resource) -> str | None:
    """A component's rolling-update batch is 5 to 50 % of its copies, and the endpoint it
    joins (when this stack makes it) has variants that name no model, and exists first
    (https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints-deploy-models.html)."""
    props = component.props
    batch = _get(props, "DeploymentConfig.RollingUpdatePolicy.MaximumBatchSize")
    batch = batch if isinstance(batch, Mapping) else {}
    value = batch.get("Value")
    low, high = ROLLING_BATCH
    percent = batch.get("Type") == "CAPACITY_PERCENT"
    if percent and isinstance(value, int) and not low <= value <= high:
        return f"MaximumBatchSize {value} % is outside {low} to {high} % of the copies"
    name = component.literal(props.get("EndpointName"))
    for logical in component.stack.resources:
        endpoint = Resource(component.app, component.stack, logical)
        if endpoint.type != "AWS::SageMaker::Endpoint":
            continue
        if name is None or endpoint.literal(endpoint.props.get("EndpointName")) != name:
            continue
        config = endpoint.ref(endpoint.props.get("EndpointConfigName"))
        variants = _listed(config.props.get("ProductionVariants")) if config else []
        if any(v.get("ModelName") for v in variants):
            return (
                f"endpoint {name}'s variant names a model: inference components need one "
                "that names none"
            )
        if logical not in _listed(component.definition.get("DependsOn")):
            return f"joins {name} without DependsOn {logical}, which creates it"
        return None
    return None


def _data_capture(config: Resource) -> str | None:
    capture = config.props.get("DataCaptureConfig")
    if not capture:
        return None
    percentage = capture.get("InitialSamplingPercentage")
    if isinstance(percentage, int | float) and not 0 <= percentage <= 100:
        return f"InitialSamplingPercentage {percentage} is outside 0 to 100"
    if not _listed(capture.get("CaptureOptions")):
        return "DataCaptureConfig needs at least one CaptureOption"
    destination = config.literal(capture.get("DestinationS3Uri"))
    if destination is not None and not destination.startswith(("s3://", "https://")):
        return f"DestinationS3Uri {destination!r} is not an s3:// URI"
    return None


ECR_IMAGE = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9._/-]+)"
)


@cache
def sagemaker_registries() -> Mapping[str, frozenset[str]]:
    """Region -> the accounts whose ECR registries hold AWS's SageMaker images there, from the
    SageMaker SDK's region tables (as mlgate.infra.ml.images reads them)."""
    found: dict[str, set[str]] = {}

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            registries = item.get("registries")
            if isinstance(registries, dict):
                for region, account in registries.items():
                    found.setdefault(region, set()).add(str(account))
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    for entry in sys.path:
        folder = Path(entry) / TABLES
        if folder.is_dir():
            for table in sorted(folder.glob("*.json")):
                walk(json.loads(table.read_text()))
            break
    if not found:
        raise FileNotFoundError("the SageMaker SDK's image tables are not installed")
    return {region: frozenset(accounts) for region, accounts in found.items()}


def _images_in_region(resource: Resource) -> str | None:
    text = resource.text(resource.props)
    for match in ECR_IMAGE.finditer(text):
        account, region = match["account"], match["region"]
        if region != resource.stack.region:
            return f"image {match.group(0)} is in {region}, the stack in {resource.stack.region}"
        if account != resource.stack.account and account not in sagemaker_registries().get(
            region, frozenset()
        ):
            return (
                f"image {match.group(0)} is in neither this account's registry nor one of "
                f"SageMaker's in {region}"
            )
    return None


# -- Application Auto Scaling -------------------------------------------------------------------


def _capacity_range(target: Resource) -> str | None:
    low, high = target.props.get("MinCapacity"), target.props.get("MaxCapacity")
    if isinstance(low, int) and isinstance(high, int) and not 0 <= low <= high:
        return f"MinCapacity {low} and MaxCapacity {high} are not 0 <= min <= max"
    return None


def _variant_target(target: Resource) -> str | None:
    if target.props.get("ServiceNamespace") != "sagemaker":
        return None
    resource_id = target.literal(target.props.get("ResourceId")) or ""
    match = re.fullmatch(r"endpoint/([^/]+)/variant/([^/]+)", resource_id)
    if match is None:
        return None
    endpoint_name, variant = match.groups()
    for endpoint in target.stack.resources:
        candidate = Resource(target.app, target.stack, endpoint)
        if candidate.type != "AWS::SageMaker::Endpoint":
            continue
        if candidate.literal(candidate.props.get("EndpointName")) != endpoint_name:
            continue
        config = candidate.ref(candidate.props.get("EndpointConfigName"))
        variants = _listed(config.props.get("ProductionVariants")) if config else []
        names = {v.get("VariantName") for v in variants}
        if config is not None and variant not in names:
            return f"endpoint {endpoint_name} has no variant {variant}"
        if endpoint not in _listed(target.definition.get("DependsOn")):
            return f"registers {resource_id} without DependsOn {endpoint}, which creates it"
        return None
    return f"no endpoint {endpoint_name} in this stack: it must exist before it is registered"


# -- CloudWatch ---------------------------------------------------------------------------------


def _periods(alarm: Resource) -> list[int]:
    periods = [alarm.props.get("Period")]
    periods += [_get(q, "MetricStat.Period") for q in _listed(alarm.props.get("Metrics"))]
    return [p for p in periods if isinstance(p, int)]


def _evaluation_window(alarm: Resource) -> str | None:
    evaluations = alarm.props.get("EvaluationPeriods")
    if not isinstance(evaluations, int):
        return None
    for period in _periods(alarm):
        window = period * evaluations
        limit = 86400 if period < 3600 else 604800
        if window > limit:
            return f"{evaluations} periods of {period} s span {window} s, over {limit} s"
    points = alarm.props.get("DatapointsToAlarm")
    if isinstance(points, int) and points > evaluations:
        return f"DatapointsToAlarm {points} is more than EvaluationPeriods {evaluations}"
    return None


def _period_values(alarm: Resource) -> str | None:
    for period in _periods(alarm):
        if period not in (10, 20, 30) and period % 60:
            return f"period {period} s is not 10, 20, 30 or a multiple of 60"
    return None


def _metric_shape(alarm: Resource) -> str | None:
    props = alarm.props
    if ("MetricName" in props) == ("Metrics" in props):
        return "give either MetricName or Metrics"
    if "MetricName" in props and ("Statistic" in props) == ("ExtendedStatistic" in props):
        return "give either Statistic or ExtendedStatistic"
    if "Metrics" in props:
        returned = [q for q in props["Metrics"] if q.get("ReturnData", True) is True]
        if len(returned) != 1:
            return f"{len(returned)} metric queries return data, not one"
    return None


def _alarm_actions(alarm: Resource) -> str | None:
    for kind in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        if len(_listed(alarm.props.get(kind))) > 5:
            return f"{kind} has {len(alarm.props[kind])} actions, over 5"
    return None


# -- DynamoDB -----------------------------------------------------------------------------------


def _global_table(table: Resource) -> str | None:
    replicas = _listed(table.props.get("Replicas"))
    regions = [r.get("Region") for r in replicas]
    if table.stack.region not in regions:
        return f"no replica in the stack's region {table.stack.region}"
    if _get(table.props, "SSESpecification.SSEType") == "KMS":
        for replica in replicas:
            if not _get(replica, "SSESpecification.KMSMasterKeyId"):
                return f"replica {replica.get('Region')} has no KMSMasterKeyId for SSEType KMS"
            key = table.ref(_get(replica, "SSESpecification.KMSMasterKeyId"))
            if key is not None and key.stack.region != replica.get("Region"):
                return f"replica {replica.get('Region')}'s key is in {key.stack.region}"
    if len(replicas) > 1 and "StreamSpecification" not in table.props:
        return "a global table with more than one replica needs a StreamSpecification"
    if table.props.get("BillingMode", "PROVISIONED") == "PROVISIONED" and (
        "WriteProvisionedThroughputSettings" not in table.props
    ):
        return "PROVISIONED billing needs WriteProvisionedThroughputSettings"
    return None


# -- IAM ----------------------------------------------------------------------------------------


def _policy_size(resource: Resource, document: Any) -> int:
    return len(json.dumps(resource.estimate(document), separators=(",", ":")))


def _inline_policy_size(role: Resource) -> str | None:
    name = role.literal(role.props.get("RoleName"))
    size = sum(
        _policy_size(role, p.get("PolicyDocument")) for p in _listed(role.props.get("Policies"))
    )
    for policy in role.app.resources("AWS::IAM::Policy"):
        if policy.stack.account != role.stack.account:
            continue
        for attached in _listed(policy.props.get("Roles")):
            if role.is_(policy.ref(attached)) or (name and policy.literal(attached) == name):
                size += _policy_size(policy, policy.props.get("PolicyDocument"))
    if size > 10240:
        return f"its inline policies take about {size} characters, over 10,240"
    return None


def _trust_policy_size(role: Resource) -> str | None:
    size = _policy_size(role, role.props.get("AssumeRolePolicyDocument"))
    if size > 2048:
        return f"its trust policy takes about {size} characters, over the default quota of 2,048"
    return None


ADMIN_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
"""AWS managed policies that let a role change IAM or do everything: a role holding one is
never a role a function may pass."""
IAM_ALLOWED = ("iam:PassRole", "iam:CreateServiceLinkedRole")
"""The IAM actions a role a function passes may hold (each checked on its own: PassRole's
targets, and a service-linked role is AWS's own)."""
CDK_EXEC_ROLE = re.compile(r":role/cdk-[a-z0-9]+-cfn-exec-role-")


def _role_policies(role: Resource) -> Iterator[Mapping[str, Any]]:
    """The statements of `role`'s inline policies and of the AWS::IAM::Policy resources of its
    account attached to it (by reference or by name)."""
    name = role.literal(role.props.get("RoleName"))
    for policy in _listed(role.props.get("Policies")):
        yield from _listed(_get(policy, "PolicyDocument.Statement"))
    for policy in role.app.resources("AWS::IAM::Policy"):
        if policy.stack.account != role.stack.account:
            continue
        for attached in _listed(policy.props.get("Roles")):
            if role.is_(policy.ref(attached)) or (name and policy.literal(attached) == name):
                yield from _listed(_get(policy.props, "PolicyDocument.Statement"))


def _allows(statement: Mapping[str, Any], action: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if "NotAction" in statement:
        return True
    return any(
        fnmatchcase(action.lower(), str(a).lower()) for a in _listed(statement.get("Action"))
    )


def _role_named(app: App, arn: str) -> Resource | None:
    """The role of this app an IAM role ARN names (account and role name)."""
    found = re.fullmatch(r"arn:aws:iam::(\d{12}):role/(?:.*/)?([\w+=,.@-]+)", arn)
    if found is None:
        return None
    account, name = found.groups()
    for role in app.resources("AWS::IAM::Role"):
        if role.stack.account == account and role.literal(role.props.get("RoleName")) == name:
            return role
    return None


def _targets(holder: Resource, statement: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Each Resource of `statement` as text (its literal, or a name for a reference) and the
    role of this app it names, if any."""
    if "NotResource" in statement:
        yield "a NotResource", None
        return
    for value in _listed(statement.get("Resource")):
        target = holder.ref(value)
        if target is not None:
            yield f"{target.stack.name}/{target.id}", target
            continue
        text = holder.literal(value)
        if text is None:
            yield json.dumps(value), None
        else:
            yield text, _role_named(holder.app, text)


def _broad_role(role: Resource) -> str | None:
    """What lets `role` do more than a stack of this app needs: an administrator's managed
    policy, every action, every action of a service, IAM beyond passing roles."""
    for arn in _listed(role.props.get("ManagedPolicyArns")):
        text = role.literal(arn) or json.dumps(arn)
        if any(text.endswith(f"/{name}") for name in ADMIN_POLICIES):
            return f"it has the managed policy {text.rsplit('/', 1)[-1]}"
    for statement in _role_policies(role):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            return "it allows NotAction (every other action)"
        for action in _listed(statement.get("Action")):
            text = str(action)
            if text == "*" or text.endswith(":*"):
                return f"it allows {text}"
            if text.lower().startswith("iam:") and not any(
                fnmatchcase(allowed.lower(), text.lower()) for allowed in IAM_ALLOWED
            ):
                return f"it allows {text}"
    return None


def _pass_problems(role: Resource, seen: frozenset[tuple[str, str]]) -> Iterator[str]:
    """What is wrong with the roles `role` may pass, and with those they may pass in turn:
    iam:PassRole on a wildcard, on CDK's bootstrap execution role, on a role this app does not
    make (service-linked roles aside: AWS fixes their permissions and only their service
    assumes them), or without iam:PassedToService; a passed role broader than a stack needs.
    Roles `role` may assume (sts:AssumeRole, another account's deploy role) count as its own."""
    key = (role.stack.name, role.id)
    if key in seen:
        return
    seen = seen | {key}
    for statement in _role_policies(role):
        if _allows(statement, "sts:AssumeRole"):
            for _, assumed in _targets(role, statement):
                if assumed is not None:
                    yield from _pass_problems(assumed, seen)
        if not _allows(statement, "iam:PassRole"):
            continue
        targets = list(_targets(role, statement))
        conditions = statement.get("Condition") or {}
        service_linked = all(":role/aws-service-role/" in text for text, _ in targets)
        if not service_linked and not any(
            "iam:PassedToService" in block for block in conditions.values()
        ):
            yield f"{role.id} passes roles to any service (no iam:PassedToService)"
        for text, target in targets:
            if "*" in text:
                yield f"{role.id} may pass {text}"
            elif CDK_EXEC_ROLE.search(text):
                yield f"{role.id} may pass CDK's bootstrap execution role {text}"
            elif target is None and ":role/aws-service-role/" not in text:
                yield f"{role.id} may pass {text}, a role this app does not make"
            elif target is not None:
                broad = _broad_role(target)
                if broad is not None:
                    yield f"{role.id} may pass {target.id}, and {broad}"
                yield from _pass_problems(target, seen)


def _function_passes(function: Resource) -> str | None:
    value = function.props.get("Role")
    role = function.ref(value)
    if role is None:
        text = function.literal(value)
        role = _role_named(function.app, text) if text else None
    if role is None:
        return None
    problems = sorted(set(_pass_problems(role, frozenset())))
    return "; ".join(problems) or None


# -- Logs, SQS, SSM -----------------------------------------------------------------------------


RETENTION_DAYS = frozenset(
    {
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    }
)


def _retention(group: Resource) -> str | None:
    days = group.props.get("RetentionInDays")
    if isinstance(days, int) and days not in RETENTION_DAYS:
        return f"RetentionInDays {days} is not one of CloudWatch Logs' values"
    return None


def _queue_retention(queue: Resource) -> str | None:
    seconds = queue.props.get("MessageRetentionPeriod")
    if isinstance(seconds, int) and not 60 <= seconds <= 1209600:
        return f"MessageRetentionPeriod {seconds} is outside 60 s to 14 days"
    return None


def _parameter_value(parameter: Resource) -> str | None:
    value = parameter.literal(parameter.props.get("Value"))
    tier = parameter.props.get("Tier", "Standard")
    limit = 8192 if tier == "Advanced" else 4096
    if value is not None and len(value.encode()) > limit:
        return f"the value takes {len(value.encode())} bytes, over {limit} for tier {tier}"
    return None


# -- Unique names -------------------------------------------------------------------------------


def _name_key(resource: Resource) -> list[tuple[str, ...]]:
    keys = []
    for name in NAMES:
        if name.type != resource.type or "[]" in name.path or name.scope == "parent":
            continue
        for value in _names_at(resource, name.path):
            value = value.lower() if name.folded else value
            scope: tuple[str, ...] = {
                "partition": (),
                "account": (resource.stack.account,),
                "region": (resource.stack.account, resource.stack.region),
            }[name.scope]
            keys.append((name.type, name.path, *scope, value))
    return keys


def _unique_name(resource: Resource) -> str | None:
    index: dict[tuple[str, ...], list[str]] | None = resource.app._memo.get("names")
    if index is None:
        index = resource.app._memo["names"] = {}
        for other in resource.app.resources():
            for key in _name_key(other):
                index.setdefault(key, []).append(f"{other.stack.name}/{other.id}")
    for key in _name_key(resource):
        if len(index[key]) > 1:
            return f"{key[-1]!r} is also the name of {', '.join(sorted(index[key]))}"
    return None


# -- The table ----------------------------------------------------------------------------------


def _lambda(function_id: str = "Fn", **props: Any) -> dict[str, Any]:
    return {
        function_id: {
            "Type": "AWS::Lambda::Function",
            "Properties": {"Runtime": "python3.13", "Architectures": ["x86_64"], **props},
        }
    }


def _rule_to(target: Any, **props: Any) -> dict[str, Any]:
    return {
        "Rule": {
            "Type": "AWS::Events::Rule",
            "Properties": {"Name": "r", "Targets": [{"Arn": target, "Id": "T"}], **props},
        }
    }


def _key(*statements: Any) -> dict[str, Any]:
    root = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*", "Resource": "*"}  # fmt: skip
    return {
        "Key": {
            "Type": "AWS::KMS::Key",
            "Properties": {"KeyPolicy": {"Statement": [root, *statements]}},
        }
    }


def _endpoint(routing: Mapping[str, Any], *, count: int = 4, **policy: Any) -> dict[str, Any]:
    return {
        "Config": {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "InstanceType": "ml.m5.large",
                        "InitialInstanceCount": count,
                    }
                ]
            },
        },
        "Subject": {
            "Type": "AWS::SageMaker::Endpoint",
            "Properties": {
                "EndpointName": "e",
                "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
                "DeploymentConfig": {
                    "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, **policy}
                },
            },
        },
    }


CFN = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/{}.html"

TABLE: tuple[ServiceRule, ...] = (
    ServiceRule(
        id="glue-incremental-crawl-logs",
        type="AWS::Glue::Crawler",
        rule="a crawler that crawls new folders only (RecrawlBehavior CRAWL_NEW_FOLDERS_ONLY) "
        "has SchemaChangePolicy UpdateBehavior LOG and DeleteBehavior LOG",
        check=_incremental_crawl_logs,
        doc="https://docs.aws.amazon.com/glue/latest/dg/incremental-crawls.html",
        broken=_broken(
            "AWS::Glue::Crawler",
            RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
            SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
        ),
    ),
    ServiceRule(
        id="glue-job-workers",
        type="AWS::Glue::Job",
        rule="a Spark job of Glue 2.0 or later sets WorkerType and NumberOfWorkers, and no "
        "MaxCapacity",
        check=_job_capacity,
        doc=GLUE.format("CreateJob"),
        broken=_broken(
            "AWS::Glue::Job", Command={"Name": "glueetl"}, GlueVersion="5.0", MaxCapacity=10
        ),
    ),
    ServiceRule(
        id="glue-job-timeout",
        type="AWS::Glue::Job",
        rule="a job's Timeout is at most 7 days (10,080 minutes)",
        check=_job_timeout,
        doc=GLUE.format("CreateJob"),
        broken=_broken("AWS::Glue::Job", Command={"Name": "glueetl"}, Timeout=20160),
    ),
    ServiceRule(
        id="glue-job-worker-type",
        type="AWS::Glue::Job",
        rule="a job's WorkerType fits its command: G.*/R.* for Spark, G.025X for streaming "
        "only, Z.2X for Ray only",
        check=_job_worker_type,
        doc=GLUE.format("CreateJob"),
        broken=_broken("AWS::Glue::Job", Command={"Name": "glueetl"}, WorkerType="G.025X"),
    ),
    ServiceRule(
        id="glue-trigger-fields",
        type="AWS::Glue::Trigger",
        rule="a SCHEDULED trigger has a Schedule, a CONDITIONAL one a Predicate, and an "
        "ON_DEMAND one does not start on creation",
        check=_trigger_fields,
        doc=GLUE.format("CreateTrigger"),
        broken=_broken("AWS::Glue::Trigger", Type="CONDITIONAL", Actions=[{"JobName": "j"}]),
    ),
    ServiceRule(
        id="glue-trigger-cron",
        type="AWS::Glue::Trigger",
        rule="a trigger's Schedule is cron() with six fields, ? in exactly one of day-of-month "
        "and day-of-week, running at most every 5 minutes",
        check=_trigger_schedule,
        doc="https://docs.aws.amazon.com/glue/latest/dg/monitor-data-warehouse-schedule.html",
        broken=_broken("AWS::Glue::Trigger", Type="SCHEDULED", Schedule="cron(*/2 * * * ? *)"),
    ),
    ServiceRule(
        id="glue-database-name",
        type="AWS::Glue::Database",
        rule="a database has a name of its own, lowercase, 1 to 255 bytes (Athena reads it)",
        check=_database_name,
        doc="https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html",
        broken=_broken("AWS::Glue::Database", CatalogId=ACCOUNT, DatabaseInput={}),
    ),
    ServiceRule(
        id="glue-table-names",
        type="AWS::Glue::Table",
        rule="a table's name and its columns' and partition keys' names are lowercase, 1 to "
        "255 bytes (Athena reads them)",
        check=_table_names,
        doc="https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html",
        broken=_broken(
            "AWS::Glue::Table",
            TableInput={
                "Name": "curated",
                "StorageDescriptor": {"Columns": [{"Name": "EventTime", "Type": "string"}]},
            },
        ),
    ),
    ServiceRule(
        id="lambda-no-reserved-concurrency",
        type="AWS::Lambda::Function",
        rule="no function reserves concurrency unless its manifest asks (then the function "
        f"carries the {RESERVED_CONCURRENCY_NOTE} note): PutFunctionConcurrency must leave "
        "100 unreserved, and a new account's concurrency may be no more than that",
        check=_no_reserved_concurrency,
        doc="https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html",
        broken=_lambda(ReservedConcurrentExecutions=5),
    ),
    ServiceRule(
        id="lambda-timeout",
        type="AWS::Lambda::Function",
        rule="a function's Timeout is at most 900 s (Lambda managed instances aside)",
        check=_function_timeout,
        doc="https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html",
        broken=_lambda(Timeout=1800),
    ),
    ServiceRule(
        id="lambda-memory",
        type="AWS::Lambda::Function",
        rule="a function's MemorySize is 128 to 10,240 MB (Lambda managed instances aside)",
        check=_function_memory,
        doc="https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html",
        broken=_lambda(MemorySize=16384),
    ),
    ServiceRule(
        id="lambda-layers-in-region",
        type="AWS::Lambda::Function",
        rule="every layer is built by the app or is a version in KNOWN_LAYERS, in the "
        "function's region; either way for the function's runtime and architecture",
        check=_layers,
        doc="https://docs.aws.amazon.com/lambda/latest/dg/adding-layers.html",
        broken=_lambda(
            Layers=[
                "arn:aws:lambda:us-east-1:017000801446:layer:"
                "AWSLambdaPowertoolsPythonV3-python313-x86_64:27"
            ]
        ),
    ),
    ServiceRule(
        id="lambda-environment-size",
        type="AWS::Lambda::Function",
        rule="a function's environment variables take at most 4 KB together (deploy-time "
        f"values counted as {TOKEN_LENGTH} characters)",
        check=_environment_size,
        doc="https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
        broken=_lambda(Environment={"Variables": {"CONTEXT": "x" * 4100}}),
    ),
    ServiceRule(
        id="lambda-log-level-json",
        type="AWS::Lambda::Function",
        rule="a function that filters its logs by level (ApplicationLogLevel, SystemLogLevel) "
        "logs in JSON",
        check=_log_level_json,
        doc="https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html",
        broken=_lambda(LoggingConfig={"ApplicationLogLevel": "INFO", "LogFormat": "Text"}),
    ),
    ServiceRule(
        id="lambda-public-url-permissions",
        type="AWS::Lambda::Url",
        rule="a function URL with AuthType NONE has permissions for lambda:InvokeFunctionUrl "
        "(FunctionUrlAuthType NONE) and lambda:InvokeFunction (InvokedViaFunctionUrl) to *",
        check=_public_url,
        doc="https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html",
        broken={
            **_lambda(),
            "Subject": {
                "Type": "AWS::Lambda::Url",
                "Properties": {
                    "AuthType": "NONE",
                    "TargetFunctionArn": {"Fn::GetAtt": ["Fn", "Arn"]},
                },
            },
            "Public": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunctionUrl",
                    "Principal": "*",
                    "FunctionUrlAuthType": "NONE",
                    "FunctionName": {"Fn::GetAtt": ["Fn", "Arn"]},
                },
            },
        },
    ),
    ServiceRule(
        id="events-lambda-target-on-failure",
        type="AWS::Events::Rule",
        rule="every function a rule targets (EventBridge invokes it asynchronously) has an "
        "on-failure destination (EventInvokeConfig on $LATEST) or a dead-letter queue",
        check=_on_failure,
        doc="https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html",
        broken={**_lambda(), **_rule_to({"Fn::GetAtt": ["Fn", "Arn"]})},
    ),
    ServiceRule(
        id="events-failed-invocations-alarm",
        type="AWS::Events::Rule",
        rule="every rule that targets an SNS topic or a function has a CloudWatch alarm on "
        "AWS/Events FailedInvocations with dimension RuleName its name, not treating missing "
        "data as breaching (the metric is sent only when it isn't zero)",
        check=_failed_invocations_alarm,
        doc="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html",
        broken={
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            **_rule_to({"Ref": "Topic"}),
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Namespace": "AWS/Events",
                    "MetricName": "FailedInvocations",
                    "Dimensions": [{"Name": "RuleName", "Value": "another"}],
                },
            },
        },
    ),
    ServiceRule(
        id="events-lambda-target-permission",
        type="AWS::Events::Rule",
        rule="every function a rule targets lets events.amazonaws.com invoke it, for that rule",
        check=_lambda_permission,
        doc="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html",
        broken={
            **_lambda(),
            **_rule_to({"Fn::GetAtt": ["Fn", "Arn"]}),
            "Allow": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "Principal": "sns.amazonaws.com",
                    "FunctionName": {"Fn::GetAtt": ["Fn", "Arn"]},
                },
            },
        },
    ),
    ServiceRule(
        id="events-no-role-for-policy-targets",
        type="AWS::Events::Rule",
        rule="a Lambda, SNS, SQS or CloudWatch Logs target has no RoleArn (they use "
        "resource-based policies; a role may make delivery fail)",
        check=_no_role_for_policy_targets,
        doc="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html",
        broken={
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Targets": [
                        {
                            "Arn": {"Ref": "Topic"},
                            "Id": "T",
                            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
                        }
                    ]
                },
            },
        },
    ),
    ServiceRule(
        id="events-schedule-expression",
        type="AWS::Events::Rule",
        rule="a ScheduleExpression is rate(value unit) with a singular unit for 1 and plural "
        "above, or cron() with six fields and ? in exactly one of day-of-month and day-of-week",
        check=_schedule_expression,
        doc="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html",
        broken=_broken("AWS::Events::Rule", ScheduleExpression="rate(1 hours)"),
    ),
    ServiceRule(
        id="events-pattern-size",
        type="AWS::Events::Rule",
        rule="an EventPattern takes at most 4,096 characters",
        check=_event_pattern_size,
        doc="https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html",
        broken=_broken("AWS::Events::Rule", EventPattern={"detail": {"id": ["x" * 4100]}}),
    ),
    ServiceRule(
        id="sns-encrypted-topic-publishers",
        type="AWS::SNS::Topic",
        rule="an encrypted topic that EventBridge or CloudWatch alarms publish to uses a "
        "customer managed key whose policy lets that service principal use "
        "kms:GenerateDataKey* and kms:Decrypt",
        check=_encrypted_topic_publishers,
        doc="https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html",
        broken={
            **_key(),
            "Subject": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"KmsMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]}},
            },
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"AlarmActions": [{"Ref": "Subject"}]},
            },
        },
    ),
    ServiceRule(
        id="sns-topic-policy-publishers",
        type="AWS::SNS::Topic",
        rule="a topic with a topic policy lets every service that publishes to it (EventBridge "
        "rules, CloudWatch alarms) sns:Publish, and each alarm matches the policy's "
        "aws:SourceArn pattern: the policy replaces SNS's default one",
        check=_topic_policy_publishers,
        # And https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger
        doc="https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html",
        broken={
            "Subject": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Policy": {
                "Type": "AWS::SNS::TopicPolicy",
                "Properties": {
                    "Topics": [{"Ref": "Subject"}],
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "sns:Publish",
                                "Resource": {"Ref": "Subject"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ]
                    },
                },
            },
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"AlarmName": "a/b", "AlarmActions": [{"Ref": "Subject"}]},
            },
        },
    ),
    ServiceRule(
        id="logs-encrypted-group-key",
        type="AWS::Logs::LogGroup",
        rule="a log group's KMS key is in its region and its policy lets "
        "logs.<region>.amazonaws.com encrypt, decrypt and generate data keys",
        check=_log_group_key,
        doc="https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html",
        broken={
            **_key(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ),
            "Subject": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]}},
            },
        },
    ),
    ServiceRule(
        id="logs-retention-values",
        type="AWS::Logs::LogGroup",
        rule="RetentionInDays is one of the values CloudWatch Logs accepts",
        check=_retention,
        doc="https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html",
        broken=_broken("AWS::Logs::LogGroup", RetentionInDays=100),
    ),
    ServiceRule(
        id="kms-key-administrable",
        type="AWS::KMS::Key",
        rule="a key's policy lets the account's root principal change the policy (CreateKey "
        "refuses a policy that locks its caller out)",
        check=_key_administrable,
        doc="https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html",
        broken=_broken(
            "AWS::KMS::Key",
            KeyPolicy={
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "kms:Decrypt",
                        "Resource": "*",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    }
                ]
            },
        ),
    ),
    ServiceRule(
        id="sagemaker-traffic-routing",
        type="AWS::SageMaker::Endpoint",
        rule="a CANARY shift has a CanarySize of at most 50% of the variant's instances, a "
        "LINEAR one a LinearStepSize of 10 to 50%",
        check=_traffic_routing,
        doc=SAGEMAKER.format("TrafficRoutingConfig"),
        broken=_endpoint(
            {
                "Type": "CANARY",
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 3},
                "WaitIntervalInSeconds": 600,
            },
            count=4,
        ),
    ),
    ServiceRule(
        id="sagemaker-deployment-timeout",
        type="AWS::SageMaker::Endpoint",
        rule="MaximumExecutionTimeoutInSeconds is above the waits the blue/green deployment "
        "makes: one baking period (WaitIntervalInSeconds) per traffic step (all at once 1, "
        "canary 2, linear one per step) and TerminationWaitInSeconds",
        check=_deployment_timeout,
        doc=SAGEMAKER.format("BlueGreenUpdatePolicy"),
        broken=_endpoint(
            {
                "Type": "LINEAR",
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                "WaitIntervalInSeconds": 600,
            },
            MaximumExecutionTimeoutInSeconds=3600,
            TerminationWaitInSeconds=600,
        ),
    ),
    ServiceRule(
        id="sagemaker-rollback-alarms",
        type="AWS::SageMaker::Endpoint",
        rule="an endpoint names 1 to 10 rollback alarms, each an alarm the app creates in the "
        "endpoint's account and region",
        check=_rollback_alarms,
        doc=SAGEMAKER.format("AutoRollbackConfig"),
        broken={
            "Subject": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {
                    "DeploymentConfig": {
                        "AutoRollbackConfiguration": {
                            "Alarms": [{"AlarmName": "mlgate/p/prod/system/latency/critical"}]
                        }
                    }
                },
            },
        },
    ),
    ServiceRule(
        id="sagemaker-inference-component",
        type="AWS::SageMaker::InferenceComponent",
        rule="a rolling update's MaximumBatchSize is 5 to 50 % of the copies; the endpoint it "
        "joins has variants that name no model, and is created first",
        check=_inference_component,
        doc=SAGEMAKER.format("InferenceComponentRollingUpdatePolicy"),
        broken={
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {"EndpointName": "e", "EndpointConfigName": {"Ref": "Config"}},
            },
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}]
                },
            },
            "Subject": {
                "Type": "AWS::SageMaker::InferenceComponent",
                "DependsOn": ["Endpoint"],
                "Properties": {
                    "EndpointName": "e",
                    "DeploymentConfig": {
                        "RollingUpdatePolicy": {
                            "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                            "WaitIntervalInSeconds": 600,
                        }
                    },
                },
            },
        },
    ),
    ServiceRule(
        id="sagemaker-variant-kind",
        type="AWS::SageMaker::EndpointConfig",
        rule="every production variant is either instance-based or serverless; a serverless "
        "endpoint has one variant, no data capture and a model without network isolation",
        check=_variant_kinds,
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html",
        broken=_broken(
            "AWS::SageMaker::EndpointConfig",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                }
            ],
            DataCaptureConfig={
                "InitialSamplingPercentage": 20,
                "CaptureOptions": [{"CaptureMode": "Input"}],
                "DestinationS3Uri": "s3://b/capture",
            },
        ),
    ),
    ServiceRule(
        id="sagemaker-no-key-on-instance-storage",
        type="AWS::SageMaker::EndpointConfig",
        rule="an endpoint config whose variants' instances keep their volumes on instance "
        "storage (m5d, g4dn, g5, p4d...) names no KmsKeyId: their hardware encrypts it, and "
        "SageMaker refuses a key",
        check=_volume_key_on_instance_storage,
        doc=SAGEMAKER.format("CreateEndpointConfig"),
        broken=_broken(
            "AWS::SageMaker::EndpointConfig",
            KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/k",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InstanceType": "ml.g5.xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
        ),
    ),
    ServiceRule(
        id="sagemaker-async-config",
        type="AWS::SageMaker::EndpointConfig",
        rule="an asynchronous endpoint config names where results go (OutputConfig."
        "S3OutputPath) and has no serverless variant",
        check=_async_config,
        doc=SAGEMAKER.format("AsyncInferenceConfig"),
        broken=_broken(
            "AWS::SageMaker::EndpointConfig",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                }
            ],
            AsyncInferenceConfig={"OutputConfig": {}},
        ),
    ),
    ServiceRule(
        id="sagemaker-data-capture",
        type="AWS::SageMaker::EndpointConfig",
        rule="data capture samples 0 to 100% of requests, captures at least one of input and "
        "output, into an s3:// URI",
        check=_data_capture,
        doc=SAGEMAKER.format("DataCaptureConfig"),
        broken=_broken(
            "AWS::SageMaker::EndpointConfig",
            DataCaptureConfig={
                "InitialSamplingPercentage": 120,
                "CaptureOptions": [{"CaptureMode": "Input"}],
                "DestinationS3Uri": "s3://b/capture",
            },
        ),
    ),
    ServiceRule(
        id="sagemaker-images-in-region",
        type="*",
        rule="every ECR image a resource names (a model's containers, a pipeline definition's "
        "steps) is in the stack's region, in the stack's account or one of the registries AWS "
        "publishes SageMaker's images from there (a cross-region image fails to pull)",
        check=_images_in_region,
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg-ecr-paths/sagemaker-algo-docker-registry-paths.html",
        broken=_broken(
            "AWS::SageMaker::Pipeline",
            PipelineDefinition={
                "PipelineDefinitionBody": {
                    "Fn::Join": [
                        "",
                        [
                            '{"Steps":[{"Arguments":{"AppSpecification":{"ImageUri":'
                            '"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"'
                            "}}}]}"
                        ],
                    ]
                }
            },
        ),
    ),
    ServiceRule(
        id="autoscaling-capacity-range",
        type="AWS::ApplicationAutoScaling::ScalableTarget",
        rule="0 <= MinCapacity <= MaxCapacity",
        check=_capacity_range,
        doc=CFN.format("aws-resource-applicationautoscaling-scalabletarget"),
        broken=_broken("AWS::ApplicationAutoScaling::ScalableTarget", MinCapacity=4, MaxCapacity=2),
    ),
    ServiceRule(
        id="autoscaling-variant-exists",
        type="AWS::ApplicationAutoScaling::ScalableTarget",
        rule="a SageMaker variant's scalable target names an endpoint and variant of its own "
        "stack and DependsOn that endpoint (its ResourceId is a plain name)",
        check=_variant_target,
        doc=CFN.format("aws-resource-applicationautoscaling-scalabletarget"),
        broken={
            **_endpoint({"Type": "ALL_AT_ONCE"}),
            "Scaling": {
                "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
                "Properties": {
                    "ServiceNamespace": "sagemaker",
                    "MinCapacity": 1,
                    "MaxCapacity": 2,
                    "ResourceId": "endpoint/e/variant/AllTraffic",
                    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                },
            },
        },
    ),
    ServiceRule(
        id="autoscaling-zero-only-async",
        type="AWS::ApplicationAutoScaling::ScalableTarget",
        rule="a SageMaker variant scales to zero instances (MinCapacity 0) only on an "
        "asynchronous endpoint",
        check=_scale_to_zero,
        doc="https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html",
        broken={
            **_endpoint({"Type": "ALL_AT_ONCE"}),
            "Scaling": {
                "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
                "Properties": {
                    "ServiceNamespace": "sagemaker",
                    "MinCapacity": 0,
                    "MaxCapacity": 2,
                    "ResourceId": "endpoint/e/variant/AllTraffic",
                    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                },
            },
        },
    ),
    ServiceRule(
        id="cloudwatch-evaluation-window",
        type="AWS::CloudWatch::Alarm",
        rule="Period x EvaluationPeriods is at most one day for periods under an hour, seven "
        "days otherwise; DatapointsToAlarm is at most EvaluationPeriods",
        check=_evaluation_window,
        doc="https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html",
        broken=_broken(
            "AWS::CloudWatch::Alarm",
            MetricName="m",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=300,
        ),
    ),
    ServiceRule(
        id="cloudwatch-period-values",
        type="AWS::CloudWatch::Alarm",
        rule="an alarm's period is 10, 20, 30 or a multiple of 60 seconds",
        check=_period_values,
        doc="https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html",
        broken=_broken(
            "AWS::CloudWatch::Alarm",
            MetricName="m",
            Statistic="Sum",
            Period=90,
            EvaluationPeriods=1,
        ),
    ),
    ServiceRule(
        id="cloudwatch-metric-shape",
        type="AWS::CloudWatch::Alarm",
        rule="an alarm gives MetricName (with one of Statistic and ExtendedStatistic) or "
        "Metrics (with exactly one query returning data), not both",
        check=_metric_shape,
        doc="https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html",
        broken=_broken(
            "AWS::CloudWatch::Alarm",
            MetricName="m",
            Statistic="Sum",
            ExtendedStatistic="p99",
            Period=60,
            EvaluationPeriods=1,
        ),
    ),
    ServiceRule(
        id="cloudwatch-alarm-actions",
        type="AWS::CloudWatch::Alarm",
        rule="an alarm has at most 5 actions of each kind",
        check=_alarm_actions,
        doc="https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html",
        broken=_broken(
            "AWS::CloudWatch::Alarm",
            AlarmActions=[f"arn:aws:sns:{REGION}:{ACCOUNT}:t{i}" for i in range(6)],
        ),
    ),
    ServiceRule(
        id="dynamodb-global-table-replicas",
        type="AWS::DynamoDB::GlobalTable",
        rule="a global table has a replica in its stack's region; with SSEType KMS every "
        "replica names a key of its own region; more than one replica needs a "
        "StreamSpecification; PROVISIONED billing needs WriteProvisionedThroughputSettings",
        check=_global_table,
        doc=CFN.format("aws-resource-dynamodb-globaltable"),
        broken=_broken(
            "AWS::DynamoDB::GlobalTable",
            BillingMode="PAY_PER_REQUEST",
            Replicas=[{"Region": "us-east-1"}],
        ),
    ),
    ServiceRule(
        id="iam-inline-policy-size",
        type="AWS::IAM::Role",
        rule="a role's inline policies take at most 10,240 characters together, white space "
        f"aside (deploy-time values counted as {TOKEN_LENGTH} characters)",
        check=_inline_policy_size,
        doc="https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html",
        broken={
            "Subject": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "r"}},
            "Grants": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "Roles": [{"Ref": "Subject"}],
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "s3:GetObject",
                                "Resource": f"arn:aws:s3:::bucket/{i:04}/*",
                            }
                            for i in range(200)
                        ]
                    },
                },
            },
        },
    ),
    ServiceRule(
        id="iam-trust-policy-size",
        type="AWS::IAM::Role",
        rule="a role's trust policy takes at most 2,048 characters, the default quota of an "
        "account (4,096 on request)",
        check=_trust_policy_size,
        doc="https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html",
        broken=_broken(
            "AWS::IAM::Role",
            AssumeRolePolicyDocument={
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"AWS": f"arn:aws:iam::{i:012}:root"},
                    }
                    for i in range(40)
                ]
            },
        ),
    ),
    ServiceRule(
        id="iam-function-passes-narrow-roles",
        type="AWS::Lambda::Function",
        rule="a function's role (and any role it may assume) passes only named roles of this "
        "app or service-linked roles, each to a named service (iam:PassedToService), never "
        "CDK's bootstrap execution role, and no role it passes may do everything, everything "
        "of a service, or change IAM",
        check=_function_passes,
        doc="https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html",
        broken={
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Role": {"Fn::GetAtt": ["HookRole", "Arn"]}},
            },
            "HookRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "Policies": [
                        {
                            "PolicyName": "deploy",
                            "PolicyDocument": {
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": "iam:PassRole",
                                        "Resource": {"Fn::GetAtt": ["StackRole", "Arn"]},
                                        "Condition": {
                                            "StringEquals": {
                                                "iam:PassedToService": (
                                                    "cloudformation.amazonaws.com"
                                                )
                                            }
                                        },
                                    }
                                ]
                            },
                        }
                    ]
                },
            },
            "StackRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]
                },
            },
        },
    ),
    ServiceRule(
        id="sqs-retention",
        type="AWS::SQS::Queue",
        rule="MessageRetentionPeriod is 60 s to 14 days (1,209,600 s)",
        check=_queue_retention,
        doc="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html",
        broken=_broken("AWS::SQS::Queue", MessageRetentionPeriod=30),
    ),
    ServiceRule(
        id="ssm-parameter-value-size",
        type="AWS::SSM::Parameter",
        rule="a parameter's value takes at most 4 KB (8 KB in the Advanced tier)",
        check=_parameter_value,
        doc="https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html",
        broken=_broken("AWS::SSM::Parameter", Name="/p", Type="String", Value="v" * 5000),
    ),
    *(
        ServiceRule(
            id=f"name-{n.type.split('::', 1)[1].replace('::', '-').lower()}-"
            + n.path.replace("[]", "").replace(".", "-").lower(),
            type=n.type,
            rule=f"{n.path}, when the template fixes it, is {n.low} to {n.high} characters of "
            f"{n.what}" + (" and not a reserved form" if n.extra else ""),
            check=_name_check(n),
            doc=n.doc,
            broken=_broken_name(n),
        )
        for n in NAMES
    ),
    ServiceRule(
        id="names-unique",
        type="*",
        rule="no two resources of a type share a fixed name where it must be unique: the "
        "account's region, the account for IAM roles, every account for buckets",
        check=_unique_name,
        doc=CFN.format("aws-properties-name"),
        broken={
            "A": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "mlgate-data"}},
            "B": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "mlgate-data"}},
        },
    ),
)


REVIEWED: Mapping[str, str] = {
    "AWS::CDK::Metadata": "CDK's record of the construct library versions; no service reads it",
    "AWS::Budgets::Budget": "mlgate/infra/constructs/cost.py: one cost budget per product on the "
    "mlgate:product tag; its SNS subscriber's topic policy and key are checked by "
    "tests/constructs/test_cost.py",
    "AWS::Lambda::EventInvokeConfig": "read by events-lambda-target-on-failure; mlgate sets only "
    "its on-failure destination and the $LATEST qualifier",
    "AWS::Lambda::LayerVersion": "read by lambda-layers-in-region (its compatible runtimes and "
    "architectures); CDK names it",
    "AWS::Lambda::Permission": "read by lambda-public-url-permissions and "
    "events-lambda-target-permission",
    "AWS::S3::BucketPolicy": "a policy document: cfn-lint and cdk-nag read it",
    "AWS::SNS::Subscription": "email subscriptions to the manifest's contacts, checked there",
    "AWS::SNS::TopicPolicy": "a policy document: cfn-lint and cdk-nag read it",
    "AWS::SQS::QueuePolicy": "a policy document: cfn-lint and cdk-nag read it",
    "AWS::StepFunctions::StateMachine": "mlgate/infra/constructs/rollback.py: the rollback state "
    "machine; CloudFormation names it (no custom name), cdk-nag holds its logging and tracing, "
    "tests/constructs/test_rollback_hook.py its definition, retries and timeout",
}
"""The resource types mlgate emits that have no row of their own, and why."""
