"""The monitoring job runs here on synthetic capture files in SageMaker's documented format:
drift only where the traffic moved, labels joined only once due, metrics as scikit-learn
computes them, bad lines skipped and counted, CloudWatch output under moto, Evidently's report."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from ..lazy import Lazy
from .conftest import (
    CATEGORICAL,
    FEATURES,
    NOW,
    draw,
    job,
    record,
    write_baseline,
    write_capture,
    write_ground_truth,
)

# Evidently (through run) and scikit-learn load on the worker that runs these tests only.
skm = Lazy("sklearn.metrics")
capture, cloudwatch, quality, run = (
    Lazy(f"mlgate.runtime.monitoring_job.{name}")
    for name in ("capture", "cloudwatch", "quality", "run")
)

DIMENSIONS = "Product=demo,Environment=staging"


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("baseline")
    write_baseline(folder / "baseline.csv")
    return folder


def scenario(tmp: Path, baseline_dir: Path, frame: pd.DataFrame) -> Path:
    (tmp / "baseline.csv").write_bytes((baseline_dir / "baseline.csv").read_bytes())
    write_capture(tmp / "capture", frame)
    return tmp


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory, baseline_dir: Path) -> dict[str, Any]:
    tmp = scenario(tmp_path_factory.mktemp("steady"), baseline_dir, draw(3000, seed=2))
    return {"tmp": tmp, "summary": job(tmp)}


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory, baseline_dir: Path) -> dict[str, Any]:
    frame = draw(3000, seed=3, shift=["f_num_1", "f_cat_1"])
    tmp = scenario(tmp_path_factory.mktemp("shifted"), baseline_dir, frame)
    return {"tmp": tmp, "summary": job(tmp, "--drift-threshold", "0.2")}


def test_traffic_drawn_like_the_baseline_reports_no_drift(steady: dict[str, Any]) -> None:
    drift = steady["summary"]["drift"]
    assert drift["overall"]["rows"] == 3000
    assert drift["overall"]["drift_detected"] is False
    assert drift["overall"]["drifted_share"] == 0.0
    for name, figures in drift["features"].items():
        assert figures["drifted"] is False, name
        assert figures["drift_score"] < figures["threshold"] / 2, name
        assert figures["missing_share"] == 0.0
        assert figures["out_of_range_share"] < 0.01


def test_shifted_features_and_only_they_drift(shifted: dict[str, Any]) -> None:
    drift = shifted["summary"]["drift"]
    drifted = {name for name, f in drift["features"].items() if f["drifted"]}
    assert drifted == {"f_num_1", "f_cat_1"}
    assert drift["features"]["f_num_1"]["test"] == "wasserstein"
    assert drift["features"]["f_cat_1"]["test"] == "jensenshannon"
    assert drift["overall"]["drifted_share"] == pytest.approx(2 / 6)
    assert drift["overall"]["drift_detected"] is True


def test_the_drift_share_counts_features_not_their_one_hot_columns(
    tmp_path: Path, baseline_dir: Path
) -> None:
    """Two columns that carry one feature (as one-hot columns carry a categorical feature) and
    both move: one drifted feature of five, not two drifted columns of six."""
    tmp = scenario(tmp_path, baseline_dir, draw(3000, seed=3, shift=["f_num_1", "f_cat_1"]))
    grouped = job(tmp, "--feature-of", "f_num_1=f_group,f_cat_1=f_group")["drift"]
    assert grouped["features"]["f_num_1"]["feature"] == "f_group"
    assert grouped["features"]["f_num_2"]["feature"] == "f_num_2"
    assert grouped["overall"]["drifted_features"] == 1
    assert grouped["overall"]["features"] == 5
    assert grouped["overall"]["drifted_share"] == pytest.approx(1 / 5)
    assert grouped["overall"]["drifted_columns"] == 2
    assert grouped["overall"]["columns"] == 6
    # Counted by column, the same traffic reads as a third of the product moving.
    ungrouped = job(tmp, "--report-dir", str(tmp / "ungrouped"))["drift"]
    assert ungrouped["overall"]["drifted_share"] == pytest.approx(2 / 6)


def test_a_one_hot_column_name_keeps_its_equals_sign_in_a_feature_group() -> None:
    args = run.parser().parse_args(
        ["--capture-dir", "c", "--baseline", "b", "--features", "colour=red", "--report-dir", "r",
         "--feature-of", "colour=red=colour, colour=blue=colour"]
    )  # fmt: skip
    assert args.feature_of == {"colour=red": "colour", "colour=blue": "colour"}
    with pytest.raises(SystemExit):
        run.parser().parse_args(["--capture-dir", "c", "--baseline", "b", "--features", "x",
                                 "--report-dir", "r", "--feature-of", "x"])  # fmt: skip


def test_a_feature_group_of_an_unknown_column_is_refused(
    tmp_path: Path, baseline_dir: Path
) -> None:
    tmp = scenario(tmp_path, baseline_dir, draw(200, seed=5))
    with pytest.raises(ValueError, match="feature groups name unknown columns: nope"):
        job(tmp, "--feature-of", "nope=f_group")


def test_a_feature_threshold_override_changes_only_that_feature(
    tmp_path: Path, baseline_dir: Path
) -> None:
    tmp = scenario(tmp_path, baseline_dir, draw(3000, seed=3, shift=["f_num_1", "f_cat_1"]))
    summary = job(tmp, "--feature-thresholds", "f_num_1=5.0", "--drift-threshold", "0.2")
    features = summary["drift"]["features"]
    assert features["f_num_1"]["threshold"] == 5.0
    assert features["f_num_1"]["drifted"] is False
    assert features["f_cat_1"]["drifted"] is True
    # One of six features drifted: not above a 20 % share.
    assert summary["drift"]["overall"]["drift_detected"] is False


def test_data_checks_count_missing_and_out_of_range_values(
    tmp_path: Path, baseline_dir: Path
) -> None:
    frame = draw(1000, seed=4)
    frame.loc[:99, "f_num_2"] = np.nan
    frame.loc[:49, "f_num_3"] = 7.0  # the baseline's range is [-1, 1]
    frame.loc[:9, "f_cat_2"] = "never-seen"
    tmp = scenario(tmp_path, baseline_dir, frame)
    features = job(tmp)["drift"]["features"]
    assert features["f_num_2"]["missing_share"] == pytest.approx(0.1)
    assert features["f_num_3"]["out_of_range_share"] == pytest.approx(0.05)
    assert features["f_cat_2"]["out_of_range_share"] == pytest.approx(0.01)


def test_a_feature_gone_missing_counts_as_drifted(tmp_path: Path, baseline_dir: Path) -> None:
    frame = draw(500, seed=11)
    frame["f_num_4"] = np.nan
    tmp = scenario(tmp_path, baseline_dir, frame)
    summary = job(tmp)
    gone = summary["drift"]["features"]["f_num_4"]
    assert gone["drifted"] is True
    assert gone["drift_score"] is None
    assert gone["missing_share"] == 1.0
    assert summary["drift"]["overall"]["drifted_features"] == 1


def test_only_the_window_is_compared(tmp_path: Path, baseline_dir: Path) -> None:
    tmp = scenario(tmp_path, baseline_dir, draw(500, seed=5))
    # Older traffic, shifted, must not count: it was judged in its own hour.
    write_capture(
        tmp / "capture",
        draw(500, seed=6, shift=["f_num_1"]),
        end=NOW - timedelta(hours=3),
        prefix="old",
    )
    summary = job(tmp)
    assert summary["drift"]["overall"]["rows"] == 500
    assert summary["capture"]["records"] == 1000
    assert summary["drift"]["features"]["f_num_1"]["drifted"] is False


def test_malformed_capture_lines_are_skipped_and_counted(
    tmp_path: Path, baseline_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tmp = scenario(tmp_path, baseline_dir, draw(200, seed=7))
    bad = [
        "{not json",
        json.dumps({"captureData": {}}),
        record("1,2,3", "0.1", "short-row", NOW - timedelta(minutes=5)),
        record("1,2,3,4,a,x", "0.1", "bad-time", NOW).replace("2026-11-20T12:00:00Z", "noon"),
        json.dumps({"captureData": {"endpointInput": {"data": "%%%", "encoding": "BASE64"}}}),
    ]
    (tmp / "capture" / "broken.jsonl").write_text("\n".join(bad) + "\n\n")
    with caplog.at_level(logging.WARNING, logger="monitoring_job"):
        summary = job(tmp)
    assert summary["capture"] == {"records": 205, "malformed": 5}
    assert summary["drift"]["overall"]["rows"] == 200
    assert "broken.jsonl:1" in caplog.text
    assert "does not have 6 fields" in caplog.text


def test_a_capture_with_no_valid_record_still_reports(tmp_path: Path, baseline_dir: Path) -> None:
    (tmp_path / "baseline.csv").write_bytes((baseline_dir / "baseline.csv").read_bytes())
    (tmp_path / "capture").mkdir()
    (tmp_path / "capture" / "broken.jsonl").write_text("{not json\n")
    summary = job(tmp_path)
    assert summary["capture"] == {"records": 1, "malformed": 1}
    assert summary["drift"] is None
    assert (tmp_path / "report" / "report.html").exists()


def test_capture_ids_fall_back_to_event_id_and_decode_base64(tmp_path: Path) -> None:
    lines = [
        record("1,2,3,4,a,x", "0.9", "e-1", NOW, inference_id="i-1"),
        record("5,6,7,8,b,y", "0.2", "e-2", NOW, base64_encoded=True),
        record("9,,7,8,,y\n1,2,3,4,c,z\n", "0.3\n0.4", "e-3", NOW),
    ]
    (tmp_path / "c.jsonl").write_text("\n".join(lines))
    got = capture.read_capture([tmp_path / "c.jsonl"], FEATURES, ["f_cat_1", "f_cat_2"])
    assert got.events["inference_id"].tolist() == ["i-1", "e-2", "e-3", "e-3"]
    assert got.events["prediction"].tolist() == ["0.9", "0.2", "0.3", "0.4"]
    assert got.events["single_row"].tolist() == [True, True, False, False]
    assert got.features["f_num_1"].tolist() == [1.0, 5.0, 9.0, 1.0]
    assert got.features["f_cat_2"].tolist() == ["x", "y", "y", "z"]
    assert np.isnan(got.features.loc[2, "f_num_2"])
    assert pd.isna(got.features.loc[2, "f_cat_1"])


def labelled(tmp: Path, baseline_dir: Path, delay_hours: int) -> tuple[pd.DataFrame, list[str]]:
    """200 due captures (scored like a decent model) and 100 recent ones, all labelled."""
    rng = np.random.default_rng(8)
    truth = rng.integers(0, 2, 300)
    scores = np.clip(truth * 0.35 + rng.uniform(0, 0.65, 300), 0, 1)
    (tmp / "baseline.csv").write_bytes((baseline_dir / "baseline.csv").read_bytes())
    due_end = NOW - timedelta(hours=delay_hours)
    frame = draw(300, seed=9)
    due = write_capture(tmp / "capture", frame[:200], end=due_end, scores=scores[:200])
    recent = write_capture(tmp / "capture", frame[200:], scores=scores[200:], prefix="new")
    ids = [*due, *recent]
    write_ground_truth(tmp / "truth", {i: str(t) for i, t in zip(ids, truth, strict=True)})
    table = pd.DataFrame({"id": ids, "label": truth, "score": scores})
    return table, recent


def test_labels_join_only_after_their_delay(tmp_path: Path, baseline_dir: Path) -> None:
    table, recent = labelled(tmp_path, baseline_dir, delay_hours=24)
    names = ["precision", "recall", "f1", "accuracy", "auc", "false_positive_rate"]
    summary = job(
        tmp_path,
        "--ground-truth-dir", str(tmp_path / "truth"),
        "--ground-truth-delay-hours", "24",
        "--problem-type", "binary_classification",
        "--metrics", ",".join(names),
        "--probability-threshold", "0.5",
    )  # fmt: skip
    result = summary["quality"]
    assert result["due"] == 200
    assert result["rows"] == 200
    due = table[~table["id"].isin(recent)]
    y, scores = due["label"].to_numpy(), due["score"].round(6).to_numpy()
    predicted = (scores >= 0.5).astype(int)
    tn, fp, _, _ = skm.confusion_matrix(y, predicted).ravel()
    expected = {
        "precision": skm.precision_score(y, predicted),
        "recall": skm.recall_score(y, predicted),
        "f1": skm.f1_score(y, predicted),
        "accuracy": skm.accuracy_score(y, predicted),
        "auc": skm.roc_auc_score(y, scores),
        "false_positive_rate": fp / (fp + tn),
    }
    assert result["metrics"] == pytest.approx(expected)
    assert 0.6 < result["metrics"]["auc"] < 1.0


def test_a_label_for_a_capture_younger_than_the_delay_is_not_used(
    tmp_path: Path, baseline_dir: Path
) -> None:
    labelled(tmp_path, baseline_dir, delay_hours=2)
    summary = job(
        tmp_path,
        "--ground-truth-dir", str(tmp_path / "truth"),
        "--ground-truth-delay-hours", "3",
        "--problem-type", "binary_classification",
        "--metrics", "accuracy",
    )  # fmt: skip
    # The labelled captures ended 2 h ago: with a 3 h delay none is due yet.
    assert summary["quality"]["due"] == 0
    assert summary["quality"]["metrics"] == {}


@pytest.mark.parametrize(
    ("problem_type", "labels", "predictions", "names"),
    [
        ("regression", ["1.0", "2.0", "4.0"], ["1.5", "2.0", "3.0"], ["rmse", "mae", "r2"]),
        ("multiclass", ["a", "b", "c", "a"], ["a", "c", "c", "a"], ["accuracy", "f1"]),
    ],
)
def test_metrics_of_other_problem_types_match_sklearn(
    problem_type: str, labels: list[str], predictions: list[str], names: list[str]
) -> None:
    joined = pd.DataFrame({"inference_id": range(len(labels)), "prediction": predictions,
                           "label": labels})  # fmt: skip
    got = quality.compute(joined, problem_type, names)
    if problem_type == "regression":
        y, p = np.array(labels, float), np.array(predictions, float)
        assert got == pytest.approx(
            {
                "rmse": np.sqrt(skm.mean_squared_error(y, p)),
                "mae": skm.mean_absolute_error(y, p),
                "r2": skm.r2_score(y, p),
            }
        )
    else:
        assert got == pytest.approx(
            {
                "accuracy": skm.accuracy_score(labels, predictions),
                "f1": skm.f1_score(labels, predictions, average="macro"),
            }
        )


def test_a_metric_of_another_problem_type_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="auc do not apply to regression; it has rmse"):
        quality.check_metrics("regression", ["rmse", "auc"])
    with pytest.raises(ValueError, match="'ranking' is not one of binary_classification"):
        quality.check_metrics("ranking", ["auc"])


@mock_aws
def test_metrics_reach_cloudwatch_with_names_dimensions_and_values(
    shifted: dict[str, Any], tmp_path: Path
) -> None:
    client = boto3.client("cloudwatch", region_name="eu-west-1")
    summary = shifted["summary"]
    data = cloudwatch.datums(summary, {"Product": "demo", "Environment": "staging"}, NOW)
    assert cloudwatch.publish(client, "mlgate/demo", data) == 1

    base = [{"Name": "Product", "Value": "demo"}, {"Name": "Environment", "Value": "staging"}]
    listed = client.list_metrics(Namespace="mlgate/demo")["Metrics"]
    names = {m["MetricName"] for m in listed}
    assert names == {
        "feature_drift_score", "missing_value_share", "out_of_range_share",
        "drifted_feature_share", "drift_detected", "captured_rows", "malformed_records",
    }  # fmt: skip
    per_feature = [m for m in listed if m["MetricName"] == "feature_drift_score"]
    assert {d["Value"] for m in per_feature for d in m["Dimensions"] if d["Name"] == "Feature"} == (
        set(FEATURES)
    )

    def value(name: str, dimensions: list[dict[str, str]]) -> float:
        got = client.get_metric_statistics(
            Namespace="mlgate/demo",
            MetricName=name,
            Dimensions=dimensions,
            StartTime=NOW - timedelta(minutes=5),
            EndTime=NOW + timedelta(minutes=5),
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        assert len(got) == 1, name
        return float(got[0]["Maximum"])

    drift = summary["drift"]
    assert value("drift_detected", base) == 1.0
    assert value("drifted_feature_share", base) == pytest.approx(drift["overall"]["drifted_share"])
    f_num_1 = [*base, {"Name": "Feature", "Value": "f_num_1"}]
    assert value("feature_drift_score", f_num_1) == pytest.approx(
        drift["features"]["f_num_1"]["drift_score"]
    )


@mock_aws
def test_the_job_publishes_model_metrics_when_asked(
    tmp_path: Path, baseline_dir: Path, no_network: list[Any]
) -> None:
    labelled(tmp_path, baseline_dir, delay_hours=24)
    client = boto3.client("cloudwatch", region_name="eu-west-1")
    job(
        tmp_path,
        "--ground-truth-dir", str(tmp_path / "truth"),
        "--problem-type", "binary_classification",
        "--metrics", "precision,recall",
        "--publish", "--namespace", "mlgate/demo", "--dimensions", DIMENSIONS,
        cloudwatch_client=client,
    )  # fmt: skip
    names = {m["MetricName"] for m in client.list_metrics(Namespace="mlgate/demo")["Metrics"]}
    assert {"model_precision", "model_recall", "labelled_rows"} <= names
    # Evidently and the report are offline: the whole run opened no connection.
    assert no_network == []


@mock_aws
def test_more_than_1000_metrics_go_out_in_several_calls() -> None:
    client = boto3.client("cloudwatch", region_name="eu-west-1")
    features = {
        f"f_{i}": {"drift_score": 0.01, "missing_share": 0.0, "out_of_range_share": 0.0}
        for i in range(400)
    }
    summary = {
        "capture": {"malformed": 0},
        "drift": {
            "features": features,
            "overall": {"drifted_share": 0.0, "drift_detected": False, "rows": 10},
        },
    }
    data = cloudwatch.datums(summary, {"Product": "demo"}, NOW)
    assert len(data) == 3 * 400 + 4
    sent: list[int] = []
    real = client.put_metric_data

    def spy(**kwargs: Any) -> Any:
        sent.append(len(kwargs["MetricData"]))
        return real(**kwargs)

    client.put_metric_data = spy  # type: ignore[method-assign]
    assert cloudwatch.publish(client, "mlgate/demo", data) == 2
    assert sent == [1000, 204]
    paginator = client.get_paginator("list_metrics")
    listed = [m for page in paginator.paginate(Namespace="mlgate/demo") for m in page["Metrics"]]
    assert len(listed) == len(data)


def test_the_report_is_evidentlys_html(shifted: dict[str, Any]) -> None:
    report = shifted["tmp"] / "report" / "report.html"
    html = report.read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    # Evidently's page: its dashboard script renders the run's widgets.
    assert "window.drawDashboard(" in html
    for widget in ("Dataset Drift", "Data Drift Summary", "out of range", "f_num_1", "f_cat_1"):
        assert widget in html
    written = json.loads((shifted["tmp"] / "report" / "summary.json").read_text())
    assert written["drift"] == shifted["summary"]["drift"]


def test_the_undrawn_column_widgets_change_no_score_and_no_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """drift._table_widgets_only leaves undrawn the widgets DataDriftPreset drops: the
    summary and the HTML page (but for Evidently's random widget ids) are those of Evidently
    run as it is, which is what runs with any other Evidently version."""
    import re

    from mlgate.runtime.monitoring_job import drift

    def page_and_summary(name: str) -> tuple[str, dict[str, Any]]:
        result = drift.analyse(
            draw(2000, seed=1), draw(2000, seed=4, shift=["f_num_1", "f_cat_1"]),
            CATEGORICAL, 0.2,
        )  # fmt: skip
        result.report.save_html(str(tmp_path / name))
        html = (tmp_path / name).read_text()
        return re.sub(r"[0-9a-f]{8}(-?[0-9a-f]{4}){3}-?[0-9a-f]{12}", "id", html), result.summary

    undrawn = page_and_summary("undrawn.html")
    monkeypatch.setattr(drift, "EVIDENTLY_TESTED", "0.0.0")  # as with another version
    as_it_is = page_and_summary("as-it-is.html")
    assert undrawn[1] == as_it_is[1]
    assert undrawn[1]["overall"]["drifted_features"] == 2
    assert undrawn[0] == as_it_is[0]
    assert "Data Drift Summary" in undrawn[0]


def test_the_undrawn_widgets_tested_version_is_the_job_s_pinned_one() -> None:
    """drift._table_widgets_only leaves Evidently's widgets undrawn only with the version it was
    tested with: the job's lock moving without revisiting it fails here."""
    from mlgate.runtime.monitoring_job import drift

    from ..conftest import pinned_versions

    for lock in ("requirements-monitoring.lock", "requirements-dev.txt"):
        pinned = pinned_versions(lock)["evidently"]
        assert pinned == drift.EVIDENTLY_TESTED, (
            f"{lock} pins evidently {pinned}; drift.EVIDENTLY_TESTED says "
            f"{drift.EVIDENTLY_TESTED}: check the preset still drops the widgets, then update it"
        )


def test_a_window_without_traffic_still_writes_a_report(tmp_path: Path, baseline_dir: Path) -> None:
    tmp = scenario(tmp_path, baseline_dir, draw(10, seed=10))
    summary = job(tmp, "--now", (NOW + timedelta(days=2)).isoformat())
    assert summary["drift"] is None
    assert "No captured traffic" in (tmp / "report" / "report.html").read_text()


def test_the_job_computes_every_metric_a_manifest_may_hold_it_to() -> None:
    """A manifest's model metric that the job cannot compute would stop every monitoring run
    of that product at start: each problem type's metrics are the job's."""
    from mlgate.manifest import METRICS_BY_PROBLEM
    from mlgate.runtime.monitoring_job.quality import METRICS

    for problem, names in METRICS_BY_PROBLEM.items():
        missing = {n.value for n in names} - set(METRICS[problem.value])
        assert not missing, (problem.value, missing)


def test_mape_is_computed_as_at_training_over_non_zero_targets() -> None:
    import numpy as np

    from mlgate.runtime.monitoring_job.quality import METRICS

    mape = METRICS["regression"]["mape"]
    y, p = np.array([10.0, 20.0, 0.0]), np.array([12.0, 15.0, 3.0])
    assert mape(y, p, p) == pytest.approx((0.2 + 0.25) / 2)
    assert np.isnan(mape(np.zeros(2), np.ones(2), np.ones(2)))
