"""The evidence pack: sections of (heading, prose, tables), rendered to Markdown and HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlgate.governance.evidence import Evidence, collect
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
from mlgate.naming import Names
from mlgate.reporting import duration, esc, page, percent, quantity, when

Table = tuple[list[str], list[list[str]]]


@dataclass
class Section:
    title: str
    purpose: str
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, Table]] = field(default_factory=list)


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


def architecture(e: Evidence) -> Section:
    s = Section("Architecture", "What will be deployed, stack by stack, and how data flows.")
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
    n = e.names
    flow = [
        ("raw and curated data", n.get("AWS::S3::Bucket", [])),
        ("Glue ETL and data-quality jobs", n.get("AWS::Glue::Job", [])),
        ("SageMaker training pipeline", n.get("AWS::SageMaker::Pipeline", [])),
        ("model registry", n.get("AWS::SageMaker::ModelPackageGroup", [])),
        ("release pipeline", n.get("AWS::CodePipeline::Pipeline", [])),
        ("endpoints", n.get("AWS::SageMaker::Endpoint", [])),
    ]
    s.notes.append(" → ".join(f"{label} ({', '.join(names) or 'none'})" for label, names in flow))
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
        "Evidently job (SageMaker Processing, a one-step pipeline per environment)"
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
        for env in ENV_NAMES
    ]  # fmt: skip
    return (["environment", "monitor", "runs", "drift declared when", "model quality", "reports"],
            rows)  # fmt: skip


def build(m: Manifest, e: Evidence) -> list[Section]:
    return [
        one_pager(m),
        architecture(e),
        security(e),
        retention(m, e),
        compliance(e),
        gates(m, e),
        operations(m, e),
    ]


def markdown(m: Manifest, sections: list[Section]) -> str:
    out = [f"# Evidence pack: {m.product.display_name}", ""]
    for s in sections:
        out += [f"## {s.title}", f"_{s.purpose}_", ""] + [f"{n}\n" for n in s.notes]
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


def write(m: Manifest, outdir: Path, target: Path, lint: bool = True) -> tuple[Path, Path]:
    sections = build(m, collect(outdir, lint=lint, product=m.product.name))
    target.mkdir(parents=True, exist_ok=True)
    md, page_ = target / f"{m.product.name}-evidence.md", target / f"{m.product.name}-evidence.html"
    md.write_text(markdown(m, sections))
    page_.write_text(html(m, sections))
    return md, page_
