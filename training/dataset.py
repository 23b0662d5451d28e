"""A collected dataset: Parquet parts and ``_collect.json``, in a directory or an ``s3://`` prefix.

``python -m training collect`` writes it; ``python -m training --data <dir or prefix>`` reads it
as it is (``training.data.load_sessions``). Layout::

    <out>/part-00000.parquet     at most PART_ROWS rows each, sorted by event_time, session_id
    <out>/part-00001.parquet
    <out>/_collect.json          the summary: range, topics, counts by reason, and the parts
                                 with their row counts and sha256; written last

Columns: ``session_id``, ``event_time`` (timestamp, ms, UTC: the record time of the session's
event), the contract's 17 ``FEATURE_COLUMNS`` with the dtypes of ``contract.frame.FRAME_DTYPES``
and ``Revenue`` (bool). Parts are named by their number, rows are sorted within each part, and
no wall-clock time is written into a part: the same rows make the same bytes.

A local dataset is written into a hidden ``.tmp-*`` directory beside ``<out>`` and renamed into
place at the end, so it is whole or absent. In a bucket each part is uploaded as it is written
(the local disk holds one part at a time) and ``_collect.json`` last: a prefix without it is an
unfinished collect, and the reader refuses it. An existing dataset is never written over.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, ValidationError

from contract.frame import FRAME_DTYPES, row_columns
from contract.schema import FEATURE_COLUMNS, LABEL_COLUMN
from contract.storage import StorageError, Store, is_s3, join, parse_location
from training.label import Row

logger = logging.getLogger(__name__)

__all__ = [
    "PART_ROWS",
    "SESSION_COLUMN",
    "SUMMARY_NAME",
    "TIME_COLUMN",
    "CollectSummary",
    "DatasetError",
    "PartInfo",
    "PartWriter",
    "read_dataset",
]

SUMMARY_NAME: Final = "_collect.json"
TIME_COLUMN: Final = "event_time"
SESSION_COLUMN: Final = "session_id"
PART_ROWS: Final = 50_000
FORMAT_VERSION: Final = 1
_ARROW_TYPES: Final = {
    "float64": pa.float64(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "str": pa.string(),
}
SCHEMA: Final = pa.schema(
    [
        pa.field(SESSION_COLUMN, pa.string(), nullable=False),
        pa.field(TIME_COLUMN, pa.timestamp("ms", tz="UTC"), nullable=False),
        *(pa.field(name, _ARROW_TYPES[FRAME_DTYPES[name]]) for name in FEATURE_COLUMNS),
        pa.field(LABEL_COLUMN, pa.bool_(), nullable=False),
    ]
)
"""The parts' columns. No pandas metadata is stored: a part's bytes depend on its rows only."""


class DatasetError(Exception):
    """A collected dataset that cannot be written or read; says where and why."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class PartInfo(_Model):
    name: str
    rows: int
    sha256: str


class CollectSummary(_Model):
    """``_collect.json``."""

    format_version: int = FORMAT_VERSION
    input_topic: str
    outcome_topic: str
    range_from: str
    range_to: str
    outcome_window_seconds: float
    missing_outcome: str
    collected_at: str
    rows: int
    positives: int
    event_time_min: str | None
    event_time_max: str | None
    counts: dict[str, Any]
    """``training.label.Tally.as_dict``: read, written, and left out by reason."""
    parts: list[PartInfo]


def _local(uri: str) -> Path:
    location = parse_location(uri)
    if not isinstance(location, Path):
        raise DatasetError(uri, "not a local directory")
    return location


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def rows_table(rows: Iterable[Row]) -> pa.Table:
    """The rows as a table of ``SCHEMA``, sorted by event time, then session id."""
    ordered = sorted(rows, key=lambda row: (row.time_ms, row.session_id))
    columns = row_columns([row.features for row in ordered])
    arrays = [
        pa.array([row.session_id for row in ordered], pa.string()),
        pa.array([row.time_ms for row in ordered], pa.timestamp("ms", tz="UTC")),
        *(pa.array(columns[name], SCHEMA.field(name).type) for name in FEATURE_COLUMNS),
        pa.array([row.revenue for row in ordered], pa.bool_()),
    ]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


class PartWriter:
    """Rows in, Parquet parts out, ``part_rows`` at a time; ``close`` writes the summary."""

    def __init__(self, out: str, store: Store, part_rows: int = PART_ROWS) -> None:
        if part_rows < 1:
            raise ValueError("part_rows must be >= 1")
        self.out = out
        self.store = store
        self.part_rows = part_rows
        self.parts: list[PartInfo] = []
        self._rows: list[Row] = []
        self._s3 = is_s3(out)
        self._check_new()
        if self._s3:
            self._staging = Path(tempfile.mkdtemp(prefix="collect-"))
        else:
            target = _local(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            self._staging = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))

    def _check_new(self) -> None:
        if self._s3:
            if not self.store.is_empty_prefix(self.out):
                raise DatasetError(self.out, "holds objects already; collect into a new prefix")
            return
        target = _local(self.out)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise DatasetError(self.out, "exists and is not empty; collect into a new directory")

    def add(self, rows: Iterable[Row]) -> None:
        self._rows.extend(rows)
        while len(self._rows) >= self.part_rows:
            chunk, self._rows = self._rows[: self.part_rows], self._rows[self.part_rows :]
            self._write(chunk)

    def _write(self, rows: list[Row]) -> None:
        name = part_name(len(self.parts))
        path = self._staging / name
        pq.write_table(rows_table(rows), path, compression="zstd")
        data = path.read_bytes()
        self.parts.append(
            PartInfo(name=name, rows=len(rows), sha256=hashlib.sha256(data).hexdigest())
        )
        if self._s3:
            self.store.put_file(path, join(self.out, name))
            path.unlink()
        logger.info("part written name=%s rows=%d bytes=%d", name, len(rows), len(data))

    def flush(self) -> None:
        """Write the rows held into a last part (``parts`` is then complete)."""
        if self._rows:
            self._write(self._rows)
            self._rows = []

    def close(self, summary: CollectSummary) -> None:
        """Write what is left and the summary; the dataset appears whole."""
        self.flush()
        path = self._staging / SUMMARY_NAME
        path.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
        if self._s3:
            self.store.put_file(path, join(self.out, SUMMARY_NAME))
            shutil.rmtree(self._staging, ignore_errors=True)
            return
        target = _local(self.out)
        if target.is_dir():
            target.rmdir()  # empty (checked at the start); a file appearing meanwhile fails here
        self._staging.rename(target)

    def abort(self) -> None:
        shutil.rmtree(self._staging, ignore_errors=True)


def read_summary(uri: str, store: Store) -> CollectSummary | None:
    """The summary of the dataset at ``uri``, or None when ``uri`` is not a collected dataset."""
    try:
        raw = store.read_bytes(join(uri, SUMMARY_NAME))
    except StorageError as exc:
        if exc.problem == "not_found":
            return None
        raise DatasetError(uri, str(exc)) from exc
    try:
        return CollectSummary.model_validate_json(raw)
    except ValidationError as exc:
        raise DatasetError(uri, f"{SUMMARY_NAME} is not a collect summary: {exc}") from None


def read_dataset(uri: str, store: Store, summary: CollectSummary) -> tuple[pd.DataFrame, str]:
    """Every part the summary lists, in order, as one frame; and the sha256 of the parts'
    bytes one after another. A part whose bytes changed since it was written is refused."""
    digest = hashlib.sha256()
    frames: list[pd.DataFrame] = []
    for part in summary.parts:
        try:
            data = store.read_bytes(join(uri, part.name))
        except StorageError as exc:
            raise DatasetError(uri, f"part {part.name}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != part.sha256:
            raise DatasetError(uri, f"part {part.name} differs from its sha256 in {SUMMARY_NAME}")
        digest.update(data)
        frames.append(pq.read_table(io.BytesIO(data)).to_pandas())
    if not frames:
        return SCHEMA.empty_table().to_pandas(), digest.hexdigest()
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return frame, digest.hexdigest()
