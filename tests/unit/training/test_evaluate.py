"""Threshold choice and metrics; the threshold never sees the test split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from contract.pipeline import build_pipeline
from training.data import deduplicate, split_features_label
from training.evaluate import ThresholdRule, choose_threshold, evaluate, metrics_at, reliability
from training.synthetic import generate_sessions


def _brute_force_f1_threshold(y: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    best_t, best_f1 = 0.0, -1.0
    for t in np.unique(proba):
        f1 = f1_score(y, (proba >= t).astype(int), zero_division=0)
        if f1 > best_f1:
            best_t, best_f1 = float(t), float(f1)
    return best_t, best_f1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_choose_threshold_maximises_f1(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(400) < 0.2).astype(int)
    proba = np.clip(0.35 * y + rng.normal(0.3, 0.2, size=400), 0, 1)
    threshold = choose_threshold(y, proba)
    expected_t, expected_f1 = _brute_force_f1_threshold(y, proba)
    assert threshold == pytest.approx(expected_t)
    assert metrics_at(y, proba, threshold)["f1"] == pytest.approx(expected_f1)


def test_metrics_at_threshold() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    proba = np.array([0.1, 0.6, 0.7, 0.4, 0.9, 0.2])
    metrics = metrics_at(y, proba, 0.5)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["roc_auc"] == pytest.approx(8 / 9)
    assert metrics["brier"] == pytest.approx(np.mean((proba - y) ** 2))
    log_loss = -np.mean(y * np.log(proba) + (1 - y) * np.log(1 - proba))
    assert metrics["log_loss"] == pytest.approx(log_loss)
    assert set(metrics) == {
        "roc_auc", "pr_auc", "f1", "precision", "recall", "brier", "log_loss", "ece",
        "reliability",
    }  # fmt: skip


def test_ece_over_quantile_bins_by_hand() -> None:
    # Two bins of two events: mean probabilities 0.15 and 0.8, observed rates 0 and 1.
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.2, 0.7, 0.9])
    ece, points = reliability(y, proba, bins=2)
    assert ece == pytest.approx(0.5 * 0.15 + 0.5 * 0.2)
    assert points == [
        {"mean_probability": pytest.approx(0.15), "positive_rate": 0.0, "n": 2},
        {"mean_probability": pytest.approx(0.8), "positive_rate": 1.0, "n": 2},
    ]


def test_threshold_rules_by_brute_force() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.2).astype(int)
    proba = np.clip(0.35 * y + rng.normal(0.3, 0.2, size=500), 0, 1)
    candidates = np.unique(proba)
    # precision=0.8: the lowest threshold (most recall) whose precision reaches 0.8
    precise = [t for t in candidates if (y[proba >= t] == 1).mean() >= 0.8]
    assert choose_threshold(y, proba, ThresholdRule.parse("precision=0.8")) == min(precise)
    # cost=1:5: the threshold with the lowest 1 * FP + 5 * FN
    costs = [
        ((proba >= t) & (y == 0)).sum() + 5 * ((proba < t) & (y == 1)).sum() for t in candidates
    ]
    cheapest = choose_threshold(y, proba, ThresholdRule.parse("cost=1:5"))
    assert cheapest == pytest.approx(candidates[int(np.argmin(costs))])
    assert str(ThresholdRule.parse("cost=1:5")) == "cost=1:5"
    for bad in ("f2", "precision=0", "precision=x", "cost=1", "cost=-1:2", "f1=3"):
        with pytest.raises(ValueError, match="threshold rule"):
            ThresholdRule.parse(bad)


def test_threshold_is_independent_of_the_test_split() -> None:
    frame = deduplicate(generate_sessions(1200, seed=5))
    X, y = split_features_label(frame)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    unfitted = build_pipeline(LogisticRegression(class_weight="balanced", max_iter=2000), "full")
    fitted = build_pipeline(LogisticRegression(class_weight="balanced", max_iter=2000), "full").fit(
        X_train, y_train
    )
    first = evaluate(fitted, unfitted, X_train, y_train, X_test, y_test, cv, n_jobs=1)
    # Scramble the test labels: if the threshold looked at them it would move.
    flipped = pd.Series(1 - y_test.to_numpy(), index=y_test.index)
    second = evaluate(fitted, unfitted, X_train, y_train, X_test, flipped, cv, n_jobs=1)
    assert first.threshold == second.threshold
    assert first.cv == second.cv
    assert first.test != second.test
    assert first.threshold == choose_threshold(y_train, first.oof_proba)
    assert first.calibration["method"] in {"none", "unweighted", "isotonic", "sigmoid"}
    np.testing.assert_allclose(
        first.pipeline.predict_proba(X_test)[:, 1], first.test_proba, rtol=0, atol=0
    )
    assert len(first.oof_proba) == len(X_train)
