"""The rehearsal's blue/green rollout (tools/rehearsal_canary.py): each step's requests are
answered by the two fleets' own models in the step's proportion, and a rollout that shows
nothing (both fleets on one artifact, routing off its share) is refused.

Two small XGBoost models stand for the versions, served by the local endpoint as the built-in
container serves them; the SLOs are the default example product's.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from mlgate.manifest import load_manifest

from .conftest import DEFAULT_MANIFEST, PRODUCTS, ROOT


def artifact(folder: Path, seed: int, rounds: int) -> bytes:
    """A model.tar.gz of a built-in XGBoost model on three features."""
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(float)
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1, "seed": seed},
                        xgb.DMatrix(x, label=y), num_boost_round=rounds)  # fmt: skip
    path = folder / f"model-{seed}-{rounds}"
    booster.save_model(str(path))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.add(path, arcname="xgboost-model")
    return out.getvalue()


@pytest.fixture
def payloads() -> list[str]:
    import numpy as np

    rng = np.random.default_rng(11)
    return [",".join(f"{v:.4f}" for v in row) for row in rng.normal(size=(400, 3))]


def rollout(tmp_path: Path, artifacts: dict[str, bytes], manifest: Any = None) -> Any:
    from tools.local_endpoint import LocalHost
    from tools.rehearsal_canary import Fleet, Rollout

    host = LocalHost(tmp_path / "endpoint", "xgboost", None, lambda url: artifacts[url])
    blue = Fleet(1, "s3://artifacts/released/p/1/model.tar.gz", "ep-config-v1")
    green = Fleet(2, "s3://artifacts/released/p/2/model.tar.gz", "ep-config-v2")
    return Rollout(manifest or load_manifest(DEFAULT_MANIFEST), host, "ep", "AllTraffic",
                   blue, green)  # fmt: skip


def two_versions(tmp_path: Path, same: bool = False) -> dict[str, bytes]:
    one = artifact(tmp_path, seed=1, rounds=20)
    two = one if same else artifact(tmp_path, seed=2, rounds=8)
    return {"s3://artifacts/released/p/1/model.tar.gz": one,
            "s3://artifacts/released/p/2/model.tar.gz": two}  # fmt: skip


def test_each_products_rollout_plan_follows_its_manifest() -> None:
    from tools.rehearsal_canary import traffic_steps

    plans = {}
    for name in PRODUCTS:
        serving = load_manifest(ROOT / "examples" / name / "manifest.yaml").serving.prod
        plans[name] = traffic_steps(serving.rollout, serving.instance_count)
        first = serving.rollout.first_step(serving.instance_count)
        assert plans[name][0] == first, plans
        assert plans[name][-1] == (serving.instance_count, 100.0)
        shares = [share for _, share in plans[name]]
        assert shares == sorted(shares)
        assert len(set(shares)) == len(shares)
    # The examples' own rollouts: a canary of 1 of 2 instances; linear 25 % steps of 4.
    assert plans["fraud-detection"] == [(1, 50.0), (2, 100.0)]
    assert plans["delivery-time"] == [(1, 25.0), (2, 50.0), (3, 75.0), (4, 100.0)]


def test_the_canary_is_answered_by_two_models_in_the_declared_proportion(
    tmp_path: Path, payloads: list[str]
) -> None:
    play = rollout(tmp_path, two_versions(tmp_path))
    plan = [(1, 50.0), (2, 100.0)]
    assert play.play(payloads, [list(range(200)), list(range(200, 400))], plan)
    shown = play.check(payloads)
    assert shown["max_difference"] > 0.01, shown  # two models
    canary, last = play.steps
    share = 100 * len(canary.on(play.green)) / len(canary.rows)
    assert abs(share - 50.0) < 10, share
    assert len(last.on(play.blue)) == 0  # then all of the traffic on version 2
    # Each request was recorded with the fleet that answered it (the per-fleet series).
    fleets = {i.fleet for i in canary.invocations}
    assert fleets == {"ep-config-v1", "ep-config-v2"}
    assert all(i.variant == "AllTraffic" for i in canary.invocations)


def test_a_rollout_whose_fleets_load_the_same_artifact_is_refused(
    tmp_path: Path, payloads: list[str]
) -> None:
    from tools.rehearsal_canary import RolloutRefused

    play = rollout(tmp_path, two_versions(tmp_path, same=True))
    assert play.play(payloads, [list(range(200)), list(range(200, 400))], [(1, 50.0), (2, 100.0)])
    with pytest.raises(RolloutRefused, match="answers exactly as version 1 on all 200 rows"):
        play.check(payloads)


def test_a_step_off_its_declared_share_is_refused(tmp_path: Path, payloads: list[str]) -> None:
    """Routing that does not follow the step's share (here: a step played at 50 % that the
    manifest declares at 10 %) is caught."""
    from tools.rehearsal_canary import RolloutRefused

    play = rollout(tmp_path, two_versions(tmp_path))
    assert play.play(payloads, [list(range(200)), list(range(200, 400))], [(1, 50.0), (2, 100.0)])
    play.steps[0].share = 10.0
    with pytest.raises(RolloutRefused, match=r"the step of 10.0 % sent"):
        play.check(payloads)


def test_a_rollback_alarm_sends_the_traffic_back(tmp_path: Path, payloads: list[str]) -> None:
    """An SLO the new fleet breaks (a latency p99 no request can meet) fires in the first
    step's bake: the rollout stops there."""
    import yaml

    from mlgate.manifest import parse_manifest

    doc = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    for slo in doc["metrics"]["slos"]:
        if slo["name"] == "latency_p99_ms":
            slo["threshold"] = 1e-6
    manifest = parse_manifest(doc, DEFAULT_MANIFEST)
    play = rollout(tmp_path, two_versions(tmp_path), manifest)
    assert not play.play(payloads, [list(range(100)), list(range(100, 200))],
                         [(1, 50.0), (2, 100.0)])  # fmt: skip
    assert len(play.steps) == 1
    assert play.steps[0].alarms
    assert "latency_p99_ms" in play.steps[0].alarms[0]
