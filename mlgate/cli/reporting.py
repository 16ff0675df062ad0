"""What the generated pages share: reading a cloud assembly, resolving intrinsics for
display, and one self-contained HTML page style (inline CSS, no external assets)."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 24px;
       color: #16191f; background: #f2f3f3; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 18px; margin-top: 28px; }}
table {{ border-collapse: collapse; background: #fff; margin: 8px 0 16px; }}
td, th {{ border: 1px solid #d5dbdb; padding: 4px 8px; font-size: 13px; text-align: left;
          vertical-align: top; }}
th {{ background: #fafafa; }}
.bad {{ color: #b0251a; font-weight: 600; }} .ok {{ color: #1d8102; }}
td {{ overflow-wrap: anywhere; }}
.grid {{ display: grid; grid-template-columns: repeat(24, 1fr);
         grid-auto-rows: minmax(28px, auto); gap: 6px; }}
.widget {{ background: #fff; border: 1px solid #d5dbdb; border-radius: 2px; padding: 6px;
           font-size: 12px; overflow-wrap: anywhere; min-width: 0; }}
.widget h3 {{ margin: 0 0 4px; font-size: 13px; }}
.widget ul, .widget ol {{ margin: 0; padding-left: 16px; }}
.text h1 {{ font-size: 18px; margin: 0 0 4px; }}
.text h2, .text h3, .text h4 {{ font-size: 15px; margin: 0 0 4px; }}
.text p {{ margin: 0 0 4px; }}
.annotation {{ color: #b0251a; }}
.text {{ background: transparent; border: none; }}
</style></head><body>
{body}
</body></html>
"""


def page(title: str, body: str) -> str:
    return PAGE.format(title=html.escape(title), body=body)


def esc(value: Any) -> str:
    return html.escape(str(value))


def templates(outdir: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> template, for every stack of a synthesized cloud assembly."""
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(outdir.glob("*.template.json"))
    }


def stack_environments(outdir: Path) -> dict[str, tuple[str, str]]:
    """Stack name (as `templates` keys it) -> (account, region) it deploys to, from the cloud
    assembly's manifest; empty when the assembly has none."""
    path = outdir / "manifest.json"
    if not path.is_file():
        return {}
    found = {}
    for artifact in json.loads(path.read_text()).get("artifacts", {}).values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        stack = artifact["properties"]["templateFile"].removesuffix(".template.json")
        account, _, region = (
            str(artifact.get("environment", "")).removeprefix("aws://").partition("/")
        )
        found[stack] = (account, region)
    return found


# The property that holds a resource's physical name, by the first one a resource carries.
_NAME_KEYS = (
    "AlarmName",
    "FunctionName",
    "TopicName",
    "TableName",
    "BucketName",
    "QueueName",
    "RoleName",
    "LogGroupName",
    "EndpointName",
    "PipelineName",
    "DashboardName",
    "ModelPackageGroupName",
    "Name",
)
# What a person calls a resource type; the rest read as their type without "AWS::".
_KINDS = {
    "AWS::KMS::Key": "KMS key",
    "AWS::S3::Bucket": "S3 bucket",
    "AWS::SNS::Topic": "SNS topic",
    "AWS::SQS::Queue": "SQS queue",
    "AWS::Lambda::Function": "Lambda function",
    "AWS::IAM::Role": "IAM role",
    "AWS::DynamoDB::Table": "DynamoDB table",
    "AWS::Logs::LogGroup": "log group",
    "AWS::CloudWatch::Alarm": "alarm",
    "AWS::CloudWatch::CompositeAlarm": "alarm",
    "AWS::CodePipeline::Pipeline": "release pipeline",
    "AWS::SageMaker::Endpoint": "endpoint",
}
# Attributes that stand for the resource itself: a reader wants its name, not its ARN.
_IDENTITY_ATTRIBUTES = {"Arn", "Name", "TopicName", "TopicArn", "QueueName", "QueueArn"}
_TOKEN = re.compile(r"<([A-Za-z0-9]+)(?:\.([A-Za-z0-9.]+))?>")


@dataclass
class Assembly:
    """Every template of a cloud assembly and where each deploys: what a value resolves
    against, including exports one stack imports from another."""

    templates: dict[str, dict[str, Any]]
    environments: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def read(cls, outdir: Path) -> Assembly:
        return cls(templates(outdir), stack_environments(outdir))

    @cached_property
    def exports(self) -> dict[str, tuple[str, Any]]:
        """Export name -> (exporting stack, the value it exports)."""
        return {
            str(output["Export"]["Name"]): (stack, output.get("Value"))
            for stack, template in self.templates.items()
            for output in template.get("Outputs", {}).values()
            if isinstance(output.get("Export", {}).get("Name"), str)
        }

    def reader(self, stack: str) -> Reader:
        return Reader(self, stack)


@dataclass
class Reader:
    """One stack's template values rendered as what they will be once deployed."""

    assembly: Assembly
    stack: str

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.assembly.templates.get(self.stack, {}).get("Resources", {})
        return resources

    @property
    def parameters(self) -> dict[str, Any]:
        parameters: dict[str, Any] = self.assembly.templates.get(self.stack, {}).get(
            "Parameters", {}
        )
        return parameters

    def path(self, logical: str) -> str:
        """The resource's construct path inside its stack, as a person wrote it."""
        meta = self.resources.get(logical, {}).get("Metadata", {})
        path = str(meta.get("aws:cdk:path", logical)).removeprefix(f"{self.stack}/")
        return path.removesuffix("/Resource").removesuffix("/Default")

    def name(self, logical: str) -> str:
        """A resource by its physical name; unnamed, by its kind and construct path."""
        resource = self.resources.get(logical, {})
        props = resource.get("Properties", {})
        for key in _NAME_KEYS:
            value = props.get(key)
            if isinstance(value, str) or (
                isinstance(value, dict) and ("Fn::Join" in value or "Fn::Sub" in value)
            ):
                return self.display(value)
        if resource.get("Type") == "AWS::KMS::Key":
            for alias in self.resources.values():
                target = alias.get("Properties", {}).get("TargetKeyId")
                if alias["Type"] == "AWS::KMS::Alias" and logical in json.dumps(target):
                    return f"KMS key {alias['Properties']['AliasName']}"
        return f"{self.kind(logical)} {self.path(logical)}"

    def kind(self, logical: str) -> str:
        kind = str(self.resources.get(logical, {}).get("Type", "resource"))
        return _KINDS.get(kind, kind.removeprefix("AWS::").replace("::", " "))

    def described(self, logical: str) -> str:
        """A resource by its kind and name: "SNS topic on-call", "KMS key alias/x"."""
        name, kind = self.name(logical), self.kind(logical)
        return name if name.startswith(kind) else f"{kind} {name}"

    def display(self, value: Any) -> str:
        """A CloudFormation value made readable: a resource by its name, an import by what
        the other stack exports, a parameter as set at release, a Join joined."""
        if isinstance(value, str):
            return value
        if isinstance(value, bool) or value is None:
            return json.dumps(value)
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, list):
            return ", ".join(self.display(v) for v in value)
        if isinstance(value, dict):
            if "Ref" in value:
                return self._ref(str(value["Ref"]))
            if "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"]
                logical, attribute = (
                    target.split(".", 1) if isinstance(target, str) else (target[0], target[1])
                )
                return self._attribute(str(logical), str(attribute))
            if "Fn::Join" in value:
                sep, parts = value["Fn::Join"]
                return str(sep).join(self.display(p) for p in parts)
            if "Fn::ImportValue" in value:
                return self._import(self.display(value["Fn::ImportValue"]))
            if "Fn::Sub" in value:
                return self._sub(value["Fn::Sub"])
            if "Fn::Select" in value:
                index, items = value["Fn::Select"]
                if isinstance(items, list):
                    return self.display(items[int(index)])
                if isinstance(items, dict) and "Fn::Split" in items:
                    sep, whole = items["Fn::Split"]
                    if isinstance(whole, str):
                        return whole.split(str(sep))[int(index)]
                    # A part of a resource's ARN or id: the resource says more than the part.
                    return self.display(whole)
                return self.display(items)
            if "Fn::If" in value:
                _, yes, no = value["Fn::If"]
                return f"{self.display(yes)} or {self.display(no)}, by condition"
            return ", ".join(f"{k}: {self.display(v)}" for k, v in value.items())
        return str(value)

    def tokens(self, text: str) -> str:
        """Text with cdk-nag's `<Logical.Attr>` references replaced by what they name."""

        def named(match: re.Match[str]) -> str:
            logical, attribute = match.group(1), match.group(2)
            if logical not in self.resources:
                return match.group(0)
            return self._attribute(logical, attribute) if attribute else self._ref(logical)

        return _TOKEN.sub(named, text)

    def _ref(self, target: str) -> str:
        if target.startswith("AWS::"):
            return self._pseudo(target)
        if target in self.parameters:
            return f"{target} (set at release)"
        if target in self.resources:
            return self.name(target)
        return target

    def _attribute(self, logical: str, attribute: str) -> str:
        if logical not in self.resources:
            return f"{attribute} of {logical}"
        if attribute in _IDENTITY_ATTRIBUTES or attribute.endswith("Arn"):
            return self.name(logical)
        return f"{attribute} of {self.name(logical)}"

    def _import(self, export: str) -> str:
        found = self.assembly.exports.get(export)
        if found is None:
            stack, _, output = export.partition(":")
            return f"the value {output or export} exported by stack {stack}"
        stack, exported = found
        exporter = self.assembly.reader(stack)
        target = (
            exported.get("Ref") or exported.get("Fn::GetAtt")
            if isinstance(exported, dict)
            else None
        )
        if isinstance(target, list) and (
            target[1] in _IDENTITY_ATTRIBUTES or str(target[1]).endswith("Arn")
        ):
            target = target[0]
        what = (
            exporter.described(target)
            if isinstance(target, str) and target in exporter.resources
            else exporter.display(exported)
        )
        return f"the {what} of stack {stack}"

    def _pseudo(self, name: str) -> str:
        account, region = self.assembly.environments.get(self.stack, ("", ""))
        known = {
            "AWS::AccountId": account if account.isdigit() else "the deploying account",
            "AWS::Region": region or "the deploying region",
            "AWS::Partition": "aws-cn" if region.startswith("cn-") else "aws",
            "AWS::URLSuffix": "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com",
            "AWS::StackName": self.stack,
            "AWS::NoValue": "",
        }
        return known.get(name, name.removeprefix("AWS::"))

    def _sub(self, sub: Any) -> str:
        text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])

        def value(match: re.Match[str]) -> str:
            key = match.group(1)
            if key in variables:
                return self.display(variables[key])
            logical, _, attribute = key.partition(".")
            return self._attribute(logical, attribute) if attribute else self._ref(logical)

        return re.sub(r"\$\{([^!}][^}]*)\}", value, str(text))


def percent(fraction: float) -> str:
    """A fraction as people say it: 0.001 -> "0.1 %"."""
    return f"{round(fraction * 100, 6):g} %"


def duration(seconds: float) -> str:
    """Seconds in the largest unit that keeps the number whole-ish: 600 -> "10 min"."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def quantity(value: float, unit: str) -> str:
    """A value with its unit; a fraction shown as a percentage."""
    if unit.strip().lower() in ("fraction", "ratio", "share"):
        return percent(value)
    if unit.strip() in ("%", "percent"):
        return f"{value:g} %"
    return f"{value:g} {unit}".strip()


_DAYS = {
    "MON": "Monday",
    "TUE": "Tuesday",
    "WED": "Wednesday",
    "THU": "Thursday",
    "FRI": "Friday",
    "SAT": "Saturday",
    "SUN": "Sunday",
}


def when(expression: str) -> str:
    """An EventBridge, Glue or Model Monitor schedule in words: "every Monday at 04:00 UTC"."""
    rate = re.fullmatch(r"rate\((\d+) (\w+)\)", expression.strip())
    if rate:
        return f"every {rate.group(1)} {rate.group(2)}"
    cron = re.fullmatch(r"cron\((.+)\)", expression.strip())
    fields = cron.group(1).split() if cron else []
    if len(fields) != 6 or not fields[0].isdigit():
        return f"on the schedule {expression} (UTC)"
    minute, hour, dom, month, dow, _ = fields
    if month == "*" and dom.isdigit() and dow == "?" and hour.isdigit():
        return f"every month on day {int(dom)} at {int(hour):02d}:{int(minute):02d} UTC"
    if month != "*" or dom not in ("*", "?"):
        return f"on the schedule {expression} (UTC)"
    if hour == "*":
        return f"every hour at minute {int(minute)}"
    step = re.fullmatch(r"(\d+)/(\d+)", hour)
    if step:
        return f"every {step.group(2)} h from {int(step.group(1)):02d}:{int(minute):02d} UTC"
    if not hour.isdigit():
        return f"on the schedule {expression} (UTC)"
    at = f"at {int(hour):02d}:{int(minute):02d} UTC"
    if dow in ("*", "?"):
        return f"every day {at}"
    days = [_DAYS.get(d, d) for d in dow.split(",")]
    return f"every {', '.join(days)} {at}"
