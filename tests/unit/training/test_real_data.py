"""Training on the shared UCI dataset (small search budget) meets the quality and calibration
floors, and the drift sentinel reads its own held-out test rows as stable and drifted copies of
them as drifted. One training run (XGBoost only) serves every test of the module."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from contract.frame import dataset_row_to_event_dict, events_to_frame
from contract.manifest import ArtifactEntry, read_manifest
from contract.schema import SessionEvent
from scoring.drift import DriftSentinel, DriftSnapshot
from scoring.fastpath import event_columns
from training.__main__ import main
from training.data import deduplicate, load_sessions, split_features_label

# tests/unit/training/ -> repo root -> ../shared/data
DATASET = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "data"
    / ("online_shoppers_intention.csv")
)
# The floors for `make train` are Brier <= 0.075, ECE <= 0.025, ROC-AUC >= 0.93 and
# PR-AUC >= 0.74 (full); this run searches 4 XGBoost candidates instead of 20 per family.
FLOORS = {
    "best_model_full.joblib": {"roc_auc": 0.92, "pr_auc": 0.70},
    "best_model_no_page_values.joblib": {"roc_auc": 0.76, "pr_auc": 0.33},
}
CEILINGS = {
    "best_model_full.joblib": {"brier": 0.075, "ece": 0.025},
    "best_model_no_page_values.joblib": {"brier": 0.13, "ece": 0.03},
}
FULL = "best_model_full.joblib"


@dataclass(frozen=True)
class RealBuild:
    build: Path
    stdout: str
    manifest: dict[str, Any]
    entry: ArtifactEntry
    pipeline: Any
    test_rows: pd.DataFrame  # the held-out test split, as the dataset has it


pytestmark = [pytest.mark.data, pytest.mark.slow]


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> RealBuild:
    assert DATASET.is_file(), f"the shared dataset is missing: {DATASET}"
    registry = tmp_path_factory.mktemp("real")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(
            ["--data", str(DATASET), "--out", str(registry), "--n-iter", "4",
             "--families", "xgboost"]
        )  # fmt: skip
    assert status == 0
    (build,) = list(registry.iterdir())
    manifest = read_manifest(build)
    X, y = split_features_label(deduplicate(load_sessions(str(DATASET)).frame))
    _, X_test = train_test_split(
        X, test_size=manifest.split.test_size, stratify=y, random_state=manifest.split.seed
    )
    return RealBuild(
        build,
        out.getvalue(),
        manifest.model_dump(),
        manifest.artifacts[FULL],
        joblib.load(build / FULL),
        X_test,
    )


def test_real_dataset_meets_quality_and_calibration_floors(real: RealBuild) -> None:
    manifest = real.manifest
    assert manifest["data"]["rows_raw"] == 12_330
    assert manifest["data"]["rows_deduplicated"] == 12_330 - 119  # README: 119 exact duplicates
    for name, floors in FLOORS.items():
        test = manifest["artifacts"][name]["metrics"]["test"]
        for metric, floor in floors.items():
            assert test[metric] >= floor, f"{name}: test {metric} {test[metric]:.4f} < {floor}"
        for metric, ceiling in CEILINGS[name].items():
            assert test[metric] <= ceiling, f"{name}: test {metric} {test[metric]:.4f}"
        assert len(test["reliability"]) == 10
        assert manifest["artifacts"][name]["profile"] is not None
    assert real.stdout.count("MODEL_URI=file://") == 2


def _replay(real: RealBuild, rows: pd.DataFrame) -> DriftSnapshot:
    """Score ``rows`` as the consumer does (events -> pipeline) and feed the sentinel in
    batches of 500 within one window."""
    assert real.entry.profile is not None
    sentinel = DriftSentinel(real.entry.profile, real.entry.threshold, None, 10_000, 10_000)
    records = rows.to_dict(orient="records")
    for start in range(0, len(records), 500):
        events = [
            SessionEvent.model_validate(dataset_row_to_event_dict(row, session_id=f"s{i}"))
            for i, row in enumerate(records[start : start + 500], start)
        ]
        probabilities = real.pipeline.predict_proba(events_to_frame(events))[:, 1]
        sentinel.observe(event_columns(events), np.asarray(probabilities, dtype=np.float64))
    return sentinel.refresh()


def _stable_except(snapshot: DriftSnapshot, changed: set[str]) -> None:
    for name, value in snapshot.feature_psi.items():
        if name not in changed:
            assert value < 0.1, f"{name} PSI {value:.3f} although it did not change"


def test_replaying_the_test_split_keeps_every_psi_under_0_1(real: RealBuild) -> None:
    snapshot = _replay(real, real.test_rows)
    assert snapshot.events == len(real.test_rows)
    _stable_except(snapshot, set())
    assert snapshot.prediction_psi < 0.1


def test_page_values_all_zero_moves_it_and_the_prediction(real: RealBuild) -> None:
    snapshot = _replay(real, real.test_rows.assign(PageValues=0.0))
    assert snapshot.feature_psi["PageValues"] > 0.25
    assert snapshot.prediction_psi > 0.25
    _stable_except(snapshot, {"PageValues"})


@pytest.mark.parametrize(("feature", "value"), [("Month", "Nov"), ("VisitorType", "New_Visitor")])
def test_one_category_for_everyone_is_a_major_shift(
    real: RealBuild, feature: str, value: str
) -> None:
    snapshot = _replay(real, real.test_rows.assign(**{feature: value}))
    assert snapshot.feature_psi[feature] > 0.25
    _stable_except(snapshot, {feature})


def test_a_feature_null_in_30_percent_of_events_shows_a_null_ratio_of_0_3(
    real: RealBuild,
) -> None:
    rows = real.test_rows.copy()
    already = int(rows["ProductRelated_Duration"].isna().sum())
    chosen = np.random.default_rng(0).permutation(len(rows))[: round(0.3 * len(rows))]
    rows.iloc[chosen, rows.columns.get_loc("ProductRelated_Duration")] = np.nan
    snapshot = _replay(real, rows)
    assert snapshot.null_ratio["ProductRelated_Duration"] == pytest.approx(
        0.3, abs=already / len(rows) + 0.5 / len(rows)
    )
    assert snapshot.null_ratio["PageValues"] == 0.0
