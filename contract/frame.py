"""Between events and frames: validated events -> the raw DataFrame a pipeline takes, and back.

The raw frame has exactly `FEATURE_COLUMNS`, with the dtypes `pandas.read_csv` gives the dataset
file (`FRAME_DTYPES`), so serving and training feed the pipeline the same thing. Page counts are
float64, not int64: 14 dataset rows have them empty, and a nullable column must not change dtype
from one batch to the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any, Final

import numpy as np
import pandas as pd

from contract.errors import ContractViolation
from contract.parsing import is_missing, parse_bool
from contract.schema import (
    CATEGORICAL_COLUMNS,
    CODE_COLUMNS,
    COUNT_COLUMNS,
    DURATION_COLUMNS,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    RATE_COLUMNS,
    SessionEvent,
)

_FLOAT_COLUMNS: Final[tuple[str, ...]] = (
    *COUNT_COLUMNS,
    *DURATION_COLUMNS,
    *RATE_COLUMNS,
    "PageValues",
    "SpecialDay",
)

FRAME_DTYPES: Final[Mapping[str, str]] = {
    column: (
        "float64"
        if column in _FLOAT_COLUMNS
        else "int64"
        if column in CODE_COLUMNS
        else "bool"
        if column == "Weekend"
        else "str"
    )
    for column in FEATURE_COLUMNS
}
"""Dtype of each raw-frame column ("str" is pandas' default string dtype)."""

_FEATURES = attrgetter(*FEATURE_COLUMNS)
_NUMPY_DTYPES: Final[Mapping[str, type]] = {
    "float64": np.float64,
    "int64": np.int64,
    "bool": np.bool_,
}


def feature_values(event: SessionEvent) -> tuple[Any, ...]:
    """The event's `FEATURE_COLUMNS` values, in order: one row of `row_columns`' input (a tuple
    holds a session's features in much less memory than the event itself)."""
    values: tuple[Any, ...] = _FEATURES(event)
    return values


def event_columns(events: Sequence[SessionEvent]) -> dict[str, Any]:
    """The raw columns of `events`: numpy arrays of `FRAME_DTYPES` (None -> NaN), and tuples of
    str for `Month` and `VisitorType`. What the fast scoring path reads, and what
    `events_to_frame` is made of."""
    return row_columns(list(map(_FEATURES, events)))


def row_columns(rows: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    """`event_columns` of events given as their `feature_values`."""
    columns: dict[str, Any] = {}
    values_by_column = zip(*rows, strict=True) if rows else ((),) * len(FEATURE_COLUMNS)
    for name, values in zip(FEATURE_COLUMNS, values_by_column, strict=True):
        dtype = FRAME_DTYPES[name]
        # numpy reads None as NaN in a float64 array.
        columns[name] = tuple(values) if dtype == "str" else np.array(values, _NUMPY_DTYPES[dtype])
    return columns


def select_rows(columns: Mapping[str, Any], rows: Sequence[int]) -> dict[str, Any]:
    """The raw columns of the given rows only, in their order."""
    index = np.asarray(rows, dtype=np.intp)
    return {
        name: tuple(values[i] for i in rows) if isinstance(values, tuple) else values[index]
        for name, values in columns.items()
    }


def columns_to_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    """The raw frame of `event_columns` output: `FEATURE_COLUMNS`, dtypes `FRAME_DTYPES`."""
    data = {
        name: pd.array(list(columns[name]), dtype="str")
        if FRAME_DTYPES[name] == "str"
        else columns[name]
        for name in FEATURE_COLUMNS
    }
    return pd.DataFrame(data, columns=list(FEATURE_COLUMNS))


def events_to_frame(events: Sequence[SessionEvent]) -> pd.DataFrame:
    """One row per event, columns exactly `FEATURE_COLUMNS`, dtypes `FRAME_DTYPES` (None -> NaN)."""
    return columns_to_frame(event_columns(events))


def _to_bool(column: str, value: object) -> bool:
    parsed = parse_bool(value)
    if parsed is None:
        raise ContractViolation(column, value, "bool_parsing", "not a recognisable boolean")
    return parsed


def _to_int(column: str, value: object) -> int:
    number = float(str(value)) if isinstance(value, str) else value
    if isinstance(number, int | np.integer) and not isinstance(number, bool | np.bool_):
        return int(number)
    if isinstance(number, float | np.floating) and float(number).is_integer():
        return int(number)
    raise ContractViolation(column, value, "int_parsing", "not an integral number")


def _to_float(column: str, value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ContractViolation(column, value, "float_parsing", "not a number") from exc


def dataset_row_to_event_dict(row: Mapping[Any, object], session_id: str) -> dict[str, object]:
    """Turn one raw dataset row (as pandas reads the CSV) into a dict that `SessionEvent` accepts.

    Empty numeric fields (NaN) become None, integral floats become ints, "TRUE"/"FALSE" strings
    become booleans, numpy scalars become Python ones; `Revenue` is dropped. Values the contract
    rejects (e.g. an out-of-range rate) are passed through so that validation reports them.
    """
    event: dict[str, object] = {"session_id": session_id}
    for column in FEATURE_COLUMNS:
        if column not in row:
            raise ContractViolation(column, None, "missing", "the dataset row lacks this column")
        value = row[column]
        if is_missing(value):
            event[column] = None
        elif column in COUNT_COLUMNS or column in CODE_COLUMNS:
            event[column] = _to_int(column, value)
        elif column in _FLOAT_COLUMNS:
            event[column] = _to_float(column, value)
        elif column == "Weekend":
            event[column] = _to_bool(column, value)
        elif column in CATEGORICAL_COLUMNS:
            event[column] = str(value).strip()
    event.pop(LABEL_COLUMN, None)
    return event
