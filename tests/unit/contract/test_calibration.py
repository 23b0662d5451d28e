"""CalibratedClassifier: the map is what it says, predict_proba works on a plain float matrix,
and the wrapped estimator becomes calibrated on data it over-states."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

from contract.calibration import CalibratedClassifier, fit_map


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    p = 1 / (1 + np.exp(-(2 * X["a"] - X["b"] - 2)))
    return X, (rng.random(n) < p).astype(int)


def test_isotonic_map_is_isotonic_regression_with_clipping() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(300)
    y = (rng.random(300) < scores**2).astype(int)
    mapping = fit_map("isotonic", scores, y)
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(scores, y)
    probe = np.array([-0.5, 0.0, 0.1, 0.37, 0.9, 1.0, 1.5])
    np.testing.assert_allclose(mapping(probe), reference.predict(probe), rtol=0, atol=1e-12)


def test_sigmoid_map_is_monotone_and_fixes_overstated_scores() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random(5000)
    y = (rng.random(5000) < truth).astype(int)
    overstated = np.sqrt(truth)  # always above the true probability
    mapping = fit_map("sigmoid", overstated, y)
    calibrated = mapping(overstated)
    assert np.all(np.diff(mapping(np.linspace(0.01, 0.99, 50))) > 0)
    assert brier_score_loss(y, calibrated) < brier_score_loss(y, overstated)
    assert calibrated.mean() == pytest.approx(y.mean(), abs=0.01)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_weighted_model_becomes_calibrated_and_scores_matrices(method: str) -> None:
    X, y = _data(4000, 2)
    weighted = LogisticRegression(class_weight="balanced")
    model = CalibratedClassifier(weighted, method=method, cv=5).fit(X, y)
    X_test, y_test = _data(4000, 3)
    raw = weighted.fit(X, y).predict_proba(X_test)[:, 1]
    proba = model.predict_proba(X_test)
    assert brier_score_loss(y_test, proba[:, 1]) < brier_score_loss(y_test, raw)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # The fast path hands it the encoded float matrix, not a frame: same numbers.
    np.testing.assert_array_equal(model.predict_proba(X_test.to_numpy()), proba)
    inner = model.estimator_.predict_proba(X_test)[:, 1]
    np.testing.assert_array_equal(model.calibrate(inner), proba[:, 1])
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X_test), proba)


def test_from_fitted_reuses_the_estimator_and_out_of_fold_scores() -> None:
    X, y = _data(1000, 4)
    fitted = LogisticRegression().fit(X, y)
    oof = np.clip(fitted.predict_proba(X)[:, 1] + 0.1, 0, 1)
    model = CalibratedClassifier.from_fitted(fitted, "isotonic", oof, y)
    assert model.estimator_ is fitted
    assert list(model.classes_) == [0, 1]
    expected = fit_map("isotonic", oof, y)(fitted.predict_proba(X)[:, 1])
    np.testing.assert_array_equal(model.predict_proba(X)[:, 1], expected)
    with pytest.raises(NotFittedError):
        CalibratedClassifier(LogisticRegression()).predict_proba(X)
