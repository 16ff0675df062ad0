"""The manifest model: the default product loads; each mistake gets its own exact message."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgate.manifest import (
    GatePlacement,
    ManifestBatchError,
    ManifestError,
    load_manifest,
    load_manifests,
)

from .conftest import DEFAULT_MANIFEST

BASE: dict[str, Any] = yaml.safe_load(DEFAULT_MANIFEST.read_text())


def write(tmp_path: Path, doc: Any, name: str = "product.yaml") -> Path:
    """The manifest beside a copy of the default product's code, which its paths name."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(DEFAULT_MANIFEST.parent, path.parent, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("manifest.yaml", "__pycache__"))  # fmt: skip
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    change(doc)
    return doc


def problems(tmp_path: Path, doc: Any) -> list[str]:
    path = write(tmp_path, doc)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    return [line.removeprefix(f"{path}: ") for line in caught.value.lines]


def test_default_manifest_loads_with_its_one_pager_content() -> None:
    m = load_manifest(DEFAULT_MANIFEST)
    assert m.product.name == "fraud-detection"
    assert "false positives on high-value customers" in m.product.objective
    precision = next(x for x in m.metrics.model_metrics if x.name == "precision")
    assert (precision.threshold, precision.owner) == (0.95, m.product.owners.ml_lead)
    assert all(k.owner == m.product.owners.product_manager for k in m.metrics.business_kpis)
    assert all(s.owner == m.product.owners.on_call for s in m.metrics.slos)
    assert [g.name for g in m.gates] == [
        "model-review",
        "quality-gate",
        "business-signoff",
        "compliance-review",
        "go-live",
    ]
    assert m.gates[0].placement is GatePlacement.MODEL_REGISTRY
    assert len(m.risks) >= 3
    assert m.rice.score == round(2_000_000 * 2 * 0.8 / 6, 1)
    assert [r.score for r in m.open_risks] == sorted((r.score for r in m.open_risks), reverse=True)


def test_manifest_is_immutable() -> None:
    m = load_manifest(DEFAULT_MANIFEST)
    with pytest.raises(ValueError, match="frozen"):
        m.product.name = "other"  # type: ignore[misc]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return change


def _rename(path: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[new] = node.pop(last)

    return change


MISTAKES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "misspelt top-level key",
        _rename("gates", "gatez"),
        "gatez: unknown key 'gatez'; did you mean 'gates'?",
    ),
    (
        "misspelt nested key",
        _rename("serving.prod.rollout.bake_minutes", "bake_minute"),
        "serving.prod.rollout.bake_minute: unknown key 'bake_minute'; did you mean 'bake_minutes'?",
    ),
    (
        "missing objective",
        _del("product.objective"),
        "product.objective: is required",
    ),
    (
        "account id too short",
        _set("environments.prod.account", "12345"),
        "environments.prod.account: '12345' does not match a 12-digit AWS account id",
    ),
    (
        "region that does not exist",
        _set("environments.staging.region", "eu-wset-1"),
        "environments.staging.region: 'eu-wset-1' is not an AWS region mlgate supports; "
        "did you mean 'eu-west-1'?",
    ),
    (
        "prod in another region than staging",
        _set("environments.prod.region", "us-east-1"),
        "environments.prod.region: 'us-east-1' differs from staging's 'eu-west-1'; the model "
        "registry, its artifacts and the release pipeline are regional, so prod may live in "
        "another account but must stay in eu-west-1",
    ),
    (
        "approver who is not a contact",
        _set("gates.2.approvers", ["alise"]),
        "gates[2].approvers[0]: 'alise' is not a declared contact; did you mean 'alice'?",
    ),
    (
        "owner who is not a contact",
        _set("metrics.slos.0.owner", "zoe"),
        "metrics.slos[0].owner: 'zoe' is not a declared contact; "
        "declared: alice, bruno, chen, dana, emeka",
    ),
    (
        "duplicate gate name",
        _set("gates.3.name", "business-signoff"),
        "gates[3].name: 'business-signoff' is used twice; names are unique",
    ),
    (
        "threshold out of range",
        _set("metrics.model_metrics.0.threshold", 1.5),
        "metrics.model_metrics[0]: precision is a fraction: its threshold is between 0 and 1, "
        "got 1.5",
    ),
    (
        "error rate written as a percentage",
        _set("metrics.slos.1.threshold", 0.1 * 100),
        "metrics.slos[1]: threshold 10.0 of error_rate_5xx is a fraction of requests; "
        "write 0.001 for 0.1 %",
    ),
    (
        "unknown gate kind",
        _set("gates.1.kind", "automatic"),
        "gates[1].kind: 'automatic' is not allowed; expected 'manual' or 'automated'; did you "
        "mean 'automated'?",
    ),
    (
        "manual gate without approvers",
        _set("gates.2.approvers", []),
        "gates[2]: a manual gate needs at least one approver",
    ),
    (
        "a model registry gate that needs every approver",
        _set("gates.0.requires", "all"),
        "gates[0]: the model registry records one approval per version: a model_registry gate "
        "is decided by one approver (requires: one); put a gate that needs every approver "
        "after_staging or before_prod",
    ),
    (
        "an automated gate that needs every approver",
        _set("gates.1.requires", "all"),
        "gates[1]: an automated gate has no approvers to require all of; drop requires",
    ),
    (
        "a gate that needs some of its approvers",
        _set("gates.2.requires", "two"),
        "gates[2].requires: 'two' is not allowed; expected 'one' or 'all'",
    ),
    (
        "gates out of release order",
        _set("gates.3.placement", "model_registry"),
        "gates[3].placement: 'compliance-review' (model_registry) comes after 'business-signoff' "
        "(after_staging); order gates as the release runs: "
        "model_registry -> after_staging -> before_prod",
    ),
    (
        "risk likelihood off the scale",
        _set("risks.0.likelihood", 7),
        "risks[0].likelihood: input should be less than or equal to 5 (got 7)",
    ),
    (
        "bad schedule expression",
        _set("data.schedule", "every day at 2"),
        "data.schedule: 'every day at 2' is not a cron(...) expression",
    ),
    (
        "chat approver without a Slack id",
        _del("product.contacts.3.slack_user_id"),
        "gates[3].approvers[0]: 'dana' approves from chat and needs "
        "product.contacts[].slack_user_id",
    ),
    (
        "retention of no days",
        _set("retention", {"raw": 0}),
        "retention.raw: input should be greater than or equal to 1 (got 0)",
    ),
    (
        "retention written as text",
        _set("retention.curated", "a year"),
        "retention.curated: input should be a valid integer, unable to parse string as an "
        "integer (got 'a year')",
    ),
    (
        "unknown data class",
        _set("retention", {"logs": 30}),
        "retention.logs: unknown key 'logs'; allowed: audit, capture, curated, raw, reports",
    ),
    (
        "audit trail shorter than a year",
        _set("retention.audit", 90),
        "retention.audit: input should be greater than or equal to 365 (got 90)",
    ),
    (
        "audit trail shorter than the data it vouches for",
        _set("retention", {"curated": 1000, "audit": 400}),
        "retention.audit: 400 day(s) is shorter than retention.curated (1000 days): the audit "
        "trail must outlast the data its decisions were made on",
    ),
    (
        "capture expires before its labels land",
        _set("retention", {"capture": 1}),
        "retention.capture: 1 day(s) expire captured traffic before the monitor judges it "
        "(25 h: one monitoring interval plus monitoring.ground_truth_delay_hours); keep it at "
        "least 2 day(s)",
    ),
    (
        "autoscaling bounds inverted",
        _set("serving.prod.autoscaling.max_instances", 1),
        "serving.prod.autoscaling: max_instances must be at least min_instances",
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_each_mistake_is_named_exactly(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    assert problems(tmp_path, mutated(change)) == [expected]


def test_a_framework_version_without_an_image_is_refused_at_validation(tmp_path: Path) -> None:
    """Synth stopped on it with a traceback; validation names the field and what exists."""
    (found,) = problems(tmp_path, mutated(_set("model.framework_version", "9.9-9")))
    assert found.startswith(
        "model.framework_version: xgboost has no image version '9.9-9'; the SDK knows "
    )
    assert "1.7-1" in found  # the default, which the SDK's tables hold


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    def two_mistakes(doc: dict[str, Any]) -> None:
        doc["environments"]["prod"]["account"] = "abc"
        doc["rice"]["effort"] = 0

    found = problems(tmp_path, mutated(two_mistakes))
    assert len(found) == 2
    assert found[0].startswith("rice.effort: input should be greater than 0")
    assert found[1].startswith("environments.prod.account: 'abc' does not match")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "(top level): expected a mapping of sections, got an empty file"),
        ("- just\n- a list\n", "(top level): expected a mapping of sections, got a list"),
        (
            "product: [unclosed\n",
            "line 2: not valid YAML: expected ',' or ']', but got '<stream end>'",
        ),
    ],
)
def test_unreadable_documents(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert caught.value.lines == [f"{path}: {expected}"]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "nope.yaml")
    assert caught.value.lines == [f"{tmp_path / 'nope.yaml'}: (top level): file not found"]


def test_a_folder_loads_every_product_and_rejects_a_duplicate_name(tmp_path: Path) -> None:
    write(tmp_path, BASE, "a/manifest.yaml")
    write(tmp_path, mutated(_set("product.name", "churn-risk")), "b/manifest.yaml")
    assert [m.product.name for m in load_manifests(tmp_path)] == [
        "fraud-detection",
        "churn-risk",
    ]
    assert [m.product.name for m in load_manifests(tmp_path / "b")] == ["churn-risk"]
    write(tmp_path, BASE, "c/manifest.yaml")
    with pytest.raises(ManifestBatchError) as caught:
        load_manifests(tmp_path)
    assert caught.value.lines == [
        f"{tmp_path}: product.name: 'fraud-detection' is declared by more than one manifest"
    ]


MORE_MISTAKES = [
    (
        "no gates at all",
        _set("gates", []),
        "gates: needs at least 1 item(s), got 0; see the manifest reference in "
        "docs/manifest-reference.md for what belongs here",
    ),
    (
        "an unquoted account id",
        _set("environments.prod.account", 111111111111),
        "environments.prod.account: 111111111111 reads as a number in YAML: quote it, "
        "'111111111111' (an unquoted account id also loses any leading zero)",
    ),
    (
        "a rule naming a column the schema lacks",
        _set("data.quality_rules.1", 'IsComplete "transaction_idd"'),
        "data.quality_rules[1]: rule 'IsComplete \"transaction_idd\"': 'transaction_idd' is not a "
        "column of data.curated; did you mean 'transaction_id'?",
    ),
    (
        "an empty code block",
        _set("model.code", None),
        "model.code: expected a section of keys (got None); leave the key out to take its defaults",
    ),
    (
        "a nested hyper-parameter",
        _set("model.hyperparameters", {"max_depth": {"value": 6}}),
        "model.hyperparameters.max_depth: expected text, an integer or a number (got {'value': 6})",
    ),
    (
        "a rule with an unclosed parenthesis",
        _set("data.quality_rules.1", 'ColumnValues "amount" between (0 and 10'),
        "data.quality_rules[1]: rule 'ColumnValues \"amount\" between (0 and 10': '(' is not "
        "closed",
    ),
    (
        "a rule closing a list it never opened",
        _set("data.quality_rules.1", 'ColumnValues "is_fraud" in 0, 1]'),
        "data.quality_rules[1]: rule 'ColumnValues \"is_fraud\" in 0, 1]': ']' closes nothing open",
    ),
    (
        "a rule type DQDL does not have",
        _set("data.quality_rules.1", 'IsCompleted "transaction_id"'),
        "data.quality_rules[1]: 'IsCompleted' is not a DQDL rule type; did you mean 'IsComplete'?",
    ),
    (
        "a target that is not a column",
        _set("data.curated.target_column", "fraud"),
        "data.curated.target_column: 'fraud' is not a column of data.curated; did you mean "
        "'is_fraud'?",
    ),
    (
        "an error metric held to a minimum",
        _set("metrics.model_metrics.0.direction", "at_most"),
        "metrics.model_metrics[0]: precision is better when higher: its direction is at_least",
    ),
    (
        "a metric of another problem type",
        _set(
            "metrics.model_metrics.0",
            {
                "name": "rmse",
                "description": "d",
                "owner": "bruno",
                "threshold": 3.0,
                "direction": "at_most",
            },
        ),
        "metrics.model_metrics[0].name: rmse is not a binary_classification metric; use one of "
        "precision, recall, f1, auc, accuracy, false_positive_rate",
    ),
    (
        "a feature that is the target",
        _set("model.features.0", "is_fraud"),
        "model.features[0]: 'is_fraud' is the target_column, not a feature",
    ),
    (
        "script mode without a script",
        _set("model.algorithm", "sklearn"),
        "model.code.train: sklearn runs the product's train.py: name it",
    ),
    (
        "a code path outside the product's folder",
        _set("data.transform", "../elsewhere/transform.py"),
        "data.transform: '../elsewhere/transform.py' does not match a path relative to the "
        "manifest's folder, such as etl/transform.py",
    ),
    (
        "a Glue schedule written as a rate",
        _set("data.schedule", "rate(1 day)"),
        "data.schedule: 'rate(1 day)': Glue schedules take cron expressions only, e.g. "
        "cron(0 2 * * ? *)",
    ),
    (
        "a monitoring schedule SageMaker refuses",
        _set("monitoring.schedule", "cron(0 4 ? * MON *)"),
        "monitoring.schedule: 'cron(0 4 ? * MON *)' is not a monitoring schedule SageMaker "
        "accepts: hourly cron(0 * ? * * *), daily at an hour cron(0 3 ? * * *), or every N "
        "hours cron(0 0/6 ? * * *)",
    ),
    (
        "a monitoring engine mlgate does not have",
        _set("monitoring.engine", "evidenlty"),
        "monitoring.engine: 'evidenlty' is not allowed; expected 'evidently' or 'model-monitor'; "
        "did you mean 'evidently'?",
    ),
    (
        "a drift threshold for a column that is not a feature",
        _set("monitoring.feature_drift_thresholds", {"amount": 0.2, "is_fraud": 0.3}),
        "monitoring.feature_drift_thresholds: 'is_fraud' is not a feature of the curated "
        "schema; features: amount, card_present, amount_zscore, amount_to_customer_mean, "
        "seconds_since_previous, transactions_in_window, channel, merchant_category, "
        "merchant_country",
    ),
    (
        "a drift threshold for a misspelt feature",
        _set("monitoring.feature_drift_thresholds", {"amuont": 0.2}),
        "monitoring.feature_drift_thresholds: 'amuont' is not a feature of the curated schema; "
        "did you mean 'amount'?",
    ),
    (
        "a retraining cron with both day fields",
        _set("model.retrain_schedule", "cron(0 4 * * MON *)"),
        "model.retrain_schedule: 'cron(0 4 * * MON *)': AWS cron needs '?' in exactly one of "
        "day-of-month and day-of-week, e.g. cron(0 2 * * ? *) or cron(0 4 ? * MON *)",
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [m[1:] for m in MORE_MISTAKES], ids=[m[0] for m in MORE_MISTAKES]
)
def test_each_data_contract_mistake_is_named_exactly(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    assert problems(tmp_path, mutated(change)) == [expected]


def test_a_missing_code_file_is_named_with_where_it_was_looked_for(tmp_path: Path) -> None:
    path = write(tmp_path, mutated(_set("data.transform", "etl/transfrom.py")))
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    (line,) = caught.value.lines
    assert line.startswith(f"{path}: data.transform: no file etl/transfrom.py beside the manifest")


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    text = DEFAULT_MANIFEST.read_text().replace(
        "  schedule: cron(0 2 * * ? *)\n", "  schedule: cron(0 2 * * ? *)\n  schedule: x\n", 1
    )
    path = write(tmp_path, BASE)
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    (line,) = caught.value.lines
    assert "not valid YAML: key 'schedule' appears twice in one mapping" in line


def test_an_empty_folder_says_what_a_product_is(tmp_path: Path) -> None:
    with pytest.raises(ManifestBatchError) as caught:
        load_manifests(tmp_path)
    assert caught.value.lines == [
        f"{tmp_path}: holds no product: a product is a folder with a manifest.yaml (try "
        "`python -m mlgate new NAME` to scaffold one)"
    ]


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="this PyYAML has no libyaml")
def test_manifests_are_parsed_by_libyaml_with_duplicate_keys_refused() -> None:
    from mlgate import manifest

    assert issubclass(manifest._FastUniqueKeyLoader, yaml.CSafeLoader)
    with pytest.raises(yaml.constructor.ConstructorError, match="appears twice"):
        yaml.load("a: 1\na: 2\n", Loader=manifest._FastUniqueKeyLoader)


# --- issue 32: serving modes -----------------------------------------------------------------

SERVERLESS = {"memory_mb": 2048, "max_concurrency": 10}


def _serverless(env: str, **extra: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        serving = doc["serving"][env]
        # A shadow test is a real-time environment's alone (below).
        for field in ("instance_type", "instance_count", "autoscaling", "async", "shadow"):
            serving.pop(field, None)
        serving.update({"mode": "serverless", "serverless": dict(SERVERLESS)})
        serving["rollout"] = {**serving["rollout"], "policy": "all_at_once"}
        if env == "prod":
            serving["rollout"]["allow_all_at_once"] = True
        serving.update(extra)

    return change


def _async(env: str, **extra: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        serving = doc["serving"][env]
        serving["autoscaling"].pop("target_invocations_per_instance", None)
        serving.pop("shadow", None)
        serving.update({"mode": "async", "async": {"scale_to_zero": True}})
        serving["rollout"] = {**serving["rollout"], "policy": "all_at_once"}
        if env == "prod":
            serving["rollout"]["allow_all_at_once"] = True
        serving.update(extra)

    return change


def _then(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        for each in changes:
            each(doc)

    return change


def test_each_mode_loads_and_real_time_is_the_default(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, mutated(_then(_serverless("staging"), _async("prod")))))
    assert (m.serving.staging.mode.value, m.serving.prod.mode.value) == ("serverless", "async")
    assert load_manifest(DEFAULT_MANIFEST).serving.prod.mode.value == "real-time"


MODE_MISTAKES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "a serverless environment with instances",
        _serverless("staging", instance_type="ml.m5.large"),
        "serving.staging.instance_type: a serverless endpoint has no instances: SageMaker "
        "scales it within serverless.max_concurrency; drop this",
    ),
    (
        "a serverless environment without its capacity",
        _then(_serverless("staging"), _del("serving.staging.serverless")),
        "serving.staging.serverless: a serverless environment names its memory_mb and "
        "max_concurrency (and provisioned_concurrency to stay warm)",
    ),
    (
        "a serverless canary",
        _then(_serverless("staging"), _set("serving.staging.rollout.policy", "canary")),
        "serving.staging.rollout.policy: canary steps are sized in instances and a serverless "
        "endpoint has none: use all_at_once (SageMaker shifts all traffic to the new fleet, "
        "then bakes while the rollback alarms watch)",
    ),
    (
        "a memory size SageMaker does not offer",
        _then(_serverless("staging"), _set("serving.staging.serverless.memory_mb", 1500)),
        "serving.staging.serverless: memory_mb 1500 is not one SageMaker offers: 1024, 2048, "
        "3072, 4096, 5120, 6144",
    ),
    (
        "more provisioned concurrency than the maximum",
        _then(
            _serverless("staging"),
            _set("serving.staging.serverless.provisioned_concurrency", 11),
        ),
        "serving.staging.serverless: provisioned_concurrency 11 is above max_concurrency 10: "
        "SageMaker needs it at most that",
    ),
    (
        "a blue/green linear step SageMaker does not take",
        _then(
            _set("serving.prod.rollout.policy", "linear"),
            _set("serving.prod.rollout.linear_step_percent", 5),
        ),
        "serving.prod.rollout.linear_step_percent: 5 % is below the smallest linear step "
        "SageMaker's blue/green update takes (10 to 50 % of the variant's instances): raise it, "
        "or host the model as an inference component (5 % batches)",
    ),
    (
        "a serverless section on a real-time environment",
        _set("serving.prod.serverless", SERVERLESS),
        "serving.prod.serverless: only a serverless environment takes it (real-time)",
    ),
    (
        "an async environment tracking invocations per instance",
        _then(
            _async("staging"),
            _set("serving.staging.autoscaling.target_invocations_per_instance", 9),
        ),
        "serving.staging.autoscaling.target_invocations_per_instance: an async endpoint "
        "publishes no InvocationsPerInstance to track: it scales on async.backlog_per_instance",
    ),
    (
        "an async environment scaling to zero without autoscaling",
        _then(_async("staging"), _set("serving.staging.autoscaling.enabled", False)),
        "serving.staging.async.scale_to_zero: scaling to zero and waking on new work are "
        "autoscaling policies: autoscaling.enabled must stay true",
    ),
    (
        "a shadow test on an async environment",
        _then(_async("prod"), _set("serving.prod.shadow", {"minutes": 30})),
        "serving.prod.shadow: SageMaker runs shadow variants on real-time endpoints only, not "
        "async ones (https://docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-exclusions.html)"
        ": drop shadow here",
    ),
    (
        "a shadow test on a serverless environment",
        _then(_serverless("staging"), _set("serving.staging.shadow", {"minutes": 30})),
        "serving.staging.shadow: SageMaker runs shadow variants on real-time endpoints only, not "
        "serverless ones (https://docs.aws.amazon.com/sagemaker/latest/dg/"
        "shadow-tests-exclusions.html): drop shadow here",
    ),
    (
        "a shadow test shorter than ten minutes",
        _set("serving.prod.shadow.minutes", 5),
        "serving.prod.shadow.minutes: input should be greater than or equal to 10 (got 5)",
    ),
    (
        "a canary on an async environment that scales to zero",
        _then(_async("prod"), _set("serving.prod.rollout.policy", "canary")),
        "serving.prod.rollout.policy: canary steps are a share of the running instances, and "
        "an async endpoint scaled to zero has none: use all_at_once, or async.scale_to_zero: "
        "false",
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [m[1:] for m in MODE_MISTAKES], ids=[m[0] for m in MODE_MISTAKES]
)
def test_each_mode_refuses_what_sagemaker_does_not_support(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    assert expected in problems(tmp_path, mutated(change))


def test_the_summary_states_each_mode_and_its_standing_capacity(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, mutated(_then(_serverless("staging"), _async("prod")))))
    assert m.rollout_summary("staging").startswith(
        "serverless 2048 MB, up to 10 concurrent: 0 when idle (cold starts); not monitored "
        "for drift (serverless endpoints capture no traffic); release: all at once to a new "
        "serverless fleet"
    )
    assert m.rollout_summary("prod").startswith("async 0..")
    assert ": 0 when idle; release: all at once to the instances running then" in (
        m.rollout_summary("prod")
    )
    real = load_manifest(DEFAULT_MANIFEST)
    assert real.rollout_summary("prod").startswith("real-time 2 x ml.c5.xlarge always on; ")


def test_a_kpi_stand_in_names_a_file_beside_the_manifest_and_its_function(tmp_path: Path) -> None:
    """stand_in is `file.py:function`; the file must exist when the manifest is read."""
    assert "is not a stand-in: write file.py:function" in " ".join(
        problems(tmp_path, mutated(_set("metrics.business_kpis.0.stand_in", "kpis.py")))
    )
    path = write(tmp_path, mutated(_set("metrics.business_kpis.0.stand_in", "nokpis.py:loss")))
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    (line,) = caught.value.lines
    assert line.startswith(
        f"{path}: metrics.business_kpis[0].stand_in (KPI fraud-loss-rate): no file nokpis.py "
        "beside the manifest"
    )


def test_a_kpi_stand_in_whose_function_is_missing_is_refused_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, mutated(_set("metrics.business_kpis.0.stand_in", "kpis.py:nothing")))
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert caught.value.lines == [
        f"{path}: metrics.business_kpis[0].stand_in: the stand-in of KPI fraud-loss-rate: "
        "kpis.py defines no function nothing(batch, prediction)"
    ]
