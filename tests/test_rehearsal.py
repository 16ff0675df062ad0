"""`make rehearse` keeps working for every example product: the offline release reaches prod
and every fault ends safely.

All the example products are rehearsed by one run of `tools/rehearsal.py --jobs 1 examples`
(one process: Python's imports, Spark's JVM and Evidently's import are paid once; under
`make test` the other worker already keeps the second core busy, so a process per product would
only pay those twice); each product's assertions read that product's own section of the output
only. The run with a process per product (the default on several cores) prints the same
output: test_products_rehearsed_at_once_print_as_a_run_in_turn."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
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
    reports: Path = ROOT / "reports" / "rehearsal"
    """Where the run wrote each product's metrics.json and MLflow store."""

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
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One rehearsal of every example product, in one process; its reports in a folder of the
    test's own (MLGATE_REHEARSAL_REPORTS), not over the last `make rehearse`'s."""
    reports = tmp_path_factory.mktemp("rehearsal-reports")
    run = subprocess.run(
        [sys.executable, "tools/rehearsal.py", "--jobs", "1", str(ROOT / "examples")],
        cwd=ROOT,
        env={
            **os.environ,
            "PYSPARK_SUBMIT_ARGS": submit_args(),
            "MLGATE_REHEARSAL_REPORTS": str(reports),
        },
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return Run(run.returncode, run.stdout, run.stderr, reports)


def test_every_example_product_is_rehearsed_once_and_the_exit_code_says_they_passed(
    rehearsal: Run,
) -> None:
    assert sorted(rehearsal.sections()) == PRODUCTS, rehearsal.stdout[-3000:]
    assert rehearsal.returncode == 0, rehearsal.stdout[-3000:] + rehearsal.stderr[-3000:]
    assert f"{SUMMARY}{len(PRODUCTS)} products: passed: {', '.join(PRODUCTS)}\n" in rehearsal.stdout
    assert "FAILED" not in rehearsal.stdout


def serves_version_2(manifest: Any, env: str) -> str:
    """What the timeline says once the environment's verifier has checked version 2: the
    endpoint serves its artifact, or a batch environment's sample run scored every row."""
    name = manifest.product.name
    if manifest.is_batch(env):
        return f"{env}: version 2 ({env}-model-2) scored all"
    where = f"{env}: " if env == "prod" else ""
    return f"{where}mlgate-{name}-{env} serves s3://artifacts/released/{name}/2/model.tar.gz"


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
    serves = "scores with" if manifest.is_batch("prod") else "serves"
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
        # version 2, trained for real, released to staging and prod by the same hooks
        "version 2, a later run [simulated offline]: the same training on a seeded sample",
        "Version 2: from staging to prod through its rollout",
        f"the version's model and baselines copied to s3://artifacts/released/{name}/1/",
        *(serves_version_2(manifest, env) for env in ("staging", "prod")),
        "version 2 reached prod through its sample run and a switch"
        if manifest.is_batch("prod")
        else "version 2 rolled out in prod as the manifest says",
        # the product's budget alerts, routed as the Foundation stack routes them
        "Budgets publishes the alert to on-call's topic",
        # each version's model card follows its gates; version 2's go-live archives version 1's
        f"mlgate-{name}-v000001 PendingReview -> Approved",
        f"the card it supersedes, mlgate-{name}-v000001: Archived",
        # roll back on demand (issue 34), from chat: the button posted when prod is verified,
        # a click refused, an approver's click run by the state machine to the end
        "the rollback hook posts to chat",
        "prod now serves version 2",
        "[Roll back to version 1]",
        "someone who may not roll back clicks it: HTTP 403; state machine executions started: 0",
        "clicks it: HTTP 200: Rollback of prod to version 1 requested",
        "rolling prod back from version 2 to 1",
        "chat: " + manifest.product.display_name + f": rolled back: prod {serves} version 1 again",
        # with the command: refused without effect, then started, then resumed once and
        # finished, its audit events written once each
        "--to 99 --by",
        "refused: version 99 was never served in this environment",
        f"--no-wait` (as {manifest.contact(manifest.rollback_approvers[0]).name}): exit 0",
        "to version 2 (served ",
        f"CloudFormation updated mlgate-{name}-prod-serving under moto",
        "the same command again: exit 0:",
        "resuming rollback",
        f"rolled back: prod {serves} version 2 again",
        "rollback-requested, rollback-update-started, rollback-completed, rollback-requested, "
        "rollback-update-started, rollback-completed",
        "prod was rolled back to version 1 from chat, and the command put version 2 back",
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
    if manifest.serving.prod.shadow is not None:
        # Two shadow tests before version 2's canary (issue 34): one with a serving bug fails
        # on its predictions and stops the release before any traffic moves, then version 2
        # itself passes; each time the shadow variant is removed.
        shadow = out[out.index("Version 2's shadow test in prod") :]
        failed, passed = shadow.split("the release with the serving bug stops here")
        assert "shadow test failed: prediction shift" in failed
        assert "the shadow variant is removed and the release stops before any traffic moves" in (
            " ".join(failed.split())
        )
        assert "shadow test passed" in passed
        assert "prod no longer shadows" in " ".join(passed.split())


# The verifier's sample: answered at once (real-time; serverless says so), or, on an async
# endpoint, queued once the verifier checked the version served, then read from its result object.
SCORE = re.compile(
    r"serves s3://artifacts/released/[^/]+/(?P<version>\d+)/model\.tar\.gz[^;]*;.*?sample scored "
    r"(?P<score>[^\s(]+?)(?: \(serverless\))?(?: \(s3://\S+\.out\))? \(the endpoint: the "
    r"trained model artifact"
)


def test_the_endpoint_answers_with_each_products_own_model(rehearsal: Run) -> None:
    """The verifier's sample request is answered by the product's trained model: a real score,
    its own (no product scores like another, no stand-in's constant), each version's own
    (version 2 scores the sample otherwise than version 1), and the quality gate's smoke
    answers agree with the evaluation's predictions, their latency labelled in-process."""
    scores: dict[str, list[str]] = {}
    for name, section in rehearsal.sections().items():
        if load_manifest(ROOT / "examples" / name / "manifest.yaml").is_batch("staging"):
            continue  # its runs: test_batch_runs_score_with_each_products_own_model
        out = " ".join(section.split())
        found = [(m["version"], m["score"]) for m in SCORE.finditer(out)]
        scores[name] = [score for version, score in found if version == "1"]
        second = {score for version, score in found if version == "2"}
        assert len(scores[name]) >= 2, out[-3000:]  # staging and prod
        assert len(set(scores[name])) == 1, scores  # the same model and request
        assert len(second) == 1, found
        assert second != set(scores[name]), found  # another model
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        if any(g.kind.value == "automated" for g in manifest.pipeline_gates):
            assert "latencies measured in-process on this machine" in out
            assert "each answer against evaluate's prediction for its row" in out
            assert "(agrees)." in out
    firsts = [v[0] for v in scores.values()]
    assert "0.0213" not in firsts
    assert len(set(firsts)) == len(firsts), scores


BATCH_PRODUCTS = [
    n for n in PRODUCTS if load_manifest(ROOT / "examples" / n / "manifest.yaml").is_batch("prod")
]


@pytest.mark.parametrize("name", BATCH_PRODUCTS)
def test_batch_runs_score_with_each_products_own_model(rehearsal: Run, name: str) -> None:
    """A batch product's release and runs: each version's sample run scored every row with its
    own model (prepare and transform jobs run here); in staging version 2's sample is compared
    with prod's version 1 on the same rows (a reference job); prod's scheduled runs score the
    whole curated table and add their partitions, one run per version."""
    manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
    out = " ".join(rehearsal.sections()[name].split())
    for env in ("staging", "prod"):
        for version in (1, 2):
            assert f"{env}: version {version} ({env}-model-{version}) scored all" in out, env
    assert re.search(rf"{name}-staging-b-v[0-9a-f]{{12}}-prep, {name}-staging-b-\S+-score", out)
    compared = re.search(r"prediction shift (?P<shift>[0-9.]+) against prod's prod-model-1", out)
    assert compared, out[out.find("Version 2") :][:3000]
    assert re.search(r"-ref\b", out)  # prod's model scored the same rows as the reference
    runs = re.findall(
        r"Batch run prod (?P<what>[^:]+): .*?record Completed: (?P<rows>\d+) of (?P=rows) rows "
        r"scored, 0 unparseable; the predictions table has (?P<partitions>\d+) partition",
        out,
    )
    assert [int(p) for _, _, p in runs] == [1, 2], runs  # one partition per run
    assert len({rows for _, rows, _ in runs}) == 1  # the same curated table both times
    if manifest.is_batch("staging"):
        assert "Quality gate passed on sample run" in out


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
        written = json.loads((rehearsal.reports / name / "metrics.json").read_text())
        assert written["product"] == name
        series = {(m["namespace"], m["name"], tuple(sorted(m["dimensions"].items()))): m
                  for m in written["metrics"]}  # fmt: skip
        if manifest.is_batch("staging"):
            batch_series_are_the_runs(manifest, series)
        else:
            endpoint_series_are_the_requests(manifest, series, written)
        monitored = next(e for e in ("staging", "prod")
                         if manifest.env_serving(e).mode.value != "serverless")  # fmt: skip
        drift = series[(Names.of(manifest).monitoring_namespace(), "drifted_feature_share",
                        (("Environment", monitored), ("Product", name)))]  # fmt: skip
        assert len(drift["points"]) == 2, drift
        assert varies(drift["points"]), drift
        for m in manifest.metrics.model_metrics:
            key = ("mlgate/evaluation", m.name.value, (("Product", name),))
            assert len(series[key]["points"]) == 1
        (alarm,) = written["alarms"]
        assert [state for _, state, _ in alarm["history"]] == ["OK", "ALARM"]
        kinds = {m["kind"] for m in written["moments"]}
        # A batch product's release is a switch (no canary); its runs are moments of their own.
        shifted = {"batch"} if manifest.is_batch("prod") else {"canary"}
        assert {"release", "rollback", "drift", "retrain", *shifted} <= kinds, kinds


def batch_series_are_the_runs(manifest: Any, series: dict[Any, Any]) -> None:
    """Each scheduled run of a batch prod: a succeeded run, its rows and its minutes, by Product
    and Environment, as the dashboard's batch panels read them."""
    dims = (("Environment", "prod"), ("Product", manifest.product.name))
    runs = series[("mlgate/batch", "BatchRunsSucceeded", dims)]
    assert len(runs["points"]) >= 2, runs  # version 1's run and version 2's
    rows = series[("mlgate/batch", "BatchRowsScored", dims)]
    assert all(float(v) > 0 for _, v in rows["points"]), rows
    assert ("mlgate/batch", "BatchRunMinutes", dims) in series
    assert not [k for k in series if k[0] == "AWS/SageMaker"]  # no endpoint, no endpoint series


def endpoint_series_are_the_requests(
    manifest: Any, series: dict[Any, Any], written: dict[str, Any]
) -> None:
    """Every request the staging endpoint answered, timed, under the metric names its mode
    publishes."""
    from mlgate.infra.naming import Names

    endpoint = {"EndpointName": Names.of(manifest, "staging").endpoint(),
                "VariantName": "AllTraffic"}  # fmt: skip
    latency = series[("AWS/SageMaker", "ModelLatency", tuple(sorted(endpoint.items())))]
    assert latency["unit"] == "Microseconds", latency
    # Every request the endpoints answered (verifiers, smoke loads), each timed.
    timed = [p for m in written["metrics"] if m["name"] == "ModelLatency" for p in m["points"]]
    assert len(timed) >= 2, timed
    assert varies(timed), timed
    staging = manifest.serving.staging.mode.value
    # An async endpoint publishes no Invocations: it counts requests processed and failed.
    counted = (("InvocationsProcessed", "InvocationFailures") if staging == "async"
               else ("Invocations", "InvocationModelErrors"))  # fmt: skip
    for metric in (*counted, "Invocation5XXErrors"):
        assert ("AWS/SageMaker", metric, tuple(sorted(endpoint.items()))) in series
    if staging == "async":
        assert ("AWS/SageMaker", "Invocations", tuple(sorted(endpoint.items()))) not in series


@pytest.mark.parametrize("through", [(), ("Fault 3",), ("Fault 1", "Fault 2")])
def test_a_fault_that_gets_through_fails_the_rehearsal_naming_it(
    through: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """A fault scenario that does not end safely (a silent rollback not caught, a forged click
    that decided) fails the run instead of printing NOT CAUGHT and passing; the scenarios
    themselves run in the rehearsal above."""
    from tools import rehearsal

    played = object.__new__(rehearsal.Rehearsal)
    for number, method in enumerate(
        ("fault_below_threshold", "fault_forged_approval", "fault_silent_rollback"), start=1
    ):
        setattr(played, method, lambda safe=f"Fault {number}" not in through: safe)
    assert played.faults() is (len(through) == 0)
    said = capsys.readouterr().out
    if through:
        assert f"{', '.join(through)} did not end safely: the rehearsal fails." in said
    else:
        assert said == ""


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
    assert rehearsal.main(["--jobs", "1", str(ROOT / "examples")]) == 1
    assert played == PRODUCTS
    out, err = capsys.readouterr()
    run = Run(1, out, err)
    assert sorted(run.sections()) == PRODUCTS
    assert run.sections()[PRODUCTS[0]].rstrip().endswith(f"{PRODUCTS[0]}: rehearsal FAILED")
    for name in PRODUCTS[1:]:
        assert run.sections()[name].rstrip().endswith(f"{name}: rehearsal passed")
    assert f"FAILED: {PRODUCTS[0]}" in out
    assert f"rehearsal failed for: {PRODUCTS[0]}" in err


def test_products_rehearsed_at_once_print_as_a_run_in_turn(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--jobs 2: each product in a process of its own, at the same time; the output is a run
    in turn's: the sections in the products' order though the first finishes last, each
    whole, its error output relayed, and the exit code and summary naming the failed one (the
    workers are stood in for: the run above plays the products)."""
    from tools import rehearsal

    assert rehearsal.default_jobs(1) == 1
    assert 1 <= rehearsal.default_jobs(len(PRODUCTS)) <= len(PRODUCTS)

    def worker_command(path: Any) -> list[str]:
        name = path.parent.name
        first = name == PRODUCTS[0]
        code = "\n".join([
            "import sys, time",
            f"print('mlgate release rehearsal: ({name}) started', time.time())",
            "time.sleep(2)" if first else "",  # the first product finishes last
            f"print('{name} ended', time.time())",
            f"print('{name} went wrong', file=sys.stderr)" if first else "",
            f"sys.exit({1 if first else 0})",
        ])  # fmt: skip
        return [sys.executable, "-c", code]

    monkeypatch.setattr(rehearsal, "worker_command", worker_command)
    assert rehearsal.main(["--jobs", "2", str(ROOT / "examples")]) == 1
    out, err = capsys.readouterr()
    run = Run(1, out, err)
    assert list(run.sections()) == PRODUCTS, out  # in order, not as they finished
    times = {}
    for name, section in run.sections().items():
        found = re.search(rf"\({name}\) started (\S+)\n{name} ended (\S+)\n", section)
        assert found, section  # whole: its lines together
        times[name] = (float(found[1]), float(found[2]))
    first, second = times[PRODUCTS[0]], times[PRODUCTS[1]]
    # at the same time: the second product started before the first one ended
    assert second[0] < first[1], times
    assert run.sections()[PRODUCTS[0]].rstrip().endswith(f"{PRODUCTS[0]}: rehearsal FAILED")
    for name in PRODUCTS[1:]:
        assert run.sections()[name].rstrip().endswith(f"{name}: rehearsal passed")
    assert f"FAILED: {PRODUCTS[0]}" in out
    assert f"{PRODUCTS[0]} went wrong\n" in err
    assert err.rstrip().endswith(f"rehearsal failed for: {PRODUCTS[0]}")


def test_the_longest_product_last_time_starts_first_and_prints_in_its_turn(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """--jobs 2 over three products: the one that took longest last time (its `seconds` beside
    its metrics) starts first, so it does not run alone at the end; one never rehearsed counts
    as the longest; the sections still print in the products' order."""
    from tools import rehearsal

    names = PRODUCTS
    assert len(names) == 3
    monkeypatch.setattr(rehearsal, "REPORTS", tmp_path)
    for name, seconds in zip(names, ("10.0", "20.0", "35.0"), strict=True):
        (tmp_path / name).mkdir()
        (tmp_path / name / rehearsal.DURATION_FILE).write_text(seconds)
    manifests = [load_manifest(ROOT / "examples" / n / "manifest.yaml") for n in names]
    assert rehearsal.start_order(manifests) == [2, 1, 0]
    (tmp_path / names[0] / rehearsal.DURATION_FILE).unlink()  # never rehearsed here: first
    assert rehearsal.start_order(manifests) == [0, 2, 1]
    (tmp_path / names[0] / rehearsal.DURATION_FILE).write_text("10.0")

    def worker_command(path: Any) -> list[str]:
        name = path.parent.name
        code = "\n".join([
            "import time",
            f"print('mlgate release rehearsal: ({name}) started', time.time())",
            "time.sleep(0.5)",
        ])  # fmt: skip
        return [sys.executable, "-c", code]

    monkeypatch.setattr(rehearsal, "worker_command", worker_command)
    assert rehearsal.main(["--jobs", "2", str(ROOT / "examples")]) == 0
    run = Run(0, *capsys.readouterr())
    assert list(run.sections()) == names  # printed in the products' order
    started = {
        name: float(re.search(rf"\({name}\) started (\S+)", section)[1])  # type: ignore[index]
        for name, section in run.sections().items()
    }
    # The longest last time started first; the shortest waited for a free worker.
    assert started[names[2]] <= started[names[0]]
    assert started[names[1]] <= started[names[0]]


def test_a_rehearsal_gives_boto3_its_own_clients_back(tmp_path: Any) -> None:
    """The stand-ins patched into boto3 for one product are gone after it: the next product's
    world wraps boto3's own factories, not the last product's fakes."""
    import boto3
    import botocore.session

    from tools.rehearsal import Rehearsal

    client, session_client = boto3.client, boto3.session.Session.client
    loader = botocore.session.create_loader
    for name in PRODUCTS:
        with Rehearsal(tmp_path, load_manifest(ROOT / "examples" / name / "manifest.yaml")):
            assert boto3.client is not client
            assert boto3.session.Session.client is not session_client
            assert botocore.session.create_loader is not loader  # the world's shared loader
        assert boto3.client is client
        assert boto3.session.Session.client is session_client
        assert botocore.session.create_loader is loader


def test_the_stand_ins_direct_s3_sees_what_the_s3_api_sees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The endpoint stand-in reads its requests and writes its results in moto's store directly
    (tools/rehearsal.py: DirectS3): the hooks' S3 API calls see those objects, it sees theirs,
    and a missing object is NoSuchKey, as InvokeEndpointAsync's check of its input needs."""
    import boto3
    import moto.iam.models
    from botocore.exceptions import ClientError
    from moto import mock_aws

    from tools import rehearsal

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setattr(rehearsal, "ACCOUNT", moto.iam.models.DEFAULT_ACCOUNT_ID)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        direct = rehearsal.DirectS3()
        direct.put_object(Bucket="artifacts", Key="async/input/r.csv", Body=b"1,2")
        assert s3.get_object(Bucket="artifacts", Key="async/input/r.csv")["Body"].read() == b"1,2"
        s3.put_object(Bucket="artifacts", Key="async/output/r.out", Body=b"0.5")
        assert direct.get_object(Bucket="artifacts", Key="async/output/r.out")["Body"].read() == (
            b"0.5"
        )
        assert (
            direct.head_object(Bucket="artifacts", Key="async/output/r.out")["ContentLength"] == 3
        )
        for read in (direct.head_object, direct.get_object):
            with pytest.raises(ClientError) as refused:
                read(Bucket="artifacts", Key="async/output/missing.out")
            assert refused.value.response["Error"]["Code"] == "NoSuchKey"


CANARY = re.compile(
    r"Canary prod, step 1 of (?P<steps>\d+) \[simulated offline\].*?version 2 on "
    r"(?P<instances>\d+) of (?P<total>\d+) (?:instances|copies), (?P<share>[\d.]+) % of "
    r"traffic; of "
    r"(?P<requests>\d+) requests version 2 answered (?P<green>\d+) \([\d.]+ %\), version 1 "
    r"(?P<blue>\d+); scores: version 2 mean .*?On the same (?P<rows>\d+) rows the two models' "
    r"answers differ by up to (?P<difference>\S+) \(mean"
)


def test_version_2_rolls_out_in_prod_as_the_manifest_says(rehearsal: Run) -> None:
    """Prod's rollout of version 2 follows the manifest (the first step's share of traffic,
    then every step to all of it); the canary's requests are answered by version 2's model in
    that proportion and by version 1's for the rest, the two models answering the same rows
    otherwise; each fleet's series is in metrics.json under the variant the dashboards read."""
    import json

    from mlgate.infra.naming import Names
    from tools.rehearsal_canary import component_steps, tolerance, traffic_steps

    for name in PRODUCTS:
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        if manifest.is_batch("prod"):
            continue  # a switch, no rollout: test_batch_runs_score_with_each_products_own_model
        out = " ".join(rehearsal.sections()[name].split())
        serving = manifest.serving.prod
        # An inference component's release is a rolling update of its copies.
        component = serving.inference_component
        plan = (
            component_steps(component, serving.rollout)
            if component is not None
            else traffic_steps(serving.rollout, serving.instance_count)
        )
        total = component.copies if component is not None else serving.instance_count
        found = CANARY.search(out)
        assert found, out[out.find("Version 2") :][:4000]
        assert (int(found["instances"]), float(found["share"])) == plan[0]
        assert int(found["steps"]) == len(plan) > 1
        assert int(found["total"]) == total
        assert ("copies" if component is not None else "instances") in found.group(0)
        requests, green = int(found["requests"]), int(found["green"])
        assert green + int(found["blue"]) == requests
        assert abs(100 * green / requests - plan[0][1]) <= tolerance(plan[0][1], requests)
        assert float(found["difference"]) > 0  # two models
        assert out.count("quiet through the bake") == len(plan)
        assert f"step {len(plan)} of {len(plan)}" in out
        written = json.loads((rehearsal.reports / name / "metrics.json").read_text())
        endpoint = Names.of(manifest, "prod").endpoint()
        fleets = {
            m["dimensions"]["EndpointConfigName"]: sum(v for _, v in m["points"])
            for m in written["metrics"]
            if m["name"] == "Invocations"
            and m["dimensions"].get("EndpointName") == endpoint
            and m["dimensions"].get("VariantName") == "AllTraffic"
            and "EndpointConfigName" in m["dimensions"]
        }
        steps = re.findall(r"requests version 2 answered (\d+) \([\d.]+ %\), version 1 (\d+);", out)
        assert len(steps) == len(plan), steps
        assert fleets == {
            f"{endpoint}-config-v2": sum(int(g) for g, _ in steps),
            f"{endpoint}-config-v1": sum(int(b) for _, b in steps),
        }, (fleets, steps)
        canary = [m for m in written["moments"] if m["kind"] == "canary"]
        assert [m["environment"] for m in canary] == ["prod"], canary


def test_each_declared_kpi_stand_in_has_its_series(rehearsal: Run) -> None:
    """Each KPI the product declares a stand-in for is computed on every batch the rehearsal
    scores in prod (version 1's traffic, each rollout step, version 2's traffic) and written
    under its namespace and metric name with the dimensions of the dashboard's KPI widget; the
    values are the product's own (per product, some KPI moves from batch to batch; no two
    products' series alike)."""
    import json
    import math

    assert not varies([["t", 0.0], ["u", 0.0]])  # the broken form: every KPI a constant
    by_product = {}
    for name in PRODUCTS:
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        out = " ".join(rehearsal.sections()[name].split())
        written = json.loads((rehearsal.reports / name / "metrics.json").read_text())
        # Prod's scored batches: version 1's traffic, each rollout step and version 2's; a
        # batch prod's runs: version 1's and version 2's scheduled runs.
        plan_steps = 0 if manifest.is_batch("prod") else int(CANARY.search(out)["steps"])  # type: ignore[index]
        series = {}
        for kpi in manifest.metrics.business_kpis:
            assert kpi.stand_in, kpi.name
            found = [m for m in written["metrics"]
                     if (m["namespace"], m["name"]) == (kpi.namespace, kpi.metric_name)
                     and m["dimensions"] == {"Product": name, "Environment": "prod"}]  # fmt: skip
            assert len(found) == 1, (kpi.name, found)
            points = found[0]["points"]
            # one point per scored batch, but none where the batch said nothing of the KPI
            no_value = out.count(f"{kpi.name}: no value on this batch")
            assert len(points) + no_value >= plan_steps + 2, (kpi.name, points)
            assert all(math.isfinite(v) for _, v in points)
            series[kpi.name] = [round(v, 9) for _, v in points]
        assert any(varies([["t", v] for v in values]) for values in series.values()), series
        source = "the batch run's rows" if manifest.is_batch("prod") else "the held-out split"
        assert f"[offline, from {source}]" in out
        by_product[name] = sorted(map(tuple, series.values()))
    assert len({tuple(v) for v in by_product.values()}) == len(by_product)


MODES = {"async": "async", "serverless": "serverless, all at once", "real-time": "real-time",
         "batch": "batch"}  # fmt: skip
ASYNC_VERIFIED = re.compile(
    r"Verify staging succeeded: staging: (?P<endpoint>\S+) on \S+ \(asynchronous\); sample "
    r"scored (?P<score>[^\s(]+) \((?P<output>s3://artifacts/async/staging/output/verify-\S+\.out)\)"
)


def modes_shown(out: str, manifest: Any) -> dict[str, str]:
    """Each environment's mode as the timeline's Serving lines print it."""
    shown = {}
    for env in ("staging", "prod"):
        found = re.search(rf"Serving {env} \((?P<mode>[^)]+)\): ", out)
        shown[env] = found["mode"] if found else ""
    return shown


def test_the_timeline_plays_each_environments_serving_mode(rehearsal: Run) -> None:
    """Each product's staging mode is printed with its standing capacity (fraud-detection's
    async, delivery-time's serverless); an async staging's verifier reads its sample's result
    object, after the queue woke the endpoint [simulated offline]; a serverless staging's
    first request is a cold start; drift is watched on a monitored environment only."""
    broken = "Serving staging (real-time): real-time 2 x ml.m5.large always on"
    assert modes_shown(broken, None)["staging"] == "real-time"  # the broken form: no mode played
    assert not ASYNC_VERIFIED.search("Verify staging succeeded: staging: e serves s; sample "
                                     "scored 0.1 (the endpoint")  # fmt: skip
    seen = set()
    for name in PRODUCTS:
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        out = " ".join(rehearsal.sections()[name].split())
        shown = modes_shown(out, manifest)
        for env in ("staging", "prod"):
            mode = manifest.env_serving(env).mode.value
            assert shown[env] == MODES[mode], (env, shown)
            assert f"Serving {env} ({MODES[mode]}): {manifest.capacity_summary(env)}" in out
            seen.add((env, mode))
        staging = manifest.serving.staging.mode.value
        verified = ASYNC_VERIFIED.findall(out)
        if staging == "async":
            assert len(verified) == 2, out[:6000]  # versions 1 and 2
            assert "the backlog woke it from 0 instances [simulated offline]" in out
            assert "result object(s) written under async/staging/output/" in out
            assert "INFO smoke latency_p99_ms" in out  # queued: the real-time SLO not applied
        else:
            assert not verified
        if staging == "serverless":
            assert "the endpoint's rollout (serverless, all at once: " in out
            assert out.count("Cold start staging the first request to") == 2, out[:6000]
            assert "sample scored" in out
            assert "(serverless)" in out
        monitored = next(e for e in ("staging", "prod")
                         if manifest.env_serving(e).mode.value != "serverless")  # fmt: skip
        assert f"Monitoring {monitored}, the first environment the app monitors" in out
        assert f"the drift responder: started true: drift on mlgate-{name}-{monitored}" in out
    # both examples together play every mode the manifest offers
    assert {m for _, m in seen} == set(MODES), seen


def test_metrics_json_holds_each_modes_own_series(rehearsal: Run) -> None:
    """An async staging's queue (backlog that fills and drains, the oldest request's age) per
    endpoint; a serverless staging's ModelSetupTime, one point per cold start."""
    import json

    from mlgate.infra.naming import Names

    for name in PRODUCTS:
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        written = json.loads((rehearsal.reports / name / "metrics.json").read_text())
        endpoint = Names.of(manifest, "staging").endpoint()
        mine = {m["name"]: m for m in written["metrics"]
                if m["dimensions"].get("EndpointName") == endpoint}  # fmt: skip
        staging = manifest.serving.staging.mode.value
        if staging == "async":
            backlog = mine["ApproximateBacklogSize"]
            assert backlog["dimensions"] == {"EndpointName": endpoint}
            sizes = [v for _, v in backlog["points"]]
            assert max(sizes) >= manifest.serving.smoke_requests, sizes
            assert sizes[-1] == 0, sizes
            ages = [v for _, v in mine["ApproximateAgeOfOldestRequest"]["points"]]
            assert max(ages) > 0, ages
            assert ages[-1] == 0, ages
            processed = sum(v for _, v in mine["InvocationsProcessed"]["points"])
            assert processed >= 2 * (manifest.serving.smoke_requests + 1), processed
        else:
            assert "ApproximateBacklogSize" not in mine
        if staging == "serverless":
            setup = mine["ModelSetupTime"]
            assert setup["unit"] == "Microseconds"
            assert len(setup["points"]) == 2, setup
            assert all(v > 0 for _, v in setup["points"]), setup
        else:
            assert "ModelSetupTime" not in mine


RUN_LINE = re.compile(r"Tracking version (?P<version>\d): MLflow run (?P<run>[0-9a-f]{32}) ")
STEP_LINE = re.compile(
    r"Tracking version (?P<version>\d): (?P<step>preprocess|train|evaluate): "
    r"(?P<params>\d+) params, (?P<metrics>\d+) metrics"
)


def test_each_tracked_version_s_run_is_logged_per_step_and_linked_from_the_briefs(
    rehearsal: Run,
) -> None:
    """Issue 33: a product that declares `tracking` rehearses its training runs into a local
    MLflow store (reports/rehearsal/<product>/mlruns): one run per version, each step a child
    run that logged, the run the one each gate's brief links. An untracked product prints none."""
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    for name, section in rehearsal.sections().items():
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        out = " ".join(section.split())
        runs = {m["version"]: m["run"] for m in RUN_LINE.finditer(out)}
        if manifest.tracking is None:
            assert runs == {}, name
            assert "Experiment run:" not in out
            continue
        assert sorted(runs) == ["1", "2"], out[-3000:]
        assert runs["1"] != runs["2"]
        steps = {(m["version"], m["step"]): m for m in STEP_LINE.finditer(out)}
        for version in ("1", "2"):
            for step in ("preprocess", "train", "evaluate"):
                found = steps[(version, step)]
                assert int(found["params"]) + int(found["metrics"]) > 0, (name, version, step)
        # The briefs of version 1's gates link version 1's run.
        assert f"Experiment run: {runs['1']} " in out
        client = MlflowClient((rehearsal.reports / name / "mlruns").as_uri())
        parent = client.get_run(runs["1"])
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["mlgate.step"] == "pipeline"
        experiment = client.get_experiment(parent.info.experiment_id)
        assert experiment.name == manifest.experiment
        children = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{runs['1']}'",
        )
        assert sorted(c.data.tags["mlgate.step"] for c in children) == [
            "evaluate", "preprocess", "train"
        ]  # fmt: skip
        evaluate = next(c for c in children if c.data.tags["mlgate.step"] == "evaluate")
        for metric in manifest.metrics.model_metrics:
            assert any(k.endswith(metric.name.value) for k in evaluate.data.metrics), metric


def test_a_products_tracking_store_holds_its_own_steps_runs_only(rehearsal: Run) -> None:
    """Script-mode training runs under mlflow.autolog(), as its training job does, and the
    job's end turns it off; in the rehearsal's one process the training's end turns it off
    (tools/local_pipeline.py: autolog_ends_with_the_training_job). Left on, it patched every
    later fit and predict in the process: the next product's built-in XGBoost training
    logged autologged runs into that product's store, which no pipeline of it makes."""
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    tracked = 0
    for name in rehearsal.sections():
        manifest = load_manifest(ROOT / "examples" / name / "manifest.yaml")
        if manifest.tracking is None:
            continue
        tracked += 1
        client = MlflowClient((rehearsal.reports / name / "mlruns").as_uri())
        experiment = client.get_experiment_by_name(manifest.experiment)
        assert experiment is not None, name
        runs = client.search_runs([experiment.experiment_id])
        steps = [r.data.tags.get("mlgate.step") for r in runs]
        strays = [(r.info.run_name, r.data.tags.get("mlflow.autologging")) for r in runs
                  if r.data.tags.get("mlgate.step") is None]  # fmt: skip
        assert not strays, (name, strays)
        assert steps.count("pipeline") >= 2, (name, steps)
    assert tracked, "no example product declares tracking"
