"""A slow build for serve's timeout and shutdown tests: a real build whose final estimator
sleeps when serve scores a request, and only then.

The gates (golden rows, the fast path's check) run on serve's loader thread at full speed; a
request is scored on the ``serve.work`` thread (named ``serve-score``), where each call
first sleeps. Importable by the server process (it runs from the repository root), so the
pickle loads there.
"""

from __future__ import annotations

from pathlib import Path

import joblib

from serve.work import THREAD_NAME
from tests.integration.consumer.doctored import copy_build, replace_artifact, slow_pipeline

ARTIFACT = "best_model_full.joblib"


def slow_build(model_build: Path, destination: Path, seconds: float) -> Path:
    """A copy of ``model_build`` whose full artifact sleeps ``seconds`` per scored request
    (its manifest's sha256 updated: it passes every gate); returns the artifact's path."""
    build = copy_build(model_build, destination)
    slow = slow_pipeline(joblib.load(model_build / ARTIFACT), seconds, THREAD_NAME)
    replace_artifact(build, ARTIFACT, slow, update_manifest=True)
    return build / ARTIFACT
