"""Threshold choice and metrics.

The decision threshold is chosen on out-of-fold predictions of the *training* split (the same
stratified folds as the search), maximising F1; the test split is only ever scored by the refit
pipeline, once, after the threshold is fixed. The rule is ``positive when probability >=
threshold``, matching :func:`sklearn.metrics.precision_recall_curve`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)

__all__ = ["Evaluation", "choose_threshold", "evaluate", "metrics_at", "oof_probabilities"]


@dataclass(frozen=True)
class Evaluation:
    threshold: float
    cv: dict[str, float]
    test: dict[str, float]
    oof_proba: np.ndarray
    test_proba: np.ndarray


def oof_probabilities(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    cv: StratifiedKFold,
    n_jobs: int = 2,
) -> np.ndarray:
    """Positive-class probabilities for every training row from the fold that did not see it."""
    proba = cross_val_predict(clone(pipeline), X, y, cv=cv, method="predict_proba", n_jobs=n_jobs)
    return np.asarray(proba[:, 1], dtype=np.float64)


def choose_threshold(y_true: np.ndarray | pd.Series, proba: np.ndarray) -> float:
    """The probability threshold with the highest F1 (the lowest such threshold on ties)."""
    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    # The last (precision=1, recall=0) point has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall,
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    return float(thresholds[int(np.argmax(f1))])


def metrics_at(
    y_true: np.ndarray | pd.Series, proba: np.ndarray, threshold: float
) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), Brier, and F1/precision/recall at ``threshold``."""
    predicted = (proba >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "pr_auc": float(average_precision_score(y_true, proba)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y_true, proba)),
    }


def evaluate(
    fitted: Pipeline,
    unfitted: Pipeline,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    cv: StratifiedKFold,
    n_jobs: int = 2,
) -> Evaluation:
    """Choose the threshold on out-of-fold training predictions, then score the test split."""
    oof = oof_probabilities(unfitted, X_train, y_train, cv, n_jobs=n_jobs)
    threshold = choose_threshold(y_train, oof)
    cv_metrics = metrics_at(y_train, oof, threshold)
    test_proba = np.asarray(fitted.predict_proba(X_test)[:, 1], dtype=np.float64)
    test_metrics = metrics_at(y_test, test_proba, threshold)
    logger.info(
        "evaluated threshold=%.4f cv_pr_auc=%.4f test_roc_auc=%.4f test_pr_auc=%.4f test_f1=%.4f",
        threshold,
        cv_metrics["pr_auc"],
        test_metrics["roc_auc"],
        test_metrics["pr_auc"],
        test_metrics["f1"],
    )
    return Evaluation(threshold, cv_metrics, test_metrics, oof, test_proba)
