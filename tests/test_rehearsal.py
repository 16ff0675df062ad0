"""`make rehearse` keeps working for every example product: the offline release reaches prod
and every fault ends safely."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mlgate.manifest import load_manifest

from .conftest import PRODUCTS, ROOT
from .spark_session import submit_args


@pytest.mark.parametrize("name", PRODUCTS)
def test_rehearsal_plays_the_release_and_the_faults(name: str) -> None:
    folder = ROOT / "examples" / name
    manifest = load_manifest(folder / "manifest.yaml")
    run = subprocess.run(
        [sys.executable, "tools/rehearsal.py", str(folder)],
        cwd=ROOT,
        env={**os.environ, "PYSPARK_SUBMIT_ARGS": submit_args()},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = " ".join(run.stdout.split())  # the timeline wraps long lines
    for line in (
        f"the product's transform ({manifest.data.transform}) ran for real on local Spark",
        "model version registered as PendingManualApproval",
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
