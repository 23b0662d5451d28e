"""Calibrated probabilities, chosen by cross-validation.

The search weights the classes (it ranks well, but its scores over-state purchases). Candidates
for the probability the artifact returns, each scored on out-of-fold predictions of the training
split (the search's stratified folds):

- ``unweighted``: the same configuration trained without class weights;
- ``isotonic`` / ``sigmoid``: the weighted model followed by a map fitted on its out-of-fold
  scores (``contract.calibration.CalibratedClassifier``); its out-of-fold probabilities come from
  maps cross-fitted on the other folds' scores;
- ``none``: the weighted model as it is, recorded for comparison.

The lowest CV Brier score wins; the winner's pipeline is the artifact, so
``joblib.load(...).predict_proba`` stays all scoring needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from contract.calibration import CalibratedClassifier, fit_map

logger = logging.getLogger(__name__)

__all__ = [
    "CANDIDATES",
    "Calibration",
    "Candidate",
    "candidate_oof",
    "choose_calibration",
    "oof_probabilities",
    "unweighted",
]

Candidate = Literal["none", "unweighted", "isotonic", "sigmoid"]
CANDIDATES: Final[tuple[Candidate, ...]] = ("none", "unweighted", "isotonic", "sigmoid")


@dataclass(frozen=True)
class Calibration:
    method: Candidate
    pipeline: Pipeline  # fitted on the whole training split
    oof_proba: np.ndarray  # the method's out-of-fold probabilities of the training split
    scores: dict[str, dict[str, float]]  # CV brier and log loss of every candidate


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


def unweighted(pipeline: Pipeline) -> Pipeline:
    """An unfitted copy of ``pipeline`` whose estimator does not weight the classes."""
    params = pipeline.get_params()
    changes: dict[str, object] = {}
    if "model__scale_pos_weight" in params:
        changes["model__scale_pos_weight"] = 1.0
    if "model__class_weight" in params:
        changes["model__class_weight"] = None
    return clone(pipeline).set_params(**changes)


def candidate_oof(
    method: Candidate,
    unfitted: Pipeline,
    raw_oof: np.ndarray,
    X: pd.DataFrame,
    y: pd.Series,
    cv: StratifiedKFold,
    n_jobs: int = 2,
) -> np.ndarray:
    """Out-of-fold probabilities of the training split under ``method``.

    ``raw_oof`` are the weighted pipeline's out-of-fold probabilities (``unfitted``'s).
    """
    if method == "none":
        return raw_oof
    if method == "unweighted":
        return oof_probabilities(unweighted(unfitted), X, y, cv, n_jobs=n_jobs)
    labels = np.asarray(y)
    out = np.empty_like(raw_oof)
    for train_rows, test_rows in cv.split(X, labels):
        calibration_map = fit_map(method, raw_oof[train_rows], labels[train_rows])
        out[test_rows] = calibration_map(raw_oof[test_rows])
    return out


def choose_calibration(
    fitted: Pipeline,
    unfitted: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    cv: StratifiedKFold,
    n_jobs: int = 2,
) -> Calibration:
    """Score every candidate on out-of-fold predictions; return the best one, fitted."""
    raw_oof = oof_probabilities(unfitted, X, y, cv, n_jobs=n_jobs)
    oof = {
        method: candidate_oof(method, unfitted, raw_oof, X, y, cv, n_jobs=n_jobs)
        for method in CANDIDATES
    }
    scores: dict[str, dict[str, float]] = {
        method: {
            "brier": float(brier_score_loss(y, proba)),
            "log_loss": float(log_loss(y, np.clip(proba, 1e-15, 1 - 1e-15), labels=[0, 1])),
        }
        for method, proba in oof.items()
    }
    best: Candidate = min(CANDIDATES, key=lambda method: scores[method]["brier"])
    logger.info(
        "calibration chosen=%s cv_brier=%s",
        best,
        {method: round(score["brier"], 4) for method, score in scores.items()},
    )
    if best == "none":
        pipeline = fitted
    elif best == "unweighted":
        pipeline = unweighted(unfitted).fit(X, y)
    else:
        model = CalibratedClassifier.from_fitted(fitted.steps[-1][1], best, raw_oof, y)
        pipeline = Pipeline([*fitted.steps[:-1], ("model", model)])
        pipeline.set_output(transform="pandas")
    return Calibration(best, pipeline, oof[best], scores)
