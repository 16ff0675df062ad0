"""What people read is true: every page renders template values as what they will be
(a resource's name, another stack's export, a parameter set at release) and numbers in the
units people use; the dashboard preview renders its text widgets' Markdown."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlgate.cli.governance.pack import RESOURCE_WORDS, resource_words, write
from mlgate.cli.observability.preview import markdown_html, write_previews
from mlgate.cli.reporting import Assembly

from .conftest import PRODUCTS
from .test_dashboard_preview import dom

# What a page shows when it prints a template instead of saying what the template does.
RAW = ("Fn::", "Ref", "<import", "&lt;import", "ExportsOutput", "{'", "{&#x27;", '{"', "AWS::")
TOKEN = re.compile(r"<[A-Z][A-Za-z0-9]+[0-9A-F]{8}(\.\w+)?>|&lt;[A-Z][A-Za-z0-9]+[0-9A-F]{8}")

EXPORTER = {
    "Resources": {
        "Key1234ABCD": {"Type": "AWS::KMS::Key", "Properties": {}},
        "KeyAlias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": "alias/p", "TargetKeyId": {"Ref": "Key1234ABCD"}},
        },
        "Topic99": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "p-on-call"}},
        "Fn1": {
            "Type": "AWS::Lambda::Function",
            "Properties": {},
            "Metadata": {"aws:cdk:path": "p-base/Hook/Function/Resource"},
        },
    },
    "Outputs": {
        "KeyOut": {
            "Value": {"Fn::GetAtt": ["Key1234ABCD", "Arn"]},
            "Export": {"Name": "p-base:ExportsOutputFnGetAttKeyArn"},
        },
        "FnOut": {"Value": {"Ref": "Fn1"}, "Export": {"Name": "p-base:ExportsOutputRefFn1"}},
    },
}
IMPORTER = {
    "Parameters": {"ModelPackageArn": {"Type": "String"}},
    "Resources": {
        "Topic99": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "p-alerts"}},
    },
}


@pytest.fixture
def reader() -> Any:
    assembly = Assembly(
        {"p-base": EXPORTER, "p-serving": IMPORTER},
        {"p-serving": ("222222222222", "eu-west-1")},
    )
    return assembly.reader("p-serving")


def test_an_import_says_which_resource_of_which_stack(reader: Any) -> None:
    key = reader.display({"Fn::ImportValue": "p-base:ExportsOutputFnGetAttKeyArn"})
    assert key == "the KMS key alias/p of stack p-base"
    hook = reader.display({"Fn::ImportValue": "p-base:ExportsOutputRefFn1"})
    assert hook == "the Lambda function Hook/Function of stack p-base"


def test_parameters_pseudo_parameters_and_joins_read_as_what_they_will_be(reader: Any) -> None:
    assert reader.display({"Ref": "ModelPackageArn"}) == "ModelPackageArn (set at release)"
    arn = {
        "Fn::Join": [
            ":",
            ["arn", {"Ref": "AWS::Partition"}, "sns", {"Ref": "AWS::Region"},
             {"Ref": "AWS::AccountId"}, "p-alerts"],
        ]
    }  # fmt: skip
    assert reader.display(arn) == "arn:aws:sns:eu-west-1:222222222222:p-alerts"
    assert reader.display({"Fn::GetAtt": ["Topic99", "TopicArn"]}) == "p-alerts"
    assert reader.display({"Fn::Sub": "${Topic99}/x-${AWS::Region}"}) == "p-alerts/x-eu-west-1"
    assert reader.display({"a": 1}) == "a: 1"
    assert reader.tokens("Resource::<Topic99.Arn>/*") == "Resource::p-alerts/*"


def test_preview_renders_markdown_and_escapes_html() -> None:
    shown = markdown_html(
        "# Title\nsome **x** and *y*\n\n- [runbook](https://example.com/r?a=1&b=2)\n"
        "- [bad](javascript:alert(1))\n\n<script>alert(1)</script>"
    )
    assert "<h1>Title</h1>" in shown
    assert "<strong>x</strong>" in shown
    assert "<em>y</em>" in shown
    assert '<ul><li><a href="https://example.com/r?a=1&amp;b=2">runbook</a></li>' in shown
    assert "javascript:" not in shown
    assert "<script>" not in shown
    assert "&lt;script&gt;" in shown


@pytest.fixture(scope="module")
def pages(synth: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every page of both example products: the evidence pack (Markdown and HTML) and the
    dashboard previews, by file name."""
    out = tmp_path_factory.mktemp("pages")
    for product in synth.products:
        write(product.manifest, synth.outdir, out, lint=False)
    write_previews(synth.outdir, out / "dashboards", out / "no-rehearsal")
    return {p.name: p.read_text() for p in sorted(out.rglob("*.*")) if p.suffix in (".md", ".html")}


def test_no_page_shows_a_raw_template_value(pages: dict[str, str]) -> None:
    # Each product: its pack in md and html, its prod and staging dashboards.
    assert len(pages) == 4 * len(PRODUCTS)
    for name, text in pages.items():
        for raw in RAW:
            assert raw not in text, f"{name} shows {raw!r}"
        assert not TOKEN.search(text), f"{name} shows a logical id: {TOKEN.search(text)}"


def test_trusted_advisor_checks_name_what_they_look_at_in_words(pages: dict[str, str]) -> None:
    """Each check's resource type has its own words (none falls back to the spelled-out type),
    and the pack's table shows those words where a raw type ('AWS::S3::Bucket') would be."""
    from mlgate.infra.constructs.cost import ADVISOR_CHECKS

    for check in ADVISOR_CHECKS:
        assert check.resource_type in RESOURCE_WORDS, check
        assert "::" not in resource_words(check.resource_type)
    assert resource_words("AWS::Foo::BarBaz") == "Foo bar baz resources"  # never the raw type
    shown = [text for name, text in pages.items() if name.endswith("-evidence.md")]
    assert shown
    for text in shown:
        rows = [r for r in text.splitlines() if r.startswith("| Amazon S3 Bucket Permissions |")]
        assert rows
        assert all("| S3 buckets |" in r for r in rows), rows


def test_every_number_a_person_reads_has_its_unit(synth: Any, pages: dict[str, str]) -> None:
    for product in synth.products:
        m = product.manifest
        text = pages[f"{m.product.name}-evidence.md"]
        for slo in m.metrics.slos:
            row = next(r for r in text.splitlines() if r.startswith(f"| system SLO | {slo.name}"))
            assert re.search(r"at most [\d.]+ (ms|%);", row), row
        for kpi in m.metrics.business_kpis:
            row = next(r for r in text.splitlines() if r.startswith(f"| business KPI | {kpi.name}"))
            assert re.search(r"at (most|least) [\d.]+ \S", row), row
            assert "_" not in row.split("|")[3]  # "at most", not "at_most"
        for gate in m.gates:
            row = next(r for r in text.splitlines() if f"| {gate.name} |" in r)
            assert re.fullmatch(r"\d+ (h|min)|-", row.split(" | ")[4]), row  # the timeout
        for env in ("staging", "prod"):
            if m.is_batch(env):  # no endpoint: its runs' row, late after a duration
                row = next(r for r in text.splitlines() if r.startswith(f"| {env} | "))
                assert re.fullmatch(r"\d+ (s|min|h)", row.split(" | ")[5]), row
                assert re.fullmatch(r"\d+ rows", row.split(" | ")[3]), row
                continue
            row = next(
                r for r in text.splitlines() if r.startswith(f"| mlgate-{m.product.name}-{env} |")
            )
            assert re.fullmatch(r"\d+ (s|min|h)", row.split(" | ")[4]), row  # the bake
        assert "Retraining: after each successful ETL run, every " in text
        assert "cron(" not in text.split("Retraining")[1].split("\n")[0]


def test_preview_shows_text_as_markdown_and_alarm_names_in_full(
    synth: Any, pages: dict[str, str], tmp_path: Path
) -> None:
    product = synth.products[0].manifest.product.name
    page = tmp_path / "prod.html"
    page.write_text(pages[f"mlgate-{product}-prod.html"])
    shown = dom(page, tmp_path / "profile")
    assert re.search(r"<h1>[^<]+ — prod</h1>", shown)
    assert "<strong>Owners:</strong>" in shown
    assert re.search(r'<a href="https?://[^"]+">', shown)
    assert "**" not in shown
    assert "\n#" not in shown
    alarms = [
        str(r["Properties"]["AlarmName"])
        for path in synth.template_files
        if path.name.startswith(f"mlgate-{product}-prod-")
        for r in json.loads(path.read_text())["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and isinstance(r["Properties"].get("AlarmName"), str)
    ]
    longest = max(alarms, key=len)
    assert f"<li>{longest}</li>" in shown
    # Long names wrap inside their widget; nothing is cut off.
    assert "overflow: hidden" not in shown
    assert "overflow-wrap: anywhere" in shown
