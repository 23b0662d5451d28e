"""Cleaning: any raw session columns -> canonical dtypes, unknowns marked and imputed.

The functions here are the implementation; `SessionCleaner` is the scikit-learn adapter around
them, and the consumer's fast scoring path calls them on arrays built from validated events.

Raw columns may come from the CSV file, from events, or from SQLite/parquet exports, so numbers
may arrive as strings, booleans as 0/1 or "TRUE"/"true", months in other spellings. By column
(columns it does not know are plain numeric):

- page counts, durations, rates, `PageValues`, `SpecialDay`: to float64; a value outside the
  column's range (a negative count or duration, which covers the `-1` sentinel; a rate or
  `SpecialDay` outside [0, 1]; a negative `PageValues`), an unparseable one, Infinity or an empty
  field is *unknown* (NaN) and then imputed with the column's median learned in `fit`;
- code columns: to int64; anything not a positive integer becomes 0, "unknown code", which the
  one-hot encoder maps to no known category;
- `Month`: to the dataset's spelling (`June`; "jun", "JUNE", 6 all work), else "Unknown";
- `VisitorType`: to one of the three values (case-insensitive), else "Other";
- `Weekend`: to bool; an unknown value gets the most frequent value seen in `fit`.

With indicators, two 0/1 columns record what was unknown before imputation: `pages_unknown` (a
page count or rate) and `durations_unknown` (a duration, the `-1` rows too). Removing duplicate
rows is a training-data step, not a transform, so it is not done here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from contract._sklearn import finish, names_out, to_frame
from contract.errors import ContractViolation
from contract.parsing import (
    MONTH_SPELLINGS,
    VISITOR_SPELLINGS,
    is_missing,
    normalised_text,
    parse_bool,
    to_number,
)
from contract.schema import (
    CODE_COLUMNS,
    COUNT_COLUMNS,
    DURATION_COLUMNS,
    LABEL_COLUMN,
    RATE_COLUMNS,
)

logger = logging.getLogger(__name__)

Kind = Literal[
    "count", "duration", "rate", "non_negative", "code", "month", "visitor", "bool", "number"
]

KINDS: Final[Mapping[str, Kind]] = {
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
"""How each known column is cleaned; any other column is a plain number."""
NUMERIC_KINDS: Final[frozenset[str]] = frozenset(
    {"count", "duration", "rate", "non_negative", "number"}
)
INDICATOR_GROUPS: Final[Mapping[str, tuple[str, ...]]] = {
    "pages_unknown": (*COUNT_COLUMNS, *RATE_COLUMNS),
    "durations_unknown": DURATION_COLUMNS,
}
UNKNOWN_MONTH: Final[str] = "Unknown"
UNKNOWN_VISITOR: Final[str] = "Other"
UNKNOWN_CODE: Final[int] = 0
_LOOKUPS: Final[Mapping[Kind, tuple[Mapping[str, str], str]]] = {
    "month": (MONTH_SPELLINGS, UNKNOWN_MONTH),
    "visitor": (VISITOR_SPELLINGS, UNKNOWN_VISITOR),
}


def kind_of(column: str) -> Kind:
    return KINDS.get(column, "number")


def _valid(numbers: np.ndarray, kind: Kind) -> np.ndarray:
    """Where a number is inside its column's range (NaN never is; comparing it does not warn)."""
    if kind == "count":
        valid = (numbers >= 0) & (numbers == np.floor(numbers))
    elif kind in ("duration", "non_negative"):
        valid = numbers >= 0
    elif kind == "rate":
        valid = (numbers >= 0) & (numbers <= 1)
    elif kind == "code":
        valid = (numbers >= 1) & (numbers == np.floor(numbers))
    else:
        valid = np.ones(numbers.shape, dtype=bool)
    return np.asarray(valid)


def clean_number(values: Any, kind: Kind) -> np.ndarray:
    """float64; unknown (out of range, unparseable, empty) -> NaN."""
    numbers = to_number(values)
    return numbers if kind == "number" else np.where(_valid(numbers, kind), numbers, np.nan)


def clean_code(values: Any) -> np.ndarray:
    """int64; anything but a positive integer -> UNKNOWN_CODE."""
    numbers = to_number(values)
    return np.where(_valid(numbers, "code"), numbers, UNKNOWN_CODE).astype(np.int64)


def canonical_names(values: Any, kind: Kind) -> Sequence[str]:
    """Month or visitor-type names in the dataset's spelling, unknown ones as the unknown name.

    Values that are all canonical already (validated events) are returned as they are."""
    lookup, unknown = _LOOKUPS[kind]
    canonical = frozenset(lookup.values())
    if isinstance(values, tuple | list) and canonical.issuperset(values):
        return values
    return [
        value
        if isinstance(value, str) and value in canonical
        else unknown
        if is_missing(value)
        else lookup.get(normalised_text(value), unknown)
        for value in values
    ]


def clean_bool(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(bool array, where the value was unknown); an unknown value reads False until imputed."""
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if array.dtype == np.bool_:
        return array, np.zeros(array.shape, dtype=bool)
    parsed = [parse_bool(value) for value in array.tolist()]
    unknown = np.array([value is None for value in parsed], dtype=bool)
    return np.array([bool(value) for value in parsed], dtype=bool), unknown


@dataclass(frozen=True)
class CleanedColumns:
    """Each column in its canonical dtype, and where each numeric or boolean value was unknown
    (numeric unknowns are NaN until imputed)."""

    values: dict[str, Any]
    unknown: dict[str, np.ndarray]


def clean_columns(
    columns: Mapping[str, Any] | pd.DataFrame, names: Sequence[str]
) -> CleanedColumns:
    """Clean the named raw columns (arrays, pandas Series or sequences)."""
    if LABEL_COLUMN in names:
        raise ContractViolation(
            LABEL_COLUMN, None, "label_not_allowed", "the label is never an input"
        )
    values: dict[str, Any] = {}
    unknown: dict[str, np.ndarray] = {}
    for name in names:
        kind = kind_of(name)
        if kind in NUMERIC_KINDS:
            values[name] = clean_number(columns[name], kind)
            unknown[name] = np.isnan(values[name])
        elif kind == "code":
            values[name] = clean_code(columns[name])
        elif kind == "bool":
            values[name], unknown[name] = clean_bool(columns[name])
        else:
            values[name] = canonical_names(columns[name], kind)
    return CleanedColumns(values, unknown)


def learn_fill_values(cleaned: CleanedColumns) -> dict[str, float | bool]:
    """What imputes each column: the median of known numbers, the most frequent boolean."""
    fill_values: dict[str, float | bool] = {}
    for name, unknown in cleaned.unknown.items():
        known = cleaned.values[name][~unknown]
        if kind_of(name) == "bool":
            fill_values[name] = bool(np.count_nonzero(known) > known.size - np.count_nonzero(known))
        else:
            fill_values[name] = float(np.median(known)) if known.size else 0.0
    return fill_values


def indicator_names(names: Sequence[str]) -> list[str]:
    """The unknown-value indicators that columns `names` allow, in output order."""
    return [
        indicator
        for indicator, group in INDICATOR_GROUPS.items()
        if any(name in names for name in group)
    ]


def impute(
    cleaned: CleanedColumns, fill_values: Mapping[str, float | bool], indicators: Sequence[str]
) -> dict[str, Any]:
    """The cleaned columns with unknowns imputed, then the 0/1 indicator columns."""
    out = dict(cleaned.values)
    for name, value in fill_values.items():
        out[name] = np.where(cleaned.unknown[name], value, cleaned.values[name])
    for indicator in indicators:
        group = [cleaned.unknown[name] for name in INDICATOR_GROUPS[indicator] if name in out]
        out[indicator] = np.any(group, axis=0).astype(np.float64)
    return out


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

    def fit(self, X: Any, y: Any = None) -> SessionCleaner:
        """Learn the medians (numeric columns) and the most frequent `Weekend` for imputation."""
        frame = to_frame(self, self._select(X), reset=True)
        names = [str(name) for name in frame.columns]
        cleaned = clean_columns(frame, names)
        self.fill_values_ = learn_fill_values(cleaned)
        self.indicators_ = indicator_names(names) if self.add_indicators else []
        logger.debug("fitted SessionCleaner rows=%d fill_values=%s", len(frame), self.fill_values_)
        return self

    def transform(self, X: Any) -> Any:
        """Clean `X`; the output keeps the input's columns, then the indicators."""
        check_is_fitted(self, "fill_values_")
        frame = to_frame(self, self._select(X), reset=False)
        names = [str(name) for name in frame.columns]
        out = impute(clean_columns(frame, names), self.fill_values_, self.indicators_)
        for name in names:
            if kind_of(name) in _LOOKUPS:
                out[name] = pd.array(list(out[name]), dtype="str")
        return finish(self, pd.DataFrame(out, index=frame.index))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Input column names, then the indicator columns."""
        check_is_fitted(self, "fill_values_")
        return names_out(self, input_features, list(self.indicators_))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
