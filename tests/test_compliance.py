"""Compliance gates: cdk-nag in every synth, cfn-lint on every template, scoped acks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from mlgate.cli.governance import lint as cfn
from mlgate.cli.reporting import stack_environments
from mlgate.infra.constructs.compliance import acknowledge, enable_compliance_checks

# cfn-lint rules ignored across mlgate, each with its reason. Keep this list short.
IGNORED_CFN_LINT_RULES: dict[str, str] = {
    "W3005": "CDK adds DependsOn on a role's default policy beside the GetAtt that already "
    "orders them; redundant in the template, harmless to CloudFormation.",
}


def lint(path: Path, region: str = "eu-west-1") -> list[str]:
    """cfn-lint one template for the region it deploys to (resource availability differs)."""
    matches = cfn.lint(path.read_text(), region)
    return [
        f"{path.name}: {m.rule.id} {m.message} ({'/'.join(map(str, m.path))})"
        for m in matches
        if m.rule.id not in IGNORED_CFN_LINT_RULES and m.rule.id[0] in "EW"
    ]


def test_cfn_lint_finds_nothing_in_any_template(synth: Any) -> None:
    """Every template of every example product (one has prod in an account of its own),
    each linted once for its own region."""
    assert synth.template_files, "the app synthesized no template"
    environments = stack_environments(synth.outdir)
    findings = [
        line
        for path in synth.template_files
        for line in lint(path, environments[path.name.removesuffix(".template.json")][1])
    ]
    assert findings == []


def test_cfn_lint_would_catch_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.template.json"
    broken.write_text(
        json.dumps({"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"Nope": 1}}}})
    )
    assert any("E3002" in line for line in lint(broken))


def test_the_lint_cache_replays_cfn_lint_s_own_findings(tmp_path: Path) -> None:
    """The suite's lint cache (tests/conftest.py): a text linted in an earlier run is not linted
    again, and its findings come back as cfn-lint gave them; another text, or the same text for
    another region, is linted."""
    from .conftest import remembered_lint

    calls: list[str] = []

    def counted(text: str, region: str) -> list[Any]:
        calls.append(region)
        return cfn.lint(text, region)

    broken = json.dumps({"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"N": 1}}}})
    first = remembered_lint(counted, tmp_path)(broken, "eu-west-1")
    again = remembered_lint(counted, tmp_path)  # a later run: a new process's wrapper
    replayed = again(broken, "eu-west-1")
    assert calls == ["eu-west-1"]
    shown = [(m.rule.id, m.message, [str(p) for p in getattr(m, "path", ())]) for m in first]
    assert [(m.rule.id, m.message, getattr(m, "path", [])) for m in replayed] == shown
    assert any(rule == "E3002" for rule, _, _ in shown)
    again(broken, "us-east-1")
    again(broken.replace('"N"', '"M"'), "eu-west-1")
    assert calls == ["eu-west-1", "us-east-1", "eu-west-1"]


def test_every_acknowledgment_names_its_reason(synth: Any) -> None:
    reasons = []
    for path in synth.template_files:
        for logical_id, resource in json.loads(path.read_text())["Resources"].items():
            for rule in (
                resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
            ):
                reasons.append((logical_id, rule["id"], rule["reason"]))
    assert reasons, "expected at least the access-log bucket's S1 acknowledgment"
    for logical_id, rule_id, reason in reasons:
        assert rule_id.startswith("AwsSolutions-"), (logical_id, rule_id)
        assert len(reason) >= 40, (logical_id, rule_id, reason)


def _app(tmp_path: Path) -> tuple[cdk.App, cdk.Stack]:
    app = cdk.App(outdir=str(tmp_path))
    enable_compliance_checks(app)
    return app, cdk.Stack(app, "Probe")


def test_an_unacknowledged_finding_fails_the_synth(tmp_path: Path) -> None:
    app, stack = _app(tmp_path)
    s3.Bucket(stack, "PlainBucket")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_acknowledgments_must_be_scoped_and_explained(tmp_path: Path) -> None:
    app, stack = _app(tmp_path)
    bucket = s3.Bucket(stack, "B", enforce_ssl=True)
    with pytest.raises(ValueError, match="not app-wide"):
        acknowledge(app, "AwsSolutions-S1", "x" * 60)
    with pytest.raises(ValueError, match="must explain this resource"):
        acknowledge(bucket, "AwsSolutions-S1", "not needed")
    acknowledge(
        bucket,
        "AwsSolutions-S1",
        "Probe bucket in a unit test; holds nothing and is never deployed.",
    )
    app.synth()


# Services that publish or decrypt on a rule's or an alarm's behalf; a policy that admits them
# must say for whom (https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
DEPUTIES = {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
POLICIES = {
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
}


def unguarded_service_statements(template: dict[str, object]) -> list[str]:
    found = []
    resources: dict[str, dict[str, object]] = template.get("Resources", {})  # type: ignore[assignment]
    for logical_id, resource in resources.items():
        field = POLICIES.get(str(resource["Type"]))
        if field is None:
            continue
        document = resource["Properties"][field]  # type: ignore[index]
        for statement in document["Statement"]:
            principal = statement.get("Principal")
            services = principal.get("Service") or [] if isinstance(principal, dict) else []
            services = {services} if isinstance(services, str) else set(services)
            conditions = json.dumps(statement.get("Condition") or {})
            if services & DEPUTIES and not (
                "aws:SourceAccount" in conditions or "aws:SourceArn" in conditions
            ):
                found.append(f"{logical_id}: {sorted(services)} {statement.get('Action')}")
    return found


@pytest.mark.parametrize("app", ["synth", "cross_account"])
def test_policies_admitting_eventbridge_or_cloudwatch_name_the_source(
    request: pytest.FixtureRequest, app: str
) -> None:
    synth = request.getfixturevalue(app)
    findings = [
        f"{path.name}: {finding}"
        for path in synth.template_files
        for finding in unguarded_service_statements(json.loads(path.read_text()))
    ]
    assert findings == []


def test_the_deputy_check_notices_an_unguarded_topic_policy() -> None:
    statement = {"Action": "sns:Publish", "Effect": "Allow",
                 "Principal": {"Service": "events.amazonaws.com"}}  # fmt: skip
    policy = {"PolicyDocument": {"Statement": [statement]}}
    template = {"Resources": {"P": {"Type": "AWS::SNS::TopicPolicy", "Properties": policy}}}
    assert unguarded_service_statements(template) == ["P: ['events.amazonaws.com'] sns:Publish"]


def test_the_shared_rules_find_what_a_fresh_cfn_lint_finds(synth: Any) -> None:
    """mlgate.cli.governance.lint keeps one cfn-lint Runner (its loaded rules) per region for many
    templates, as cfn-lint's command line does: its findings equal `cfnlint.api.lint`'s, which
    builds a new one per template: on the smallest synthesized template (the others already
    ran through the shared rules), a broken one and text that is no template at all."""
    from cfnlint.api import lint as fresh  # type: ignore[import-untyped,unused-ignore]

    texts = sorted((p.read_text() for p in synth.template_files), key=len)[:1]
    texts.append(json.dumps({"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {}}}}))
    texts.append("{not json")
    shared_rules = getattr(cfn.lint, "__wrapped__", cfn.lint)  # not the suite's cache of it
    shared = [[str(m) for m in shared_rules(text, "eu-west-1")] for text in texts]
    alone = [[str(m) for m in fresh(text, regions=["eu-west-1"])] for text in texts]
    assert shared == alone
    assert any(shared), "the comparison needs templates with findings"


def deputy_key_statements(template: dict[str, object]) -> list[dict[str, object]]:
    resources: dict[str, dict[str, object]] = template.get("Resources", {})  # type: ignore[assignment]
    found = []
    for resource in resources.values():
        if resource["Type"] != "AWS::KMS::Key":
            continue
        for statement in resource["Properties"]["KeyPolicy"]["Statement"]:  # type: ignore[index]
            principal = statement.get("Principal")
            services = principal.get("Service") or [] if isinstance(principal, dict) else []
            services = {services} if isinstance(services, str) else set(services)
            if services & DEPUTIES:
                found.append(statement)
    return found


@pytest.mark.parametrize("app", ["synth", "cross_account"])
def test_keys_admit_the_publishing_services_in_sns_s_documented_form(
    request: pytest.FixtureRequest, app: str
) -> None:
    """SNS documents the key policy for AWS services publishing to an encrypted topic without a
    condition, and documents no source keys on the request it makes to KMS for them: a
    condition there could fail closed and drop every alarm and failure notice
    (mlgate/infra/stacks/foundation.py). The topic policies above carry the source conditions."""
    synth = request.getfixturevalue(app)
    for path in synth.template_files:
        for statement in deputy_key_statements(json.loads(path.read_text())):
            assert "Condition" not in statement, f"{path.name}: {statement}"
            assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
