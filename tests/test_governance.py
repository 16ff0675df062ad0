"""The evidence pack reflects the templates: an unencrypted bucket, a wildcard grant and a
public endpoint show up as exactly that; the real pack renders in a browser."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

from mlgate.cli.commands import main
from mlgate.cli.governance.evidence import collect
from mlgate.cli.governance.pack import build, html, markdown
from mlgate.manifest import load_manifest

from .conftest import DEFAULT_MANIFEST, EXAMPLES, PRODUCTS
from .test_dashboard_preview import dom

MANIFEST = load_manifest(DEFAULT_MANIFEST)


@pytest.fixture(scope="module")
def risky(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deliberately careless app (no cdk-nag): what the pack must call out."""
    outdir = tmp_path_factory.mktemp("risky")
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(
        app,
        "mlgate-fraud-detection-risky",
        env=cdk.Environment(account="111111111111", region="eu-west-1"),
    )
    s3.CfnBucket(stack, "Plain", bucket_name="plain-bucket")
    # Endpoint configs without a key: an instance endpoint's volume and capture are not
    # encrypted by one; a serverless endpoint has neither (SageMaker's own key encrypts it).
    for variant, config in (
        ({"instanceType": "ml.m5.large", "initialInstanceCount": 1}, "instance-config"),
        ({"serverlessConfig": {"maxConcurrency": 1, "memorySizeInMb": 2048}}, "serverless-config"),
        ({"instanceType": "ml.g5.xlarge", "initialInstanceCount": 1}, "nvme-config"),
    ):
        sagemaker.CfnEndpointConfig(
            stack,
            config,
            endpoint_config_name=config,
            production_variants=[{"variantName": "live", "modelName": "m", **variant}],
        )
    role = iam.Role(
        stack,
        "Loose",
        role_name="loose-role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
    )
    role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    fn = lambda_.Function(
        stack,
        "Open",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="x.h",
        code=lambda_.Code.from_inline("def h(e, c): pass"),
        role=role,
    )
    fn.add_function_url(auth_type=lambda_.FunctionUrlAuthType.NONE)
    app.synth()
    return outdir


def test_unencrypted_bucket_is_called_out(risky: Path) -> None:
    evidence = collect(risky, lint=False)
    (bucket,) = [s for s in evidence.stores if s.name == "plain-bucket"]
    assert not bucket.encrypted
    text = markdown(MANIFEST, build(MANIFEST, evidence))
    assert (
        "2 NOT ENCRYPTED: S3 bucket plain-bucket, endpoint volumes and capture instanceconfig"
        in text
    )
    (serverless,) = [s for s in evidence.stores if s.name == "serverlessconfig"]
    assert serverless.encryption == "SageMaker-owned key"
    (nvme,) = [s for s in evidence.stores if s.name == "nvmeconfig"]
    assert (nvme.encryption, nvme.key) == ("instance hardware", "none allowed (instance storage)")
    assert "does not block all public access" in text


def test_every_example_s_data_stores_are_encrypted(synth: Any, product: Any) -> None:
    """Each example product's every store, serverless endpoints included (encrypted by
    SageMaker's own key without a KmsKeyId)."""
    evidence = collect(synth.outdir, lint=False, product=product.manifest.product.name)
    assert evidence.stores
    assert [f"{s.kind} {s.name}" for s in evidence.stores if not s.encrypted] == []


def test_wildcard_grant_is_called_out(risky: Path) -> None:
    evidence = collect(risky, lint=False)
    loose = [g for g in evidence.grants if g.role == "loose-role" and "s3:*" in g.actions]
    assert loose[0].wildcards == ["s3:*", "*"]
    text = markdown(MANIFEST, build(MANIFEST, evidence))
    assert "| loose-role | s3:* | * | WILDCARD s3:*, * |" in text


def test_public_endpoint_is_called_out(risky: Path) -> None:
    evidence = collect(risky, lint=False)
    (url,) = [p for p in evidence.public if "Lambda function URL" in p]
    assert "no AWS authentication (AuthType NONE)" in url


def test_real_pack_reflects_the_app(
    synth: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            ["report", str(DEFAULT_MANIFEST), "--outdir", str(synth.outdir), "--out", str(tmp_path)]
        )
        == 0
    )
    assert "fraud-detection-evidence.html" in capsys.readouterr().out
    text = (tmp_path / "fraud-detection-evidence.md").read_text()
    assert ", 0 NOT ENCRYPTED." in text
    assert "Lambda function URL" in text  # the gate callback, and how it is protected
    assert "Slack's signature" in text
    acknowledgments = sum(
        len(r.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []))
        for p in synth.template_files
        if p.name.startswith("mlgate-fraud-detection-")
        for r in json.loads(p.read_text())["Resources"].values()
    )
    assert f"Acknowledged: {acknowledgments}." in text
    for gate in MANIFEST.gates:
        assert f"| {gate.name} |" in text
    assert (
        "| mlgate-fraud-detection-prod | canary | 10 % of capacity | real-time 2 x ml.c5.xlarge "
        "always on; release: canary 10 % of 2 instances = 1 instance(s), 50 % of traffic" in text
    )
    shown = dom(tmp_path / "fraud-detection-evidence.html", tmp_path / "profile")
    for heading in (
        "The one-pager",
        "Architecture",
        "Security posture",
        "Compliance",
        "Release gates",
        "Operations",
    ):
        assert f">{heading}</h2>" in shown
    # What each role may do, in words, before the raw grants it is read from.
    assert shown.index(">What each role may do</h3>") < shown.index(">IAM: every role's grants<")
    assert "Concept drift as fraud patterns shift" in shown
    assert 'class="bad"' in shown  # the public callback URL is highlighted


def test_report_needs_a_synth_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(DEFAULT_MANIFEST), "--outdir", str(tmp_path)]) == 1
    assert "run `make synth` first" in capsys.readouterr().err


def test_html_escapes_template_content() -> None:
    from mlgate.cli.governance.pack import Section

    page = html(MANIFEST, [Section("T", "p", notes=["<script>alert(1)</script>"])])
    assert "<script>alert" not in page


def test_a_one_account_product_lets_no_other_account_in(synth: Any) -> None:
    evidence = collect(synth.outdir, lint=False, product="fraud-detection")
    assert evidence.trusts == []
    text = markdown(MANIFEST, build(MANIFEST, evidence))
    assert "No statement lets another account in" in text


def test_cross_account_access_is_listed_with_the_roles_it_admits(cross_account: Any) -> None:
    manifest = cross_account.products[0].manifest
    name = manifest.product.name
    evidence = collect(cross_account.outdir, lint=False, product=name)
    home, prod = manifest.environments.staging.account, manifest.environments.prod.account
    region = manifest.environments.staging.region
    role = f"arn:aws:iam::{{}}:role/mlgate-{name}-{{}}".format
    admitted = {(t.resource, t.account, tuple(t.principals)) for t in evidence.trusts}
    readers = (role(prod, "prod-model"), role(prod, "prod-monitor"))
    assert admitted == {
        # The rollback command's role beside each hook's (mlgate/infra/constructs/rollback.py).
        (f"role mlgate-{name}-prod-deploy", home, (role(home, "deployer"), role(home, "rollback"))),
        (f"role mlgate-{name}-prod-verify", home, (role(home, "verifier"), role(home, "rollback"))),
        (f"role mlgate-{name}-prod-retrain", prod, (role(prod, "prod-drift"),)),
        (f"bucket policy mlgate-{name}-artifacts-{home}-{region}", prod, readers),
        (f"KMS key policy alias/mlgate/{name}", prod, readers),
        # Prod serves the released copy (no model from the registry): only the Evidently
        # monitor describes the live version, to find its baseline dataset.
        (f"model package group mlgate-{name}", prod, (role(prod, "prod-monitor"),)),
    }
    text = markdown(manifest, build(manifest, evidence))
    assert "6 statements let another account in; each admits only the roles it names." in text
    assert "ANY principal" not in text


@pytest.mark.parametrize("folder", PRODUCTS)
def test_the_evidence_pack_lists_each_environment_s_monitor(folder: str) -> None:
    """Per environment: the engine, its schedule, the manifest's drift rule and thresholds,
    model quality only with ground truth, and where the reports go."""
    from mlgate.cli.governance.pack import monitors
    from mlgate.manifest import MonitoringEngine

    m = load_manifest(EXAMPLES / folder / "manifest.yaml")
    header, rows = monitors(m)
    assert header[3] == "drift declared when"
    assert [r[0] for r in rows] == ["staging", "prod"]
    mon = m.monitoring
    for env, engine, _, drift, quality, reports in rows:
        if m.env_serving(env).mode == "serverless":
            assert engine.startswith("none"), (env, engine)  # no capture, nothing watches it
            assert (drift, quality, reports) == ("-", "-", "-")
            continue
        if mon.engine is MonitoringEngine.EVIDENTLY:
            assert engine.startswith("Evidently job")
            assert f"above {round(mon.drift_threshold * 100, 6):g} %" in drift
        for feature, score in mon.feature_drift_thresholds.items():
            assert f"{feature} {score}" in drift
        if mon.ground_truth_s3_uri:
            assert all(x.name.value in quality for x in m.metrics.model_metrics)
        else:
            assert quality.startswith("none")
        assert reports.endswith(f"monitoring/{env}/evidently/")


@pytest.mark.parametrize("folder", PRODUCTS)
def test_the_pack_shows_each_data_class_s_retention_and_the_rule_that_enforces_it(
    synth: Any, folder: str
) -> None:
    """Every class with the manifest's days, its reason, and the lifecycle rule (or TTL) the
    templates hold for it; a class the templates do not expire is called out."""
    import dataclasses

    from mlgate.cli.governance.pack import retention

    manifest = load_manifest(EXAMPLES / folder / "manifest.yaml")
    evidence = collect(synth.outdir, lint=False, product=manifest.product.name)
    ((_, (head, rows)),) = retention(manifest, evidence).tables
    assert head == ["class", "kept", "why", "deleted by"]
    by_class = {row[0]: row for row in rows}
    assert list(by_class) == ["raw", "curated", "capture", "reports", "audit"]
    for data_class, days in manifest.data_classes.items():
        row = by_class[data_class]
        assert row[1] == f"{days} days"
        assert row[2]  # the default's reason
        assert "NOT ENFORCED" not in row[3], row
    for data_class in ("raw", "curated", "capture", "reports"):
        days = getattr(manifest.retention, data_class)
        assert f"objects after {days} days" in by_class[data_class][3]
    assert "/datacapture/" in by_class["capture"][3]
    assert "/monitoring/" in by_class["reports"][3]
    # The broken form: templates that expire nothing.
    bare = dataclasses.replace(evidence, expiries=[])
    ((_, (_, rows)),) = retention(manifest, bare).tables
    assert all(row[3] == "NOT ENFORCED in the templates" for row in rows)


def _roles_in_words(synth: Any, manifest: Any) -> tuple[list[list[str]], list[list[str]]]:
    """The words table and the raw grants table of a product's security section."""
    from mlgate.cli.governance.pack import security

    evidence = collect(synth.outdir, lint=False, product=manifest.product.name)
    tables = dict(security(evidence).tables)
    captions = list(tables)
    assert captions.index("What each role may do") + 1 == captions.index("IAM: every role's grants")
    head, rows = tables["What each role may do"]
    assert head == ["stack", "role", "assumed by", "may"]
    return rows, tables["IAM: every role's grants"][1]


def _passes(words: str) -> list[tuple[set[str], str]]:
    """Each "pass IAM role(s) a, b to X" clause of a row: the roles, and where they may go."""
    return [
        (set(roles.split(", ")), target)
        for roles, target in re.findall(r"pass IAM roles? (.+?) to ([A-Za-z ]+?)(?=[,;]|$)", words)
    ]


def test_every_role_with_a_grant_is_described_in_words(product: Any, synth: Any) -> None:
    """Every role of the raw grants table has a row in words: who may assume it, what it may
    do; the deployer may pass only the Serving stacks' CloudFormation roles, and only to
    CloudFormation; a role another account's deployer assumes says which role that is."""
    from mlgate.infra.naming import Names
    from mlgate.manifest import ENV_NAMES

    manifest = product.manifest
    names = Names.of(manifest)
    rows, raw = _roles_in_words(synth, manifest)
    described = {(r[0], r[1]): r for r in rows}
    assert {(r[0], r[1]) for r in raw} <= set(described)
    assert all(row[2] and row[3] and row[3] != "nothing" for row in rows)
    by_role = {r[1]: r for r in rows}
    deployer = by_role[names.deployer_role()]
    assert deployer[2] == "Lambda"
    local = {names.serving_cfn_role(env) for env in ENV_NAMES if not manifest.is_remote(env)}
    assert _passes(deployer[3]) == [(local, "CloudFormation")]
    home = manifest.environments.staging.account
    for env in ENV_NAMES:
        if not manifest.is_remote(env):
            continue
        account = manifest.environment(env).account
        assert f"assume role {names.deploy_role(env)} in account {account}" in deployer[3]
        deploy = by_role[names.deploy_role(env)]
        assert deploy[2] == (
            f"role {names.deployer_role()} in account {home} and role {names.rollback_role()} "
            f"in account {home}"
        )
        assert _passes(deploy[3]) == [({names.serving_cfn_role(env)}, "CloudFormation")]
    # Each Serving stack's CloudFormation role may pass its environment's model role to
    # SageMaker, and may touch only models and configs tagged with the product.
    for env in ENV_NAMES:
        cfn = by_role[names.serving_cfn_role(env)]
        assert cfn[2].startswith("CloudFormation")
        assert ({names.model_role(env)}, "SageMaker") in _passes(cfn[3])
        assert f"only on resources tagged mlgate:product={manifest.product.name}" in cfn[3]


def test_a_hook_may_send_to_its_dead_letter_queue(product: Any, synth: Any) -> None:
    """Read from the templates: each function whose failed events go to a queue (its
    asynchronous invocation's on-failure destination, or a dead-letter config), its role's
    row says it may send messages to that queue."""
    manifest = product.manifest
    rows, _ = _roles_in_words(synth, manifest)
    may = {(r[0], r[1]): r[3] for r in rows}
    found = 0
    for path in synth.template_files:
        stack = path.name.removesuffix(".template.json")
        if not stack.startswith(f"mlgate-{manifest.product.name}-"):
            continue
        resources = json.loads(path.read_text())["Resources"]
        for r in resources.values():
            props = r.get("Properties", {})
            if r["Type"] == "AWS::Lambda::EventInvokeConfig":
                target = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
                fn = resources.get(props["FunctionName"].get("Ref"), {}).get("Properties", {})
            elif r["Type"] == "AWS::Lambda::Function":
                target, fn = props.get("DeadLetterConfig", {}).get("TargetArn"), props
            else:
                continue
            queue_id = (target or {}).get("Fn::GetAtt", [""])[0]
            if resources.get(queue_id, {}).get("Type") != "AWS::SQS::Queue":
                continue
            role_id = fn["Role"]["Fn::GetAtt"][0]
            role = resources[role_id]
            name = role["Properties"].get("RoleName") or role.get("Metadata", {}).get(
                "aws:cdk:path", role_id
            ).removesuffix("/Resource")
            # An unnamed queue reads as its construct path in the stack, or, in an assembly
            # without paths, its logical id without CDK's hash.
            path = resources[queue_id].get("Metadata", {}).get("aws:cdk:path")
            queue = resources[queue_id]["Properties"].get("QueueName") or (
                path.removeprefix(f"{stack}/").removesuffix("/Resource")
                if path
                else re.sub(r"[0-9A-F]{8}$", "", queue_id)
            )
            assert f"send messages to SQS queue {queue}" in may[(stack, name)], name
            found += 1
    assert found, "every product has hooks with a dead-letter queue"


def test_statements_read_in_words_and_an_unknown_action_is_shown_as_it_stands() -> None:
    """The translator on hand-built statements: verbs by access level, a passed role and where
    it may go, a key used only through a service, a tag condition, a wildcard; an action it
    cannot translate (misspelt, or no action at all) is listed as the template has it."""
    from mlgate.cli.governance.evidence import Grant
    from mlgate.cli.governance.pack import grants_in_words

    def words(actions: list[str], resources: list[str], **conditions: Any) -> str:
        grant = Grant("s", "r", actions, resources, dict(conditions))
        return grants_in_words([grant], account="111111111111")

    bucket = ["arn:aws:s3:::b", "arn:aws:s3:::b/in/*"]
    assert words(["s3:GetObject", "s3:ListBucket", "s3:PutObject"], bucket) == (
        "read and write S3 b/in/*"
    )
    broken = words(["s3:GetObject", "s3:Frobnicate", "not an action"], bucket)
    assert "read S3 b/in/*" in broken
    assert "s3:Frobnicate on S3 b/in/*" in broken
    assert "not an action on b/in/*" in broken
    assert (
        words(
            ["iam:PassRole"],
            ["arn:aws:iam::111111111111:role/x"],
            StringEquals={"iam:PassedToService": ["sagemaker.amazonaws.com"]},
        )
        == "pass IAM role x to SageMaker"
    )
    assert words(["iam:PassRole"], ["*"]) == "pass any IAM role to any service"
    assert (
        words(
            ["kms:Decrypt", "kms:GenerateDataKey"],
            ["the KMS key alias/k of stack s"],
            StringEquals={"kms:ViaService": ["sqs.eu-west-1.amazonaws.com"]},
        )
        == "use KMS key alias/k to decrypt and encrypt, only through SQS"
    )
    assert (
        words(
            ["sagemaker:CreateModel", "sagemaker:AddTags"],
            ["arn:aws:sagemaker:eu-west-1:111111111111:model/*"],
            StringEquals={"aws:RequestTag/mlgate:product": ["p"]},
        )
        == "create and tag any SageMaker model, only creating with tags mlgate:product=p"
    )
    assert words(["sts:AssumeRole"], ["arn:aws:iam::222222222222:role/y"]) == (
        "assume role y in account 222222222222"
    )
    assert words(["*"], ["*"]) == "WILDCARD: do anything to any resource"
    assert (
        words(["sqs:SendMessage"], ["SQS queue HookDeadLettersC8729627"])
        == "send messages to SQS queue HookDeadLetters"
    )
    # A condition it does not know is stated as the template states it.
    assert words(["dynamodb:GetItem"], ["t"], DateLessThan={"aws:CurrentTime": ["2030-01-01"]}) == (
        "read DynamoDB table t, only if aws:CurrentTime DateLessThan 2030-01-01"
    )


@pytest.mark.parametrize("folder", PRODUCTS)
def test_the_pack_lists_the_budget_estimate_and_the_advisor_checks_of_the_resource_types(
    synth: Any, folder: str
) -> None:
    """The cost section: the manifest's budget, the estimate's total, and exactly the Trusted
    Advisor checks whose resource type the product's templates create, with the support plan
    they need; a type the templates lack takes its checks out (the broken form)."""
    import dataclasses
    from collections import Counter

    from mlgate.cli.estimate import estimate
    from mlgate.cli.governance.pack import costs
    from mlgate.infra.constructs.cost import ADVISOR_CHECKS, SUPPORT_PLANS

    manifest = load_manifest(EXAMPLES / folder / "manifest.yaml")
    evidence = collect(synth.outdir, lint=False, product=manifest.product.name)
    section = costs(manifest, evidence)
    notes = " ".join(section.notes)
    assert f"{manifest.cost.monthly_budget:g} USD a month" in notes
    assert f"{estimate(manifest).total:,.2f} USD a month" in notes
    assert SUPPORT_PLANS in notes
    tables = dict(section.tables)
    types = {t for counted in evidence.stacks.values() for t in counted}
    listed = [row[0] for row in tables["Trusted Advisor checks on the product's resource types"][1]]
    assert listed == [c.name for c in ADVISOR_CHECKS if c.resource_type in types]
    assert "Amazon S3 Bucket Permissions" in listed
    without_lambda = dataclasses.replace(
        evidence,
        stacks={
            s: Counter({t: n for t, n in c.items() if t != "AWS::Lambda::Function"})
            for s, c in evidence.stacks.items()
        },
    )
    rows = dict(costs(manifest, without_lambda).tables)[
        "Trusted Advisor checks on the product's resource types"
    ][1]
    assert not any("Lambda" in row[0] for row in rows)


def test_the_pack_says_who_may_roll_back_and_as_which_role(synth: Any, product: Any) -> None:
    """Issue 34: the release-gates section names the rollback command's approvers (the
    manifest's) and the role it runs as."""
    from mlgate.cli.governance.pack import gates
    from mlgate.infra.naming import Names

    m = product.manifest
    evidence = collect(synth.outdir, lint=False, product=m.product.name)
    (note,) = [n for n in gates(m, evidence).notes if n.startswith("Roll back on demand")]
    assert m.rollback_approvers
    for contact in m.rollback_approvers:
        assert m.contact(contact).name in note
    assert Names.of(m).rollback_role() in note
    (chat,) = [n for n in gates(m, evidence).notes if n.startswith("From chat")]
    clickers = [c for c in m.rollback_approvers if m.contact(c).slack_user_id]
    assert clickers
    assert all(m.contact(c).name in chat for c in clickers)


def test_the_pack_lists_each_shadow_test_s_thresholds(synth: Any, product: Any) -> None:
    """Issue 34: each environment's shadow test with the thresholds that stop a release; a
    product with none says so."""
    from mlgate.cli.governance.pack import gates

    m = product.manifest
    section = gates(m, collect(synth.outdir, lint=False, product=m.product.name))
    tables = dict(section.tables)
    shadowed = {e: m.env_serving(e).shadow for e in ("staging", "prod")}
    if not any(shadowed.values()):
        assert any(n.startswith("Shadow tests: none") for n in section.notes)
        assert not any(title.startswith("Shadow tests") for title in tables)
        return
    ((_, (header, rows)),) = [(t, r) for t, r in tables.items() if t.startswith("Shadow tests")]
    assert header[-1] == "prediction shift at most"
    for env, test in shadowed.items():
        found = [row for row in rows if row[0] == env]
        if test is None:
            assert not found
            continue
        (row,) = found
        assert row[1] == f"{test.minutes} min"
        assert row[-1] == f"{test.max_prediction_shift:g}"
        assert row[5] == f"x{test.max_latency_ratio:g}"


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("cron(0 4 ? * MON *)", "every Monday at 04:00 UTC"),
        ("cron(30 2 * * ? *)", "every day at 02:30 UTC"),
        ("cron(0 3 1 * ? *)", "every month on day 1 at 03:00 UTC"),
        ("cron(0 3 L * ? *)", "on the schedule cron(0 3 L * ? *) (UTC)"),  # no words for "last"
        ("rate(6 hours)", "every 6 hours"),
    ],
)
def test_a_schedule_reads_in_words_or_as_it_is(expression: str, words: str) -> None:
    from mlgate.cli.reporting import when

    assert when(expression) == words
