"""Fixtures shared by the unit tests of the runtime and of its front doors."""

from __future__ import annotations

import pytest
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from contract.pipeline import build_pipeline
from contract.schema import FEATURE_COLUMNS, LABEL_COLUMN
from training.synthetic import generate_sessions


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    """A real fitted pipeline of the contract's shape: xgboost on generated sessions (~1 s).

    What `joblib.load(MODEL_URI)` gives the consumer, without the training job's search and
    reports (tests/builds.py runs those, at ~35 s a build).
    """
    data = generate_sessions(800, seed=11)
    model = XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1, random_state=0)
    fitted: Pipeline = build_pipeline(model, "full").fit(
        data[list(FEATURE_COLUMNS)], data[LABEL_COLUMN]
    )
    return fitted
