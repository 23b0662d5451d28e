"""contract.metrics: hand-computed values, and scikit-learn's own functions on the same arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from contract.metrics import expected_at, metrics_at, reliability

Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.6, 0.4, 0.9])


def test_hand_computed_values() -> None:
    m = metrics_at(Y, P, 0.5)
    # Brier: (0.01 + 0.36 + 0.36 + 0.01) / 4
    assert m["brier"] == pytest.approx(0.185, abs=1e-12)
    # log loss: -(ln 0.9 + ln 0.4 + ln 0.4 + ln 0.9) / 4
    assert m["log_loss"] == pytest.approx(-(2 * math.log(0.9) + 2 * math.log(0.4)) / 4)
    # at 0.5: predicted 0,1,0,1 -> tp 1, fp 1, fn 1
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    # ROC-AUC: of the 4 (positive, negative) pairs, 3 are ordered right
    assert m["roc_auc"] == pytest.approx(0.75)
    # average precision: positives at ranks 1 (0.9) and 3 (0.4): (1/1 + 2/3) / 2
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)


def test_ece_over_quantile_bins_by_hand() -> None:
    # Two bins of two sorted events: {0.1, 0.4} (1 positive), {0.6, 0.9} (1 positive)
    ece, points = reliability(Y, P, bins=2)
    assert ece == pytest.approx(0.5 * abs(0.25 - 0.5) + 0.5 * abs(0.75 - 0.5))
    assert [p["n"] for p in points] == [2, 2]


def test_agrees_with_scikit_learn_on_random_arrays() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 2000)
    y = (rng.uniform(0, 1, 2000) < p).astype(int)
    m = metrics_at(y, p, 0.35)
    predicted = (p >= 0.35).astype(int)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["precision"] == pytest.approx(precision_score(y, predicted), abs=1e-12)
    assert m["recall"] == pytest.approx(recall_score(y, predicted), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, predicted), abs=1e-12)


def test_one_class_gives_nan_aucs_not_an_error() -> None:
    m = metrics_at(np.zeros(4, dtype=int), P, 0.5)
    assert math.isnan(m["roc_auc"])
    assert math.isnan(m["pr_auc"])
    assert m["brier"] == pytest.approx(float(np.mean(P**2)))


def test_expected_figures_by_hand() -> None:
    e = expected_at(P, 0.5)
    assert e["brier"] == pytest.approx(np.mean(P * (1 - P)))
    # predicted positives 0.6 and 0.9: expected tp 1.5 of 2 predicted, of 2.0 expected positives
    assert e["precision"] == pytest.approx(0.75)
    assert e["recall"] == pytest.approx(0.75)
    assert e["positive_rate"] == pytest.approx(0.5)
    assert e["predicted_positive_rate"] == pytest.approx(0.5)
    assert all(math.isnan(v) for v in expected_at(np.array([]), 0.5).values())


def test_expected_brier_is_the_realised_one_when_outcomes_follow_the_probabilities() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 1, 200_000)
    y = (rng.uniform(0, 1, len(p)) < p).astype(int)
    assert expected_at(p, 0.5)["brier"] == pytest.approx(brier_score_loss(y, p), abs=2e-3)
    assert expected_at(p, 0.5)["precision"] == pytest.approx(
        precision_score(y, (p >= 0.5).astype(int)), abs=5e-3
    )


def test_ece_does_not_depend_on_the_order_of_the_events() -> None:
    # Ties across a bin boundary with different labels: the order of rows must not matter.
    y = np.array([1, 0, 1, 0, 0, 1])
    p = np.array([0.5, 0.5, 0.5, 0.5, 0.2, 0.8])
    shuffled = np.array([3, 0, 5, 1, 4, 2])
    assert reliability(y, p, bins=2)[0] == reliability(y[shuffled], p[shuffled], bins=2)[0]
