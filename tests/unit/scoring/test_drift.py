"""The drift sentinel's window, refresh and gauges, on a profile of generated sessions.

The drifted streams against a real build trained on the dataset are in
tests/unit/training/test_real_data.py.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from contract.manifest import ReferenceProfile
from contract.profile import ProfileBinner, reference_profile
from contract.schema import COUNT_COLUMNS, DURATION_COLUMNS, FEATURE_COLUMNS, RATE_COLUMNS
from scoring.drift import PSI_CRITICAL, DriftSentinel, drift_sentinel
from scoring.metrics import RuntimeMetrics
from scoring.settings import ModelSettings
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
    sentinel = DriftSentinel(profile, THRESHOLD, RuntimeMetrics.create(registry), 2000, 500)
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


def _build(root: Path, profile: ReferenceProfile | None) -> Path:
    """A build directory whose manifest lists one artifact, with or without a profile."""
    metrics = {"roc_auc": 0.9, "pr_auc": 0.7, "f1": 0.6, "precision": 0.6, "recall": 0.6,
               "brier": 0.1}  # fmt: skip
    entry: dict[str, Any] = {
        "variant": "full", "sha256": "0" * 64, "size_bytes": 1, "estimator": "X",
        "best_params": {}, "required_columns": list(FEATURE_COLUMNS), "threshold": 0.5,
        "metrics": {"test": metrics, "cv": metrics},
        "golden": [{"event": {"session_id": "g"}, "probability": 0.5}],
    }  # fmt: skip
    if profile is not None:
        entry["profile"] = profile.model_dump(mode="json")
    manifest = {
        "build_id": "b", "created_at": "2026-11-26T15:15:00Z", "git_sha": "unknown",
        "contract_version": "1.0.0", "python": "3.11", "libraries": {},
        "data": {"uri": "x.csv", "sha256": "0" * 64, "rows_raw": 10, "rows_deduplicated": 9,
                 "rows_train": 7, "rows_test": 2, "positive_rate": 0.2},
        "split": {"seed": 1, "test_size": 0.2, "stratified": True},
        "artifacts": {"best_model_full.joblib": entry},
    }  # fmt: skip
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "best_model_full.joblib").write_bytes(b"x")
    return root / "best_model_full.joblib"


def test_sentinel_is_built_from_the_manifest_and_stays_off_without_a_profile(
    reference: tuple[ReferenceProfile, pd.DataFrame],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    profile, _ = reference
    metrics = RuntimeMetrics.create(CollectorRegistry())
    with_profile = _build(tmp_path / "new", profile)
    settings = ModelSettings.model_construct(model_uri=str(with_profile), drift_window_events=300)
    sentinel = drift_sentinel(settings, metrics, 0.5, with_profile)
    assert sentinel is not None
    assert sentinel.features == list(FEATURE_COLUMNS)
    old = _build(tmp_path / "old", None)
    with caplog.at_level(logging.INFO, logger="scoring.drift"):
        without = ModelSettings.model_construct(model_uri=str(old))
        assert drift_sentinel(without, metrics, 0.5, old) is None
        off = ModelSettings.model_construct(model_uri=str(with_profile), drift_enabled=False)
        assert drift_sentinel(off, metrics, 0.5, with_profile) is None
    assert "no reference profile" in caplog.text
    assert "DRIFT_ENABLED=false" in caplog.text


def test_a_psi_hovering_at_a_band_edge_logs_once(
    reference: tuple[ReferenceProfile, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A PSI oscillating around 0.1, then around 0.25 (a shift sliding through the window), logs
    once per band it enters, not at every refresh; a clear fall logs again."""
    profile, stream = reference
    psi = [0.0]
    monkeypatch.setattr(ProfileBinner, "feature_psi", lambda self, name, counts: 0.0)
    monkeypatch.setattr(ProfileBinner, "prediction_psi", lambda self, counts: psi[0])
    sentinel = DriftSentinel(profile, THRESHOLD, None, window_events=500, refresh_events=10**9)
    _feed(sentinel, stream.iloc[:500])
    with caplog.at_level(logging.INFO, logger="scoring.drift"):
        for value in [0.101, 0.099] * 20 + [0.251, 0.249] * 20 + [0.05]:
            psi[0] = value
            sentinel.refresh()
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("drift ")]
    assert [line.split("prediction_psi=")[1] for line in logged] == ["0.101", "0.251", "0.050"]


def test_every_nullable_field_null_gives_finite_major_psis_and_the_null_gauges(
    reference: tuple[ReferenceProfile, pd.DataFrame],
) -> None:
    """The tracking bug: the eight nullable numeric fields null in every event. Each PSI is a
    finite major shift (the null bin), not NaN, so the PSI alerts can fire; the null ratio is 1
    against the reference share the sentinel publishes beside it."""
    profile, stream = reference
    nullable = (*COUNT_COLUMNS, *DURATION_COLUMNS, *RATE_COLUMNS)
    assert len(nullable) == 8
    registry = CollectorRegistry()
    sentinel = DriftSentinel(profile, THRESHOLD, RuntimeMetrics.create(registry), 1000, 1000)
    _feed(sentinel, stream.iloc[:1000].assign(**dict.fromkeys(nullable, np.nan)))
    snapshot = sentinel.snapshot
    assert snapshot is not None
    for name in nullable:
        value = snapshot.feature_psi[name]
        assert math.isfinite(value), name
        assert value > PSI_CRITICAL, (name, value)
        assert snapshot.null_ratio[name] == 1.0
        labels = {"feature": name}
        assert registry.get_sample_value("scorer_feature_drift_psi", labels) == value
        assert registry.get_sample_value("scorer_feature_null_ratio", labels) == 1.0
        reference_share = registry.get_sample_value("scorer_feature_null_reference", labels)
        assert reference_share == pytest.approx(profile.features[name].null_rate)
    assert snapshot.worst()[0] in nullable
    assert snapshot.feature_psi["PageValues"] < 0.1  # not nullable, unchanged
