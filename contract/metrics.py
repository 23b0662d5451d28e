"""Quality measures of a probability against an outcome: one implementation for training's
evaluation and the live quality monitor (``quality``).

The decision rule is ``positive when probability >= threshold`` (as
:func:`sklearn.metrics.precision_recall_curve`). Calibration is measured by the Brier score, the
log loss and the expected calibration error over ``ECE_BINS`` quantile bins (equal numbers of
events), whose points are the reliability curve. ROC-AUC and PR-AUC (average precision) are
scikit-learn's; a figure undefined on the data (an AUC with one class only) is ``nan``.

The expected figures (:func:`expected_at`) are what the probabilities alone promise, before any
outcome is known, *if* they are calibrated: see docs/quality.md for when that holds.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

__all__ = [
    "ECE_BINS",
    "FIGURES",
    "LOG_LOSS_EPSILON",
    "expected_at",
    "metrics_at",
    "reliability",
]

ECE_BINS: Final = 10
FIGURES: Final[tuple[str, ...]] = (
    "brier",
    "log_loss",
    "ece",
    "roc_auc",
    "pr_auc",
    "precision",
    "recall",
    "f1",
)
"""The figures ``metrics_at`` gives besides the reliability points, in the order they are shown."""
LOG_LOSS_EPSILON: Final = 1e-15
"""Probabilities are clipped to [eps, 1 - eps] before the log loss (a 0 or 1 stays finite)."""


def reliability(
    y_true: np.ndarray | pd.Series, proba: np.ndarray, bins: int = ECE_BINS
) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error over ``bins`` quantile bins, and the bins' points.

    Events are sorted by probability and cut into ``bins`` groups of (nearly) equal size; each
    point is the group's mean probability, its share of positives and its size. The ECE is the
    size-weighted mean of ``|mean probability - share of positives|``. Equal probabilities are
    ordered by label (negatives first), so the bins depend on the events, never on their order:
    the live monitor, which holds its sessions in another order, finds the same figure.
    """
    labels = np.asarray(y_true, dtype=np.float64)
    order = np.lexsort((labels, proba))
    points = []
    error = 0.0
    for group in np.array_split(order, min(bins, len(order))):
        mean_p, observed = float(np.mean(proba[group])), float(np.mean(labels[group]))
        error += len(group) / len(order) * abs(mean_p - observed)
        points.append({"mean_probability": mean_p, "positive_rate": observed, "n": len(group)})
    return error, points


def _both_classes(y_true: np.ndarray) -> bool:
    return 0 < int(y_true.sum()) < len(y_true)


def metrics_at(
    y_true: np.ndarray | pd.Series, proba: np.ndarray, threshold: float
) -> dict[str, Any]:
    """ROC-AUC, PR-AUC (average precision), Brier, log loss, ECE, F1/precision/recall at
    ``threshold``, and the reliability curve's points."""
    labels = np.asarray(y_true).astype(int)
    predicted = (proba >= threshold).astype(int)
    ece, points = reliability(labels, proba)
    both = _both_classes(labels)
    return {
        "roc_auc": float(roc_auc_score(labels, proba)) if both else float("nan"),
        "pr_auc": float(average_precision_score(labels, proba)) if labels.any() else float("nan"),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "brier": float(brier_score_loss(labels, proba, pos_label=1)),
        "log_loss": float(
            log_loss(labels, np.clip(proba, LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON), labels=[0, 1])
        ),
        "ece": float(ece),
        "reliability": points,
    }


def expected_at(proba: np.ndarray, threshold: float) -> dict[str, float]:
    """What calibrated probabilities promise before any outcome: the expected Brier score
    (mean ``p(1-p)``), the expected precision and recall at ``threshold`` (expected true
    positives ``sum p`` over the predicted positives, over all the expected positives), the
    expected positive rate (mean ``p``) and the predicted positive rate."""
    p = np.asarray(proba, dtype=np.float64)
    if len(p) == 0:
        nan = float("nan")
        return dict.fromkeys(
            ("brier", "precision", "recall", "positive_rate", "predicted_positive_rate"), nan
        )
    predicted = p >= threshold
    expected_tp = float(p[predicted].sum())
    expected_positives = float(p.sum())
    return {
        "brier": float(np.mean(p * (1 - p))),
        "precision": expected_tp / int(predicted.sum()) if predicted.any() else float("nan"),
        "recall": expected_tp / expected_positives if expected_positives > 0 else float("nan"),
        "positive_rate": float(np.mean(p)),
        "predicted_positive_rate": float(np.mean(predicted)),
    }
