"""Calibrated probabilities: a fitted classifier followed by a monotone map of its score.

Training may choose (by cross-validation, see ``training.calibrate``) to end the pipeline with a
:class:`CalibratedClassifier`: the class-weighted estimator, fitted on the whole training split,
plus an isotonic or sigmoid map fitted on that estimator's out-of-fold scores. It lives in the
contract because it is pickled inside the artifact and the consumer must be able to load it.

It is a plain estimator: ``predict_proba(matrix)`` takes the encoded float matrix like any
scikit-learn classifier; ``calibrate(scores)`` is the map alone, for a scoring path that computes
the inner estimator's scores itself.
"""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.utils.validation import check_is_fitted

__all__ = ["METHODS", "CalibratedClassifier", "CalibrationMap", "Method", "fit_map"]

Method = Literal["isotonic", "sigmoid"]
METHODS: Final[tuple[Method, ...]] = get_args(Method)
_LOGIT_CLIP: Final[float] = 1e-6
FloatArray = npt.NDArray[np.float64]


def _logit(scores: npt.ArrayLike) -> FloatArray:
    p = np.clip(np.asarray(scores, dtype=np.float64), _LOGIT_CLIP, 1 - _LOGIT_CLIP)
    return np.asarray(np.log(p / (1 - p)), dtype=np.float64)


class CalibrationMap:
    """A fitted monotone map from a score in [0, 1] to a probability.

    ``isotonic``: piecewise linear through the isotonic fit's points, flat outside them (what
    ``IsotonicRegression(out_of_bounds="clip").predict`` computes). ``sigmoid``:
    ``1 / (1 + exp(-(slope * logit(score) + intercept)))`` (Platt scaling on the log-odds).
    """

    def __init__(self, method: Method, x: FloatArray, y: FloatArray) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method: Method = method
        self.x = x  # isotonic: score knots; sigmoid: [slope]
        self.y = y  # isotonic: probabilities at the knots; sigmoid: [intercept]

    def __call__(self, scores: npt.ArrayLike) -> FloatArray:
        if self.method == "isotonic":
            return np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)
        z = self.x[0] * _logit(scores) + self.y[0]
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def fit_map(method: Method, scores: npt.ArrayLike, y: npt.ArrayLike) -> CalibrationMap:
    """Fit the map from ``scores`` (out-of-fold positive-class scores) to the labels ``y``."""
    s = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(y).astype(np.float64)
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, labels)
        return CalibrationMap(
            method,
            np.asarray(iso.X_thresholds_, dtype=np.float64),
            np.asarray(iso.y_thresholds_, dtype=np.float64),
        )
    if method == "sigmoid":
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(s).reshape(-1, 1), labels)
        return CalibrationMap(
            method,
            np.array([platt.coef_[0, 0]], dtype=np.float64),
            np.array([platt.intercept_[0]], dtype=np.float64),
        )
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


class CalibratedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """``estimator`` (binary) whose positive-class score goes through a :class:`CalibrationMap`.

    ``fit(X, y)`` fits the map on ``cv``-fold out-of-fold scores of ``estimator`` and then
    ``estimator`` on all of ``X``. Training builds it with :meth:`from_fitted` instead, reusing
    the fitted estimator and out-of-fold scores it already has.
    """

    def __init__(self, estimator: Any = None, method: Method = "isotonic", cv: int = 5) -> None:
        self.estimator = estimator
        self.method = method
        self.cv = cv

    @classmethod
    def from_fitted(
        cls, estimator: Any, method: Method, oof_scores: npt.ArrayLike, y: npt.ArrayLike
    ) -> CalibratedClassifier:
        """Wrap an already fitted ``estimator``; the map is fitted on ``oof_scores``."""
        calibrated = cls(estimator=estimator, method=method)
        calibrated.estimator_ = estimator
        calibrated.map_ = fit_map(method, oof_scores, y)
        calibrated.classes_ = estimator.classes_
        if hasattr(estimator, "n_features_in_"):
            calibrated.n_features_in_ = estimator.n_features_in_
        if hasattr(estimator, "feature_names_in_"):
            calibrated.feature_names_in_ = estimator.feature_names_in_
        return calibrated

    def fit(self, X: Any, y: Any) -> CalibratedClassifier:
        oof = cross_val_predict(clone(self.estimator), X, y, cv=self.cv, method="predict_proba")
        self.map_ = fit_map(self.method, oof[:, 1], y)
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def calibrate(self, scores: npt.ArrayLike) -> FloatArray:
        """The calibrated probability of each positive-class score of the inner estimator."""
        check_is_fitted(self, "map_")
        return self.map_(scores)

    def predict_proba(self, X: Any) -> FloatArray:
        check_is_fitted(self, "estimator_")
        positive = self.calibrate(self.estimator_.predict_proba(X)[:, 1])
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: Any) -> Any:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]
