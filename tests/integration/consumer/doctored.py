"""Doctored builds for the gate and shadow tests: real builds with one part replaced.

Importable by the consumer process (it runs from the repository root), so the pickles below
load there as they do here.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import joblib
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from contract.manifest import sha256_file


class Marker:
    """Unpickling this creates the file at `path`: proof that the pickle's code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


class FailsAfterGates:
    """The real pipeline for its first call (the golden rows), then it raises on every call."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.calls = 0

    def predict_proba(self, frame: Any) -> Any:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("this shadow fails at scoring, on purpose")
        return self.pipeline.predict_proba(frame)


class SlowOffTheMainThread(BaseEstimator):  # type: ignore[misc]
    """A pipeline's fitted final estimator that, called off the main thread, first sleeps.

    The gates (golden rows, the fast path's check) run on the main thread before a message is
    read, so the build passes them at full speed; the shadow scores on a thread of its own, where
    each batch then takes ``seconds`` longer (``3600``: a shadow that hangs). It sits where the
    scorer calls it: the fast path does not know this estimator, so it calls ``predict_proba``.
    With ``thread_prefix`` it sleeps only on threads so named (serve loads its build off the main
    thread, and scores on its ``serve-score`` thread).
    """

    def __init__(self, estimator: Any, seconds: float, thread_prefix: str | None = None) -> None:
        self.estimator = estimator
        self.seconds = seconds
        self.thread_prefix = thread_prefix

    @property
    def classes_(self) -> Any:
        return self.estimator.classes_

    def fit(self, *args: Any, **kwargs: Any) -> SlowOffTheMainThread:
        raise NotImplementedError("wraps an estimator fitted already")

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict_proba(self, matrix: Any) -> Any:
        thread = threading.current_thread()
        if self.thread_prefix is None:
            slow = thread is not threading.main_thread()
        else:
            slow = thread.name.startswith(self.thread_prefix)
        if slow:
            time.sleep(self.seconds)
        return self.estimator.predict_proba(matrix)


def slow_pipeline(pipeline: Pipeline, seconds: float, thread_prefix: str | None = None) -> Pipeline:
    """``pipeline`` whose final estimator sleeps ``seconds`` per call off the main thread (or on
    threads named ``thread_prefix...``)."""
    *steps, (name, estimator) = pipeline.steps
    return Pipeline([*steps, (name, SlowOffTheMainThread(estimator, seconds, thread_prefix))])


def copy_build(build: Path, destination: Path) -> Path:
    shutil.copytree(build, destination)
    for path in destination.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return destination


def replace_artifact(build: Path, name: str, payload: object, *, update_manifest: bool) -> None:
    """Dump ``payload`` as the artifact ``name``; optionally record its new sha256 too."""
    artifact = build / name
    joblib.dump(payload, artifact)
    if update_manifest:
        path = build / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest["artifacts"][name]["sha256"] = sha256_file(artifact)
        manifest["artifacts"][name]["size_bytes"] = artifact.stat().st_size
        path.write_text(json.dumps(manifest))
