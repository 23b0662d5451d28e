"""Load the sessions table from CSV, Parquet or SQLite, by path or URL, and deduplicate it.

Accepted sources:

- a plain path or ``file://`` URL to a ``.csv``, ``.parquet`` or SQLite file;
- an ``http(s)://`` URL to any of those (downloaded into memory, or a temp file for SQLite);
- an ``s3://bucket/key`` URI to any of those (settings: ``contract.storage``);
- ``sqlite:///relative/to.db?table=sessions`` or ``sqlite:////absolute/to.db?table=sessions``
  (SQLAlchemy's convention), or any SQLite path or URL plus ``table=`` (``--table``);
- a directory or an ``s3://`` prefix written by ``python -m training collect`` (Parquet parts
  and ``_collect.json``: ``training.dataset``).

The format is recognised by the file's magic bytes (``PAR1``, ``SQLite format 3``), falling back
to CSV. The sha256 recorded in the manifest is that of the source bytes as read (of a collected
dataset: its parts' bytes, one after another).

A table with an ``event_time`` column (a collected dataset has one) keeps it, as UTC times:
training then splits by time (``training.split``). Any other extra column is dropped.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import sqlite3
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from contract.parsing import parse_bool
from contract.schema import FEATURE_COLUMNS, LABEL_COLUMN
from contract.storage import S3Options, StorageError, Store
from training.dataset import TIME_COLUMN, CollectSummary, DatasetError, read_dataset, read_summary

logger = logging.getLogger(__name__)

__all__ = ["DataError", "LoadedData", "deduplicate", "load_sessions", "split_features_label"]

Format = Literal["csv", "parquet", "sqlite", "collected"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PARQUET_MAGIC = b"PAR1"
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BOOL_COLUMNS = ("Weekend", LABEL_COLUMN)
_HTTP_TIMEOUT_S = 60.0


class DataError(Exception):
    """The data source cannot be read or does not hold the dataset's columns."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"data source {source!r}: {reason}")


@dataclass(frozen=True)
class LoadedData:
    """The raw table (18 columns, booleans normalised, and ``event_time`` when the source has
    it) and where it came from."""

    frame: pd.DataFrame
    uri: str
    sha256: str
    format: Format
    source: CollectSummary | None = None
    """The summary of a collected dataset (its topics, range and counts); None for a file."""

    @property
    def has_event_times(self) -> bool:
        return TIME_COLUMN in self.frame.columns


def load_sessions(
    uri: str, table: str | None = None, require_label: bool = True, store: Store | None = None
) -> LoadedData:
    """Read the sessions table from ``uri`` (see the module docstring for the forms); with
    ``require_label=False`` a table without ``Revenue`` is accepted too (new, unlabelled data)."""
    parsed = urllib.parse.urlsplit(uri)
    scheme = parsed.scheme.lower()
    if scheme == "sqlite":
        query_table = urllib.parse.parse_qs(parsed.query).get("table", [None])[0]
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute.db
        path = Path(urllib.parse.unquote(parsed.path)[1:])
        raw = _read_path(uri, path)
        return _finish(uri, raw, "sqlite", table or query_table, path, require_label)
    local: Path | None
    if scheme in ("http", "https"):
        local, raw = None, _download(uri)
    elif scheme == "s3":
        store = store or Store(S3Options.from_environ())
        try:
            local, raw = None, store.read_bytes(uri)
        except StorageError as exc:
            collected = (
                _load_collected(uri, store, require_label) if exc.problem == "not_found" else None
            )
            if collected is None:
                raise DataError(uri, str(exc)) from exc
            return collected
    elif scheme in ("file", ""):
        local = Path(urllib.request.url2pathname(parsed.path)) if scheme else Path(uri)
        if local.is_dir():
            collected = _load_collected(str(local), store or Store(), require_label)
            if collected is None:
                raise DataError(
                    uri,
                    "a directory without _collect.json: pass a data file, or a directory "
                    "written by python -m training collect",
                )
            return collected
        raw = _read_path(uri, local)
    else:
        raise DataError(
            uri, f"unsupported scheme {scheme!r} (use a path, file://, http(s)://, s3://)"
        )
    return _finish(uri, raw, _sniff_format(raw), table, local, require_label)


def _load_collected(uri: str, store: Store, require_label: bool) -> LoadedData | None:
    """The dataset ``python -m training collect`` wrote at ``uri``; None when there is none."""
    try:
        summary = read_summary(uri, store)
        if summary is None:
            return None
        frame, digest = read_dataset(uri, store, summary)
    except DatasetError as exc:
        raise DataError(uri, exc.reason) from exc
    if frame.empty:
        raise DataError(
            uri,
            f"the collected dataset holds no rows (range {summary.range_from}..{summary.range_to}"
            f" of {summary.input_topic}; counts {summary.counts}): collect a range whose "
            "sessions have their outcomes",
        )
    frame = _normalise(uri, frame, require_label or LABEL_COLUMN in frame.columns)
    logger.info(
        "loaded uri=%s format=collected parts=%d rows=%d sha256=%s",
        uri,
        len(summary.parts),
        len(frame),
        digest,
    )
    return LoadedData(frame=frame, uri=uri, sha256=digest, format="collected", source=summary)


def _read_path(uri: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(uri, f"cannot read {path}: {exc.strerror or exc}") from exc


def _download(uri: str) -> bytes:
    logger.info("downloading url=%s", uri)
    try:
        with urllib.request.urlopen(uri, timeout=_HTTP_TIMEOUT_S) as response:
            body: bytes = response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DataError(uri, f"download failed: {exc}") from exc
    return body


def _sniff_format(raw: bytes) -> Format:
    if raw.startswith(_SQLITE_MAGIC):
        return "sqlite"
    if raw.startswith(_PARQUET_MAGIC) and raw.endswith(_PARQUET_MAGIC):
        return "parquet"
    return "csv"


def _finish(
    uri: str,
    raw: bytes,
    fmt: Format,
    table: str | None,
    local: Path | None,
    require_label: bool = True,
) -> LoadedData:
    digest = hashlib.sha256(raw).hexdigest()
    try:
        if fmt == "csv":
            frame = pd.read_csv(io.BytesIO(raw))
        elif fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(raw))
        else:
            frame = _read_sqlite(uri, raw, table, local)
    except DataError:
        raise
    except (ValueError, OSError, sqlite3.Error, pd.errors.ParserError) as exc:
        raise DataError(uri, f"cannot parse as {fmt}: {exc}") from exc
    if frame.empty:
        raise DataError(uri, "the table holds no rows")
    frame = _normalise(uri, frame, require_label or LABEL_COLUMN in frame.columns)
    logger.info("loaded uri=%s format=%s rows=%d sha256=%s", uri, fmt, len(frame), digest)
    return LoadedData(frame=frame, uri=uri, sha256=digest, format=fmt)


def _read_sqlite(uri: str, raw: bytes, table: str | None, local: Path | None) -> pd.DataFrame:
    if local is None:  # downloaded: sqlite3 needs a file
        with tempfile.NamedTemporaryFile(suffix=".sqlite") as handle:
            handle.write(raw)
            handle.flush()
            return _query_sqlite(uri, Path(handle.name), table)
    return _query_sqlite(uri, local, table)


def _query_sqlite(uri: str, path: Path, table: str | None) -> pd.DataFrame:
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        if table is None:
            names = [
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            if len(names) != 1:
                raise DataError(
                    uri, f"SQLite file has tables {names}; name one with ?table= or --table"
                )
            table = names[0]
        if not _TABLE_NAME.match(table):
            raise DataError(uri, f"table name {table!r} is not a plain identifier")
        # The name is checked above; identifiers cannot be bound as parameters.
        return pd.read_sql_query(f'SELECT * FROM "{table}"', conn)


def _normalise(uri: str, frame: pd.DataFrame, with_label: bool = True) -> pd.DataFrame:
    """Check the columns and turn boolean columns stored as text or 0/1 into real booleans."""
    expected = [*FEATURE_COLUMNS, LABEL_COLUMN] if with_label else list(FEATURE_COLUMNS)
    missing = [column for column in expected if column not in frame.columns]
    if missing:
        raise DataError(uri, f"missing columns {missing}")
    if TIME_COLUMN in frame.columns:
        expected.append(TIME_COLUMN)
    frame = frame.loc[:, expected].copy()
    for column in _BOOL_COLUMNS:
        if column in frame.columns:
            frame[column] = _to_bool(uri, column, frame[column])
    if TIME_COLUMN in frame.columns:
        frame[TIME_COLUMN] = _to_times(uri, frame[TIME_COLUMN])
    return frame


def _to_times(uri: str, values: pd.Series) -> pd.Series:
    """``event_time`` as UTC times: a datetime column, or ISO 8601 text with an offset."""
    try:
        times = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataError(
            uri, f"column {TIME_COLUMN} holds values that are not times: {exc}"
        ) from exc
    if times.isna().any():
        raise DataError(uri, f"column {TIME_COLUMN} has {int(times.isna().sum())} empty values")
    return times


def _to_bool(uri: str, column: str, values: pd.Series) -> pd.Series:
    if values.dtype == bool:
        return values
    if values.isna().any():
        raise DataError(uri, f"column {column} has {int(values.isna().sum())} empty values")
    parsed = [parse_bool(value) for value in values]
    unknown = sorted(
        {str(value) for value, flag in zip(values, parsed, strict=True) if flag is None}
    )
    if unknown:
        raise DataError(uri, f"column {column} has non-boolean values {unknown[:5]}")
    return pd.Series(parsed, index=values.index, dtype=bool)


def deduplicate(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop exact duplicate rows (all 18 columns equal, ``event_time`` not compared), keeping
    the first (with event times: the oldest); fresh index."""
    if TIME_COLUMN in frame.columns:
        frame = frame.sort_values(TIME_COLUMN, kind="stable")
    columns = [column for column in frame.columns if column != TIME_COLUMN]
    return frame.drop_duplicates(subset=columns, keep="first").reset_index(drop=True)


def split_features_label(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The raw feature frame (``FEATURE_COLUMNS``) and the 0/1 label."""
    return frame.loc[:, list(FEATURE_COLUMNS)], frame[LABEL_COLUMN].astype(int)
