"""Reference profiles and the population stability index (PSI): one implementation of binning,
used by training (to write a build's profile), the consumer's drift sentinel and the drift report.

A numeric feature is cut at its training deciles (distinct ones only: ``PageValues`` is mostly 0,
so its 0 is one right-closed bin of its own); a categorical one (months, visitor types, the codes,
``Weekend``) keeps its categories with at least 1 % of the training rows, everything else is
"other". Nulls are counted apart: the bins hold the non-null values, the null rate is separate.

PSI = sum over bins of ``(actual - expected) * ln(actual / expected)``, with both shares floored
at :data:`PSI_FLOOR` so that an empty bin on either side counts as a large but finite shift. A
feature's PSI (:meth:`ProfileBinner.feature_psi`) has one bin more, the nulls: the reference
shares are ``(1 - null_rate) * fractions`` and ``null_rate``, the window's are its counts over
all its events, nulls included. A feature that became all-null (a tracking bug) thus gets a
large, finite PSI, not NaN; with no nulls on either side the null bin adds exactly 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from contract.manifest import (
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    ReferenceProfile,
)
from contract.schema import CATEGORICAL_COLUMNS, CODE_COLUMNS

__all__ = [
    "CATEGORICAL_FEATURES",
    "PSI_FLOOR",
    "ProfileBinner",
    "category_key",
    "feature_profile",
    "numeric_profile",
    "psi",
    "reference_profile",
]

CATEGORICAL_FEATURES: Final[frozenset[str]] = frozenset(
    (*CATEGORICAL_COLUMNS, *CODE_COLUMNS, "Weekend")
)
MIN_CATEGORY_SHARE: Final[float] = 0.01
PSI_FLOOR: Final[float] = 1e-4
_DECILES: Final = np.linspace(0.1, 0.9, 9)
_MAX_TABLE: Final[int] = 10_000  # the largest code looked up in a table
_MAX_CACHED: Final[int] = 1000  # raw category values remembered per feature (codes are unbounded)
IntArray = npt.NDArray[np.int64]


def category_key(value: Any) -> str | None:
    """The profile's name of a category value (``None`` for a null): ``"Nov"``, ``"3"``,
    ``"True"``. Integral numbers are written without a decimal point."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    return str(value)


def psi(expected: npt.ArrayLike, counts: npt.ArrayLike) -> float:
    """PSI of observed ``counts`` per bin against the ``expected`` share per bin (NaN when
    there is nothing to compare: no observation)."""
    observed = np.asarray(counts, dtype=np.float64)
    total = observed.sum()
    if total <= 0:
        return math.nan
    actual = np.maximum(observed / total, PSI_FLOOR)
    reference = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((actual - reference) * np.log(actual / reference)))


def _numeric_bins(values: npt.ArrayLike, edges: npt.NDArray[np.float64]) -> tuple[IntArray, int]:
    """Bin index of every non-null value, and the number of nulls."""
    array = np.asarray(values, dtype=np.float64)
    nulls = np.isnan(array)
    n_null = int(np.count_nonzero(nulls))
    if n_null:
        array = array[~nulls]
    return edges.searchsorted(array, side="left"), n_null


def numeric_profile(values: npt.ArrayLike) -> NumericProfile:
    array = np.asarray(values, dtype=np.float64)
    present = array[~np.isnan(array)]
    edges = (
        np.unique(np.quantile(present, _DECILES, method="lower")) if present.size else np.empty(0)
    )
    bins, n_null = _numeric_bins(array, edges)
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return NumericProfile(
        null_rate=n_null / max(len(array), 1),
        edges=[float(edge) for edge in edges],
        fractions=[float(c) / max(present.size, 1) for c in counts],
    )


def _category_counts(values: Any) -> Iterable[tuple[Any, int]]:
    """(value, count) pairs; integer and boolean arrays are counted by numpy."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biu":
        uniques, counts = np.unique(values, return_counts=True)
        return zip(uniques.tolist(), counts.tolist(), strict=True)
    return Counter(values).items()


def categorical_profile(values: Any) -> CategoricalProfile:
    counts: Counter[str | None] = Counter()
    for value, count in _category_counts(values):
        counts[category_key(value)] += count
    n_null = counts.pop(None, 0)
    present = sum(counts.values())
    frequent = sorted(
        (key for key, count in counts.items() if count >= MIN_CATEGORY_SHARE * present),
        key=lambda key: (-counts[key], key),
    )
    other = present - sum(counts[key] for key in frequent)
    return CategoricalProfile(
        null_rate=n_null / max(present + n_null, 1),
        categories=frequent,
        fractions=[counts[key] / max(present, 1) for key in frequent] + [other / max(present, 1)],
    )


def feature_profile(name: str, values: Any) -> FeatureProfile:
    """The profile of one raw feature's training values (numeric or categorical by name)."""
    if name in CATEGORICAL_FEATURES:
        return categorical_profile(values)
    return numeric_profile(values)


def _integer_table(categories: list[str], offset: int) -> IntArray | None:
    """For categories that are all small integers (codes) or booleans: slot of every value
    ``0..max+1`` (the last one, and any larger value, is "other"); None otherwise."""
    numbers = {"True": 1, "False": 0}
    values = [numbers.get(key, int(key) if key.isdigit() else -1) for key in categories]
    if any(value < 0 or value > _MAX_TABLE for value in values):
        return None
    other = offset + len(categories)
    table = np.full(max(values, default=0) + 2, other, dtype=np.int64)
    for i, value in enumerate(values):
        table[value] = offset + i
    return table


def reference_profile(
    features: Mapping[str, Any],
    positive_rate: float,
    probabilities: npt.ArrayLike,
    threshold: float,
) -> ReferenceProfile:
    """The profile a build records: ``features`` are the training split's raw columns, the
    probabilities those of the test split."""
    proba = np.asarray(probabilities, dtype=np.float64)
    return ReferenceProfile(
        features={name: feature_profile(name, values) for name, values in features.items()},
        prediction=numeric_profile(proba),
        positive_rate=float(positive_rate),
        positive_label_rate=float(np.mean(proba >= threshold)) if proba.size else 0.0,
        mean_probability=float(np.mean(proba)) if proba.size else 0.0,
    )


class ProfileBinner:
    """Counts batches of raw columns (and probabilities) into a profile's bins, vectorised.

    One flat count vector per batch: for each feature its bins then one null slot, then the
    probability's bins. Vectors add up, so a window is the sum of its batches' vectors.
    """

    def __init__(self, profile: ReferenceProfile) -> None:
        self.profile = profile
        self.features = list(profile.features)
        self.slices: dict[str, slice] = {}
        self.null_slot: dict[str, int] = {}
        self._edges: dict[str, npt.NDArray[np.float64]] = {}
        self._slots: dict[str, dict[Any, int]] = {}
        self._tables: dict[str, IntArray] = {}
        # per feature: the reference share of each bin and then of the nulls (sums to 1)
        self._expected: dict[str, npt.NDArray[np.float64]] = {}
        offset = 0
        for name, feature in profile.features.items():
            width = len(feature.fractions)
            self.slices[name] = slice(offset, offset + width)
            self.null_slot[name] = offset + width
            present = np.asarray(feature.fractions, dtype=np.float64) * (1.0 - feature.null_rate)
            self._expected[name] = np.append(present, feature.null_rate)
            if isinstance(feature, NumericProfile):
                self._edges[name] = np.asarray(feature.edges, dtype=np.float64)
            else:
                self._slots[name] = {key: offset + i for i, key in enumerate(feature.categories)}
                table = _integer_table(feature.categories, offset)
                if table is not None:
                    self._tables[name] = table
            offset += width + 1
        width = len(profile.prediction.fractions)
        self.prediction_slice = slice(offset, offset + width)
        self._prediction_edges = np.asarray(profile.prediction.edges, dtype=np.float64)
        self.size = offset + width

    def counts(self, columns: Mapping[str, Any], probabilities: npt.ArrayLike) -> IntArray:
        """The count vector of one batch; ``columns`` maps each profiled feature to its values
        (a numpy array, a sequence, or a pandas Series; None or NaN is a null)."""
        parts: list[IntArray] = []
        out = np.zeros(self.size, dtype=np.int64)
        for name in self.features:
            values = columns[name]
            if name in self._edges:
                bins, n_null = _numeric_bins(values, self._edges[name])
                parts.append(bins + self.slices[name].start)
                out[self.null_slot[name]] += n_null
                continue
            table = self._tables.get(name)
            if table is not None and getattr(values, "dtype", np.dtype(object)).kind in "biu":
                # integer codes and booleans: one table lookup per value, no Python loop
                codes = np.maximum(np.asarray(values).astype(np.int64), 0)
                parts.append(table[np.minimum(codes, len(table) - 1)])
            else:
                self._count_categories(name, values, out)
        bins, _ = _numeric_bins(probabilities, self._prediction_edges)
        parts.append(bins + self.prediction_slice.start)
        out += np.bincount(np.concatenate(parts), minlength=self.size)
        return out

    def _count_categories(self, name: str, values: Any, out: IntArray) -> None:
        slots = self._slots[name]
        other = self.null_slot[name] - 1
        for value, count in _category_counts(values):
            slot = slots.get(value)
            if slot is None:
                key = category_key(value)
                slot = self.null_slot[name] if key is None else slots.get(key, other)
                if isinstance(value, str | int | bool) and len(slots) < _MAX_CACHED:
                    slots[value] = slot  # raw value -> slot, so the next batch skips the key
            out[slot] += count

    def feature_psi(self, name: str, counts: IntArray) -> float:
        """PSI of the feature's bins and its null bin (the slot right after them) against the
        reference's non-null shares scaled by ``1 - null_rate`` and its ``null_rate``."""
        start = self.slices[name].start
        return psi(self._expected[name], counts[start : self.null_slot[name] + 1])

    def null_ratio(self, name: str, counts: IntArray) -> float:
        nulls = int(counts[self.null_slot[name]])
        total = int(counts[self.slices[name]].sum()) + nulls
        return nulls / total if total else math.nan

    def prediction_psi(self, counts: IntArray) -> float:
        return psi(self.profile.prediction.fractions, counts[self.prediction_slice])
