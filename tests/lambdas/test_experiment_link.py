"""A version's experiment run (the manifest's `tracking`) travels from the registry's customer
metadata, through release.json (the release hook), to every gate's brief (the gate notifier)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from .conftest import released

SERVER = "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/fraud-detection"
RUN = {"mlflow_run_id": "4f0c9d", "mlflow_experiment_id": "12", "mlflow_tracking": SERVER}


def test_the_release_hook_copies_the_run_the_pipeline_registered() -> None:
    from release.handler import Copy, ModelApproval, build_release

    from .test_release import EVENT

    class NoReport:
        def get_object(self, **_: Any) -> None:
            raise AssertionError("no evaluation report to read")

    meta = {"mlgate:mlflow-run-id": "4f0c9d", "mlgate:mlflow-experiment-id": "12",
            "mlgate:mlflow-tracking": SERVER}  # fmt: skip
    approval = ModelApproval.model_validate(EVENT)
    version = approval.detail.ModelPackageVersion
    model = Copy("model", "s3://bkt/training/p/m.tgz", "model.tar.gz",
                 f"released/p/{version}/model.tar.gz",
                 f"s3://bkt/released/p/{version}/model.tar.gz")  # fmt: skip
    release = build_release(approval, {"CustomerMetadataProperties": meta}, NoReport(), [model])
    assert (release.mlflow_run_id, release.mlflow_experiment_id, release.mlflow_tracking) == (
        "4f0c9d", "12", SERVER
    )  # fmt: skip
    untracked = build_release(approval, {}, NoReport(), [model])
    assert untracked.mlflow_run_id is None


def test_release_json_refuses_a_run_field_a_brief_could_not_show() -> None:
    from shared.models import Release

    Release.model_validate(released(7, **RUN))
    with pytest.raises(ValidationError, match="mlflow_run_id"):
        Release.model_validate(released(7, **{**RUN, "mlflow_run_id": "run\n<b>forged</b>"}))


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        (RUN, "Experiment run: 4f0c9d (experiment 12) on " + SERVER + "; open: aws sagemaker "
              "create-presigned-mlflow-tracking-server-url --tracking-server-name "
              "fraud-detection, then #/experiments/12/runs/4f0c9d"),
        ({**RUN, "mlflow_tracking": "https://mlflow.example.com/"},
         "open: https://mlflow.example.com/#/experiments/12/runs/4f0c9d"),
        ({**RUN, "mlflow_tracking": "file:///work/reports/rehearsal/p/mlruns"},
         "open: mlflow ui --backend-store-uri file:///work/reports/rehearsal/p/mlruns, then "
         "http://127.0.0.1:5000/#/experiments/12/runs/4f0c9d"),
        ({"mlflow_run_id": "untracked: server unreachable", "mlflow_experiment_id": "-"},
         "Experiment run: the version was trained without its run in MLflow (untracked: "
         "server unreachable)"),
    ],
)  # fmt: skip
def test_every_brief_says_how_to_open_the_version_s_run(fields: dict[str, str], shown: str) -> None:
    from gate_notifier import handler as notifier

    def shown_for(release: dict[str, Any]) -> str:
        context = {"display_name": "P", "objective": "o", "model_metrics": [], "kpis": [],
                   "risks": [], "dashboard_url": "https://dashboard"}  # fmt: skip
        gate = {"name": "g", "description": "d", "approvers": [{"name": "A"}], "timeout_hours": 1}
        approval = {"expires": "soon"}
        brief = notifier.brief(context, gate, approval, release, {"status": "PASS"})
        return str(notifier.text(brief))

    assert shown in shown_for(released(7, **fields))
    assert "Experiment run" not in shown_for(released(7))
