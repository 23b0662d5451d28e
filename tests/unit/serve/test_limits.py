"""Limits that hold under abuse: body size, media type, concurrency, time; nothing queues."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sklearn.pipeline import Pipeline

from contract.samples import EXAMPLE_EVENT
from tests.unit.serve.conftest import CountingPipeline, ServeFactory, served_model

JSON = {"Content-Type": "application/json"}
EVENT = json.dumps(EXAMPLE_EVENT).encode()


def wait_until(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_declared_length_over_the_limit_is_413_unread(serve_app: ServeFactory) -> None:
    served = serve_app(serve_max_body_bytes=2048)
    response = served.client.post("/v1/score", content=b"[" + b" " * 4096 + b"]", headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "body_too_large"
    assert response.headers["connection"] == "close"
    assert served.metric("serve_refusals_total", type="body_too_large") == 1


def test_a_chunked_body_is_counted_as_it_streams_and_refused_at_the_limit(
    serve_app: ServeFactory,
) -> None:
    served = serve_app(serve_max_body_bytes=2048)
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b" " * 512

    response = served.client.post("/v1/score", content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "body_too_large"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=latin-1"],
)
def test_a_body_that_is_not_json_is_415(serve_app: ServeFactory, content_type: str) -> None:
    response = serve_app().client.post(
        "/v1/score", content=EVENT, headers={"Content-Type": content_type}
    )
    assert response.status_code == 415
    assert response.json()["error"]["type"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON", "application/json; charset=utf-8"]
)
def test_json_is_taken_with_or_without_its_charset(
    serve_app: ServeFactory, content_type: str
) -> None:
    response = serve_app().client.post(
        "/v1/score", content=EVENT, headers={"Content-Type": content_type}
    )
    assert response.status_code == 200


def test_more_work_than_serve_max_concurrency_is_503_at_once(
    serve_app: ServeFactory, pipeline: Pipeline
) -> None:
    blocked = CountingPipeline(pipeline)
    blocked.release.clear()
    served = serve_app(
        model=served_model(blocked), serve_max_concurrency=1, serve_timeout_ms=20_000
    )
    first: list[Any] = []
    thread = threading.Thread(
        target=lambda: first.append(served.client.post("/v1/score", content=EVENT, headers=JSON))
    )
    thread.start()
    try:
        wait_until(lambda: blocked.calls)
        # Answered while the first request's work is still blocked: refused, not queued.
        second = served.client.post("/v1/score", content=EVENT, headers=JSON)
        assert second.status_code == 503
        assert second.json()["error"]["type"] == "overloaded"
        assert second.headers["retry-after"] == "1"
        assert served.metric("serve_requests_in_flight") == 1
    finally:
        blocked.release.set()
        thread.join(30)
    assert first[0].status_code == 200
    # The worker gives the slot back just after handing over the answer.
    wait_until(lambda: served.metric("serve_requests_in_flight") == 0)
    assert served.client.post("/v1/score", content=EVENT, headers=JSON).status_code == 200


def test_a_request_not_answered_within_serve_timeout_ms_is_503_and_keeps_its_slot(
    serve_app: ServeFactory, pipeline: Pipeline
) -> None:
    """The timed-out work still runs on its thread: its slot stays taken until it ends, so
    abandoned work counts against SERVE_MAX_CONCURRENCY instead of piling up."""
    blocked = CountingPipeline(pipeline)
    blocked.release.clear()
    served = serve_app(model=served_model(blocked), serve_max_concurrency=1, serve_timeout_ms=1000)
    started = time.monotonic()
    response = served.client.post("/v1/score", content=EVENT, headers=JSON)
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "timeout"
    assert response.headers["retry-after"] == "1"
    assert elapsed >= 0.99  # given up at its deadline, not before (never unbounded: the work
    # stays blocked until the test releases it, so only the deadline can answer it)
    assert served.slots.taken == 1
    busy = served.client.post("/v1/score", content=EVENT, headers=JSON)
    assert busy.json()["error"]["type"] == "overloaded"
    blocked.release.set()
    wait_until(lambda: served.slots.taken == 0)
    assert served.client.post("/v1/score", content=EVENT, headers=JSON).status_code == 200


def test_nothing_is_scored_before_the_gates_passed(serve_app: ServeFactory) -> None:
    served = serve_app(ready=False)
    for path, method in (("/v1/score", "post"), ("/v1/model", "get")):
        response = served.client.request(method, path, content=EVENT, headers=JSON)
        assert response.status_code == 503, path
        assert response.json()["error"]["type"] == "not_ready"
        assert response.headers["retry-after"] == "1"
