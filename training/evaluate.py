"""Threshold choice, metrics and calibration measures.

The decision threshold is chosen on out-of-fold (calibrated) predictions of the *training* split
(the same stratified folds as the search) by a :class:`ThresholdRule`: the best F1 (default), the
highest recall at a precision floor, or the lowest cost of errors. The test split is only ever
scored by the final pipeline, once, after the threshold is fixed. The rule is ``positive when
probability >= threshold``, matching :func:`sklearn.metrics.precision_recall_curve`.

The measures themselves (Brier, log loss, ECE over quantile bins, precision/recall/F1, ROC-AUC,
PR-AUC) are ``contract.metrics``': one implementation for training and the live quality monitor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from contract.metrics import ECE_BINS, metrics_at, reliability
from training.calibrate import choose_calibration

logger = logging.getLogger(__name__)

__all__ = [
    "ECE_BINS",
    "F1_RULE",
    "Evaluation",
    "ThresholdRule",
    "choose_threshold",
    "evaluate",
    "metrics_at",
    "reliability",
]


@dataclass(frozen=True)
class Evaluation:
    pipeline: Pipeline  # the final (calibrated) pipeline that is written as the artifact
    calibration: dict[str, Any]  # chosen method and the CV scores of every candidate
    threshold: float
    threshold_rule: str
    cv: dict[str, Any]
    test: dict[str, Any]
    oof_proba: np.ndarray
    test_proba: np.ndarray


@dataclass(frozen=True)
class ThresholdRule:
    """``f1``, ``precision=<p>`` (highest recall with precision >= p) or ``cost=<fp>:<fn>``
    (lowest ``fp * false positives + fn * false negatives``)."""

    kind: Literal["f1", "precision", "cost"]
    precision: float = 0.0
    fp_cost: float = 1.0
    fn_cost: float = 1.0

    @classmethod
    def parse(cls, text: str) -> ThresholdRule:
        name, _, value = text.strip().partition("=")
        try:
            if name == "f1" and not value:
                return cls("f1")
            if name == "precision":
                precision = float(value)
                if 0.0 < precision <= 1.0:
                    return cls("precision", precision=precision)
            if name == "cost":
                fp, fn = (float(part) for part in value.split(":"))
                if fp > 0 and fn > 0:
                    return cls("cost", fp_cost=fp, fn_cost=fn)
        except ValueError:
            pass
        raise ValueError(
            f"threshold rule {text!r}: expected f1, precision=<p> with 0 < p <= 1, or "
            "cost=<fp>:<fn> with two positive costs"
        )

    def __str__(self) -> str:
        if self.kind == "precision":
            return f"precision={self.precision:g}"
        if self.kind == "cost":
            return f"cost={self.fp_cost:g}:{self.fn_cost:g}"
        return "f1"


F1_RULE: Final[ThresholdRule] = ThresholdRule("f1")


def choose_threshold(
    y_true: np.ndarray | pd.Series, proba: np.ndarray, rule: ThresholdRule | None = None
) -> float:
    """The probability threshold ``rule`` prefers (default F1; the lowest one on ties)."""
    rule = rule or F1_RULE
    if rule.kind == "cost":
        return _cheapest_threshold(y_true, proba, rule.fp_cost, rule.fn_cost)
    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    if rule.kind == "precision":
        # recall falls as the threshold rises: the first point meeting the floor has the most.
        meets = np.flatnonzero(precision[:-1] >= rule.precision)
        if len(meets) == 0:
            logger.warning(
                "no threshold reaches precision %g; using the most precise", rule.precision
            )
            return float(thresholds[int(np.argmax(precision[:-1]))])
        return float(thresholds[int(meets[0])])
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


def _cheapest_threshold(
    y_true: np.ndarray | pd.Series, proba: np.ndarray, fp_cost: float, fn_cost: float
) -> float:
    false_positive_rate, true_positive_rate, thresholds = roc_curve(
        y_true, proba, drop_intermediate=False
    )
    labels = np.asarray(y_true)
    positives, negatives = int(labels.sum()), int(len(labels) - labels.sum())
    cost = (
        fp_cost * false_positive_rate * negatives + fn_cost * (1 - true_positive_rate) * positives
    )
    # thresholds[0] is +inf (nothing positive): not a usable threshold.
    return float(thresholds[1 + int(np.argmin(cost[1:]))])


def evaluate(
    fitted: Pipeline,
    unfitted: Pipeline,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    cv: StratifiedKFold,
    n_jobs: int = 2,
    rule: ThresholdRule | None = None,
) -> Evaluation:
    """Choose the calibration and then the threshold on out-of-fold training predictions, then
    score the test split once with the final pipeline."""
    rule = rule or F1_RULE
    calibration = choose_calibration(fitted, unfitted, X_train, y_train, cv, n_jobs=n_jobs)
    oof = calibration.oof_proba
    threshold = choose_threshold(y_train, oof, rule)
    cv_metrics = metrics_at(y_train, oof, threshold)
    test_proba = np.asarray(calibration.pipeline.predict_proba(X_test)[:, 1], dtype=np.float64)
    test_metrics = metrics_at(y_test, test_proba, threshold)
    logger.info(
        "evaluated calibration=%s threshold=%.4f rule=%s cv_pr_auc=%.4f test_roc_auc=%.4f "
        "test_pr_auc=%.4f test_brier=%.4f test_ece=%.4f",
        calibration.method,
        threshold,
        rule,
        cv_metrics["pr_auc"],
        test_metrics["roc_auc"],
        test_metrics["pr_auc"],
        test_metrics["brier"],
        test_metrics["ece"],
    )
    return Evaluation(
        pipeline=calibration.pipeline,
        calibration={"method": calibration.method, "cv_scores": calibration.scores},
        threshold=threshold,
        threshold_rule=str(rule),
        cv=cv_metrics,
        test=test_metrics,
        oof_proba=oof,
        test_proba=test_proba,
    )
