"""The one pipeline: the same scores from events as from the CSV, and after a save and load."""

from __future__ import annotations

import re
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from contract.frame import dataset_row_to_event_dict, events_to_frame
from contract.pipeline import VARIANTS, Variant, build_pipeline, required_columns
from contract.schema import FEATURE_COLUMNS, LABEL_COLUMN, SessionEvent


@pytest.fixture(scope="module")
def raw_frame(dataset: pd.DataFrame) -> pd.DataFrame:
    return dataset.drop(columns=LABEL_COLUMN)


@pytest.fixture(scope="module")
def fitted(dataset: pd.DataFrame, raw_frame: pd.DataFrame) -> dict[Variant, Pipeline]:
    """A quick logistic regression per variant, fitted on the real data (once per module)."""
    y = dataset[LABEL_COLUMN].astype(int)
    return {
        variant: build_pipeline(LogisticRegression(max_iter=500), variant).fit(raw_frame, y)
        for variant in VARIANTS
    }


def test_pipeline_steps_and_required_columns() -> None:
    pipeline = build_pipeline(LogisticRegression(), "full")
    assert [name for name, _ in pipeline.steps] == ["clean", "engineer", "encode", "model"]
    assert required_columns("full") == list(FEATURE_COLUMNS)
    assert required_columns("no_page_values") == [c for c in FEATURE_COLUMNS if c != "PageValues"]
    with pytest.raises(ValueError, match="variant"):
        required_columns("everything")  # type: ignore[arg-type]


@pytest.mark.parametrize("variant", VARIANTS)
def test_events_score_exactly_like_the_csv_frame(
    variant: Variant, fitted: dict[Variant, Pipeline], raw_frame: pd.DataFrame
) -> None:
    """Train/serve parity: the serving path (JSON-able dicts -> events -> frame) changes nothing."""
    rows = raw_frame.to_dict("records")
    events = [
        SessionEvent.model_validate(dataset_row_to_event_dict(row, f"s{i}"))
        for i, row in enumerate(rows)
    ]
    from_csv = fitted[variant].predict_proba(raw_frame)
    from_events = fitted[variant].predict_proba(events_to_frame(events))
    np.testing.assert_array_equal(from_events, from_csv)
    assert from_csv.shape == (len(rows), 2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_saved_pipeline_scores_identically(
    variant: Variant, fitted: dict[Variant, Pipeline], raw_frame: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / f"best_model_{variant}.joblib"
    joblib.dump(fitted[variant], path)
    loaded = joblib.load(path)
    sample = raw_frame.sample(500, random_state=1)
    np.testing.assert_array_equal(
        loaded.predict_proba(sample), fitted[variant].predict_proba(sample)
    )


def test_no_page_values_never_reads_page_values(
    fitted: dict[Variant, Pipeline], raw_frame: pd.DataFrame
) -> None:
    sample = raw_frame.sample(300, random_state=2)
    shuffled = sample.assign(PageValues=np.random.default_rng(0).uniform(0, 300, len(sample)))
    blind = fitted["no_page_values"]
    np.testing.assert_array_equal(blind.predict_proba(shuffled), blind.predict_proba(sample))
    without = sample.drop(columns="PageValues")
    np.testing.assert_array_equal(blind.predict_proba(without), blind.predict_proba(sample))
    assert not any("page_value" in name.lower() for name in blind[:-1].get_feature_names_out())
    # The full model does read it: the same change moves its scores.
    full = fitted["full"]
    assert not np.array_equal(full.predict_proba(shuffled), full.predict_proba(sample))


@pytest.mark.parametrize("variant", VARIANTS)
def test_feature_names_are_stable_plain_strings(
    variant: Variant, fitted: dict[Variant, Pipeline]
) -> None:
    names = list(fitted[variant][:-1].get_feature_names_out())
    assert all(isinstance(name, str) for name in names)
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", name) for name in names)  # safe for xgboost too
    assert {"Month_Nov", "VisitorType_New_Visitor", "total_pages", "Weekend"} <= set(names)
    assert ("PageValues" in names) is (variant == "full")
    rebuilt = build_pipeline(LogisticRegression(max_iter=500), variant)
    assert [type(step).__name__ for _, step in rebuilt.steps[:-1]] == [
        type(step).__name__ for _, step in fitted[variant].steps[:-1]
    ]


def test_unseen_values_still_score(
    fitted: dict[Variant, Pipeline], raw_frame: pd.DataFrame
) -> None:
    """Months absent from training (Jan, Apr) and unseen codes are valid input."""
    sample = raw_frame.head(3).assign(Month=["Jan", "Apr", "Jan"], Browser=[99, 1, 2])
    for pipeline in fitted.values():
        proba = pipeline.predict_proba(sample)[:, 1]
        assert np.isfinite(proba).all()
        assert ((proba >= 0) & (proba <= 1)).all()
