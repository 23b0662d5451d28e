"""Input handling shared by the contract's transformers (private).

Both transformers work on named columns. A DataFrame keeps its columns (strings, booleans and all);
anything else goes through scikit-learn's numeric validation and is named like scikit-learn names
unnamed features (`x0`, `x1`, ...), so the estimator contract holds for generic numeric input too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._set_output import _get_output_config
from sklearn.utils.validation import _check_feature_names_in, validate_data


def input_names(estimator: BaseEstimator, n_features: int) -> list[str]:
    """The names the estimator knows its input columns by."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names]
    return [f"x{i}" for i in range(n_features)]


def to_frame(estimator: BaseEstimator, X: Any, *, reset: bool) -> pd.DataFrame:
    """Validate `X` as scikit-learn would (feature names and counts) and return a named frame."""
    if isinstance(X, pd.DataFrame):
        validate_data(estimator, X, reset=reset, skip_check_array=True)
        n_samples, n_features = X.shape
        if n_features == 0:
            raise ValueError(
                f"0 feature(s) (shape={X.shape}) while a minimum of 1 is required by "
                f"{type(estimator).__name__}."
            )
        if n_samples == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is "
                f"required by {type(estimator).__name__}."
            )
        frame = X.copy(deep=False)
        frame.columns = pd.Index(input_names(estimator, n_features), dtype=object)
        return frame
    array = validate_data(estimator, X, reset=reset, dtype="numeric", ensure_all_finite="allow-nan")
    return pd.DataFrame(array, columns=input_names(estimator, array.shape[1]))


def names_out(
    estimator: BaseEstimator,
    input_features: Any,
    added: list[str],
    dropped: frozenset[str] = frozenset(),
) -> np.ndarray:
    """`get_feature_names_out` for a transformer that keeps its inputs (less `dropped`) and
    appends `added`."""
    names = [str(name) for name in _check_feature_names_in(estimator, input_features)]
    return np.asarray([*(n for n in names if n not in dropped), *added], dtype=object)


def finish(estimator: BaseEstimator, frame: pd.DataFrame) -> Any:
    """Return the frame when pandas output is configured, else a plain array (the default)."""
    if _get_output_config("transform", estimator)["dense"] == "pandas":
        return frame
    return frame.to_numpy()
