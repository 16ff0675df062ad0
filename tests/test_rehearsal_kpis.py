"""The KPI stand-ins a product declares (metrics.business_kpis stand_in): loaded from the
product's folder, computed on a scored batch named by its manifest, and refused, naming the
KPI, when the file or the function is missing (when the manifest is read) or the function
raises or answers no number (when the rehearsal calls it)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgate.manifest import ManifestError, load_manifest

from .conftest import PRODUCTS, ROOT


def example(name: str) -> Any:
    return load_manifest(ROOT / "examples" / name / "manifest.yaml")


def held_out(manifest: Any, rows: int = 300) -> Any:
    """Rows as the test split holds them (the label first, then the payload columns): positive
    numbers, the label a class index or a positive number."""
    import numpy as np

    rng = np.random.default_rng(5)
    payload = rng.uniform(0.5, 2.0, size=(rows, len(manifest.payload_columns)))
    if manifest.model.problem_type.value == "regression":
        label = rng.uniform(10, 60, size=rows)
    elif manifest.model.problem_type.value == "multiclass":
        classes = len(manifest.data.curated.column(manifest.data.curated.target_column).values)
        label = (np.arange(rows) % max(classes, 2)).astype(float)
    else:
        label = (np.arange(rows) % 5 == 0).astype(float)
    return np.column_stack([label, payload])


def answers_from(manifest: Any, rows: Any, right: bool) -> list[float]:
    """The best answers to each row (its label) or the worst (another class; for a number,
    half an hour short)."""
    label = rows[:, 0]
    if manifest.model.problem_type.value == "regression":
        return list(label if right else label - 30)
    classes = int(label.max()) + 1 if manifest.model.problem_type.value == "multiclass" else 2
    return list(label if right else (label + 1) % max(classes, 2))


@pytest.mark.parametrize("name", PRODUCTS)
def test_each_example_declares_stand_ins_the_rehearsal_computes(name: str) -> None:
    """Every KPI of the examples has a stand-in; each is computed on a batch named by the
    manifest, gives the product's own function's value, and depends on the model's answers
    (some KPI moves between the best answers and the worst)."""
    from mlgate.infra.product_code import stand_in_function
    from tools.rehearsal_kpis import StandIns, scored_batch

    manifest = example(name)
    assert all(k.stand_in for k in manifest.metrics.business_kpis)
    stand_ins = StandIns(manifest)
    assert [k.name for k in stand_ins.kpis] == [k.name for k in manifest.metrics.business_kpis]
    rows = held_out(manifest)
    good, bad = (scored_batch(manifest, rows, answers_from(manifest, rows, right))
                 for right in (True, False))  # fmt: skip
    batch, prediction = good
    assert list(batch.columns[:-1]) == [manifest.data.curated.target_column,
                                        *manifest.payload_columns]  # fmt: skip
    values = {k.name: v for k, v in stand_ins.values(*good)}
    for kpi in manifest.metrics.business_kpis:
        direct = float(stand_in_function(manifest, kpi)(batch.copy(), prediction))
        assert values[kpi.name] == pytest.approx(direct, nan_ok=True), kpi.name
    worse = {k.name: v for k, v in stand_ins.values(*bad)}
    moved = [n for n in values if values[n] != pytest.approx(worse[n], nan_ok=True)]
    assert moved, (values, worse)


def test_the_answer_column_never_takes_a_products_column_name() -> None:
    from tools.rehearsal_kpis import PREDICTION, prediction_column

    assert prediction_column(["a", "b"]) == PREDICTION
    assert prediction_column(["a", PREDICTION, f"_{PREDICTION}"]) == f"__{PREDICTION}"


def product_copy(tmp_path: Path, kpis: str, stand_in: str | None = None) -> Path:
    """fraud-detection copied, its kpis.py replaced by `kpis`; `stand_in` for its first KPI."""
    copy = tmp_path / "fraud-detection"
    shutil.copytree(ROOT / "examples" / "fraud-detection", copy,
                    ignore=shutil.ignore_patterns("__pycache__", ".mlgate"))  # fmt: skip
    (copy / "kpis.py").write_text(kpis)
    document = yaml.safe_load((copy / "manifest.yaml").read_text())
    for kpi in document["metrics"]["business_kpis"]:
        kpi.pop("stand_in", None)
    if stand_in is not None:
        document["metrics"]["business_kpis"][0]["stand_in"] = stand_in
    (copy / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return copy / "manifest.yaml"


GOOD = "def loss(batch, prediction):\n    return float(batch[prediction].mean())\n"


def test_a_stand_in_file_that_does_not_exist_is_refused_naming_the_kpi(tmp_path: Path) -> None:
    path = product_copy(tmp_path, GOOD, "kpi/loss.py:loss")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    (line,) = caught.value.lines
    assert line.startswith(
        f"{path}: metrics.business_kpis[0].stand_in (KPI fraud-loss-rate): no file kpi/loss.py "
        "beside the manifest"
    ), line


@pytest.mark.parametrize(
    "value", ["kpis.py", "kpis:loss", "kpis.py:", "kpis.py:not-a-name", "/abs/kpis.py:loss",
              "../kpis.py:loss"],
)  # fmt: skip
def test_a_stand_in_that_is_not_file_and_function_is_refused(tmp_path: Path, value: str) -> None:
    path = product_copy(tmp_path, GOOD, value)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert any("metrics.business_kpis[0].stand_in" in line and "is not a stand-in" in line
               for line in caught.value.lines), caught.value.lines  # fmt: skip


def test_a_missing_function_is_found_without_running_the_file(tmp_path: Path) -> None:
    """The file is read, not imported: a module that would fail on import is still judged,
    when the manifest loads (validate, synth and the rehearsal all load it first)."""
    kpis = "raise SystemExit('imported')\n\ndef other(batch, prediction):\n    return 1.0\n"
    with pytest.raises(ManifestError) as caught:
        load_manifest(product_copy(tmp_path, kpis, "kpis.py:loss"))
    assert any(
        line.endswith(
            "metrics.business_kpis[0].stand_in: the stand-in of KPI fraud-loss-rate: kpis.py "
            "defines no function loss(batch, prediction)"
        )
        for line in caught.value.lines
    ), caught.value.lines
    # The broken form: the same file with the function is accepted.
    fixed = load_manifest(product_copy(tmp_path / "fixed", GOOD, "kpis.py:loss"))
    assert fixed.metrics.stand_in_problems(fixed.folder) == []


def test_the_rehearsal_refuses_a_missing_function_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools import rehearsal

    path = product_copy(tmp_path, GOOD, "kpis.py:missing")
    monkeypatch.setattr(rehearsal, "REPORTS", tmp_path / "reports")
    monkeypatch.setattr(rehearsal.Rehearsal, "etl", lambda self: pytest.fail("ETL ran"))
    assert rehearsal.main([str(path.parent)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "the stand-in of KPI fraud-loss-rate: kpis.py defines no function missing" in err


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("    raise KeyError('chargeback_amount')", "raised KeyError: 'chargeback_amount'"),
        ("    return 'low'", "returned str 'low', not a number"),
        ("    return float('inf')", "returned inf: CloudWatch takes finite values only"),
    ],
)
def test_a_stand_in_that_fails_is_refused_by_the_rehearsal_naming_the_kpi(
    tmp_path: Path, body: str, expected: str
) -> None:
    """When the rehearsal scores a batch, a stand-in that raises or answers no number stops it
    with the KPI's name and the stand-in's; one that answers NaN writes no point."""
    import numpy as np

    from tools.rehearsal import Rehearsal
    from tools.rehearsal_kpis import StandIns

    manifest = load_manifest(product_copy(tmp_path, f"def loss(batch, prediction):\n{body}\n",
                                          "kpis.py:loss"))  # fmt: skip
    rows = held_out(manifest, rows=20)
    with Rehearsal(tmp_path / "work", manifest) as rehearsal:
        rehearsal.stand_ins = StandIns(manifest)
        rehearsal._held_out = ([""] * len(rows), rows)
        with pytest.raises(SystemExit) as stopped:
            rehearsal.score_kpis("prod", "a batch", list(range(20)), list(np.zeros(20)))
    assert str(stopped.value) == (
        f"rehearsal: the stand-in of KPI fraud-loss-rate (kpis.py:loss) {expected}"
    )


def test_kpi_points_go_to_the_kpis_series_as_the_dashboard_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    from tools.rehearsal import Rehearsal
    from tools.rehearsal_kpis import StandIns
    from tools.rehearsal_metrics import published_series

    kpis = (
        "def loss(batch, prediction):\n    return float(batch[prediction].sum())\n\n"
        "def quiet(batch, prediction):\n    return float('nan')\n"
    )
    path = product_copy(tmp_path, kpis, "kpis.py:loss")
    document = yaml.safe_load(path.read_text())
    document["metrics"]["business_kpis"][1]["stand_in"] = "kpis.py:quiet"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    manifest = load_manifest(path)
    rows = held_out(manifest, rows=10)
    with Rehearsal(tmp_path / "work", manifest) as rehearsal:
        rehearsal.stand_ins = StandIns(manifest)
        rehearsal._held_out = ([""] * len(rows), rows)
        rehearsal.score_kpis("prod", "a batch", list(range(10)), list(np.arange(10.0)))
        rehearsal.score_kpis("prod", "another", list(range(10)), list(np.ones(10)))
        series = published_series(rehearsal.kpi_points, "t")
    kpi = manifest.metrics.business_kpis[0]
    (loss,) = series  # the NaN stand-in wrote no point
    assert (loss["namespace"], loss["name"]) == (kpi.namespace, kpi.metric_name)
    assert loss["dimensions"] == {"Product": "fraud-detection", "Environment": "prod"}
    assert [v for _, v in loss["points"]] == [45.0, 10.0]
    out = " ".join(capsys.readouterr().out.split())
    assert "fraud-loss-rate 45 bps (target at most 6)" in out
    assert "high-value-false-declines: no value on this batch" in out
    assert "[offline, from the held-out split]" in out
