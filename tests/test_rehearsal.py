"""`make rehearse` keeps working for every example product: the offline release reaches prod
and every fault ends safely.

All the example products are rehearsed by one run of `tools/rehearsal.py examples` (one
process: Python's imports, Spark's JVM and Evidently's import are paid once); each product's
assertions read that product's own section of the output only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from mlgate.manifest import load_manifest

from .conftest import PRODUCTS, ROOT
from .spark_session import submit_args

BANNER = re.compile(r"^=+ (?P<name>\S+) \((?P<number>\d+) of (?P<total>\d+)\) =+$", re.MULTILINE)
SUMMARY = "\nRehearsed "


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def sections(self) -> dict[str, str]:
        """Each product's part of the output: from its banner to the next product's banner, or
        to the run's closing summary."""
        banners = list(BANNER.finditer(self.stdout))
        names = [b["name"] for b in banners]
        assert len(names) == len(set(names)), f"a product rehearsed twice: {names}"
        summary = self.stdout.rfind(SUMMARY)
        ends = [b.start() for b in banners[1:]] + [summary if summary >= 0 else len(self.stdout)]
        return {b["name"]: self.stdout[b.end() : end] for b, end in zip(banners, ends, strict=True)}


@pytest.fixture(scope="module")
def rehearsal() -> Run:
    """One rehearsal of every example product, in one process."""
    run = subprocess.run(
        [sys.executable, "tools/rehearsal.py", str(ROOT / "examples")],
        cwd=ROOT,
        env={**os.environ, "PYSPARK_SUBMIT_ARGS": submit_args()},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return Run(run.returncode, run.stdout, run.stderr)


def test_every_example_product_is_rehearsed_once_and_the_exit_code_says_they_passed(
    rehearsal: Run,
) -> None:
    assert sorted(rehearsal.sections()) == PRODUCTS, rehearsal.stdout[-3000:]
    assert rehearsal.returncode == 0, rehearsal.stdout[-3000:] + rehearsal.stderr[-3000:]
    assert f"{SUMMARY}{len(PRODUCTS)} products: passed: {', '.join(PRODUCTS)}\n" in rehearsal.stdout
    assert "FAILED" not in rehearsal.stdout


@pytest.mark.parametrize("name", PRODUCTS)
def test_rehearsal_plays_the_release_and_the_faults(rehearsal: Run, name: str) -> None:
    manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
    section = rehearsal.sections().get(name)
    assert section is not None, f"no section for {name}: " + rehearsal.stdout[-3000:]
    # The product's own verdict: its part of the exit code.
    assert section.rstrip().endswith(f"{name}: rehearsal passed"), (
        section[-3000:] + rehearsal.stderr[-3000:]
    )
    out = " ".join(section.split())  # the timeline wraps long lines
    assert f"mlgate release rehearsal: {manifest.product.display_name} ({name})" in out
    for line in (
        f"the product's transform ({manifest.data.transform}) ran for real on local Spark",
        "model version registered as PendingManualApproval",
        f"the version's model and baselines copied to s3://artifacts/released/{name}/1/"
        "model.tar.gz",
        "was already released (idempotent)",
        "clicks Approve in chat; signed callback → HTTP 200",
        "approvals sent to CodePipeline: 0; decision recorded: none",
        "caught by the deploy verifier",
        "the release hook failed (ThrottlingException), no record kept; Lambda's retry "
        "released it (released true)",
        "was already released; pipeline starts for it: 1.",
        # the monitoring job's real code: calm traffic passes, moved features start retraining
        f"not above drift_threshold {manifest.monitoring.drift_threshold}: no alarm.",
        f"above drift_threshold {manifest.monitoring.drift_threshold}: the data-drift alarm "
        "goes to ALARM.",
        "the drift responder: started true",
        "the alarm again an hour later: started false: retraining already started",
        "drift started retraining once",
    ):
        assert line in out, line
    assert "[simulated offline]" in out  # what could not run here says so
    assert "quarantined (reasons: none)" not in out, "the generator plants malformed rows"
    if any(g.kind.value == "automated" for g in manifest.pipeline_gates):
        assert "Quality gate passed" in out
        assert "stopped at the quality gate; prod untouched." in out
    if manifest.is_remote("prod"):
        account = manifest.environments.prod.account
        assert f"deployer hook in account {account} through its deploy role" in out


SCORE = re.compile(r"sample scored (?P<score>\S+?) \(the endpoint: the trained model artifact")


def test_the_endpoint_answers_with_each_products_own_model(rehearsal: Run) -> None:
    """The verifier's sample request is answered by the product's trained model: a real score,
    its own (no product scores like another, no stand-in's constant), and the quality gate's
    smoke answers agree with the evaluation's predictions, their latency labelled in-process."""
    scores: dict[str, list[str]] = {}
    for name, section in rehearsal.sections().items():
        out = " ".join(section.split())
        scores[name] = [m["score"] for m in SCORE.finditer(out)]
        assert len(scores[name]) >= 2, out[-3000:]  # staging and prod
        assert len(set(scores[name])) == 1, scores  # the same model and request
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        if any(g.kind.value == "automated" for g in manifest.pipeline_gates):
            assert "latencies measured in-process on this machine" in out
            assert "each answer against evaluate's prediction for its row" in out
            assert "(agrees)." in out
    firsts = [v[0] for v in scores.values()]
    assert "0.0213" not in firsts
    assert len(set(firsts)) == len(firsts), scores


def test_the_rehearsal_prints_the_manifests_accounts(rehearsal: Run) -> None:
    for name, section in rehearsal.sections().items():
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        out = " ".join(section.split())
        for env in ("staging", "prod"):
            where = manifest.environment(env)
            assert f"{env} in account {where.account}, {where.region}" in out
        home = manifest.environments.staging.account
        assert f":{home}:model-package/" in out
        assert "123456789012" not in out, "moto's default account"


def varies(points: list[list[Any]]) -> bool:
    return len({round(float(v), 9) for _, v in points}) > 1


def test_metrics_json_holds_the_runs_series_as_the_dashboards_name_them(rehearsal: Run) -> None:
    import json

    from mlgate.infra.naming import Names

    assert not varies([["t", 1.0], ["u", 1.0]])  # the broken form: a constant series
    assert varies([["t", 1.0], ["u", 2.0]])
    for name in PRODUCTS:
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        written = json.loads((ROOT / "reports" / "rehearsal" / name / "metrics.json").read_text())
        assert written["product"] == name
        series = {(m["namespace"], m["name"], tuple(sorted(m["dimensions"].items()))): m
                  for m in written["metrics"]}  # fmt: skip
        endpoint = {"EndpointName": Names.of(manifest, "staging").endpoint(),
                    "VariantName": "AllTraffic"}  # fmt: skip
        latency = series[("AWS/SageMaker", "ModelLatency", tuple(sorted(endpoint.items())))]
        assert latency["unit"] == "Microseconds", latency
        # Every request the endpoints answered (verifiers, smoke loads), each timed.
        timed = [p for m in written["metrics"] if m["name"] == "ModelLatency" for p in m["points"]]
        assert len(timed) >= 2, timed
        assert varies(timed), timed
        for metric in ("Invocations", "InvocationModelErrors", "Invocation5XXErrors"):
            assert ("AWS/SageMaker", metric, tuple(sorted(endpoint.items()))) in series
        drift = series[(Names.of(manifest).monitoring_namespace(), "drifted_feature_share",
                        (("Environment", "staging"), ("Product", name)))]  # fmt: skip
        assert len(drift["points"]) == 2, drift
        assert varies(drift["points"]), drift
        for m in manifest.metrics.model_metrics:
            key = ("mlgate/evaluation", m.name.value, (("Product", name),))
            assert len(series[key]["points"]) == 1
        (alarm,) = written["alarms"]
        assert [state for _, state, _ in alarm["history"]] == ["OK", "ALARM"]
        kinds = {m["kind"] for m in written["moments"]}
        assert {"release", "rollback", "drift", "retrain"} <= kinds, kinds


def test_a_failing_product_fails_the_run_and_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One product failing does not stop the next one; the exit code and the summary say which
    failed (the products' own rehearsals are stood in for: the run above plays them)."""
    from tools import rehearsal

    played: list[str] = []

    def rehearse(manifest: Any) -> int:
        played.append(manifest.product.name)
        print(f"mlgate release rehearsal: ({manifest.product.name})")
        return 1 if manifest.product.name == PRODUCTS[0] else 0

    monkeypatch.setattr(rehearsal, "rehearse", rehearse)
    assert rehearsal.main([str(ROOT / "examples")]) == 1
    assert played == PRODUCTS
    out, err = capsys.readouterr()
    run = Run(1, out, err)
    assert sorted(run.sections()) == PRODUCTS
    assert run.sections()[PRODUCTS[0]].rstrip().endswith(f"{PRODUCTS[0]}: rehearsal FAILED")
    for name in PRODUCTS[1:]:
        assert run.sections()[name].rstrip().endswith(f"{name}: rehearsal passed")
    assert f"FAILED: {PRODUCTS[0]}" in out
    assert f"rehearsal failed for: {PRODUCTS[0]}" in err


def test_a_rehearsal_gives_boto3_its_own_clients_back(tmp_path: Any) -> None:
    """The stand-ins patched into boto3 for one product are gone after it: the next product's
    world wraps boto3's own factories, not the last product's fakes."""
    import boto3

    from tools.rehearsal import Rehearsal

    client, session_client = boto3.client, boto3.session.Session.client
    for name in PRODUCTS:
        with Rehearsal(tmp_path, load_manifest(ROOT / "examples" / name / "manifest.yaml")):
            assert boto3.client is not client
            assert boto3.session.Session.client is not session_client
        assert boto3.client is client
        assert boto3.session.Session.client is session_client
