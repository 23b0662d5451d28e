"""Reading raw values in any of their spellings: numbers, booleans, months, visitor types.

Raw data comes from CSV files, SQLite and parquet exports as well as from events, so a number
may be a string, a boolean "TRUE" or 1, a month "jun" or 6. These are the only readers of such
spellings; cleaning and the dataset-row conversion both use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

from contract.schema import MONTHS, VISITOR_TYPES

MONTH_SPELLINGS: Final[Mapping[str, str]] = {
    **{name.lower()[:3]: name for name in MONTHS},
    **{name.lower(): name for name in MONTHS},
    **{str(number): name for number, name in enumerate(MONTHS, start=1)},
    **{f"{number:02d}": name for number, name in enumerate(MONTHS, start=1)},
    "sept": "Sep",
    "january": "Jan",
    "february": "Feb",
    "march": "Mar",
    "april": "Apr",
    "july": "Jul",
    "august": "Aug",
    "september": "Sep",
    "october": "Oct",
    "november": "Nov",
    "december": "Dec",
}
"""Lower-cased spellings of a month -> the dataset's spelling."""
VISITOR_SPELLINGS: Final[Mapping[str, str]] = {name.lower(): name for name in VISITOR_TYPES}
TRUE_WORDS: Final[frozenset[str]] = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS: Final[frozenset[str]] = frozenset({"false", "f", "no", "n", "0"})


def normalised_text(value: object) -> str:
    """Lower-cased, stripped text of a value; integral numbers read like integers ("6.0" -> "6")."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    text = str(value).strip().lower()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text


def is_missing(value: object) -> bool:
    """None, NaN or pandas' NA."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def parse_bool(value: object) -> bool | None:
    """A boolean in any of its spellings (True, 1, "TRUE", "yes", "1.0"), else None."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if is_missing(value):
        return None
    text = normalised_text(value)
    return True if text in TRUE_WORDS else False if text in FALSE_WORDS else None


def is_bool_array(values: Any) -> bool:
    """Whether ``values`` hold booleans: a numpy bool array, or a pandas boolean array/Series."""
    if isinstance(values, np.ndarray):  # the scorers' columns: no pandas dtype machinery
        return bool(values.dtype.kind == "b")
    return hasattr(values, "dtype") and bool(pd.api.types.is_bool_dtype(values))


def to_number(values: Any) -> np.ndarray:
    """Any spelling of numbers -> float64 array; what does not parse (or is infinite) -> NaN."""
    kind = getattr(values, "dtype", None)
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        numbers = values.astype(np.float64, copy=False)  # the scorers' columns: no pandas checks
    elif kind is not None and (
        pd.api.types.is_bool_dtype(kind) or pd.api.types.is_numeric_dtype(kind)
    ):
        numbers = (
            values.to_numpy(dtype=np.float64, na_value=np.nan)
            if isinstance(values, pd.Series)
            else np.asarray(values, dtype=np.float64)
        )
    else:
        texts = [
            float(v) if isinstance(v, bool | np.bool_) else v.strip() if isinstance(v, str) else v
            for v in values
        ]
        parsed = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")
        numbers = parsed.to_numpy(dtype=np.float64)
    return np.where(np.isfinite(numbers), numbers, np.nan)
