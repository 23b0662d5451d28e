"""The HTTP front door in process: the app on FastAPI's test client, a real fitted pipeline
(``pipeline``: tests/unit/conftest.py), no server, no build on disk."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sklearn.pipeline import Pipeline
from starlette.testclient import TestClient

from contract.manifest import ArtifactEntry, Manifest, Metrics, MetricsPair
from scoring.scorer import ModelInfo, Scorer
from serve.answers import Answered
from serve.app import Work, create_app, scoring_slots
from serve.metrics import ServeMetrics
from serve.model import ServedModel
from serve.settings import ServeSettings
from serve.state import ServingState
from serve.work import WorkSlots

INFO = ModelInfo(build_id="unit-build", variant="full", git_sha="abc123", threshold=0.5)
TEST_METRICS = Metrics(roc_auc=0.9, pr_auc=0.7, f1=0.6, precision=0.65, recall=0.55, brier=0.08)


class CountingPipeline:
    """A fitted pipeline that counts its ``predict_proba`` calls and rows, and can be slowed
    down or made to fail."""

    def __init__(self, pipeline: Pipeline, seconds: float = 0.0, fail: bool = False) -> None:
        self.pipeline = pipeline
        self.seconds = seconds
        self.fail = fail
        self.calls: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def predict_proba(self, frame: Any) -> Any:
        self.calls.append(len(frame))
        if self.seconds:
            time.sleep(self.seconds)
        self.release.wait(30)
        if self.fail:
            raise RuntimeError("/secret/path/model.py line 12: the model broke")
        return self.pipeline.predict_proba(frame)


def served_model(pipeline: Any, info: ModelInfo = INFO) -> ServedModel:
    """A ServedModel of ``pipeline`` (scored as the pipeline itself: no fast path to build)."""
    # Only what /v1/model reads; the rest of a manifest is the gates' business.
    entry = ArtifactEntry.model_construct(  # type: ignore[call-arg]
        variant=info.variant,
        estimator="XGBClassifier",
        threshold=info.threshold,
        threshold_rule="f1",
        metrics=MetricsPair(test=TEST_METRICS, cv=TEST_METRICS),
    )
    manifest = Manifest.model_construct(  # type: ignore[call-arg]
        build_id=info.build_id, created_at="2026-12-01T00:00:00Z", contract_version="2.0.0"
    )
    return ServedModel(Scorer(pipeline, info, compiled=False), manifest, entry)


@dataclass
class Served:
    client: TestClient
    state: ServingState
    metrics: ServeMetrics
    settings: ServeSettings
    slots: WorkSlots[Work, Answered]

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


ServeFactory = Callable[..., Served]


@pytest.fixture
def serve_app(pipeline: Pipeline) -> Iterator[ServeFactory]:
    """``serve_app(model=..., ready=True, **settings)``: the app with its state and metrics."""
    clients: list[TestClient] = []

    def make(model: Any = None, ready: bool = True, **settings: Any) -> Served:
        config = ServeSettings(model_uri="/models/best_model_full.joblib", **settings)
        metrics = ServeMetrics.create(CollectorRegistry())
        state = ServingState(metrics)
        if ready:
            state.set_ready(model if model is not None else served_model(pipeline))
        slots = scoring_slots(config, metrics)
        app = create_app(config, state, metrics, slots)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return Served(client, state, metrics, config, slots)

    yield make
    for client in clients:
        client.__exit__(None, None, None)
