"""The paired bootstrap of two builds' figures on the same labelled rows, vectorised.

Each resample draws ``n`` row indices with replacement; both builds are measured on the *same*
indices, so the difference of a figure between them is measured on the same sessions, and what
the two have in common (which sessions happen to be easy) cancels out. The percentile interval
of those differences is the figure's confidence interval.

The figures are the ones ``contract.metrics.metrics_at`` computes, rewritten over a whole block
of resamples at once (arrays of shape ``(resamples, n)``): the same definitions, ties included,
so on the identity resample they equal ``metrics_at`` to rounding (a unit test holds them to
it). ROC-AUC and PR-AUC group the rows by distinct probability (one ``bincount`` per block):
ROC-AUC is the Mann-Whitney statistic with ties counted one half, PR-AUC is scikit-learn's
average precision, ``sum over distinct thresholds of (recall step) x precision``. The ECE sorts
each resample by the build's own ``(probability, label)`` order and cuts it into the same
quantile bins as ``contract.metrics.reliability``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from contract.metrics import ECE_BINS, FIGURES, LOG_LOSS_EPSILON

__all__ = [
    "BLOCK",
    "METRICS",
    "Interval",
    "ResampleScorer",
    "interval",
    "paired_differences",
]

METRICS: Final[tuple[str, ...]] = FIGURES
"""The figures measured on every resample (``metrics_at``'s, without the reliability points)."""
BLOCK: Final[int] = 200
"""Resamples computed at once: bounds the memory (a few arrays of ``BLOCK x n``)."""

Floats = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]


class ResampleScorer:
    """One build's probabilities and threshold on the labelled rows; ``measure(indices)`` gives
    every figure of :data:`METRICS` for each resample (row of ``indices``)."""

    def __init__(self, labels: npt.ArrayLike, proba: npt.ArrayLike, threshold: float) -> None:
        y = np.asarray(labels).astype(np.int64)
        p = np.asarray(proba, dtype=np.float64)
        self._n = len(y)
        self._y = y
        clipped = np.clip(p, LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON)
        self._squared = (p - y) ** 2
        self._log_loss = -(y * np.log(clipped) + (1 - y) * np.log1p(-clipped))
        predicted = p >= threshold
        self._true_positive = (predicted & (y == 1)).astype(np.float64)
        self._predicted = predicted.astype(np.float64)
        # Rows in contract.metrics.reliability's order: by probability, then label.
        order = np.lexsort((y, p))
        self._rank = np.empty(self._n, dtype=np.intp)
        self._rank[order] = np.arange(self._n)
        self._p_by_rank = p[order]
        self._y_by_rank = y[order].astype(np.float64)
        sizes = [len(part) for part in np.array_split(np.arange(self._n), min(ECE_BINS, self._n))]
        self._bin_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        # Distinct probabilities, ascending: the thresholds of the ROC and PR curves.
        _, self._group = np.unique(p, return_inverse=True)
        self._groups = int(self._group.max()) + 1 if self._n else 0

    def measure(self, indices: Indices) -> dict[str, Floats]:
        """Every figure for each row of ``indices`` (shape ``(resamples, n)``)."""
        y = self._y[indices]
        positives = y.sum(axis=1).astype(np.float64)
        negatives = self._n - positives
        true_positive = self._true_positive[indices].sum(axis=1)
        predicted = self._predicted[indices].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(predicted > 0, true_positive / predicted, 0.0)
            recall = np.where(positives > 0, true_positive / positives, 0.0)
            f1_denominator = predicted + positives  # 2 tp + fp + fn
            f1 = np.where(f1_denominator > 0, 2 * true_positive / f1_denominator, 0.0)
        roc_auc, pr_auc = self._ranking(indices, y, positives, negatives)
        return {
            "brier": self._squared[indices].mean(axis=1),
            "log_loss": self._log_loss[indices].mean(axis=1),
            "ece": self._ece(indices),
            "roc_auc": roc_auc,
            "pr_auc": pr_auc,
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }

    def _ece(self, indices: Indices) -> Floats:
        ranks = np.sort(self._rank[indices], axis=1)
        proba = np.add.reduceat(self._p_by_rank[ranks], self._bin_starts, axis=1)
        labels = np.add.reduceat(self._y_by_rank[ranks], self._bin_starts, axis=1)
        ece: Floats = np.abs(proba - labels).sum(axis=1) / self._n
        return ece

    def _ranking(
        self, indices: Indices, y: npt.NDArray[np.int64], positives: Floats, negatives: Floats
    ) -> tuple[Floats, Floats]:
        resamples = len(indices)
        cells = (np.arange(resamples)[:, None] * self._groups + self._group[indices]).ravel()
        size = resamples * self._groups
        pos = np.bincount(cells, weights=y.ravel(), minlength=size).reshape(resamples, -1)
        rows = np.bincount(cells, minlength=size).reshape(resamples, -1).astype(np.float64)
        neg = rows - pos
        # ROC-AUC: each positive beats the negatives below its probability, ties count 1/2.
        below = np.cumsum(neg, axis=1) - neg
        wins = (pos * (below + 0.5 * neg)).sum(axis=1)
        # Average precision: thresholds from the highest probability down.
        tp_at = np.cumsum(pos[:, ::-1], axis=1)
        rows_at = np.cumsum(rows[:, ::-1], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision_at = np.where(rows_at > 0, tp_at / rows_at, 0.0)
            roc_auc = np.where(
                (positives > 0) & (negatives > 0), wins / (positives * negatives), np.nan
            )
            pr_auc = np.where(
                positives > 0, (pos[:, ::-1] * precision_at).sum(axis=1) / positives, np.nan
            )
        return roc_auc, pr_auc


def paired_differences(
    champion: ResampleScorer,
    challenger: ResampleScorer,
    rows: int,
    resamples: int,
    seed: int,
    block: int = BLOCK,
    on_block: Callable[[int], None] | None = None,
) -> dict[str, Floats]:
    """``challenger - champion`` of every figure on ``resamples`` paired resamples of ``rows``
    rows (the same indices for both), drawn from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[Floats]] = {name: [] for name in METRICS}
    done = 0
    while done < resamples:
        count = min(block, resamples - done)
        indices = rng.integers(0, rows, size=(count, rows), dtype=np.intp)
        ours, theirs = champion.measure(indices), challenger.measure(indices)
        for name in METRICS:
            parts[name].append(theirs[name] - ours[name])
        done += count
        if on_block is not None:
            on_block(done)
    return {name: np.concatenate(parts[name]) for name in METRICS}


@dataclass(frozen=True)
class Interval:
    """A percentile interval of bootstrap differences, and how many resamples had none (an AUC
    of a resample with one class only)."""

    lower: float
    upper: float
    undefined: int


def interval(differences: Floats, confidence: float) -> Interval:
    """The central ``confidence`` percentile interval of the defined differences."""
    defined = differences[np.isfinite(differences)]
    undefined = len(differences) - len(defined)
    if not len(defined):
        return Interval(float("nan"), float("nan"), undefined)
    tail = (1 - confidence) / 2 * 100
    lower, upper = np.percentile(defined, [tail, 100 - tail])
    return Interval(float(lower), float(upper), undefined)
