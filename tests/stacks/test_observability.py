"""Observability: every manifest metric on its tier, every alarm with an action, an owner and
a runbook, thresholds equal to the manifest's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlgate.cli.observability.preview import dashboards
from mlgate.infra.naming import Names
from mlgate.manifest.schedules import schedule_interval_hours


def body(synth: Any, product: Any, env: str = "prod") -> dict[str, Any]:
    return dashboards(synth.outdir)[f"mlgate-{product.manifest.product.name}-{env}"]


def tier_of(widgets: list[dict[str, Any]]) -> dict[str, str]:
    """Widget title -> the tier heading above it."""
    tier, out = "header", {}
    for w in sorted(widgets, key=lambda w: (w["y"], w["x"])):
        text = w.get("properties", {}).get("markdown", "")
        if w["type"] == "text" and text.startswith("## "):
            tier = text[3:]
        elif "title" in w.get("properties", {}):
            out[w["properties"]["title"]] = tier
    return out


def test_tiers_run_top_to_bottom_business_model_system_alarms(synth: Any, product: Any) -> None:
    headings = [
        w["properties"]["markdown"]
        for w in sorted(body(synth, product)["widgets"], key=lambda w: w["y"])
        if w["type"] == "text" and w["properties"]["markdown"].startswith("## ")
    ]
    assert headings == [
        "## Tier 1 — Business KPIs",
        "## Tier 2 — Model metrics",
        "## Tier 3 — System health",
        "## Alarms",
    ]


BATCH_SYSTEM = (
    "Batch runs: succeeded / failed / empty / late per day",
    "Rows scored per run",
    "Run time (minutes, longest per day)",
)
"""A batch environment's system tier in place of the endpoint's latency (its runs)."""


def test_every_manifest_metric_is_on_its_tier_with_its_owner(synth: Any, product: Any) -> None:
    manifest, env = product.manifest, "prod"
    tiers = tier_of(body(synth, product, env)["widgets"])
    for kpi in manifest.metrics.business_kpis:
        owner = manifest.contact(kpi.owner).name
        assert tiers[f"{kpi.name} ({kpi.unit}) — owner: {owner}"] == "Tier 1 — Business KPIs"
    labelled = manifest.monitoring.ground_truth_s3_uri is not None
    for m in manifest.metrics.model_metrics if labelled else ():
        owner = manifest.contact(m.owner).name
        assert (
            tiers[f"Live {m.name.value} (Evidently) — owner: {owner}"] == "Tier 2 — Model metrics"
        )
    on_call = manifest.contact(manifest.product.owners.on_call).name
    if manifest.is_batch(env):
        system = [f"{title} — owner: {on_call}" for title in BATCH_SYSTEM]
        assert not [t for t in tiers if t.startswith("Model latency")]
    else:
        system = [f"Model latency p50 / p90 / p99 (µs) — owner: {on_call}"]
        assert not [t for t in tiers if t.startswith(BATCH_SYSTEM)]
    for title in system:
        assert tiers[title] == "Tier 3 — System health", title
    assert all("— owner: " in title for title in tiers if not title.startswith("Every alarm"))


def test_latency_graph_draws_the_slo_line(synth: Any, product: Any) -> None:
    """Prod's endpoint latency graph draws the manifest's latency SLO; a batch prod has no
    latency graph (its runs' panels: test_every_manifest_metric_is_on_its_tier_...)."""
    env = "prod"
    latencies = [
        w
        for w in body(synth, product, env)["widgets"]
        if w["properties"].get("title", "").startswith("Model latency")
    ]
    if product.manifest.is_batch(env):
        assert latencies == []
        # Its run-time panel draws when a run is late instead (the batch-run-late alarm).
        (run_time,) = [
            w
            for w in body(synth, product, env)["widgets"]
            if w["properties"].get("title", "").startswith("Run time")
        ]
        (line,) = run_time["properties"]["annotations"]["horizontal"]
        late = product.manifest.env_serving(env).batch_settings.max_run_minutes
        assert line["value"] == late
        assert line["label"] == f"late after {late} min (batch-run-late)"
        return
    (latency,) = latencies
    (line,) = latency["properties"]["annotations"]["horizontal"]
    (slo,) = [s for s in product.manifest.metrics.slos if s.name.value == "latency_p99_ms"]
    assert line["value"] == slo.threshold * 1000  # ModelLatency is in microseconds
    stats = {m[-1]["stat"] for m in latency["properties"]["metrics"]}
    assert stats == {"p50", "p90", "p99"}


def alarms(synth: Any, product: Any) -> list[dict[str, Any]]:
    found = []
    prefix = f"mlgate-{product.manifest.product.name}-"
    for path in synth.template_files:
        if not path.name.startswith(prefix):
            continue
        for r in json.loads(path.read_text())["Resources"].values():
            if r["Type"] in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
                found.append(r["Properties"])
    return found


def test_every_alarm_has_an_action_an_owner_a_runbook_and_the_naming_scheme(
    synth: Any, product: Any
) -> None:
    found = alarms(synth, product)
    assert len(found) > 20
    for alarm in found:
        name = alarm.get("AlarmName")
        assert isinstance(name, str), name
        assert name.startswith(f"mlgate/{product.manifest.product.name}/"), name
        _product, env, tier, _what, severity = name.split("/")[1:]
        assert env in ("staging", "prod")
        assert tier in ("business", "model", "system")
        assert severity in ("critical", "warning", "scaling")
        assert alarm["AlarmActions"], name
        if severity == "scaling":  # an async endpoint's wake from zero: a scaling policy only
            assert "WakeFromZero" in json.dumps(alarm["AlarmActions"]), name
        description = alarm["AlarmDescription"]
        for part in ("Owner: ", "Runbook: https://", "1)", "3)"):
            assert part in description, (name, part)
        if "TreatMissingData" not in alarm:
            assert "AlarmRule" in alarm, f"{name} leaves missing-data handling to chance"


def test_critical_alarms_page_on_call_and_warnings_go_to_owners(synth: Any, product: Any) -> None:
    template = synth.template(product.extra["observability-prod"])
    topics = template.find_resources("AWS::SNS::Topic")
    owner_topics = {
        logical for logical, t in topics.items() if "-owner-" in t["Properties"]["TopicName"]
    }
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        actions = json.dumps(alarm["Properties"]["AlarmActions"])
        if alarm["Properties"]["AlarmName"].endswith("/warning"):
            assert any(t in actions for t in owner_topics), alarm["Properties"]["AlarmName"]
        else:
            assert "OnCallTopic" in actions


def test_composite_model_unhealthy_and_gate_waiting_alarms_exist(synth: Any, product: Any) -> None:
    names = {a["AlarmName"] for a in alarms(synth, product)}
    assert f"mlgate/{product.manifest.product.name}/prod/model/model-unhealthy/critical" in names
    # The release pipeline's gate is product-wide: its alarm is the home environment's.
    home = Names.home(product.manifest)
    assert home.alarm("system", "gate-waiting-too-long", "critical") in names
    composite = next(
        a for a in alarms(synth, product) if a["AlarmName"].endswith("model-unhealthy/critical")
    )
    rule = json.dumps(composite["AlarmRule"])
    assert "ModelDataDrift" in rule  # the drift warning, a model-tier alarm of this stack
    # And prod's rollback alarms: its SLOs' (a batch prod rolls nothing back: none).
    rollback = product.extra["serving-prod"].rollback_alarm_names
    assert [n for n in rollback if n not in rule] == []
    if not product.manifest.is_batch("prod"):
        assert "latency-p99-ms" in rule
    else:
        assert rollback == []
        assert "/system/" not in rule


def test_slo_alarm_thresholds_equal_the_manifest(synth: Any, product: Any) -> None:
    by_name = {a["AlarmName"]: a for a in alarms(synth, product)}
    for slo in product.manifest.metrics.slos:
        alarm = by_name[
            f"mlgate/{product.manifest.product.name}/prod/system/"
            f"{slo.name.value.replace('_', '-')}/critical"
        ]
        factor = 1000 if slo.name.value == "latency_p99_ms" else 1
        assert alarm["Threshold"] == slo.threshold * factor


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_model_unhealthy_watches_every_model_tier_alarm(synth: Any, product: Any, env: str) -> None:
    """Children are picked by the tier they were made for: every model-tier alarm of the
    environment, the drift alarm and the rollback alarms are in the composite's rule."""
    template = synth.template(product.extra[f"observability-{env}"]).to_json()
    resources = template["Resources"]
    (composite,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::CompositeAlarm"
    ]
    rule = json.dumps(composite["AlarmRule"])
    model = [
        logical
        for logical, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and "/model/" in r["Properties"]["AlarmName"]
    ]
    for logical in model:
        assert logical in rule, logical
    serving = product.extra[f"serving-{env}"]
    if product.manifest.env_serving(env).mode.value != "serverless":  # else nothing captured
        assert any("data-drift" in logical or "DataDrift" in logical for logical in model)
    for name in serving.rollback_alarm_names:
        assert name in rule, name


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_alarm_widget_shows_the_rollback_alarms_and_glue_only_where_it_runs(
    synth: Any, product: Any, env: str
) -> None:
    manifest = product.manifest
    widgets = body(synth, product, env)["widgets"]
    (status,) = [w for w in widgets if w["type"] == "alarm"]
    shown = json.dumps(status["properties"]["alarms"])
    for name in product.extra[f"serving-{env}"].rollback_alarm_names:
        assert name.replace("/", "\\\\/") in shown or name in shown, name
    titles = [w["properties"].get("title", "") for w in widgets]
    glue = [t for t in titles if "Glue" in t]
    if manifest.is_remote(env):
        assert glue == [], "Glue runs in the home account: its panels are not shown here"
    else:
        assert glue


def test_model_quality_panels_and_alarms_exist_only_with_ground_truth(
    synth: Any, product: Any
) -> None:
    manifest = product.manifest
    names = {a["AlarmName"] for a in alarms(synth, product)}
    metric_alarms = {
        f"mlgate/{manifest.product.name}/prod/model/{m.name.value}/warning"
        for m in manifest.metrics.model_metrics
    }
    titles = [w["properties"].get("title", "") for w in body(synth, product)["widgets"]]
    live = [t for t in titles if t.startswith("Live ")]
    if manifest.monitoring.ground_truth_s3_uri:
        assert metric_alarms <= names
        assert len(live) == len(manifest.metrics.model_metrics)
    else:
        assert not metric_alarms & names
        assert live == []


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_drift_alarm_fires_above_the_manifest_drift_threshold(
    synth: Any, product: Any, env: str
) -> None:
    """Not "any violation": the share of drifted features the Evidently job publishes, against
    monitoring.drift_threshold, one period per monitoring run."""
    manifest = product.manifest
    name = manifest.product.name
    template = synth.template(product.extra[f"observability-{env}"])
    if manifest.env_serving(env).mode.value == "serverless":
        # Serverless endpoints capture no traffic: no drift alarm pretends to watch it.
        assert not [
            r
            for r in template.find_resources("AWS::CloudWatch::Alarm").values()
            if "/data-drift/" in r["Properties"]["AlarmName"]
        ]
        return
    (drift,) = [
        r["Properties"]
        for r in template.find_resources("AWS::CloudWatch::Alarm").values()
        if r["Properties"]["AlarmName"] == f"mlgate/{name}/{env}/model/data-drift/warning"
    ]
    assert drift["MetricName"] == "drifted_feature_share"
    assert drift["Namespace"] == f"mlgate/{name}"
    assert sorted(drift["Dimensions"], key=lambda d: d["Name"]) == [
        {"Name": "Environment", "Value": env},
        {"Name": "Product", "Value": name},
    ]
    assert drift["Threshold"] == manifest.monitoring.drift_threshold
    assert drift["ComparisonOperator"] == "GreaterThanThreshold"
    assert drift["Period"] == 3600 * schedule_interval_hours(manifest.monitoring.schedule)


def test_the_model_tier_shows_drifted_share_top_features_and_links_the_reports(
    synth: Any, product: Any
) -> None:
    manifest = product.manifest
    widgets = body(synth, product)["widgets"]
    by_title = {w["properties"].get("title", ""): w["properties"] for w in widgets}
    (share,) = [p for t, p in by_title.items() if t.startswith("Share of drifted features")]
    assert share["annotations"]["horizontal"][0]["value"] == manifest.monitoring.drift_threshold
    (top,) = [p for t, p in by_title.items() if t.startswith("Top 10 feature drift scores")]
    (query,) = [m[0]["expression"] for m in top["metrics"] if "expression" in m[0]]
    assert "MAX(feature_drift_score)" in query
    assert f"Product = '{manifest.product.name}'" in query
    header = widgets[0]["properties"]["markdown"]
    assert "https://s3.console.aws.amazon.com/s3/buckets/" in header
    assert "prefix=monitoring/prod/evidently/" in header


def test_every_event_rule_pages_on_call_when_it_drops_an_event(synth: Any, product: Any) -> None:
    """EventBridge drops an event it could not deliver after its retries; only the rule's
    FailedInvocations metric shows it. Each rule of the product, in every stack, has that alarm
    in its own account, routed to on-call."""
    for stack in product.all:
        rules = synth.template(stack).find_resources("AWS::Events::Rule")
        if not rules:
            continue
        alarms = [
            r["Properties"]
            for other in product.all
            if other.account == stack.account and other.region == stack.region
            for r in synth.template(other).find_resources("AWS::CloudWatch::Alarm").values()
            if r["Properties"].get("MetricName") == "FailedInvocations"
        ]
        for rule in rules.values():
            name = rule["Properties"]["Name"]
            assert isinstance(name, str), f"{stack.stack_name}: a rule without a fixed name"
            (alarm,) = [
                a for a in alarms if a["Dimensions"] == [{"Name": "RuleName", "Value": name}]
            ]
            assert alarm["Namespace"] == "AWS/Events"
            assert alarm["Threshold"] == 0
            assert alarm["AlarmActions"], f"the alarm on {name} pages nobody"


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_each_dashboard_stack_deploys_after_the_serving_stack_whose_alarms_it_names(
    synth: Any, product: Any, env: str
) -> None:
    """The composite alarm names the Serving stack's alarms by ARN, which makes no dependency:
    CloudWatch refuses a composite alarm whose alarms do not exist yet, so the assembly must
    order the two stacks (CDK writes the order to manifest.json)."""
    name = product.manifest.product.name
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    needs = manifest["artifacts"][f"mlgate-{name}-{env}-observability"]["dependencies"]
    assert f"mlgate-{name}-{env}-serving" in needs
