"""A compiled copy of a fitted pipeline: validated columns -> probabilities in plain numpy.

On the consumer's micro-batches the fitted `clean -> engineer -> encode` steps spend most of
their time in scikit-learn's and pandas' fixed per-call costs (validation, frame building,
column selection), not in arithmetic. `compile_pipeline` reads the fitted parameters once
(medians, indicator groups, engineered features, one-hot categories, scaler statistics) and
replays the same numpy operations on arrays, then feeds the pipeline's own final estimator.

The pipeline stays the artifact and the reference. A compiled copy is only used after
`verify_compiled` showed, on the given rows, that its matrix equals `pipeline[:-1].transform`
bit for bit and its probabilities equal `pipeline.predict_proba`; anything it cannot reproduce
raises `NotCompilable` and the caller keeps the pipeline.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from contract.cleaning import (
    _KINDS,
    _MONTH_LOOKUP,
    _NUMERIC_KINDS,
    _VISITOR_LOOKUP,
    INDICATOR_GROUPS,
    UNKNOWN_MONTH,
    SessionCleaner,
    _clean_lookup,
    to_bool,
)
from contract.errors import ContractError
from contract.features import FEATURES, SessionFeatures
from contract.frame import FRAME_DTYPES
from contract.schema import MONTHS

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
RawColumns = Mapping[str, Any]
"""Raw column name -> values: float64 arrays (NaN for null), int64 codes, bool `Weekend`,
and sequences of str for `Month` / `VisitorType` (what `events_to_frame` holds, unboxed)."""

_MONTH_NUMBER: Final[dict[str, float]] = {name: float(n) for n, name in enumerate(MONTHS, 1)}
_LOOKUPS: Final[dict[str, tuple[dict[str, str], str]]] = {
    "month": (_MONTH_LOOKUP, UNKNOWN_MONTH),
    "visitor": (_VISITOR_LOOKUP, "Other"),
}
_CANONICAL: Final[dict[str, frozenset[str]]] = {
    kind: frozenset(lookup.values()) for kind, (lookup, _) in _LOOKUPS.items()
}
_FEATURE_NAMES_WARNING: Final[str] = "X does not have valid feature names"


class NotCompilable(ContractError):  # noqa: N818 (reads as the condition it reports)
    """The pipeline holds a step or a parameter the compiled path does not reproduce."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"{step}: {reason}")


class _ArrayColumns:
    """The interface `contract.features.FEATURES` computes from, over plain arrays."""

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self._columns = columns
        self._cache: dict[str, FloatArray] = {}

    def __getitem__(self, name: str) -> FloatArray:
        if name not in self._cache:
            self._cache[name] = np.asarray(self._columns[name], dtype=np.float64)
        return self._cache[name]

    def month_number(self) -> FloatArray:
        months = self._columns["Month"]
        return np.array([_MONTH_NUMBER.get(m, np.nan) for m in months], dtype=np.float64)


@dataclass(frozen=True)
class _OneHot:
    """One input column of a fitted OneHotEncoder: value -> output column (-1: all zeros)."""

    column: str
    offset: int
    lookup: dict[Any, int]
    unknown: int
    integer_table: npt.NDArray[np.intp] | None  # codes 0..max -> index, for integer columns

    def indices(self, values: Any) -> npt.NDArray[np.intp]:
        if self.integer_table is not None:
            codes = np.asarray(values, dtype=np.int64)
            top = self.integer_table.shape[0] - 1  # the last slot holds `unknown`
            return self.integer_table[np.where((codes >= 0) & (codes < top), codes, top)]
        lookup, unknown = self.lookup, self.unknown
        return np.fromiter((lookup.get(v, unknown) for v in values), np.intp, len(values))


def _probe_one_hot(encoder: OneHotEncoder, columns: list[str], offset: int) -> list[_OneHot]:
    """Ask the fitted encoder itself where each category (and an unseen value) lands."""
    widths: list[int] = list(getattr(encoder, "_n_features_outs", []))
    if len(widths) != len(columns) or sum(widths) != len(encoder.get_feature_names_out()):
        raise NotCompilable("encode", "cannot read the one-hot encoder's output layout")
    encoded: list[_OneHot] = []
    start = offset
    for j, column in enumerate(columns):
        categories = list(encoder.categories_[j])
        integer = all(isinstance(c, int | np.integer) for c in categories)
        unseen: Any = int(max(categories)) + 1 if integer else "\x00unseen"
        probe = {
            name: [encoder.categories_[k][0]] * (len(categories) + 1)
            for k, name in enumerate(columns)
        }
        probe[column] = [*categories, unseen]
        frame = pd.DataFrame(probe)
        for name in columns:
            if FRAME_DTYPES.get(name) == "str":
                frame[name] = frame[name].astype("str")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the unseen probe warns by design
            out = np.asarray(encoder.transform(frame), dtype=np.float64)
        block = out[:, sum(widths[:j]) : sum(widths[: j + 1])]
        if not np.all((block == 0) | (block == 1)) or np.any(block.sum(axis=1) > 1):
            raise NotCompilable("encode", f"{column}: a value lands in more than one column")
        positions = [int(np.argmax(row)) if row.any() else -1 for row in block]
        lookup = {(int(c) if integer else c): positions[i] for i, c in enumerate(categories)}
        table = None
        if integer and min(lookup) >= 0 and max(lookup) < 10_000:
            table = np.full(max(lookup) + 2, positions[-1], dtype=np.intp)
            for code, position in lookup.items():
                table[code] = position
        encoded.append(_OneHot(column, start, lookup, positions[-1], table))
        start += widths[j]
    return encoded


@dataclass(frozen=True)
class _Scaler:
    columns: list[str]
    offset: int
    mean: FloatArray | None
    scale: FloatArray | None


class CompiledPipeline:
    """`clean -> engineer -> encode` as numpy over raw columns, then the fitted estimator."""

    def __init__(self, pipeline: Pipeline) -> None:
        steps = dict(pipeline.steps)
        if [name for name, _ in pipeline.steps] != ["clean", "engineer", "encode", "model"]:
            raise NotCompilable("pipeline", f"unexpected steps {list(steps)}")
        cleaner, engineer, encoder = steps["clean"], steps["engineer"], steps["encode"]
        if type(cleaner) is not SessionCleaner or type(engineer) is not SessionFeatures:
            raise NotCompilable("pipeline", "clean/engineer are not the contract's transformers")
        if type(encoder) is not ColumnTransformer:
            raise NotCompilable("encode", f"{type(encoder).__name__} is not a ColumnTransformer")
        self.raw_columns: list[str] = [str(c) for c in cleaner.feature_names_in_]
        self._kinds = {name: _KINDS.get(name, "number") for name in self.raw_columns}
        self._fill: dict[str, float | bool] = dict(cleaner.fill_values_)
        self._indicators: dict[str, tuple[str, ...]] = {}
        for indicator in cleaner.indicators_:
            group = INDICATOR_GROUPS[indicator]
            self._indicators[indicator] = tuple(n for n in group if n in self._kinds)
        self._dropped = engineer._dropped()
        self._engineered: list[tuple[str, Callable[[Any], np.ndarray]]] = [
            (name, FEATURES[name][1]) for name in engineer.engineered_
        ]
        self.n_features = len(encoder.get_feature_names_out())
        self._one_hot: list[_OneHot] = []
        self._scalers: list[_Scaler] = []
        for name, transformer, columns in encoder.transformers_:
            if name == "remainder" and transformer == "drop":
                continue
            part: slice = encoder.output_indices_[name]
            if isinstance(transformer, OneHotEncoder):
                if transformer.drop is not None:
                    raise NotCompilable("encode", f"{name}: one-hot with drop= is not compiled")
                self._one_hot += _probe_one_hot(transformer, list(columns), part.start)
            elif isinstance(transformer, StandardScaler):
                self._scalers.append(
                    _Scaler(
                        list(columns),
                        part.start,
                        transformer.mean_ if transformer.with_mean else None,
                        transformer.scale_ if transformer.with_std else None,
                    )
                )
            else:
                raise NotCompilable("encode", f"{name}: {type(transformer).__name__}")
        self.estimator = steps["model"]
        self._forest = type(self.estimator) is RandomForestClassifier and not isinstance(
            self.estimator.n_classes_, list
        )
        self._xgboost = _XGBoostPredictor.of(self.estimator)

    # --- the same operations as SessionCleaner, SessionFeatures and the encoder --------------

    def _clean(self, raw: RawColumns) -> dict[str, Any]:
        cleaned: dict[str, Any] = {}
        missing: dict[str, np.ndarray] = {}
        for name, kind in self._kinds.items():
            values = raw[name]
            if kind in _NUMERIC_KINDS:
                numbers = np.asarray(values, dtype=np.float64)
                numbers = np.where(np.isfinite(numbers), numbers, np.nan)
                with np.errstate(invalid="ignore"):
                    if kind == "count":
                        numbers = np.where(
                            (numbers >= 0) & (numbers == np.floor(numbers)), numbers, np.nan
                        )
                    elif kind in ("duration", "non_negative"):
                        numbers = np.where(numbers >= 0, numbers, np.nan)
                    elif kind == "rate":
                        numbers = np.where((numbers >= 0) & (numbers <= 1), numbers, np.nan)
                missing[name] = np.isnan(numbers)
                cleaned[name] = numbers
            elif kind == "code":
                numbers = np.asarray(values, dtype=np.float64)
                with np.errstate(invalid="ignore"):
                    valid = (numbers >= 1) & (numbers == np.floor(numbers))
                cleaned[name] = np.where(valid, numbers, 0).astype(np.int64)
            elif kind == "bool":
                flags = np.asarray(values)
                if flags.dtype != np.bool_:  # not from validated events: the cleaner's way
                    series = pd.Series(list(values), dtype=object)
                    flags = to_bool(series).fillna(self._fill[name]).to_numpy(dtype=bool)
                cleaned[name] = flags
            else:
                lookup, unknown = _LOOKUPS[kind]
                if not _CANONICAL[kind].issuperset(values):  # validated events never get here
                    values = _clean_lookup(pd.Series(list(values), dtype=object), lookup, unknown)
                cleaned[name] = values
        for name, value in self._fill.items():
            if not isinstance(value, bool):
                cleaned[name] = np.where(missing[name], value, cleaned[name])
        for indicator, group in self._indicators.items():
            cleaned[indicator] = np.any([missing[n] for n in group], axis=0).astype(np.float64)
        return cleaned

    def transform(self, raw: RawColumns) -> FloatArray:
        """The matrix `pipeline[:-1].transform(frame)` gives, for the same raw columns."""
        cleaned = self._clean(raw)
        n = len(raw[self.raw_columns[0]])
        columns: dict[str, Any] = {
            name: values.astype(np.float64) if name == "Weekend" else values
            for name, values in cleaned.items()
            if name not in self._dropped
        }
        engineered = _ArrayColumns(cleaned)
        for name, compute in self._engineered:
            columns[name] = np.asarray(compute(engineered), dtype=np.float64)
        out = np.zeros((n, self.n_features), dtype=np.float64)
        for one_hot in self._one_hot:
            positions = one_hot.indices(columns[one_hot.column])
            rows = np.flatnonzero(positions >= 0)
            out[rows, one_hot.offset + positions[rows]] = 1.0
        for scaler in self._scalers:
            block = np.column_stack([columns[c] for c in scaler.columns]).astype(np.float64)
            if scaler.mean is not None:
                block -= scaler.mean
            if scaler.scale is not None:
                block /= scaler.scale
            out[:, scaler.offset : scaler.offset + len(scaler.columns)] = block
        return out

    def predict_proba(self, raw: RawColumns) -> FloatArray:
        """Probability of the positive class for each row."""
        return self.proba_of_matrix(self.transform(raw))

    def proba_of_matrix(self, matrix: FloatArray) -> FloatArray:
        estimator = self.estimator
        if self._forest:
            # RandomForestClassifier.predict_proba with n_jobs=1, minus joblib's per-tree
            # dispatch: the same float32 input, the same order of accumulation.
            features = np.ascontiguousarray(matrix, dtype=np.float32)
            n_classes = int(estimator.n_classes_)
            total = np.zeros((features.shape[0], n_classes), dtype=np.float64)
            for tree in estimator.estimators_:
                total += tree.tree_.predict(features)[:, :n_classes]
            total /= len(estimator.estimators_)
            positive: FloatArray = total[:, 1]
            return positive
        if self._xgboost is not None:
            return self._xgboost.predict(matrix)
        with warnings.catch_warnings():
            # The estimator was fitted on a frame with names; the matrix has the same columns.
            warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING)
            # Column-major, like the array behind the pipeline's pandas output, so that BLAS
            # sums the dot products in the same order (a C-ordered copy can differ by an ulp).
            probabilities = estimator.predict_proba(np.asfortranarray(matrix))
        return np.asarray(probabilities[:, 1], dtype=np.float64)


@dataclass(frozen=True)
class _XGBoostPredictor:
    """`XGBClassifier.predict_proba(X)[:, 1]` for a binary:logistic model, minus its wrapper.

    `XGBClassifier.predict_proba` calls `Booster.inplace_predict` with the same iteration range
    and `missing`, then stacks `[1 - p, p]`; calling the booster directly skips the wrapper's
    per-call checks and the stacking. `verify_compiled` still compares the result with the
    pipeline's own `predict_proba` before the copy is used.
    """

    booster: Any
    iteration_range: tuple[int, int]
    missing: float

    @classmethod
    def of(cls, estimator: Any) -> _XGBoostPredictor | None:
        kind = type(estimator)
        if kind.__name__ != "XGBClassifier" or not kind.__module__.startswith("xgboost"):
            return None
        if estimator.objective != "binary:logistic" or int(estimator.n_classes_) != 2:
            return None  # other objectives go through the estimator's own predict_proba
        if estimator.booster not in (None, "gbtree"):
            return None
        try:  # the same rule as XGBModel._get_iteration_range(None)
            iteration_range = (0, int(estimator.best_iteration) + 1)
        except AttributeError:
            iteration_range = (0, 0)
        missing = np.nan if estimator.missing is None else float(estimator.missing)
        return cls(estimator.get_booster(), iteration_range, missing)

    def predict(self, matrix: FloatArray) -> FloatArray:
        probabilities = self.booster.inplace_predict(
            matrix,
            iteration_range=self.iteration_range,
            predict_type="value",
            missing=self.missing,
            validate_features=False,  # a bare matrix has no names; the layout is verified
        )
        return np.asarray(probabilities, dtype=np.float64).reshape(-1)


def frame_columns(frame: pd.DataFrame) -> dict[str, Any]:
    """A raw frame (`events_to_frame` output) as the raw columns `CompiledPipeline` takes."""
    columns: dict[str, Any] = {}
    for name in frame.columns:
        dtype = FRAME_DTYPES.get(str(name))
        if dtype == "str":
            columns[str(name)] = frame[name].tolist()
        else:
            columns[str(name)] = frame[name].to_numpy()
    return columns


@dataclass(frozen=True)
class Verification:
    rows: int
    max_abs_difference: float


def verify_compiled(
    pipeline: Pipeline,
    compiled: CompiledPipeline,
    frames: Sequence[pd.DataFrame],
    tolerance: float = 0.0,
) -> Verification:
    """Prove the compiled copy reproduces the pipeline on `frames`; raise NotCompilable if not.

    The encoded matrix must be equal bit for bit; probabilities within `tolerance` (0: equal).
    """
    rows, worst = 0, 0.0
    for frame in frames:
        columns = frame_columns(frame)
        expected = np.asarray(pipeline[:-1].transform(frame), dtype=np.float64)
        actual = compiled.transform(columns)
        if expected.shape != actual.shape or not np.array_equal(expected, actual, equal_nan=True):
            differs = np.argwhere(~((expected == actual) | (np.isnan(expected) & np.isnan(actual))))
            where = differs[0].tolist() if expected.shape == actual.shape else "shape"
            raise NotCompilable("verify", f"encoded matrix differs from the pipeline at {where}")
        reference = np.asarray(pipeline.predict_proba(frame)[:, 1], dtype=np.float64)
        probabilities = compiled.proba_of_matrix(actual)
        difference = float(np.max(np.abs(reference - probabilities))) if len(frame) else 0.0
        if not difference <= tolerance:
            raise NotCompilable(
                "verify", f"probabilities differ from the pipeline by {difference:.3e}"
            )
        rows += len(frame)
        worst = max(worst, difference)
    return Verification(rows, worst)
