"""Overload and slowness over a real socket: 503 at once, never an unbounded wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.integration.consumer.kafka_io import synthetic_events
from tests.integration.serve.conftest import ServeFactory
from tests.integration.serve.slow import slow_build


def wait_for(condition: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_more_concurrency_than_allowed_is_503_with_retry_after(
    start_serve: ServeFactory, model_build: Path, tmp_path: Path
) -> None:
    serve = start_serve(
        MODEL_URI=str(slow_build(model_build, tmp_path / "slow", seconds=2.0)),
        SERVE_MAX_CONCURRENCY="1",
        SERVE_TIMEOUT_MS="10000",
    )
    serve.wait_ready()
    event = synthetic_events(1, seed=5)[0]
    first: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: first.append(serve.score(event)))
    thread.start()
    wait_for(lambda: serve.metric("serve_requests_in_flight") == 1)
    started = time.monotonic()
    second = serve.score(event)
    assert time.monotonic() - started < 0.5, "refused at once, not queued"
    assert second.status_code == 503
    assert second.json()["error"]["type"] == "overloaded"
    assert second.headers["retry-after"] == "1"
    thread.join(30)
    assert first[0].status_code == 200


def test_a_request_not_answered_in_time_is_503(
    start_serve: ServeFactory, model_build: Path, tmp_path: Path
) -> None:
    serve = start_serve(
        MODEL_URI=str(slow_build(model_build, tmp_path / "slow", seconds=3.0)),
        SERVE_TIMEOUT_MS="500",
    )
    serve.wait_ready()
    started = time.monotonic()
    response = serve.score(synthetic_events(1, seed=6)[0])
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "timeout"
    assert "Traceback" not in response.text
    assert 0.4 < elapsed < 2.0
    assert serve.metric("serve_refusals_total", 'type="timeout"') == 1
