"""`SessionCleaner`: any raw session frame -> canonical dtypes, unknowns marked and imputed.

The raw frame may come from the CSV file, from `events_to_frame`, or from SQLite/parquet exports,
so numbers may arrive as strings, booleans as 0/1 or "TRUE"/"true", months in other spellings.
What the cleaner does, by column (columns it does not know are plain numeric):

- page counts, durations, rates, `PageValues`, `SpecialDay`: to float64; a value outside the
  column's range (a negative count or duration, which covers the `-1` sentinel; a rate or
  `SpecialDay` outside [0, 1]; a negative `PageValues`), an unparseable one, Infinity or an empty
  field is *unknown* (NaN) and then imputed with the column's median learned in `fit`;
- code columns: to int64; anything not a positive integer becomes 0, "unknown code", which the
  one-hot encoder maps to no known category;
- `Month`: to the dataset's spelling (`June`; "jun", "JUNE", 6 all work), else "Unknown";
- `VisitorType`: to one of the three values (case-insensitive), else "Other";
- `Weekend`: to bool; an unknown value gets the most frequent value seen in `fit`.

With `add_indicators`, two 0/1 columns record what was unknown before imputation:
`pages_unknown` (a page count or rate) and `durations_unknown` (a duration, the `-1` rows too).
Removing duplicate rows is a training-data step, not a transform, so it is not done here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from contract._sklearn import finish, names_out, to_frame
from contract.errors import ContractViolation
from contract.schema import (
    CODE_COLUMNS,
    COUNT_COLUMNS,
    DURATION_COLUMNS,
    LABEL_COLUMN,
    MONTHS,
    RATE_COLUMNS,
    VISITOR_TYPES,
)

logger = logging.getLogger(__name__)

Kind = Literal[
    "count", "duration", "rate", "non_negative", "code", "month", "visitor", "bool", "number"
]

_KINDS: Final[dict[str, Kind]] = {
    **dict.fromkeys(COUNT_COLUMNS, "count"),
    **dict.fromkeys(DURATION_COLUMNS, "duration"),
    **dict.fromkeys(RATE_COLUMNS, "rate"),
    "SpecialDay": "rate",
    "PageValues": "non_negative",
    **dict.fromkeys(CODE_COLUMNS, "code"),
    "Month": "month",
    "VisitorType": "visitor",
    "Weekend": "bool",
}
_NUMERIC_KINDS: Final[frozenset[str]] = frozenset(
    {"count", "duration", "rate", "non_negative", "number"}
)
INDICATOR_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "pages_unknown": (*COUNT_COLUMNS, *RATE_COLUMNS),
    "durations_unknown": DURATION_COLUMNS,
}
UNKNOWN_MONTH: Final[str] = "Unknown"
UNKNOWN_CODE: Final[int] = 0

_MONTH_LOOKUP: Final[dict[str, str]] = {
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
_VISITOR_LOOKUP: Final[dict[str, str]] = {name.lower(): name for name in VISITOR_TYPES}
_TRUE: Final[frozenset[str]] = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE: Final[frozenset[str]] = frozenset({"false", "f", "no", "n", "0", "0.0"})


def _text(value: object) -> str:
    """Lower-cased, stripped text of a value; integral numbers read like integers ("6.0" -> "6")."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    text = str(value).strip().lower()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def to_number(series: pd.Series) -> np.ndarray:
    """Any spelling of a number -> float64 array; what does not parse (or is infinite) -> NaN."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = [
            float(value) if isinstance(value, bool | np.bool_) else value
            for value in series.to_numpy(dtype=object)
        ]
        stripped = pd.Series(
            [value.strip() if isinstance(value, str) else value for value in values], dtype=object
        )
        numbers = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isfinite(numbers), numbers, np.nan)


def _clean_numeric(series: pd.Series, kind: Kind) -> np.ndarray:
    numbers = to_number(series)
    with np.errstate(invalid="ignore"):
        if kind == "count":
            valid = (numbers >= 0) & (numbers == np.floor(numbers))
        elif kind in ("duration", "non_negative"):
            valid = numbers >= 0
        elif kind == "rate":
            valid = (numbers >= 0) & (numbers <= 1)
        else:
            return numbers
    return np.where(valid, numbers, np.nan)


def _clean_code(series: pd.Series) -> np.ndarray:
    numbers = to_number(series)
    with np.errstate(invalid="ignore"):
        valid = (numbers >= 1) & (numbers == np.floor(numbers))
    return np.where(valid, numbers, UNKNOWN_CODE).astype(np.int64)


def _clean_lookup(series: pd.Series, lookup: dict[str, str], unknown: str) -> Any:
    canonical = frozenset(lookup.values())
    cleaned = [
        value
        if isinstance(value, str) and value in canonical
        else unknown
        if _is_missing(value)
        else lookup.get(_text(value), unknown)
        for value in series.to_numpy(dtype=object)
    ]
    return pd.array(cleaned, dtype="str")


def _bool_or_none(value: object) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if _is_missing(value):
        return None
    text = _text(value)
    return True if text in _TRUE else False if text in _FALSE else None


def to_bool(series: pd.Series) -> Any:
    """Booleans in any of their spellings -> a nullable boolean array (unknown -> <NA>)."""
    if pd.api.types.is_bool_dtype(series) and not series.isna().any():
        return pd.array(series.to_numpy(dtype=bool), dtype="boolean")
    return pd.array([_bool_or_none(v) for v in series.to_numpy(dtype=object)], dtype="boolean")


class SessionCleaner(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Coerce a raw session frame to canonical dtypes, mark unknown values, impute them.

    Parameters
    ----------
    columns:
        Raw columns to read; others in the input are ignored (`None`: read every column).
        The pipeline passes the columns its variant needs, so `no_page_values` never reads
        `PageValues`.
    add_indicators:
        Append `pages_unknown` / `durations_unknown` 0/1 columns (when their columns are read).
    """

    def __init__(self, columns: Sequence[str] | None = None, add_indicators: bool = True) -> None:
        self.columns = columns
        self.add_indicators = add_indicators

    def _select(self, X: Any) -> Any:
        if self.columns is None:
            return X
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"SessionCleaner(columns=...) needs a pandas DataFrame, got {type(X).__name__}"
            )
        missing = [column for column in self.columns if column not in X.columns]
        if missing:
            raise ValueError(f"input frame lacks the column(s) {missing}")
        return X.loc[:, list(self.columns)]

    def _kinds(self, names: Sequence[str]) -> dict[str, Kind]:
        return {name: _KINDS.get(name, "number") for name in names}

    def _clean(self, frame: pd.DataFrame) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Each column as an array of its canonical dtype, unknowns still missing; the masks."""
        if LABEL_COLUMN in frame.columns:
            raise ContractViolation(
                LABEL_COLUMN, None, "label_not_allowed", "the label is never an input"
            )
        cleaned: dict[str, Any] = {}
        for name, kind in self._kinds(list(frame.columns)).items():
            series = frame[name]
            if kind in _NUMERIC_KINDS:
                cleaned[name] = _clean_numeric(series, kind)
            elif kind == "code":
                cleaned[name] = _clean_code(series)
            elif kind == "month":
                cleaned[name] = _clean_lookup(series, _MONTH_LOOKUP, UNKNOWN_MONTH)
            elif kind == "visitor":
                cleaned[name] = _clean_lookup(series, _VISITOR_LOOKUP, "Other")
            else:
                cleaned[name] = to_bool(series)
        masks: dict[str, np.ndarray] = {}
        if self.add_indicators:
            for indicator, group in INDICATOR_GROUPS.items():
                present = [name for name in group if name in cleaned]
                if present:
                    masks[indicator] = np.any([np.isnan(cleaned[n]) for n in present], axis=0)
        return cleaned, masks

    def fit(self, X: Any, y: Any = None) -> SessionCleaner:
        """Learn the medians (numeric columns) and the most frequent `Weekend` for imputation."""
        frame = to_frame(self, self._select(X), reset=True)
        cleaned, masks = self._clean(frame)
        fill_values: dict[str, float | bool] = {}
        for name, kind in self._kinds(list(cleaned)).items():
            if kind in _NUMERIC_KINDS:
                known = cleaned[name][~np.isnan(cleaned[name])]
                fill_values[name] = float(np.median(known)) if known.size else 0.0
            elif kind == "bool":
                counts = pd.Series(cleaned[name]).value_counts()
                fill_values[name] = bool(counts.idxmax()) if len(counts) else False
        self.fill_values_ = fill_values
        self.indicators_ = list(masks)
        n_unknown = {name: int(mask.sum()) for name, mask in masks.items()}
        logger.debug("fitted SessionCleaner rows=%d unknown=%s", len(frame), n_unknown)
        return self

    def transform(self, X: Any) -> Any:
        """Clean `X`; the output keeps the input's columns, then the indicators."""
        check_is_fitted(self, "fill_values_")
        frame = to_frame(self, self._select(X), reset=False)
        cleaned, masks = self._clean(frame)
        for name, value in self.fill_values_.items():
            if isinstance(value, bool):
                cleaned[name] = cleaned[name].fillna(value).to_numpy(dtype=bool)
            else:
                cleaned[name] = np.where(np.isnan(cleaned[name]), value, cleaned[name])
        for name in self.indicators_:
            cleaned[name] = masks[name].astype(np.float64)
        out = pd.DataFrame(cleaned)
        out.index = frame.index
        return finish(self, out)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Input column names, then the indicator columns."""
        check_is_fitted(self, "fill_values_")
        return names_out(self, input_features, list(self.indicators_))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
