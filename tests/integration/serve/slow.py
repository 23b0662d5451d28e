"""A slow build for serve's timeout and shutdown tests: a real build whose final estimator
sleeps when serve scores a request, and only then.

The gates (golden rows, the fast path's check) run on serve's loader thread at full speed; a
request's scoring runs on a ``serve.work`` thread (named ``serve-score-<n>``), where each call
first sleeps. Importable by the server process (it runs from the repository root), so the
pickle loads there.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import joblib
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from serve.work import THREAD_PREFIX
from tests.integration.consumer.doctored import copy_build, replace_artifact

ARTIFACT = "best_model_full.joblib"


class SlowWhenServing(BaseEstimator):  # type: ignore[misc]
    """A fitted estimator that sleeps ``seconds`` per call on serve's scoring threads."""

    def __init__(self, estimator: Any, seconds: float) -> None:
        self.estimator = estimator
        self.seconds = seconds

    @property
    def classes_(self) -> Any:
        return self.estimator.classes_

    def fit(self, *args: Any, **kwargs: Any) -> SlowWhenServing:
        raise NotImplementedError("wraps an estimator fitted already")

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict_proba(self, matrix: Any) -> Any:
        if threading.current_thread().name.startswith(THREAD_PREFIX):
            time.sleep(self.seconds)
        return self.estimator.predict_proba(matrix)


def slow_build(model_build: Path, destination: Path, seconds: float) -> Path:
    """A copy of ``model_build`` whose full artifact sleeps ``seconds`` per scored request
    (its manifest's sha256 updated: it passes every gate); returns the artifact's path."""
    build = copy_build(model_build, destination)
    pipeline: Pipeline = joblib.load(model_build / ARTIFACT)
    *steps, (name, estimator) = pipeline.steps
    slow = Pipeline([*steps, (name, SlowWhenServing(estimator, seconds))])
    replace_artifact(build, ARTIFACT, slow, update_manifest=True)
    return build / ARTIFACT
