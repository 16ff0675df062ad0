"""The evidence pack's figures, as SVG written by hand in pure Python: the architecture
(stacks grouped by account and region, data flow, cross-account trusts), the risk register as
a likelihood x impact matrix, and the release gates as a timeline with their approvers.

Pure Python rather than Graphviz: `make report` needs no system package (`dot` is not part of
the venv), and the output is the same bytes for the same templates. Every figure is read off
the manifest and the synthesized templates (mlgate.cli.governance.evidence); resources are
told apart by the names mlgate.infra.naming gives them, never by a product's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlgate.cli.governance.evidence import Evidence
from mlgate.cli.reporting import duration, esc
from mlgate.infra.batch_settings import batch_function_name
from mlgate.infra.naming import Names
from mlgate.manifest import ENV_NAMES, EnvName, Gate, GateKind, GatePlacement, Manifest, Risk

FONT = 'font-family="Helvetica, Arial, sans-serif"'

# --- what each resource is for ----------------------------------------------------------------

RAW, ETL, QUALITY, CURATED = "raw data", "ETL job", "data-quality job", "curated data"
TRAINING, REGISTRY = "training pipeline", "model registry"
RELEASE, RELEASES, PIPELINE_ARTIFACTS = "release pipeline", "release records", "pipeline artifacts"
ENDPOINT, ARTIFACTS = "endpoint", "artifacts and captured requests"
BATCH = "batch runs"
MONITORING, DASHBOARD = "monitoring", "dashboard"


@dataclass(frozen=True)
class Part:
    """A resource of the templates by what it does in the product."""

    role: str
    stack: str
    name: str


def parts(m: Manifest, e: Evidence) -> list[Part]:
    """Every named resource of the flow, by role, told apart by mlgate's naming."""
    n = Names.of(m)
    monitoring = {Names.of(m, env).monitoring_pipeline() for env in ENV_NAMES}
    schedules = {
        Names.of(m, env).monitoring_schedule(kind)
        for env in ENV_NAMES
        for kind in ("data-quality", "model-quality")
    }
    batch_runs = {batch_function_name(Names.of(m, env)) for env in ENV_NAMES if m.is_batch(env)}
    found = []
    for stack, kind, name in e.located:
        role = None
        if kind == "AWS::S3::Bucket":
            if name.startswith(f"{n.resource('raw')}-"):
                role = RAW
            elif name.startswith(f"{n.resource('curated')}-"):
                role = CURATED
            elif name.startswith(f"{n.resource('releases')}-"):
                role = RELEASES
            elif name in e.pipeline_artifacts:
                role = PIPELINE_ARTIFACTS
            elif any(
                name.startswith(f"{n.at(env).resource('artifacts')}-") for env in (None, *ENV_NAMES)
            ):
                role = ARTIFACTS
        elif kind == "AWS::Glue::Job":
            role = {n.etl_job(): ETL, n.quality_job(): QUALITY}.get(name)
        elif kind == "AWS::SageMaker::Pipeline":
            role = TRAINING if name == n.training_pipeline() else (
                MONITORING if name in monitoring else None
            )  # fmt: skip
        elif kind == "AWS::SageMaker::MonitoringSchedule":
            role = MONITORING if name in schedules else None
        elif kind == "AWS::SageMaker::ModelPackageGroup":
            role = REGISTRY if name == n.model_package_group() else None
        elif kind == "AWS::CodePipeline::Pipeline":
            role = RELEASE if name == n.release_pipeline() else None
        elif kind == "AWS::SageMaker::Endpoint":
            role = ENDPOINT
        elif kind == "AWS::Lambda::Function" and name in batch_runs:
            role = BATCH
        elif kind == "AWS::CloudWatch::Dashboard":
            role = DASHBOARD
        found.append(Part(role or "other", stack, name))
    return found


def stack_env(m: Manifest, stack: str) -> EnvName | None:
    """The environment a stack belongs to by its name (None: product-wide)."""
    for env in ENV_NAMES:
        if stack.startswith(Names.of(m, env).stack("")):
            return env
    return None


def component(m: Manifest, stack: str) -> str:
    env = stack_env(m, stack)
    return stack.removeprefix(Names.of(m, env).stack("") if env else Names.of(m).stack(""))


# --- architecture -------------------------------------------------------------------------------

BOX_W, BOX_H, COL, ROW, LEFT, TOP = 190, 78, 232, 120, 190, 40
_ORDER = ("foundation", "data", "training", "delivery", "serving", "monitoring", "observability")
_ROLE_ORDER = (RAW, ETL, QUALITY, CURATED, TRAINING, REGISTRY, RELEASE, RELEASES,
               PIPELINE_ARTIFACTS, ENDPOINT, BATCH, ARTIFACTS, MONITORING, DASHBOARD)  # fmt: skip
_ROLE_ARN = re.compile(r":role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    trust: bool = False


def flow_edges(m: Manifest, e: Evidence) -> list[Edge]:
    """The data flow between stacks: raw -> ETL -> curated -> training -> registry -> release
    -> endpoints -> captured requests -> monitoring -> drift -> retraining; metrics to the
    dashboards."""
    by_role: dict[str, list[str]] = {}
    for p in parts(m, e):
        by_role.setdefault(p.role, [])
        if p.stack not in by_role[p.role]:
            by_role[p.role].append(p.stack)

    def held(role: str) -> list[str]:
        return by_role.get(role, [])

    edges: list[Edge] = []

    def link(a: str, b: str, label: str, same_env: bool = False) -> None:
        for x in held(a):
            for y in held(b):
                if x != y and (not same_env or stack_env(m, x) == stack_env(m, y)):
                    edges.append(Edge(x, y, label))

    link(RAW, ETL, "raw data")
    link(CURATED, TRAINING, "curated data")
    link(REGISTRY, RELEASE, "approved version")
    link(RELEASE, ENDPOINT, "deploy")
    link(ENDPOINT, ARTIFACTS, "captured requests", same_env=True)
    link(ENDPOINT, MONITORING, "captured requests", same_env=True)
    link(MONITORING, TRAINING, "drift → retraining")
    link(ENDPOINT, DASHBOARD, "metrics", same_env=True)
    # A batch environment's runs score the curated data with the released version.
    link(CURATED, BATCH, "curated data")
    link(RELEASE, BATCH, "deploy")
    link(BATCH, ARTIFACTS, "predictions", same_env=True)
    link(BATCH, MONITORING, "batch inputs and predictions", same_env=True)
    link(BATCH, DASHBOARD, "metrics", same_env=True)
    return list(dict.fromkeys(edges))


def trust_edges(e: Evidence) -> list[Edge]:
    """Cross-account trusts: from the stack that defines each role another account's policy
    names (or that account, when the policy names none) to the stack that trusts it."""
    owner = {g.role: g.stack for g in e.grants} | {a.role: a.stack for a in e.assumers}
    edges: dict[tuple[str, str], list[str]] = {}
    for t in e.trusts:
        sources = [
            owner.get(match.group(1), f"account {t.account}")
            for p in t.principals
            if (match := _ROLE_ARN.search(p))
        ] or [f"account {t.account}"]
        for source in dict.fromkeys(sources):
            edges.setdefault((source, t.stack), []).append(t.resource.split(" ", 1)[0])
    return [
        Edge(a, b, "trusts: " + ", ".join(dict.fromkeys(kinds)), trust=True)
        for (a, b), kinds in sorted(edges.items())
    ]


def _text(x: float, y: float, text: str, size: int = 11, **attrs: str) -> str:
    extra = "".join(f' {k.rstrip("_").replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" {FONT}{extra}>{esc(text)}</text>'


def _arrow_defs() -> str:
    return (
        "<defs>"
        '<marker id="flow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#0073bb"/></marker>'
        '<marker id="trust" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#b0251a"/></marker>'
        "</defs>"
    )


def architecture_svg(m: Manifest, e: Evidence) -> str:
    """Stacks as boxes, one band per account and region (product-wide, then each environment);
    blue arrows the data flow, dashed red ones the cross-account trusts."""
    stacks = sorted(e.stacks)
    home = e.accounts.get(Names.of(m).stack("foundation"), "")
    envs: list[str | None] = [None, *ENV_NAMES]

    def row_key(stack: str) -> tuple[int, str, str, int]:
        account = e.accounts.get(stack, "")
        return (account != home, account, e.regions.get(stack, ""), envs.index(stack_env(m, stack)))

    rows = sorted({row_key(s) for s in stacks})

    # Foundations in the first column; each row's other stacks after it in flow order.
    def order(stack: str) -> tuple[int, str]:
        c = component(m, stack)
        return (_ORDER.index(c) if c in _ORDER else len(_ORDER), c)

    place: dict[str, tuple[float, float]] = {}
    columns = 1
    for i, key in enumerate(rows):
        here = sorted((s for s in stacks if row_key(s) == key), key=order)
        rest = [s for s in here if component(m, s) != "foundation"]
        for s in here:
            col = 0 if component(m, s) == "foundation" else rest.index(s) + 1
            columns = max(columns, col + 1)
            place[s] = (LEFT + col * COL, TOP + i * ROW)
    width = LEFT + columns * COL + 10
    height = TOP + len(rows) * ROW + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" class="figure architecture">',
        f"<title>Architecture of {esc(m.product.name)}: stacks by account and region, data "
        "flow and cross-account trusts</title>",
        _arrow_defs(),
    ]
    # One band per account and region, over the rows it holds.
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (_, account, region, _) in enumerate(rows):
        groups.setdefault((account, region), []).append(i)
    group_y: dict[str, float] = {}
    for (account, region), idx in groups.items():
        y0, y1 = TOP + min(idx) * ROW - 22, TOP + max(idx) * ROW + BOX_H + 14
        label = f"account {account or '(the CLI’s)'}, {region or 'any region'}"
        tag = "home account" if account == home else "another account"
        out.append(
            f'<rect x="6" y="{y0}" width="{width - 12}" height="{y1 - y0}" rx="6" '
            f'fill="{"#f4f8fb" if account == home else "#fdf5ef"}" stroke="#aab7b8"/>'
        )
        out.append(_text(14, y0 + 16, label, 11, font_weight="bold", class_="account"))
        out.append(_text(14, y0 + 30, tag, 10, fill="#545b64"))
        group_y[f"account {account}"] = (y0 + y1) / 2
    for i, (_, _, _, env_index) in enumerate(rows):
        env = envs[env_index]
        out.append(_text(14, TOP + i * ROW + BOX_H / 2 + 18, env or "product-wide", 10,
                         fill="#545b64"))  # fmt: skip
    roles: dict[str, list[str]] = {}
    for p in parts(m, e):
        if p.role != "other" and p.role not in roles.setdefault(p.stack, []):
            roles[p.stack].append(p.role)
    boxes: list[str] = []
    for s in stacks:
        x, y = place[s]
        boxes.append(
            f'<g class="stack" data-stack="{esc(s)}"><rect x="{x}" y="{y}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="4" fill="#fff" stroke="#545b64"/>'
        )
        boxes.append(_text(x + 6, y + 15, s, 9, font_weight="bold"))
        held = sorted(roles.get(s, []), key=_ROLE_ORDER.index)
        lines = [", ".join(held[i : i + 2]) for i in range(0, len(held), 2)][:3] or [
            ", ".join(f"{n} {t.split('::')[-1]}" for t, n in e.stacks[s].most_common(2))
        ]
        for j, line in enumerate(lines):
            boxes.append(_text(x + 6, y + 32 + j * 14, line, 10))
        count = f"{sum(e.stacks[s].values())} resources"
        boxes.append(_text(x + 6, y + BOX_H - 6, count, 9, fill="#687078"))
        boxes.append("</g>")
    # Lines under the boxes, labels over them.
    paths: list[str] = []
    labels: list[str] = []
    wanted: list[tuple[float, float, str, str, str]] = []
    for k, edge in enumerate(flow_edges(m, e) + trust_edges(e)):
        if edge.target not in place:
            continue
        tx, ty = place[edge.target]
        if edge.source in place:
            sx, sy = place[edge.source]
        else:  # an account without a stack of this product in the assembly
            sx, sy = width - BOX_W - 20, group_y.get(edge.source, TOP)
        a = (sx + BOX_W / 2, sy + BOX_H / 2)
        b = (tx + BOX_W / 2, ty + BOX_H / 2)
        start, end = _border(a, b), _border(b, a)
        far = abs(a[0] - b[0]) > COL * 1.5 and a[1] == b[1]  # over the boxes between
        bend = 18 + (k % 4) * 10 if edge.trust else (16 if far else 0)
        if far:
            start, end = (
                (start[0] - BOX_W / 2 + 20, a[1] - BOX_H / 2),
                (end[0] + BOX_W / 2 - 20, b[1] - BOX_H / 2),
            )
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2 - bend
        color, marker = ("#b0251a", "trust") if edge.trust else ("#0073bb", "flow")
        dash = ' stroke-dasharray="5,3"' if edge.trust else ""
        cls = "trust" if edge.trust else "flow"
        paths.append(
            f'<path class="edge {cls}" data-from="{esc(edge.source)}" '
            f'data-to="{esc(edge.target)}" d="M{start[0]:.0f},{start[1]:.0f} '
            f'Q{mx:.0f},{my - bend:.0f} {end[0]:.0f},{end[1]:.0f}" fill="none" '
            f'stroke="{color}" stroke-width="1.3"{dash} marker-end="url(#{marker})"/>'
        )
        wanted.append((mx, my - bend / 2 - 3, edge.label, color, cls))
    for (x, y), (text, color, cls) in zip(
        _place_labels(
            [(x, y, text) for x, y, text, _, _ in wanted],
            [(x, y, x + BOX_W, y + BOX_H) for x, y in place.values()],
        ),
        [(text, color, cls) for _, _, text, color, cls in wanted],
        strict=True,
    ):
        labels.append(
            _text(
                x,
                y,
                text,
                LABEL_SIZE,
                fill=color,
                text_anchor="middle",
                paint_order="stroke",
                stroke="#fff",
                stroke_width="3",
                class_=f"label {cls}",
            )
        )
    out += paths + boxes + labels
    legend_y = height - 12
    out.append(_text(LEFT, legend_y, "→ data flow", 10, fill="#0073bb"))
    out.append(
        _text(LEFT + 110, legend_y, "⇢ cross-account trust (who may act here)", 10, fill="#b0251a")
    )
    out.append("</svg>")
    return "\n".join(out)


LABEL_SIZE = 9
CHAR_WIDTH = 0.62
"""Text width per character in em, a little above Helvetica's and Arial's average, so the
estimate errs wide."""
Box = tuple[float, float, float, float]


def _label_box(x: float, y: float, text: str) -> Box:
    """The area a middle-anchored edge label at baseline y covers, with its white halo."""
    half = len(text) * LABEL_SIZE * CHAR_WIDTH / 2 + 2
    return x - half, y - LABEL_SIZE - 1, x + half, y + 3


def _overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _place_labels(
    wanted: list[tuple[float, float, str]], boxes: list[Box]
) -> list[tuple[float, float]]:
    """Each edge label where its edge puts it, or the nearest place that covers no stack's box
    and no label placed before it: several edges meet between the same boxes, and a label is
    wider than the gap between two boxes, so left where its edge puts it, it would cover the
    boxes' words or another label. Tried in order of distance; a label with no free place
    within reach keeps the one that overlaps least."""
    offsets = sorted(
        ((dx, dy) for dx in range(-96, 97, 24) for dy in range(-60, 61, 6)),
        key=lambda d: (abs(d[0]) + abs(d[1]), d),
    )
    placed: list[Box] = []
    found: list[tuple[float, float]] = []
    for x, y, text in wanted:
        best, least = (x, y), float("inf")
        for dx, dy in offsets:
            area = _label_box(x + dx, y + dy, text)
            cost = sum(_overlap(area, other) for other in [*boxes, *placed])
            if cost < least:
                best, least = (x + dx, y + dy), cost
            if cost == 0:
                break
        placed.append(_label_box(*best, text))
        found.append(best)
    return found


def _border(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """Where the line from box centre a towards b leaves box a."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    if dx == 0 and dy == 0:
        return a
    sx = (BOX_W / 2) / abs(dx) if dx else float("inf")
    sy = (BOX_H / 2) / abs(dy) if dy else float("inf")
    s = min(sx, sy)
    return a[0] + dx * s, a[1] + dy * s


# --- risk matrix --------------------------------------------------------------------------------

CELL_W, CELL_H = 110, 62


def _scale(name: str) -> int:
    """The top of a Risk field's scale, as the manifest's model declares it."""
    for meta in Risk.model_fields[name].metadata:
        if hasattr(meta, "le"):
            return int(meta.le)
    return 5


def _score_color(score: int, top: int) -> str:
    share = score / (top * top)
    return (
        "#d13212" if share >= 0.6 else
        "#f89256" if share >= 0.36 else
        "#f2d45c" if share >= 0.16 else
        "#b7e0a5"
    )  # fmt: skip


def risk_matrix_svg(m: Manifest) -> str:
    """Likelihood (rows, highest on top) by impact (columns): each risk's id in its cell, each
    cell colored by its score (likelihood x impact)."""
    top_l, top_i = _scale("likelihood"), _scale("impact")
    left, upper = 90, 30
    width, height = left + top_i * CELL_W + 20, upper + top_l * CELL_H + 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" class="figure risks">',
        f"<title>Risk register of {esc(m.product.name)}: likelihood x impact</title>",
    ]
    cells: dict[tuple[int, int], list[Risk]] = {}
    for r in sorted(m.risks, key=lambda r: r.id):
        cells.setdefault((r.likelihood, r.impact), []).append(r)
    for likelihood in range(top_l, 0, -1):
        y = upper + (top_l - likelihood) * CELL_H
        out.append(_text(left - 10, y + CELL_H / 2 + 4, str(likelihood), 12, text_anchor="end"))
        for impact in range(1, top_i + 1):
            x = left + (impact - 1) * CELL_W
            score = likelihood * impact
            here = cells.get((likelihood, impact), [])
            out.append(
                f'<g class="cell" data-likelihood="{likelihood}" data-impact="{impact}" '
                f'data-score="{score}"><rect x="{x}" y="{y}" width="{CELL_W}" '
                f'height="{CELL_H}" fill="{_score_color(score, max(top_l, top_i))}" '
                f'stroke="#fff" stroke-width="2"/>'
            )
            out.append(_text(x + CELL_W - 6, y + 13, str(score), 9, fill="#16191f",
                             text_anchor="end"))  # fmt: skip
            for j, r in enumerate(here[:3]):
                label = r.id + ("" if r.status == "open" else f" ({r.status})")
                out.append(
                    _text(
                        x + CELL_W / 2,
                        y + 26 + j * 14,
                        label,
                        12,
                        text_anchor="middle",
                        font_weight="bold",
                        class_="risk",
                    )
                )
            if len(here) > 3:
                out.append(_text(x + CELL_W / 2, y + CELL_H - 4, f"+{len(here) - 3} more", 9,
                                 text_anchor="middle"))  # fmt: skip
            out.append("</g>")
    for impact in range(1, top_i + 1):
        out.append(
            _text(
                left + (impact - 0.5) * CELL_W,
                upper + top_l * CELL_H + 16,
                str(impact),
                12,
                text_anchor="middle",
            )
        )
    out.append(_text(left + top_i * CELL_W / 2, height - 14, "impact →", 12,
                     text_anchor="middle"))  # fmt: skip
    out.append(
        _text(
            16,
            upper + top_l * CELL_H / 2,
            "likelihood →",
            12,
            text_anchor="middle",
            transform=f"rotate(-90 16 {upper + top_l * CELL_H / 2:.0f})",
        )
    )
    out.append("</svg>")
    return "\n".join(out)


# --- gates timeline -----------------------------------------------------------------------------

STEP = 54


@dataclass(frozen=True)
class Step:
    stage: str
    kind: str
    """"manual", "automated" or "deploy"."""
    detail: str
    gate: str = ""


def release_steps(m: Manifest, e: Evidence) -> list[Step]:
    """The release in order: the model registry's gates, then the release pipeline's stages
    as synthesized, each manual gate with its approvers, automated ones marked as such. A
    manifest gate the pipeline lacks is listed last as missing."""
    n = Names.of(m)
    contact = m.contact

    def people(gate: Gate) -> str:
        named = "; ".join(f"{contact(a).name} ({contact(a).role})" for a in gate.approvers)
        if len(gate.approvers) < 2:
            return named
        return f"{'all of' if gate.requires == 'all' else 'any one of'}: {named}"

    steps = [
        Step(
            "model registry",
            "manual",
            f"{people(g)}; times out after {duration(g.timeout_hours * 3600)}",
            g.name,
        )
        for g in m.gates
        if g.placement is GatePlacement.MODEL_REGISTRY
    ]
    by_stage = {n.gate_stage(g.name): g for g in m.gates}
    seen = set()
    for stage, actions in e.release_stages:
        gate = by_stage.get(stage)
        providers = {p for _, p in actions}
        if gate and gate.kind is GateKind.MANUAL:
            seen.add(gate.name)
            steps.append(Step(stage, "manual", f"{people(gate)}; times out after "
                              f"{duration(gate.timeout_hours * 3600)}", gate.name))  # fmt: skip
        elif gate:
            seen.add(gate.name)
            steps.append(Step(stage, "automated", f"automated: {gate.description}", gate.name))
        elif "Manual" in providers:
            steps.append(Step(stage, "manual", "manual approval no gate of the manifest names"))
        elif stage.startswith("Verify"):
            steps.append(Step(stage, "automated", "automated: the deploy verifier (Lambda hook)"))
        elif stage == "Source":
            steps.append(Step(stage, "deploy", "the approved version's release record (S3)"))
        else:
            hooks = ", ".join(a for a, _ in actions)
            steps.append(Step(stage, "deploy", f"{hooks} ({', '.join(sorted(providers))})"))
    seen |= {s.gate for s in steps if s.stage == "model registry"}
    steps += [
        Step(n.gate_stage(g.name), "missing", "NOT IN THE RELEASE PIPELINE", g.name)
        for g in m.gates
        if g.name not in seen
    ]
    return steps


def gates_svg(m: Manifest, e: Evidence) -> str:
    """The release as a timeline, top to bottom: manual gates with their approvers, automated
    gates and verifiers marked automated, deployments between them."""
    steps = release_steps(m, e)
    width, height = 900, 30 + len(steps) * STEP
    colors = {"manual": "#ec7211", "automated": "#0073bb", "deploy": "#545b64",
              "missing": "#b0251a"}  # fmt: skip
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" class="figure gates">',
        f"<title>Release gates of {esc(m.product.name)}, in order, with their approvers</title>",
        f'<line x1="40" y1="24" x2="40" y2="{height - 20}" stroke="#aab7b8" stroke-width="3"/>',
    ]
    for i, s in enumerate(steps):
        y = 30 + i * STEP
        color = colors[s.kind]
        out.append(
            f'<g class="step {s.kind}" data-stage="{esc(s.stage)}" data-gate="{esc(s.gate)}">'
            f'<circle cx="40" cy="{y + 8}" r="{9 if s.gate else 6}" fill="{color}"/>'
        )
        title = f"{s.stage}" + (f" — gate {s.gate}" if s.gate else "")
        out.append(_text(62, y + 6, title, 13, font_weight="bold"))
        out.append(_text(62, y + 24, f"{s.kind}: {s.detail}" if s.kind == "manual" else s.detail,
                         11, fill=color))  # fmt: skip
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
