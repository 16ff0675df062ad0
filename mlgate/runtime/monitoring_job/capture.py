"""Read what the endpoint captured and what labellers sent back, as SageMaker documents both.

Capture record (one JSON object a line, one file per hour under the endpoint's capture prefix),
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html:
  {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                     "data": "<CSV line(s)>", "encoding": "CSV"},
                   "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                      "data": "<CSV line(s)>", "encoding": "CSV"}},
   "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<caller's id, optional>",
                     "inferenceTime": "2022-02-14T17:25:49Z"},
   "eventVersion": "0"}
`encoding` is BASE64 when the content type is not one the endpoint config lists as CSV or JSON
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html).

Ground-truth record,
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-merge.html:
  {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<id>"},
   "eventVersion": "0"}
Its eventId is the capture's inferenceId when the caller sent one, else the capture's eventId:
the same rule decides a capture's `inference_id` here.

A batch environment's runs are read instead of capture (`BatchStream`): Batch Transform's
output lines, `id,<payload columns...>,<prediction>` (JoinSource Input, OutputFilter "$":
https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html), no
header. A line is a row with its own id (labels join on it) and its object's LastModified as its
inference time; the prediction is a number or a label, kept as text as capture's is.

A line that is not such a record is counted and skipped, never fatal: one bad upload must not
blind the monitor to the rest of the window.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import logging
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .sources import BATCH_OUTPUT, OBJECTS_FILE

log = logging.getLogger("monitoring_job")
LOGGED_PER_KIND = 10
"""Malformed lines logged one by one per input kind; past that only the count is reported."""
CHUNK_RECORDS = 50_000
"""Capture records (or payload rows) parsed at a time: memory holds one chunk, whatever the
window."""


@dataclass(frozen=True)
class Captured:
    """Captured requests, one row per CSV row the endpoint received."""

    features: pd.DataFrame
    """Feature columns in payload order: float for numeric, str (NaN when empty) for categorical."""
    events: pd.DataFrame
    """Same index: inference_id, inference_time (UTC), prediction (first CSV field of the
    matching output row, str; None without one), single_row (the request held one row). Read
    from batch output (`BatchStream`): the line's id, its object's moment, its last field."""
    records: int
    """Capture records read, malformed ones included (of the chunk, for a chunk)."""
    malformed: int
    """Capture records skipped as malformed (of the chunk, for a chunk)."""


def jsonl_files(folder: Path) -> list[Path]:
    """Every .jsonl file under folder, in path order (capture prefixes are yyyy/mm/dd/hh)."""
    return sorted(folder.rglob("*.jsonl"))


def _decoded(field: dict[str, Any]) -> str:
    data = field["data"]
    if not isinstance(data, str):
        raise TypeError("data is not a string")
    if str(field.get("encoding", "CSV")).upper() == "BASE64":
        return base64.b64decode(data, validate=True).decode("utf-8")
    return data


class _Skipped:
    """Counts malformed lines of one input kind and logs the first few with their place."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.count = 0

    def add(self, where: str, reason: str) -> None:
        self.count += 1
        if self.count <= LOGGED_PER_KIND:
            log.warning("skipped malformed %s %s: %s", self.kind, where, reason)

    def report(self) -> None:
        if self.count > LOGGED_PER_KIND:
            log.warning("skipped %d malformed %s records in all", self.count, self.kind)


def _lines(files: Iterable[Path]) -> Iterable[tuple[str, str]]:
    for path in files:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield f"{path}:{number}", line


_RECORD_ERRORS = (ValueError, KeyError, TypeError, AttributeError, binascii.Error)


def _fields(row: str) -> list[str]:
    return next(csv.reader([row]))


def _width(row: str) -> int:
    # Counting commas is exact for unquoted rows and an order of magnitude faster than a CSV
    # reader per row, which matters at a million rows an hour.
    return len(_fields(row)) if '"' in row else row.count(",") + 1


def _first_field(row: str) -> str:
    return _fields(row)[0] if '"' in row else row.split(",", 1)[0]


class _Stream:
    """What a stream of `Captured` chunks keeps as it is read: the records and rows so far, and
    its malformed records (counted, skipped, the first few logged under KIND)."""

    KIND = ""

    def __init__(
        self, features: Sequence[str], categorical: Iterable[str], chunk_records: int
    ) -> None:
        if chunk_records < 1:
            raise ValueError("a chunk holds at least one record")
        self.features = list(features)
        self.categorical = list(categorical)
        self.chunk_records = chunk_records
        self.records = 0
        self.rows = 0
        self._skipped = _Skipped(self.KIND)

    @property
    def malformed(self) -> int:
        return self._skipped.count


class CaptureStream(_Stream):
    """The capture files as a stream of `Captured` chunks, each closed once it holds
    `chunk_records` records or payload rows, so that memory holds one chunk, never the window.
    Iterate it once; `records` and `malformed` are complete when the iteration ends. Malformed
    records are counted, skipped and the first few logged across chunks as in one read. Each
    chunk's frames are indexed by row number over the whole stream (malformed records' rows
    left out)."""

    KIND = "capture"

    def __init__(
        self,
        files: Iterable[Path],
        features: Sequence[str],
        categorical: Iterable[str] = (),
        chunk_records: int = CHUNK_RECORDS,
    ) -> None:
        super().__init__(features, categorical, chunk_records)
        self.files = files

    def __iter__(self) -> Iterator[Captured]:
        chunk = _Chunk()
        for where, line in _lines(self.files):
            self.records += 1
            chunk.add(where, line, self._skipped)
            # Rows count too: one record of a batch request can hold thousands of rows.
            if chunk.records == self.chunk_records or len(chunk.rows) >= self.chunk_records:
                yield self._finish(chunk)
                chunk = _Chunk()
        if chunk.records:
            yield self._finish(chunk)
        self._skipped.report()

    def _finish(self, chunk: _Chunk) -> Captured:
        captured = chunk.parse(self.features, self.categorical, self._skipped, self.rows)
        self.rows += len(captured.features)
        return captured


class _Chunk:
    """The records of one chunk, parsed as far as the JSON; `parse` makes them frames."""

    def __init__(self) -> None:
        self.records = 0
        self.malformed = 0
        self.rows: list[str] = []
        self.owners: list[int] = []
        self.predictions: list[str | None] = []
        self.single: list[bool] = []
        self.places: list[str] = []
        self.ids: list[str] = []
        self.times: list[str] = []

    def add(self, where: str, line: str, skipped: _Skipped) -> None:
        self.records += 1
        try:
            record = json.loads(line)
            capture = record["captureData"]
            meta = record["eventMetadata"]
            payload = [r for r in _decoded(capture["endpointInput"]).splitlines() if r.strip()]
            output = capture.get("endpointOutput")
            answers = [r for r in _decoded(output).splitlines() if r.strip()] if output else []
            identity = meta.get("inferenceId") or meta["eventId"]
            moment = meta["inferenceTime"]
            if not isinstance(identity, str) or not isinstance(moment, str):
                raise TypeError("eventId/inferenceTime are not strings")
        except _RECORD_ERRORS as err:
            self.malformed += 1
            skipped.add(where, f"{type(err).__name__}: {err}")
            return
        if not payload:
            self.malformed += 1
            skipped.add(where, "empty endpointInput")
            return
        self.owners.extend([len(self.ids)] * len(payload))
        self.ids.append(identity)
        self.times.append(moment)
        self.places.append(where)
        self.rows.extend(payload)
        self.single.extend([len(payload) == 1] * len(payload))
        # An output row belongs to an input row only when the endpoint answered row for row.
        if len(answers) == len(payload):
            self.predictions.extend(_first_field(a) for a in answers)
        else:
            self.predictions.extend([None] * len(payload))

    def parse(
        self, features: Sequence[str], categorical: Iterable[str], skipped: _Skipped, first: int
    ) -> Captured:
        """Typed frames of the chunk's valid records, indexed from row number `first`."""
        rows, owners, times, places = self.rows, self.owners, self.times, self.places
        width = len(features)
        bad = {owner for owner, row in zip(owners, rows, strict=True) if _width(row) != width}
        for owner in sorted(bad):
            skipped.add(places[owner], f"a payload row does not have {width} fields")
        moments = pd.to_datetime(
            pd.Series(times, dtype=object), utc=True, errors="coerce", format="ISO8601"
        )
        for owner in map(int, moments.index[moments.isna()]):
            if owner not in bad:
                bad.add(owner)
                skipped.add(places[owner], f"inferenceTime {times[owner]!r} is not an ISO time")
        self.malformed += len(bad)

        owner_of = np.asarray(owners, dtype=np.int64)
        keep = ~np.isin(owner_of, np.fromiter(bad, dtype=np.int64, count=len(bad)))
        kept = owner_of[keep]
        index = pd.RangeIndex(first, first + len(kept))
        events = pd.DataFrame(
            {
                "inference_id": np.asarray(self.ids, dtype=object)[kept],
                "inference_time": moments.iloc[kept].set_axis(index),
                "prediction": np.asarray(self.predictions, dtype=object)[keep],
                "single_row": np.asarray(self.single, dtype=bool)[keep],
            },
            index=index,
        )
        kept_rows = "\n".join(row for row, k in zip(rows, keep.tolist(), strict=True) if k)
        # pandas' C reader splits the rows far faster than a CSV reader per row in Python.
        frame = (
            pd.read_csv(
                io.StringIO(kept_rows),
                header=None,
                names=list(features),
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
            )
            if kept_rows
            else pd.DataFrame(columns=list(features), dtype=object)
        )
        frame.index = index
        return Captured(
            features=typed(frame, categorical),
            events=events,
            records=self.records,
            malformed=self.malformed,
        )


def batch_outputs(folder: Path) -> list[tuple[Path, datetime]]:
    """Every batch output file (`*.out`) under folder, in path order, with the moment its object
    was written: the LastModified the stage step recorded (sources.OBJECTS_FILE), or the file's
    own modification time for a file that record does not list (a folder filled by hand)."""
    record = folder / OBJECTS_FILE
    written = json.loads(record.read_text()) if record.is_file() else {}
    found = []
    for path in sorted(folder.rglob(f"*{BATCH_OUTPUT}")):
        moment = written.get(path.relative_to(folder).as_posix())
        found.append(
            (
                path,
                datetime.fromisoformat(moment)
                if moment
                else datetime.fromtimestamp(path.stat().st_mtime, UTC),
            )
        )
    return found


class BatchStream(_Stream):
    """A batch environment's transform output as a stream of `Captured` chunks, as
    `CaptureStream` streams capture: each chunk closed at `chunk_records` lines, so memory holds
    one chunk. A record is a line, `id,<features...>,<prediction>`; a line of another width, or
    with no id, is malformed (counted, skipped, the first few logged). Events: inference_id the
    line's id, inference_time its object's moment, prediction its last field (None when empty),
    single_row true (a line is scored and labelled on its own)."""

    KIND = "batch output"

    def __init__(
        self,
        outputs: Iterable[tuple[Path, datetime]],
        features: Sequence[str],
        categorical: Iterable[str] = (),
        chunk_records: int = CHUNK_RECORDS,
    ) -> None:
        super().__init__(features, categorical, chunk_records)
        self.outputs = outputs

    def __iter__(self) -> Iterator[Captured]:
        lines: list[str] = []
        places: list[str] = []
        times: list[datetime] = []
        for path, moment in self.outputs:
            for where, line in _lines([path]):
                self.records += 1
                lines.append(line.rstrip("\r\n"))
                places.append(where)
                times.append(moment)
                if len(lines) == self.chunk_records:
                    yield self._parse(lines, places, times)
                    lines, places, times = [], [], []
        if lines:
            yield self._parse(lines, places, times)
        self._skipped.report()

    def _parse(self, lines: list[str], places: list[str], times: list[datetime]) -> Captured:
        width = len(self.features) + 2
        keep = [_width(line) == width for line in lines]
        for where, ok in zip(places, keep, strict=True):
            if not ok:
                self._skipped.add(where, f"a line does not have {width} fields (id, "
                                  f"{width - 2} payload columns, prediction)")  # fmt: skip
        kept = "\n".join(line for line, ok in zip(lines, keep, strict=True) if ok)
        frame = (
            pd.read_csv(
                io.StringIO(kept),
                header=None,
                names=list(range(width)),
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
            )
            if kept
            else pd.DataFrame(columns=list(range(width)), dtype=object)
        )
        moments = pd.Series(
            [t for t, ok in zip(times, keep, strict=True) if ok], dtype="datetime64[ns, UTC]"
        )
        # Plain comparisons on the fields as read, no pandas `.str` call: one new string per row
        # and chunk left the allocator's memory growing with the window (about 0.4 GB more at
        # 3M lines), where comparisons keep it flat.
        ids = frame[0].to_numpy(dtype=object)
        named = ids != ""
        kept_places = [p for p, ok in zip(places, keep, strict=True) if ok]
        for where, ok in zip(kept_places, named.tolist(), strict=True):
            if not ok:
                self._skipped.add(where, "the line has no id (its first field)")
        frame, moments = frame[named], moments[named]
        index = pd.RangeIndex(self.rows, self.rows + len(frame))
        prediction = frame[width - 1].to_numpy(dtype=object)
        events = pd.DataFrame(
            {
                "inference_id": ids[named],
                "inference_time": moments.set_axis(index),
                "prediction": np.where(prediction == "", None, prediction),
                "single_row": np.ones(len(frame), dtype=bool),
            },
            index=index,
        )
        payload = frame[list(range(1, width - 1))].set_axis(self.features, axis=1)
        payload.index = index
        self.rows += len(frame)
        return Captured(
            features=typed(payload, self.categorical),
            events=events,
            records=len(lines),
            malformed=len(lines) - len(frame),
        )


def read_capture(
    files: Iterable[Path],
    features: Sequence[str],
    categorical: Iterable[str] = (),
    chunk_records: int = CHUNK_RECORDS,
) -> Captured:
    """The whole capture in one `Captured` (memory grows with it: the job streams
    `CaptureStream` instead; this is for small inputs and tests)."""
    stream = CaptureStream(files, features, categorical, chunk_records)
    chunks = list(stream)
    if not chunks:
        empty = _Chunk().parse(list(features), categorical, stream._skipped, 0)
        return Captured(empty.features, empty.events, 0, 0)
    return Captured(
        features=pd.concat([c.features for c in chunks]),
        events=pd.concat([c.events for c in chunks]),
        records=stream.records,
        malformed=stream.malformed,
    )


def typed(frame: pd.DataFrame, categorical: Iterable[str]) -> pd.DataFrame:
    """Numeric columns as float (unparseable or empty -> NaN, so they count as missing),
    categorical columns as str with empty fields as NaN."""
    kinds = set(categorical)
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        if column in kinds:
            text = values.astype(str).str.strip()
            out[column] = text.where(text != "")
        else:
            out[column] = pd.to_numeric(values, errors="coerce").astype(float)
    return out


def read_ground_truth(files: Iterable[Path], only: Collection[str] | None = None) -> pd.Series:
    """Labels by inference id (str -> str); a later record for the same id replaces an earlier one,
    so a corrected label uploaded afterwards wins. With `only`, the labels of those ids alone are
    kept (every line is still read and checked), so memory follows the ids, not the file."""
    skipped = _Skipped("ground-truth")
    labels: dict[str, str] = {}
    for where, line in _lines(files):
        try:
            record = json.loads(line)
            identity = record["eventMetadata"]["eventId"]
            truth = record["groundTruthData"]
            value = _decoded(truth)
            if str(truth.get("encoding", "CSV")).upper() == "JSON":
                value = str(json.loads(value))
            if not isinstance(identity, str) or not value.strip():
                raise ValueError("eventId or label is empty")
        except _RECORD_ERRORS as err:
            skipped.add(where, f"{type(err).__name__}: {err}")
            continue
        if only is None or identity in only:
            labels[identity] = value.strip()
    skipped.report()
    return pd.Series(labels, dtype=object, name="label")
