"""The fast scoring path: raw event columns -> probabilities, without pandas in the way.

On the consumer's micro-batches a fitted pipeline spends most of its time in scikit-learn's and
pandas' fixed per-call costs (validation, frame building, column selection), not in arithmetic.
The fast path runs the very same cleaning and feature functions the pipeline's transformers run
(`contract.cleaning`, `contract.features`) on plain arrays; what it does itself is only what a
fitted pipeline keeps in its parameters: the imputation values, the one-hot layout (asked of
the fitted encoder), the scaler's statistics, and the call of the final estimator.

The pipeline stays the artifact and the reference: `compile_verified` proves the fast path on the
contract's edge events before it is used, and anything it cannot reproduce raises
`NotCompilable`, so that the pipeline serves instead.
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
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from contract.calibration import CalibratedClassifier
from contract.cleaning import SessionCleaner, clean_columns, impute
from contract.features import SessionFeatures, add_features
from contract.frame import FRAME_DTYPES, event_columns, events_to_frame
from contract.samples import edge_events
from contract.schema import SessionEvent
from scoring.errors import ScoringError
from scoring.forest import ForestPredictor

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
VERIFICATION_ROWS: Final[int] = 2000
VERIFICATION_SEED: Final[int] = 20261126
PROBABILITY_TOLERANCE: Final[float] = 1e-12
"""The encoded matrix must be bit-identical; probabilities may differ by BLAS summation order
(an ulp for linear models), bounded far below any threshold decision."""
_FEATURE_NAMES_WARNING: Final[str] = "X does not have valid feature names"


class NotCompilable(ScoringError):  # noqa: N818 (reads as the condition it reports)
    """The pipeline holds a step or a parameter the fast path does not reproduce."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"{step}: {reason}")


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


def _one_hot_widths(encoder: OneHotEncoder) -> list[int]:
    """Output columns per input column, from the encoder's public fitted attributes."""
    if encoder.drop is not None:
        raise NotCompilable("encode", "one-hot with drop= is not compiled")
    infrequent = getattr(encoder, "infrequent_categories_", None)
    widths = []
    for j, categories in enumerate(encoder.categories_):
        rare = None if infrequent is None else infrequent[j]
        widths.append(len(categories) if rare is None else len(categories) - len(rare) + 1)
    if sum(widths) != len(encoder.get_feature_names_out()):
        raise NotCompilable("encode", "cannot read the one-hot encoder's output layout")
    return widths


def _probe_one_hot(encoder: OneHotEncoder, columns: list[str], offset: int) -> list[_OneHot]:
    """Ask the fitted encoder itself where each category (and an unseen value) lands."""
    widths = _one_hot_widths(encoder)
    encoded: list[_OneHot] = []
    for j, column in enumerate(columns):
        categories = list(encoder.categories_[j])
        integer = all(isinstance(c, int | np.integer) for c in categories)
        unseen: Any = int(max(categories)) + 1 if integer else "\x00unseen"
        probe = pd.DataFrame(
            {
                name: [encoder.categories_[k][0]] * (len(categories) + 1)
                for k, name in enumerate(columns)
            }
        )
        probe[column] = [*categories, unseen]
        for name in columns:
            if FRAME_DTYPES.get(name) == "str":
                probe[name] = probe[name].astype("str")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the unseen probe warns by design
            out = np.asarray(encoder.transform(probe), dtype=np.float64)
        start = sum(widths[:j])
        block = out[:, start : start + widths[j]]
        if not np.all((block == 0) | (block == 1)) or np.any(block.sum(axis=1) > 1):
            raise NotCompilable("encode", f"{column}: a value lands in more than one column")
        positions = [int(np.argmax(row)) if row.any() else -1 for row in block]
        lookup = {(int(c) if integer else c): positions[i] for i, c in enumerate(categories)}
        table = None
        if integer and min(lookup) >= 0 and max(lookup) < 10_000:
            table = np.full(max(lookup) + 2, positions[-1], dtype=np.intp)
            for code, position in lookup.items():
                table[code] = position
        encoded.append(_OneHot(column, offset + start, lookup, positions[-1], table))
    return encoded


@dataclass(frozen=True)
class _Scaler:
    columns: list[str]
    offset: int
    mean: FloatArray | None
    scale: FloatArray | None


@dataclass(frozen=True)
class XGBoostPredictor:
    """`XGBClassifier.predict_proba(X)[:, 1]` for a binary:logistic model, minus its wrapper.

    `XGBClassifier.predict_proba` calls `Booster.inplace_predict` with the same iteration range
    and `missing`, then stacks `[1 - p, p]`; calling the booster directly skips the wrapper's
    per-call checks and the stacking."""

    booster: Any
    iteration_range: tuple[int, int]
    missing: float

    @classmethod
    def of(cls, estimator: Any) -> XGBoostPredictor | None:
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


def _array_predictor(estimator: Any) -> XGBoostPredictor | ForestPredictor | None:
    """The estimator's positive-class probability without its per-call wrapper, if known."""
    return XGBoostPredictor.of(estimator) or ForestPredictor.of(estimator)


class FastPipeline:
    """`clean -> engineer -> encode` over raw columns with the contract's functions, then the
    pipeline's fitted estimator."""

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
        self._fill: dict[str, float | bool] = dict(cleaner.fill_values_)
        self._indicators: list[str] = list(cleaner.indicators_)
        self._engineered: list[str] = list(engineer.engineered_)
        self._use_page_values: bool = bool(engineer.use_page_values)
        self.n_features = len(encoder.get_feature_names_out())
        self._one_hot: list[_OneHot] = []
        self._scalers: list[_Scaler] = []
        for name, transformer, columns in encoder.transformers_:
            if name == "remainder" and transformer == "drop":
                continue
            part: slice = encoder.output_indices_[name]
            if isinstance(transformer, OneHotEncoder):
                self._one_hot += _probe_one_hot(transformer, list(columns), part.start)
            elif isinstance(transformer, StandardScaler):
                mean = transformer.mean_ if transformer.with_mean else None
                scale = transformer.scale_ if transformer.with_std else None
                self._scalers.append(_Scaler(list(columns), part.start, mean, scale))
            else:
                raise NotCompilable("encode", f"{name}: {type(transformer).__name__}")
        self.estimator = steps["model"]
        self.predictor = _array_predictor(self.estimator)
        self._calibrate: Callable[[FloatArray], FloatArray] | None = None
        if type(self.estimator) is CalibratedClassifier:
            # The calibrated build: its inner model as arrays, then its own calibration map.
            self.predictor = _array_predictor(self.estimator.estimator_)
            if self.predictor is not None:
                self._calibrate = self.estimator.calibrate

    def transform(self, raw: Mapping[str, Any]) -> FloatArray:
        """The matrix `pipeline[:-1].transform(frame)` gives, for the same raw columns."""
        cleaned = impute(clean_columns(raw, self.raw_columns), self._fill, self._indicators)
        columns = add_features(cleaned, self._engineered, self._use_page_values)
        n = len(raw[self.raw_columns[0]])
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

    def predict_proba(self, raw: Mapping[str, Any]) -> FloatArray:
        """Probability of the positive class for each row."""
        return self.proba_of_matrix(self.transform(raw))

    def proba_of_matrix(self, matrix: FloatArray) -> FloatArray:
        scores = None if self.predictor is None else self.predictor.predict(matrix)
        if scores is not None:  # None: the estimator's own path decides (see ForestPredictor)
            return scores if self._calibrate is None else self._calibrate(scores)
        with warnings.catch_warnings():
            # The estimator was fitted on a frame with names; the matrix has the same columns.
            warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING)
            # Column-major, like the array behind the pipeline's pandas output, so that BLAS
            # sums the dot products in the same order (a C-ordered copy can differ by an ulp).
            probabilities = self.estimator.predict_proba(np.asfortranarray(matrix))
        return np.asarray(probabilities[:, 1], dtype=np.float64)


@dataclass(frozen=True)
class Verification:
    rows: int
    max_abs_difference: float


def verify(pipeline: Pipeline, fast: FastPipeline, events: Sequence[SessionEvent]) -> Verification:
    """Prove the fast path reproduces the pipeline on `events` (at three batch sizes: a one-row
    batch takes other code paths than a large one); raise NotCompilable if not."""
    worst = 0.0
    for batch in (events[:1], events[1:17], events):
        expected = np.asarray(pipeline[:-1].transform(events_to_frame(batch)), dtype=np.float64)
        actual = fast.transform(event_columns(batch))
        if expected.shape != actual.shape or not np.array_equal(expected, actual, equal_nan=True):
            raise NotCompilable("verify", "the encoded matrix differs from the pipeline's")
        reference = np.asarray(pipeline.predict_proba(events_to_frame(batch))[:, 1])
        difference = float(np.max(np.abs(reference - fast.proba_of_matrix(actual))))
        if not difference <= PROBABILITY_TOLERANCE:  # NaN fails too
            raise NotCompilable("verify", f"probabilities differ by {difference:.3e}")
        worst = max(worst, difference)
    return Verification(len(events), worst)


def compile_verified(
    pipeline: Any, events: Sequence[SessionEvent] | None = None
) -> tuple[FastPipeline, Verification]:
    """Build the fast path of `pipeline` and prove it on `events` (default: the contract's edge
    events). Raises NotCompilable when it cannot be built or differs."""
    if not isinstance(pipeline, Pipeline):
        raise NotCompilable("pipeline", f"{type(pipeline).__name__} is not a Pipeline")
    fast = FastPipeline(pipeline)
    sample = (
        list(events) if events is not None else edge_events(VERIFICATION_ROWS, VERIFICATION_SEED)
    )
    return fast, verify(pipeline, fast, sample)
