"""The evidence pack's figures: the architecture diagram (every stack, grouped by account,
the data flow, cross-account trusts where prod has an account of its own), the risk register
as a likelihood x impact matrix, the gates as a timeline with their approvers; and the
architecture line names each resource by what it does."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlgate.cli.governance import figures
from mlgate.cli.governance.evidence import Evidence, Grant, Trust, collect
from mlgate.cli.governance.pack import architecture, write
from mlgate.infra.naming import Names

from .test_dashboard_preview import dom


@pytest.fixture(scope="module")
def packs(synth: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, str]]:
    """Each example product's pack as headless Chromium shows it, with its manifest."""
    out = tmp_path_factory.mktemp("packs")
    shown = {}
    for product in synth.products:
        m = product.manifest
        paths = write(m, synth.outdir, out, lint=False)
        names = sorted(p.name for p in paths)
        assert names == sorted(
            f"{m.product.name}-{x}"
            for x in ("evidence.md", "evidence.html", "architecture.svg", "risks.svg", "gates.svg")
        )
        md = (out / f"{m.product.name}-evidence.md").read_text()
        for figure in ("architecture", "risks", "gates"):
            assert f"]({m.product.name}-{figure}.svg)" in md  # the Markdown links each figure
        page = out / f"{m.product.name}-evidence.html"
        shown[m.product.name] = (m, dom(page, out / f"profile-{m.product.name}"))
    return shown


def figure(shown: str, name: str) -> str:
    start = shown.index(f'<figure class="{name}"')
    return shown[start : shown.index("</figure>", start)]


def test_architecture_names_every_stack_by_account_with_the_data_flow(
    synth: Any, packs: dict[str, tuple[Any, str]]
) -> None:
    for product in synth.products:
        m, shown = packs[product.manifest.product.name]
        svg = figure(shown, "architecture")
        stacks = [p.name.removesuffix(".template.json") for p in synth.template_files]
        mine = [s for s in stacks if s.startswith(f"mlgate-{m.product.name}-")]
        assert len(mine) >= 9
        for stack in mine:
            assert f'data-stack="{stack}"' in svg
            assert f">{stack}</text>" in svg
        for env in ("staging", "prod"):
            account = getattr(m.environments, env).account
            assert f">account {account}, " in svg
        n = Names.of(m)
        flows = set(re.findall(r'class="edge flow" data-from="([^"]+)" data-to="([^"]+)"', svg))
        assert (n.stack("data"), n.stack("training")) in flows
        assert (n.stack("training"), n.stack("delivery")) in flows
        for env in ("staging", "prod"):
            assert (n.stack("delivery"), Names.of(m, env).serving_stack()) in flows
            # A serverless endpoint captures nothing: no monitoring stack, no drift flow.
            watcher = Names.of(m, env).monitoring_stack()
            if m.monitored(env):
                assert (watcher, n.stack("training")) in flows
            else:
                assert watcher not in stacks
                assert f'data-stack="{watcher}"' not in svg
                assert not any(watcher in edge for edge in flows)


OVERLAPS = """<script>
const found = [];
const hit = (a, b) =>
  a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
document.querySelectorAll("div[data-figure]").forEach((figure) => {
  const boxes = [...figure.querySelectorAll("g.stack rect")].map((r) => r.getBBox());
  const labels = [...figure.querySelectorAll("text.label")]
    .map((t) => [t.textContent, t.getBBox()]);
  labels.forEach(([name, a], i) => {
    if (boxes.some((b) => hit(a, b))) found.push(`${figure.dataset.figure}: ${name} / a stack`);
    labels.slice(i + 1).forEach(([other, b]) => {
      if (hit(a, b)) found.push(`${figure.dataset.figure}: ${name} / ${other}`);
    });
  });
});
const report = document.createElement("pre");
report.id = "overlaps";
report.textContent = found.join("\\n");
document.body.append(report);
</script>"""


def test_no_edge_label_covers_a_stack_or_another_label_as_chromium_draws_them(
    synth: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each example's architecture as headless Chromium lays out its text (getBBox): no edge
    label over a stack's box or over another label. The broken form, every label where its
    edge's middle puts it (the figure before labels were placed), is drawn beside it on the
    same page and must show overlaps, so the check can fail."""
    products = {
        p.manifest.product.name: (
            p.manifest,
            collect(synth.outdir, lint=False, product=p.manifest.product.name),
        )
        for p in synth.products
    }
    figures_html = [
        f'<div data-figure="{name}">{figures.architecture_svg(m, e)}</div>'
        for name, (m, e) in products.items()
    ]
    with monkeypatch.context() as patch:
        patch.setattr(
            figures, "_place_labels", lambda wanted, boxes: [(x, y) for x, y, _ in wanted]
        )
        figures_html += [
            f'<div data-figure="unplaced {name}">{figures.architecture_svg(m, e)}</div>'
            for name, (m, e) in products.items()
        ]
    page = tmp_path / "figures.html"
    page.write_text(f"<!doctype html><html><body>{''.join(figures_html)}{OVERLAPS}</body></html>")
    shown = dom(page, tmp_path / "profile")
    (report,) = re.findall(r'<pre id="overlaps">(.*?)</pre>', shown, re.S)
    found = [line for line in report.splitlines() if line]
    assert [f for f in found if not f.startswith("unplaced ")] == []
    assert any(f.startswith("unplaced ") for f in found), "the broken form shows no overlap"


def test_cross_account_trusts_are_drawn_only_where_prod_has_its_own_account(
    synth: Any, packs: dict[str, tuple[Any, str]]
) -> None:
    remote = {p.manifest.product.name for p in synth.products if p.manifest.is_remote("prod")}
    assert remote
    assert remote != set(packs)
    for name, (m, shown) in packs.items():
        svg = figure(shown, "architecture")
        trusts = re.findall(r'class="edge trust" data-from="([^"]+)" data-to="([^"]+)"', svg)
        if name in remote:
            prod = Names.of(m, "prod")
            n = Names.of(m)
            # The home account's deployer and verifier roles are trusted by prod's roles.
            assert (n.stack("delivery"), prod.stack("foundation")) in trusts
            # prod's roles are trusted by the home account's key, bucket and registry.
            assert any(a.startswith(f"mlgate-{name}-prod-") and not b.startswith(
                f"mlgate-{name}-prod-") for a, b in trusts)  # fmt: skip
            assert "another account" in svg
        else:
            assert trusts == []
            assert "another account" not in svg


def test_trust_edges_come_from_the_trusts_of_the_templates() -> None:
    """The broken form: a trust the templates do not state is not drawn; one naming a role
    starts at the stack that defines that role, one naming no role at the account."""
    e = Evidence()
    assert figures.trust_edges(e) == []
    e.trusts = [
        Trust("p-prod", "role p-deploy", "111111111111",
              ["arn:aws:iam::111111111111:role/p-deployer"], ["sts:AssumeRole"]),
        Trust("p-prod", "bucket policy b", "333333333333", [], ["s3:GetObject"]),
    ]  # fmt: skip
    e.assumers = []
    e.grants = [Grant("p-delivery", "p-deployer", ["s3:GetObject"], ["*"])]
    edges = {(x.source, x.target, x.label) for x in figures.trust_edges(e)}
    assert edges == {
        ("p-delivery", "p-prod", "trusts: role"),
        ("account 333333333333", "p-prod", "trusts: bucket"),
    }


def test_risk_matrix_puts_each_risk_in_its_cell(packs: dict[str, tuple[Any, str]]) -> None:
    for m, shown in packs.values():
        svg = figure(shown, "risks")
        assert svg.count('class="cell"') == 25
        for r in m.risks:
            cell = re.search(
                rf'data-likelihood="{r.likelihood}" data-impact="{r.impact}" '
                rf'data-score="{r.likelihood * r.impact}">(.*?)</g>',
                svg,
                re.DOTALL,
            )
            assert cell, r.id
            assert re.search(rf">{r.id}( \(\w+\))?</text>", cell.group(1)), r.id
        # The register stays beneath, as a table.
        assert "Risk register, by score" in shown
        # The broken form: a risk moved to another cell is found there, not in its old one.
        r = m.risks[0]
        moved = m.model_copy(
            update={"risks": (r.model_copy(update={"likelihood": 1, "impact": 1}),)}
        )
        other = figures.risk_matrix_svg(moved)
        first = re.search(r'data-likelihood="1" data-impact="1".*?</g>', other, re.DOTALL)
        assert first
        assert f">{r.id}" in first.group(0)
        if (r.likelihood, r.impact) != (1, 1):
            old = re.search(
                rf'data-likelihood="{r.likelihood}" data-impact="{r.impact}".*?</g>',
                other,
                re.DOTALL,
            )
            assert old
            assert f">{r.id}" not in old.group(0)


def test_gates_timeline_in_release_order_with_approvers(
    synth: Any, packs: dict[str, tuple[Any, str]]
) -> None:
    for m, shown in packs.values():
        svg = figure(shown, "gates")
        stages = re.findall(r'class="step (\w+)" data-stage="([^"]+)" data-gate="([^"]*)"', svg)
        gates = [g for _, _, g in stages if g]
        assert gates == [g.name for g in m.gates]  # every gate, in the manifest's order
        assert [s for _, s, _ in stages][1] == "Source"
        assert [s for _, s, _ in stages][-1] == "VerifyProd"
        for g in m.gates:
            kind, stage, _ = next(x for x in stages if x[2] == g.name)
            step = svg[svg.index(f'data-gate="{g.name}"') :].split("</g>")[0]
            assert kind == g.kind.value
            for a in g.approvers:
                assert f"{m.contact(a).name} ({m.contact(a).role})" in step
            if len(g.approvers) > 1:  # who decides: every approver, or any one of them
                assert ("all of:" if g.requires == "all" else "any one of:") in step
            if kind == "automated":
                assert "automated:" in step
        assert any(k == "automated" and s.startswith("Verify") for k, s, _ in stages)
    # The broken form: a gate the synthesized pipeline lacks is shown as missing.
    m = synth.products[0].manifest
    e = collect(synth.outdir, lint=False, product=m.product.name)
    manual = next(g for g in m.gates if g.placement.value != "model_registry")
    stage = Names.of(m).gate_stage(manual.name)
    e = replace(e, release_stages=[x for x in e.release_stages if x[0] != stage])
    svg = figures.gates_svg(m, e)
    assert re.search(rf'class="step missing" data-stage="{stage}"', svg)
    assert "NOT IN THE RELEASE PIPELINE" in svg


def test_architecture_line_names_resources_by_what_they_do(synth: Any) -> None:
    for product in synth.products:
        m = product.manifest
        e = collect(synth.outdir, lint=False, product=m.product.name)
        line = architecture(m, e).notes[0]
        segments = dict(re.findall(r"(?:^| → )([^(→]+?) \(([^)]*)\)", line))
        watched = [env for env in ("staging", "prod") if m.monitored(env)]
        monitoring = [Names.of(m, env).monitoring_pipeline() for env in watched]
        unwatched = [
            Names.of(m, env).monitoring_pipeline()
            for env in ("staging", "prod")
            if env not in watched
        ]
        assert not any(name in line for name in unwatched)
        training = segments["SageMaker training pipeline"].split(", ")
        assert training == [Names.of(m).training_pipeline()]
        assert not set(monitoring) & set(training)
        data = segments["raw data"].split(", ") + segments["curated data"].split(", ")
        assert len(data) == 2
        assert all(x.startswith(Names.of(m).resource("raw")) or x.startswith(
            Names.of(m).resource("curated")) for x in data)  # fmt: skip
        assert not any(x.startswith(Names.of(m).resource("releases")) for x in data)
        if m.monitoring.engine.value == "evidently":
            assert set(monitoring) <= set(segments["monitoring"].split(", "))
        else:
            assert segments["monitoring"] != "none"
        assert Names.of(m).resource("releases") in architecture(m, e).notes[1]


def test_figures_are_the_same_bytes_for_the_same_templates(synth: Any, tmp_path: Path) -> None:
    m = synth.products[0].manifest
    a = write(m, synth.outdir, tmp_path / "a", lint=False)
    b = write(m, synth.outdir, tmp_path / "b", lint=False)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
