"""Loading the sessions table from CSV, Parquet, SQLite, file:// and http:// sources."""

from __future__ import annotations

import functools
import hashlib
import http.server
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from contract.schema import FEATURE_COLUMNS, LABEL_COLUMN
from training.data import DataError, deduplicate, load_sessions, split_features_label
from training.synthetic import generate_sessions

COLUMNS = [*FEATURE_COLUMNS, LABEL_COLUMN]


@pytest.fixture(scope="module")
def sessions() -> pd.DataFrame:
    return generate_sessions(300, seed=3)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_same_table(loaded: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(loaded.columns) == COLUMNS
    assert loaded[LABEL_COLUMN].dtype == bool
    assert loaded["Weekend"].dtype == bool
    pd.testing.assert_frame_equal(
        loaded.reset_index(drop=True),
        expected.reset_index(drop=True),
        check_dtype=False,
        check_exact=False,
        rtol=1e-12,
    )


def _write_sqlite(frame: pd.DataFrame, path: Path, table: str = "sessions") -> None:
    with sqlite3.connect(path) as conn:
        frame.to_sql(table, conn, index=False)
    conn.close()


def test_csv_by_plain_path(tmp_path: Path, sessions: pd.DataFrame) -> None:
    path = tmp_path / "sessions.csv"
    sessions.to_csv(path, index=False)
    loaded = load_sessions(str(path))
    assert loaded.format == "csv"
    assert loaded.sha256 == _sha256(path)
    _assert_same_table(loaded.frame, sessions)


def test_parquet_by_file_url(tmp_path: Path, sessions: pd.DataFrame) -> None:
    path = tmp_path / "sessions.parquet"
    sessions.to_parquet(path, index=False)
    loaded = load_sessions(path.as_uri())
    assert loaded.format == "parquet"
    assert loaded.sha256 == _sha256(path)
    _assert_same_table(loaded.frame, sessions)


def test_sqlite_url_with_table(tmp_path: Path, sessions: pd.DataFrame) -> None:
    path = tmp_path / "sessions.db"
    _write_sqlite(sessions, path)
    _write_sqlite(sessions.head(5), path, table="other")
    loaded = load_sessions(f"sqlite:///{path}?table=sessions")  # sqlite:////abs/path
    assert loaded.format == "sqlite"
    assert loaded.sha256 == _sha256(path)
    # SQLite stores booleans as 0/1; the loader turns them back into booleans.
    _assert_same_table(loaded.frame, sessions)


def test_sqlite_path_with_table_argument(tmp_path: Path, sessions: pd.DataFrame) -> None:
    path = tmp_path / "sessions.sqlite"
    _write_sqlite(sessions, path, table="visits")
    _write_sqlite(sessions.head(5), path, table="other")
    _assert_same_table(load_sessions(str(path), table="visits").frame, sessions)
    with pytest.raises(DataError, match="name one with"):
        load_sessions(str(path))  # two tables, none named
    with pytest.raises(DataError, match="not a plain identifier"):
        load_sessions(str(path), table='visits"; DROP TABLE visits; --')


def test_sqlite_single_table_needs_no_name(tmp_path: Path, sessions: pd.DataFrame) -> None:
    path = tmp_path / "only.db"
    _write_sqlite(sessions, path, table="anything")
    _assert_same_table(load_sessions(path.as_uri()).frame, sessions)


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A static file server on 127.0.0.1 serving ``tmp_path``."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_http_url_csv_and_sqlite(http_root: tuple[Path, str], sessions: pd.DataFrame) -> None:
    root, base = http_root
    sessions.to_csv(root / "sessions.csv", index=False)
    _write_sqlite(sessions, root / "sessions.db")
    loaded = load_sessions(f"{base}/sessions.csv")
    assert loaded.sha256 == _sha256(root / "sessions.csv")
    assert loaded.uri == f"{base}/sessions.csv"
    _assert_same_table(loaded.frame, sessions)
    _assert_same_table(load_sessions(f"{base}/sessions.db").frame, sessions)
    with pytest.raises(DataError, match="download failed"):
        load_sessions(f"{base}/missing.csv")


def test_text_booleans_are_normalised(tmp_path: Path, sessions: pd.DataFrame) -> None:
    text = sessions.assign(
        Weekend=sessions["Weekend"].map({True: "TRUE", False: "FALSE"}),
        Revenue=sessions["Revenue"].map({True: "true", False: "0"}),
    )
    path = tmp_path / "text.parquet"
    text.to_parquet(path, index=False)
    _assert_same_table(load_sessions(str(path)).frame, sessions)


def test_missing_column_and_bad_values_are_named(tmp_path: Path, sessions: pd.DataFrame) -> None:
    path = tmp_path / "short.csv"
    sessions.drop(columns=["ExitRates"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing columns \['ExitRates'\]"):
        load_sessions(str(path))
    bad = tmp_path / "bad.csv"
    sessions.assign(Revenue="maybe").to_csv(bad, index=False)
    with pytest.raises(DataError, match="Revenue has non-boolean values"):
        load_sessions(str(bad))
    with pytest.raises(DataError, match="cannot read"):
        load_sessions(str(tmp_path / "absent.csv"))
    with pytest.raises(DataError, match="unsupported scheme"):
        load_sessions("ftp://example.org/data.csv")


def test_deduplicate_and_split(sessions: pd.DataFrame) -> None:
    doubled = pd.concat([sessions, sessions.head(10)], ignore_index=True)
    unique = deduplicate(doubled)
    assert len(unique) == len(sessions.drop_duplicates())
    assert not unique.duplicated().any()
    assert list(unique.index) == list(range(len(unique)))
    X, y = split_features_label(unique)
    assert list(X.columns) == list(FEATURE_COLUMNS)
    assert set(y.unique()) <= {0, 1}
    assert int(y.sum()) == int(unique[LABEL_COLUMN].sum())
