"""`build_pipeline`: the one scikit-learn Pipeline that training fits and serving loads.

`clean -> engineer -> encode -> model`. It takes the raw frame (`FEATURE_COLUMNS`: a dataset frame
without `Revenue`, or `events_to_frame` output) and needs nothing else, so a saved pipeline scores
with `joblib.load(path).predict_proba(frame)`.
"""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from contract.cleaning import SessionCleaner
from contract.features import PAGE_VALUES, SessionFeatures
from contract.schema import CATEGORICAL_COLUMNS, CODE_COLUMNS, FEATURE_COLUMNS

Variant = Literal["full", "no_page_values"]
VARIANTS: Final[tuple[Variant, ...]] = get_args(Variant)

CODE_MIN_FREQUENCY: Final[int] = 20
"""Codes seen fewer times in training share one `<column>_infrequent_sklearn` column."""

# Numeric and 0/1 columns, except the code columns (integers, but categories).
_NUMERIC_PATTERN: Final[str] = "^(?!(?:" + "|".join(CODE_COLUMNS) + ")$)"


def required_columns(variant: Variant) -> list[str]:
    """The raw columns a pipeline of this variant reads, in dataset order."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant == "no_page_values":
        return [column for column in FEATURE_COLUMNS if column != PAGE_VALUES]
    return list(FEATURE_COLUMNS)


def build_encoder() -> ColumnTransformer:
    """One-hot the categories and codes, standardise the numeric columns, drop nothing else."""
    return ColumnTransformer(
        [
            (
                "categories",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(CATEGORICAL_COLUMNS),
            ),
            (
                "codes",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    min_frequency=CODE_MIN_FREQUENCY,
                    sparse_output=False,
                ),
                list(CODE_COLUMNS),
            ),
            (
                "numeric",
                StandardScaler(),
                make_column_selector(pattern=_NUMERIC_PATTERN, dtype_include="number"),
            ),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def build_pipeline(estimator: Any, variant: Variant) -> Pipeline:
    """`clean -> engineer -> encode -> model` for `variant`, with pandas output between steps.

    `estimator` is used as given (not cloned). Feature names after encoding are stable strings:
    `pipeline[:-1].get_feature_names_out()` once fitted.
    """
    columns = required_columns(variant)
    pipeline = Pipeline(
        [
            ("clean", SessionCleaner(columns=columns)),
            ("engineer", SessionFeatures(use_page_values=variant == "full")),
            ("encode", build_encoder()),
            ("model", estimator),
        ]
    )
    pipeline.set_output(transform="pandas")
    return pipeline
