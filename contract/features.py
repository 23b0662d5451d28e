"""`SessionFeatures`: engineered columns computed from a cleaned session frame.

Each engineered feature names the raw columns it needs; it is added when they are all present at
`fit`, so the transformer works on any subset of the dataset's columns (and leaves generic numeric
input unchanged). With `use_page_values=False`, `PageValues` is dropped and every feature derived
from it is never computed: that is the leakage experiment's `no_page_values` variant.

Booleans become 0.0/1.0; `Month`, `VisitorType` (strings) and the code columns (int64) pass
through for the encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from contract._sklearn import finish, names_out, to_frame
from contract.parsing import is_bool_array
from contract.schema import COUNT_COLUMNS, DURATION_COLUMNS, MONTHS

PAGE_VALUES: Final[str] = "PageValues"

_MONTH_NUMBER: Final[dict[str, int]] = {name: number for number, name in enumerate(MONTHS, 1)}
_SHORT: Final[dict[str, str]] = {
    "Administrative": "admin",
    "Informational": "info",
    "ProductRelated": "product",
}


class _Columns:
    """Read-only view of named columns as float64 arrays, each converted once (per-call
    overhead dominates on the small batches the consumer scores)."""

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self._columns = columns
        self._cache: dict[str, np.ndarray] = {}
        self._totals: dict[tuple[str, ...], np.ndarray] = {}
        self._month_angle: np.ndarray | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = np.asarray(self._columns[name], dtype=np.float64)
        return self._cache[name]

    def total(self, columns: tuple[str, ...]) -> np.ndarray:
        """The columns' sum, added in their order."""
        if columns not in self._totals:
            total = self[columns[0]]
            for column in columns[1:]:
                total = total + self[column]
            self._totals[columns] = total
        return self._totals[columns]

    def month_angle(self) -> np.ndarray:
        """The month as an angle on the year's circle (January 0); NaN for an unknown month."""
        if self._month_angle is None:
            months = self._columns["Month"]
            number = np.array([_MONTH_NUMBER.get(m, np.nan) for m in months], dtype=np.float64)
            self._month_angle = 2 * np.pi * (number - 1) / 12
        return self._month_angle


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is not positive (no pages, no time)."""
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _log(values: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.log1p(np.maximum(values, 0.0))  # NaN stays NaN
    return result


def _total(f: _Columns, columns: tuple[str, ...]) -> np.ndarray:
    return f.total(columns)


def _log_column(column: str, f: _Columns) -> np.ndarray:
    return _log(f[column])


def _log_per_page(count: str, duration: str, f: _Columns) -> np.ndarray:
    return _log(_ratio(f[duration], f[count]))


def _zero_if_nan(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), 0.0, values)


def _month_sin(f: _Columns) -> np.ndarray:
    return _zero_if_nan(np.sin(f.month_angle()))


def _month_cos(f: _Columns) -> np.ndarray:
    return _zero_if_nan(np.cos(f.month_angle()))


Feature = tuple[tuple[str, ...], Callable[[_Columns], np.ndarray]]


def _feature_table() -> dict[str, Feature]:
    """Engineered feature name -> (raw columns it reads, how to compute it), in output order."""
    table: dict[str, Feature] = {
        "total_pages": (COUNT_COLUMNS, lambda f: _total(f, COUNT_COLUMNS)),
        "total_duration": (DURATION_COLUMNS, lambda f: _total(f, DURATION_COLUMNS)),
        "log_total_pages": (COUNT_COLUMNS, lambda f: _log(_total(f, COUNT_COLUMNS))),
        "log_total_duration": (DURATION_COLUMNS, lambda f: _log(_total(f, DURATION_COLUMNS))),
        "mean_duration_per_page": (
            (*COUNT_COLUMNS, *DURATION_COLUMNS),
            lambda f: _ratio(_total(f, DURATION_COLUMNS), _total(f, COUNT_COLUMNS)),
        ),
        "product_page_share": (
            COUNT_COLUMNS,
            lambda f: _ratio(f["ProductRelated"], _total(f, COUNT_COLUMNS)),
        ),
        "product_duration_share": (
            DURATION_COLUMNS,
            lambda f: _ratio(f["ProductRelated_Duration"], _total(f, DURATION_COLUMNS)),
        ),
    }
    for count, duration in zip(COUNT_COLUMNS, DURATION_COLUMNS, strict=True):
        short = _SHORT[count]
        table[f"log_{short}_pages"] = ((count,), partial(_log_column, count))
        table[f"log_{short}_duration"] = ((duration,), partial(_log_column, duration))
        table[f"log_{short}_duration_per_page"] = (
            (count, duration),
            partial(_log_per_page, count, duration),
        )
    table.update(
        {
            "bounce_x_exit": (
                ("BounceRates", "ExitRates"),
                lambda f: f["BounceRates"] * f["ExitRates"],
            ),
            "exit_minus_bounce": (
                ("BounceRates", "ExitRates"),
                lambda f: f["ExitRates"] - f["BounceRates"],
            ),
            "has_special_day": (("SpecialDay",), lambda f: (f["SpecialDay"] > 0).astype(float)),
            "month_sin": (("Month",), _month_sin),
            "month_cos": (("Month",), _month_cos),
            "log_page_values": ((PAGE_VALUES,), lambda f: _log(f[PAGE_VALUES])),
            "has_page_value": ((PAGE_VALUES,), lambda f: (f[PAGE_VALUES] > 0).astype(float)),
            "log_page_value_x_product_share": (
                (PAGE_VALUES, *COUNT_COLUMNS),
                lambda f: _log(
                    f[PAGE_VALUES] * _ratio(f["ProductRelated"], _total(f, COUNT_COLUMNS))
                ),
            ),
            "page_value_x_stay": (
                (PAGE_VALUES, "ExitRates"),
                lambda f: _log(f[PAGE_VALUES] * (1 - f["ExitRates"])),
            ),
        }
    )
    return table


FEATURES: Final[dict[str, Feature]] = _feature_table()
"""Every engineered feature the transformer knows, by output name."""


def dropped_columns(use_page_values: bool) -> frozenset[str]:
    """Raw columns a variant never passes on: `PageValues` when it must not use it."""
    return frozenset() if use_page_values else frozenset({PAGE_VALUES})


def engineered_features(available: Iterable[str], use_page_values: bool) -> list[str]:
    """The engineered features whose raw columns are all available, in output order."""
    usable = set(available) - dropped_columns(use_page_values)
    return [name for name, (needs, _) in FEATURES.items() if usable.issuperset(needs)]


def add_features(
    columns: Mapping[str, Any], engineered: Sequence[str], use_page_values: bool
) -> dict[str, Any]:
    """The input columns (less dropped ones, booleans as 0.0/1.0), then the engineered ones.

    `columns` maps names to arrays (numpy or pandas extension arrays); nothing is aligned on an
    index, so repeated index labels in a caller's frame cannot matter."""
    dropped = dropped_columns(use_page_values)
    out: dict[str, Any] = {
        name: np.asarray(values, dtype=np.float64) if is_bool_array(values) else values
        for name, values in columns.items()
        if name not in dropped
    }
    view = _Columns(columns)
    for name in engineered:
        _, compute = FEATURES[name]
        out[name] = np.asarray(compute(view), dtype=np.float64)
    return out


class SessionFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Add engineered session features to a cleaned frame (an adapter over `add_features`).

    Parameters
    ----------
    use_page_values:
        False drops `PageValues` and never computes a feature derived from it.
    """

    def __init__(self, use_page_values: bool = True) -> None:
        self.use_page_values = use_page_values

    def fit(self, X: Any, y: Any = None) -> SessionFeatures:
        """Decide which engineered features the input's columns allow."""
        frame = to_frame(self, X, reset=True)
        self.engineered_ = engineered_features(frame.columns, self.use_page_values)
        return self

    def transform(self, X: Any) -> Any:
        """The input's columns (less dropped ones, booleans as 0/1), then the engineered ones."""
        check_is_fitted(self, "engineered_")
        frame = to_frame(self, X, reset=False)
        columns = {name: frame[name].array for name in frame.columns}
        out = add_features(columns, self.engineered_, self.use_page_values)
        return finish(self, pd.DataFrame(out, index=frame.index))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Input column names (less dropped ones), then the engineered ones."""
        check_is_fitted(self, "engineered_")
        return names_out(
            self, input_features, list(self.engineered_), dropped_columns(self.use_page_values)
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
