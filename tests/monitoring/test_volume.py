"""The monitoring job's memory does not grow with the window (mlgate/runtime/monitoring_job/
window.py): the capture streams in chunks, the shares stay exact over every row, Evidently gets
a bounded uniform sample whose error the summary states, and model quality keeps a bounded
sample of ids. Chunk and sample sizes are made tiny here so that small fixtures cross them."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

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

capture, run, window = (
    Lazy(f"mlgate.runtime.monitoring_job.{name}") for name in ("capture", "run", "window")
)

BROKEN = ["{not json", json.dumps({"captureData": {}})]
"""Two malformed lines, written after the window's 1,000 records: in the last chunk."""


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 window rows with known missing and out-of-range shares, then two bad lines."""
    tmp = tmp_path_factory.mktemp("marked")
    write_baseline(tmp / "baseline.csv")
    frame = draw(1000, seed=4)
    frame.loc[900:, "f_num_2"] = np.nan  # the last 100 rows: only late chunks see them
    frame.loc[:49, "f_num_3"] = 7.0  # the baseline's range is [-1, 1]
    frame.loc[990:, "f_cat_2"] = "never-seen"
    write_capture(tmp / "capture", frame)
    (tmp / "capture" / "zz-late.jsonl").write_text("\n".join(BROKEN) + "\n")
    return tmp


EXACT = {
    "f_num_2": ("missing_share", 0.1),
    "f_num_3": ("out_of_range_share", 0.05),
    "f_cat_2": ("out_of_range_share", 0.01),
}


def check_exact(summary: dict[str, Any]) -> None:
    """The marked window's figures, as counted over all its rows."""
    assert summary["capture"] == {"records": 1002, "malformed": 2}
    assert summary["drift"]["overall"]["rows"] == 1000
    for column, (share, value) in EXACT.items():
        assert summary["drift"]["features"][column][share] == pytest.approx(value), column


@pytest.fixture(scope="module")
def streamed(marked: Path) -> dict[str, Any]:
    """Chunks of 7 records, a 50-row sample for Evidently."""
    return job(marked, "--chunk-records", "7", "--sample-rows", "50",
               "--report-dir", str(marked / "streamed"))  # fmt: skip


def test_shares_are_exact_over_every_chunk_while_evidently_sees_a_sample(
    streamed: dict[str, Any], marked: Path
) -> None:
    check_exact(streamed)
    sample = streamed["drift"]["sample"]
    assert sample["rows"] == 50
    assert sample["window_rows"] == 1000
    assert sample["sampled"] is True
    # The stated error is the DKW bound at the sample's size, at 95 %.
    assert sample["confidence"] == 0.95
    assert sample["cdf_error"] == pytest.approx(math.sqrt(math.log(2 / 0.05) / (2 * 50)))
    html = (marked / "streamed" / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "a uniform sample of 50 of the window's 1,000 rows" in html
    assert f"within {sample['cdf_error']:.4f}" in html


def test_a_reader_that_keeps_only_its_first_chunk_fails_the_exact_counts(
    marked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above on the broken form: a stream that stops after its first chunk."""
    whole = capture.CaptureStream.__iter__

    def first_chunk_only(self: Any) -> Iterator[Any]:
        yield next(whole(self))

    monkeypatch.setattr(capture.CaptureStream, "__iter__", first_chunk_only)
    broken = job(marked, "--chunk-records", "700", "--report-dir", str(tmp_path))
    with pytest.raises(AssertionError):
        check_exact(broken)


def test_a_window_within_the_sample_is_compared_whole_and_bounds_the_sampled_run(
    streamed: dict[str, Any], marked: Path
) -> None:
    """A window within the sample size is compared whole (no error stated, no banner); the
    sampled run's scores are within its stated bound of that whole-window run."""
    whole = job(marked, "--report-dir", str(marked / "whole"))
    check_exact(whole)
    assert whole["drift"]["sample"] == {
        "rows": 1000, "window_rows": 1000, "sampled": False, "seed": window.SEED,
        "confidence": 0.95, "cdf_error": 0.0,
    }  # fmt: skip
    assert "uniform sample" not in (marked / "whole" / "report.html").read_text()
    for column, figures in streamed["drift"]["features"].items():
        exact = whole["drift"]["features"][column]
        assert exact["score_error"] == 0.0
        if figures["drift_score"] is not None:
            gap = abs(figures["drift_score"] - exact["drift_score"])
            assert 0 < gap <= figures["score_error"], column


def test_chunk_boundaries_change_neither_the_counts_nor_the_whole_window(marked: Path) -> None:
    """What run.py keeps of the window, read in chunks of 7 records and in one chunk."""
    from mlgate.runtime.monitoring_job.run import _baseline

    reference = _baseline(marked / "baseline.csv", FEATURES, CATEGORICAL)

    def kept(chunk_records: int) -> tuple[Any, pd.DataFrame]:
        files = capture.jsonl_files(marked / "capture")
        stats = window.Stats(window.Bounds.of(reference, CATEGORICAL))
        sample = window.Reservoir(5000)
        for chunk in capture.CaptureStream(files, FEATURES, CATEGORICAL, chunk_records):
            stats.add(chunk.features)
            sample.add(chunk.features)
        return stats, sample.frame(FEATURES)

    (small, small_frame), (one, one_frame) = kept(7), kept(100_000)
    assert small.rows == one.rows == 1000
    assert small.columns == one.columns
    assert one.missing_share("f_num_2") == 0.1
    assert one.out_of_range_share("f_cat_2") == 0.01
    pd.testing.assert_frame_equal(small_frame, one_frame)
    assert len(one_frame) == 1000


def test_the_reservoir_is_bounded_uniform_and_whole_when_the_window_is_small() -> None:
    rows = pd.DataFrame({"n": np.arange(20_000, dtype=float)}, index=np.arange(20_000) + 5)

    def sampled(size: int, chunk: int) -> pd.DataFrame:
        reservoir = window.Reservoir(size, seed=1)
        for start in range(0, len(rows), chunk):
            reservoir.add(rows.iloc[start : start + chunk])
        return reservoir.frame(["n"])

    pd.testing.assert_frame_equal(sampled(20_000, 333), rows)
    for chunk in (7, 5000):
        got = sampled(1000, chunk)
        assert len(got) == 1000
        assert got["n"].is_unique
        assert got["n"].is_monotonic_increasing
        assert (got.index == got["n"].to_numpy(dtype=int) + 5).all()
        # Uniform: its CDF within the DKW bound (at 1e-6) of the uniform one; the first 1,000
        # rows, or any other biased pick, are far outside it.
        assert ks_to_uniform(got["n"].to_numpy() / len(rows)) < window.dkw_error(1000, 1e-6)
    assert ks_to_uniform(np.arange(1000) / len(rows)) > window.dkw_error(1000, 1e-6)


def ks_to_uniform(values: np.ndarray) -> float:
    ordered = np.sort(values)
    steps = np.arange(1, len(ordered) + 1) / len(ordered)
    return float(max(np.max(steps - ordered), np.max(ordered - (steps - 1 / len(ordered)))))


def test_malformed_lines_are_counted_and_the_first_few_logged_across_chunks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = record("1,2,3,4,a,x", "0.1", "ok", NOW)
    lines = [good if i % 3 else "{not json" for i in range(36)]  # 12 bad, in every chunk
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="monitoring_job"):
        stream = capture.CaptureStream([tmp_path / "c.jsonl"], FEATURES, CATEGORICAL, 5)
        chunks = list(stream)
    assert len(chunks) == 8
    assert (stream.records, stream.malformed) == (36, 12)
    assert sum(len(c.features) for c in chunks) == 24
    one_by_one = [r for r in caplog.records if "skipped malformed capture" in r.getMessage()]
    # The first ten bad lines (1, 4, ... 28) one by one, over six chunks; then the total.
    places = [r.getMessage().split("c.jsonl:")[1].split(":")[0] for r in one_by_one]
    assert places == [str(n) for n in range(1, 29, 3)]
    assert "skipped 12 malformed capture records in all" in caplog.records[-1].getMessage()


def test_a_chunk_closes_on_rows_too_as_one_batch_record_can_hold_many(tmp_path: Path) -> None:
    batch = "\n".join(["1,2,3,4,a,x"] * 10)
    lines = [record(batch, "\n".join(["0.1"] * 10), f"b-{i}", NOW) for i in range(3)]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    stream = capture.CaptureStream([tmp_path / "c.jsonl"], FEATURES, CATEGORICAL, 5)
    chunks = [len(c.features) for c in stream]
    assert chunks == [10, 10, 10]
    assert stream.records == 3


def events(ids: list[str], predictions: list[str], first: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {"inference_id": ids, "prediction": predictions, "single_row": True},
        index=range(first, first + len(ids)),
    )


def test_model_quality_keeps_a_bounded_uniform_sample_of_ids() -> None:
    ids = [f"id-{i}" for i in range(10_000)]
    sample = window.IdSample(1000)
    for start in range(0, len(ids), 700):
        chunk = ids[start : start + 700]
        sample.add(events(chunk, ["0.5"] * len(chunk), start))
    kept = sample.events()
    assert len(kept) == 1000
    assert sample.sampled
    assert sample.usable == 10_000
    numbers = kept["inference_id"].str.removeprefix("id-").astype(int).to_numpy()
    assert (np.diff(numbers) > 0).all()  # in capture order
    assert ks_to_uniform(numbers / len(ids)) < window.dkw_error(1000, 1e-6)


def test_the_last_prediction_of_an_id_wins_and_a_dropped_id_stays_dropped() -> None:
    sample = window.IdSample(2)
    sample.add(events(["a", "b", "c"], ["1", "1", "1"]))
    first = set(sample.ids())
    dropped = ({"a", "b", "c"} - first).pop()
    sample.add(events([dropped, *sorted(first)], ["2", "3", "3"], first=3))
    assert sample.ids() == first
    assert set(sample.events()["prediction"]) == {"3"}
    small = window.IdSample(10)
    small.add(events(["a", "b", "a"], ["1", "2", "3"]))
    assert small.events()["inference_id"].tolist() == ["b", "a"]
    assert small.events()["prediction"].tolist() == ["2", "3"]
    assert not small.sampled


def test_the_job_states_the_error_of_sampled_model_quality(tmp_path: Path) -> None:
    write_baseline(tmp_path / "baseline.csv", rows=500)
    rng = np.random.default_rng(8)
    truth = rng.integers(0, 2, 300)
    ids = write_capture(tmp_path / "capture", draw(300, seed=9), end=NOW - timedelta(hours=24),
                        scores=np.clip(truth * 0.35 + rng.uniform(0, 0.65, 300), 0, 1))  # fmt: skip
    write_ground_truth(tmp_path / "truth", {i: str(t) for i, t in zip(ids, truth, strict=True)})
    quality = [
        "--ground-truth-dir", str(tmp_path / "truth"),
        "--problem-type", "binary_classification", "--metrics", "accuracy",
    ]  # fmt: skip
    result = job(tmp_path, *quality, "--sample-rows", "40", "--chunk-records", "9")["quality"]
    assert result["due"] == 300
    assert result["rows"] == 40
    assert result["sample"]["sampled"] is True
    assert result["sample"]["share_error"] == pytest.approx(window.dkw_error(40))
    whole = job(tmp_path, *quality, "--report-dir", str(tmp_path / "whole"))["quality"]
    assert whole["rows"] == 300
    assert whole["sample"]["share_error"] == 0.0
    gap = abs(result["metrics"]["accuracy"] - whole["metrics"]["accuracy"])
    assert gap <= result["sample"]["share_error"]
