"""Between events and frames: validated events -> the raw DataFrame a pipeline takes, and back.

The raw frame has exactly `FEATURE_COLUMNS`, with the dtypes `pandas.read_csv` gives the dataset
file (`FRAME_DTYPES`), so serving and training feed the pipeline the same thing. Page counts are
float64, not int64: 14 dataset rows have them empty, and a nullable column must not change dtype
from one batch to the next.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from contract.errors import ContractViolation
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

_TRUE_STRINGS = frozenset({"true", "1", "yes", "t", "y"})
_FALSE_STRINGS = frozenset({"false", "0", "no", "f", "n"})


def events_to_frame(events: Sequence[SessionEvent]) -> pd.DataFrame:
    """One row per event, columns exactly `FEATURE_COLUMNS`, dtypes `FRAME_DTYPES` (None -> NaN)."""
    columns: dict[str, Any] = {}
    for column in FEATURE_COLUMNS:
        values = [getattr(event, column) for event in events]
        dtype = FRAME_DTYPES[column]
        if dtype == "float64":
            columns[column] = np.array(
                [np.nan if value is None else value for value in values], dtype=np.float64
            )
        elif dtype == "str":
            columns[column] = pd.array(values, dtype="str")
        else:
            columns[column] = np.array(values, dtype=dtype)
    return pd.DataFrame(columns, columns=list(FEATURE_COLUMNS))


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _to_bool(column: str, value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_STRINGS:
            return True
        if text in _FALSE_STRINGS:
            return False
    if isinstance(value, int | np.integer) and int(value) in (0, 1):
        return bool(value)
    raise ContractViolation(column, value, "bool_parsing", "not a recognisable boolean")


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
        if _is_missing(value):
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
