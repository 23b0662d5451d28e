"""The drift sentinel's window, refresh and gauges, on a profile of generated sessions.

The drifted streams against a real build trained on the dataset are in
tests/unit/training/test_real_data.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from consumer.drift import DriftSentinel
from consumer.metrics import ScorerMetrics
from contract.manifest import ReferenceProfile
from contract.profile import reference_profile
from contract.schema import FEATURE_COLUMNS
from training.synthetic import generate_sessions

THRESHOLD = 0.5


def _proba(frame: pd.DataFrame) -> np.ndarray:
    """A stand-in model: the probability rises with PageValues."""
    return np.asarray(1 - np.exp(-frame["PageValues"].to_numpy() / 20), dtype=np.float64)


@pytest.fixture(scope="module")
def reference() -> tuple[ReferenceProfile, pd.DataFrame]:
    training = generate_sessions(6000, seed=1)
    profile = reference_profile(
        {name: training[name] for name in FEATURE_COLUMNS},
        positive_rate=0.15,
        probabilities=_proba(training),
        threshold=THRESHOLD,
    )
    return profile, generate_sessions(4000, seed=2)


def _columns(frame: pd.DataFrame) -> dict[str, Any]:
    return {name: frame[name].to_numpy() for name in FEATURE_COLUMNS}


def _feed(sentinel: DriftSentinel, frame: pd.DataFrame, batch: int = 500) -> None:
    for start in range(0, len(frame), batch):
        part = frame.iloc[start : start + batch]
        sentinel.observe(_columns(part), _proba(part))


def test_stream_like_the_reference_stays_stable(
    reference: tuple[ReferenceProfile, pd.DataFrame],
) -> None:
    profile, stream = reference
    registry = CollectorRegistry()
    sentinel = DriftSentinel(profile, THRESHOLD, ScorerMetrics.create(registry), 2000, 500)
    _feed(sentinel, stream)
    snapshot = sentinel.snapshot
    assert snapshot is not None
    assert snapshot.events == 2000
    assert max(snapshot.feature_psi.values()) < 0.1, snapshot.feature_psi
    assert snapshot.prediction_psi < 0.1
    expected_mean = float(_proba(stream.iloc[-2000:]).mean())
    assert snapshot.mean_probability == pytest.approx(expected_mean)
    psi = registry.get_sample_value("scorer_feature_drift_psi", {"feature": "PageValues"})
    assert psi == pytest.approx(snapshot.feature_psi["PageValues"])
    assert registry.get_sample_value("scorer_drift_window_events") == 2000
    reference_ratio = registry.get_sample_value(
        "scorer_drift_reference", {"quantity": "positive_label_ratio"}
    )
    assert reference_ratio == pytest.approx(profile.positive_label_rate)


def test_drift_shows_once_the_window_holds_it_and_leaves_with_it(
    reference: tuple[ReferenceProfile, pd.DataFrame],
) -> None:
    profile, stream = reference
    sentinel = DriftSentinel(profile, THRESHOLD, None, window_events=1000, refresh_events=250)
    _feed(sentinel, stream.iloc[:2000], batch=250)
    drifted = stream.iloc[2000:3000].assign(PageValues=0.0, Month="Nov")
    _feed(sentinel, drifted, batch=250)
    during = sentinel.snapshot
    assert during is not None
    assert during.feature_psi["PageValues"] > 0.25
    assert during.feature_psi["Month"] > 0.25
    assert during.prediction_psi > 0.25
    assert during.positive_label_ratio == 0.0
    assert during.feature_psi["ProductRelated"] < 0.1
    _feed(sentinel, stream.iloc[3000:4000], batch=250)
    after = sentinel.refresh()
    assert after.feature_psi["PageValues"] < 0.1
    assert after.prediction_psi < 0.1


def test_null_ratio_counts_nulls_in_the_window(
    reference: tuple[ReferenceProfile, pd.DataFrame],
) -> None:
    profile, stream = reference
    part = stream.iloc[:2000].copy()
    chosen = np.random.default_rng(0).permutation(len(part))[:600]  # 30 % of 2000
    part.iloc[chosen, part.columns.get_loc("ExitRates")] = np.nan
    sentinel = DriftSentinel(profile, THRESHOLD, None, window_events=2000, refresh_events=2000)
    _feed(sentinel, part)
    snapshot = sentinel.snapshot
    assert snapshot is not None
    base = float(stream.iloc[:2000]["ExitRates"].isna().mean())
    assert snapshot.null_ratio["ExitRates"] == pytest.approx(0.3, abs=base + 1e-9)
    assert snapshot.null_ratio["PageValues"] == 0.0
