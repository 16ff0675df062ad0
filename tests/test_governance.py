"""The evidence pack reflects the templates: an unencrypted bucket, a wildcard grant and a
public endpoint show up as exactly that; the real pack renders in a browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3

from mlgate.cli import main
from mlgate.governance.evidence import collect
from mlgate.governance.pack import build, html, markdown
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
    assert "1 NOT ENCRYPTED: S3 bucket plain-bucket" in text
    assert "does not block all public access" in text


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
        "| mlgate-fraud-detection-prod | canary | 10 % of capacity | canary 10 % of 2 instances "
        "= 1 instance(s), 50 % of traffic" in text
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
    assert "Concept drift as fraud patterns shift" in shown
    assert 'class="bad"' in shown  # the public callback URL is highlighted


def test_report_needs_a_synth_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(DEFAULT_MANIFEST), "--outdir", str(tmp_path)]) == 1
    assert "run `make synth` first" in capsys.readouterr().err


def test_html_escapes_template_content() -> None:
    from mlgate.governance.pack import Section

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
        (f"role mlgate-{name}-prod-deploy", home, (role(home, "deployer"),)),
        (f"role mlgate-{name}-prod-verify", home, (role(home, "verifier"),)),
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
    from mlgate.governance.pack import monitors
    from mlgate.manifest import MonitoringEngine

    m = load_manifest(EXAMPLES / folder / "manifest.yaml")
    header, rows = monitors(m)
    assert header[3] == "drift declared when"
    assert [r[0] for r in rows] == ["staging", "prod"]
    mon = m.monitoring
    for env, engine, _, drift, quality, reports in rows:
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

    from mlgate.governance.pack import retention

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
