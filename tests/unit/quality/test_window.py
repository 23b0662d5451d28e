"""quality.window: the figures of the last N labelled sessions, per build, pairs, partitions."""

from __future__ import annotations

import numpy as np
import pytest

from contract.join import Judgement, Outcome
from contract.metrics import expected_at, metrics_at
from quality.window import PRIMARY, SHADOW, LabelledWindow, Scored

A = Scored(0.0, 0.5, "build-a", "full")


def judged(session: str, time_ms: int, label: bool | None, **held: float) -> Judgement[Scored]:
    builds = {PRIMARY: "build-a", SHADOW: "build-b"}
    scores = {role: Scored(p, 0.5, builds[role], "full") for role, p in held.items()}
    times = dict.fromkeys(scores, time_ms)
    outcome = None if label is None else Outcome(time_ms, label, time_ms)
    return Judgement(session, scores, times, label, time_ms, outcome)


def test_figures_are_the_contract_metrics_of_the_last_n() -> None:
    rng = np.random.default_rng(1)
    window = LabelledWindow(size=50)
    p = rng.uniform(size=80)
    y = rng.uniform(size=80) < p
    for i in range(80):
        window.add(i % 2, judged(f"s{i:03d}", i, bool(y[i]), primary=float(p[i])))
    figures = window.figures()[(PRIMARY, "build-a", "full")]
    assert figures.labels == 50
    expected = metrics_at(y[30:].astype(int), p[30:], 0.5)
    for name in ("brier", "ece", "pr_auc", "roc_auc", "precision", "recall"):
        assert figures.live[name] == pytest.approx(expected[name], abs=1e-12)
    assert figures.expected["brier"] == pytest.approx(expected_at(p[30:], 0.5)["brier"])
    assert figures.live["positive_rate"] == pytest.approx(float(np.mean(y[30:])))


def test_unknown_outcomes_stay_out_and_a_dropped_partition_takes_its_sessions() -> None:
    window = LabelledWindow(size=100)
    window.add(0, judged("a", 1, True, primary=0.9))
    window.add(0, judged("b", 2, None, primary=0.1))
    window.add(1, judged("c", 3, False, primary=0.2))
    assert window.figures()[(PRIMARY, "build-a", "full")].labels == 2
    window.drop(1)
    assert window.figures()[(PRIMARY, "build-a", "full")].labels == 1


def test_primary_and_shadow_on_the_same_sessions() -> None:
    window = LabelledWindow(size=100)
    window.add(0, judged("a", 1, True, primary=0.9, shadow=0.4))  # labels disagree
    window.add(0, judged("b", 2, False, primary=0.1, shadow=0.2))
    window.add(0, judged("c", 3, True, primary=0.7))  # primary only: not paired
    (pair,) = window.pair_figures().items()
    key, figures = pair
    assert key == ("build-a", "full", "build-b", "full")
    assert figures.labels == 2
    assert figures.agreement == pytest.approx(0.5)
    assert figures.primary["brier"] == pytest.approx((0.1**2 + 0.1**2) / 2)
    assert figures.shadow["brier"] == pytest.approx((0.6**2 + 0.2**2) / 2)
    assert window.figures()[(SHADOW, "build-b", "full")].labels == 2


def test_the_estimate_before_outcomes_uses_the_recent_scores() -> None:
    window = LabelledWindow(size=3)
    for i, p in enumerate([0.9, 0.1, 0.2, 0.6]):
        window.add_score(i % 2, PRIMARY, i, Scored(p, 0.5, "build-a", "full"))
    recent = window.expected_recent()[(PRIMARY, "build-a", "full")]
    assert recent["positive_rate"] == pytest.approx((0.1 + 0.2 + 0.6) / 3)
