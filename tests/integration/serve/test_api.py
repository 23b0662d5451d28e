"""serve over a real socket: answers, refusals, limits that need the network to be shown."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx

from contract.schema import CONTRACT_VERSION
from tests.integration.consumer.kafka_io import synthetic_events
from tests.integration.serve.conftest import ServeFactory

JSON = {"Content-Type": "application/json"}


def test_one_event_and_a_list_with_invalid_items(start_serve: ServeFactory) -> None:
    serve = start_serve()
    serve.wait_ready()
    events = synthetic_events(5, seed=21, prefix="api")
    one = serve.score(events[0])
    assert one.status_code == 200
    body = one.json()
    assert body["session_id"] == "api-0"
    assert 0.0 <= body["probability"] <= 1.0
    assert body["label"] == (body["probability"] >= body["threshold"])
    assert body["contract_version"] == CONTRACT_VERSION
    model = httpx.get(serve.base_url + "/v1/model").json()
    assert body["model_build_id"] == model["model_build_id"]
    assert body["model_variant"] == model["model_variant"] == "full"
    assert set(model["test_metrics"]) >= {"roc_auc", "pr_auc", "f1", "brier"}

    bad = {**events[1], "Region": 0}
    mixed = serve.score([events[2], bad, {"session_id": "x"}, events[3]])
    assert mixed.status_code == 200
    first, second, third, fourth = mixed.json()["results"]
    assert (first["session_id"], fourth["session_id"]) == ("api-2", "api-3")
    assert (second["error"]["type"], second["error"]["field"]) == ("greater_than_equal", "Region")
    assert third["error"]["type"] == "missing"

    refused = serve.score(bad)
    assert refused.status_code == 422
    assert refused.json()["error"] == second["error"]
    assert serve.metric("serve_requests_total", 'path="/v1/score",status="200"') == 2
    assert serve.metric("scorer_messages_total", 'outcome="rejected"') == 3


def test_a_body_of_another_media_type_is_415(start_serve: ServeFactory) -> None:
    serve = start_serve()
    serve.wait_ready()
    event = json.dumps(synthetic_events(1)[0])
    response = httpx.post(
        serve.base_url + "/v1/score", content=event, headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["error"]["type"] == "unsupported_media_type"


def test_an_oversized_body_sent_slowly_is_413_before_it_is_all_sent(
    start_serve: ServeFactory,
) -> None:
    serve = start_serve(SERVE_MAX_BODY_BYTES="4096")
    serve.wait_ready()
    sent: list[int] = []

    def slowly() -> Iterator[bytes]:  # chunked: no Content-Length to refuse it by
        yield b"["
        for _ in range(200):
            time.sleep(0.02)
            sent.append(1)
            yield b" " * 1024

    started = time.monotonic()
    response = httpx.post(serve.base_url + "/v1/score", content=slowly(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "body_too_large"
    assert len(sent) < 50, f"the server read on after the limit ({len(sent)} chunks sent)"
    assert time.monotonic() - started < 3.0
    declared = httpx.post(serve.base_url + "/v1/score", content=b" " * 10_000, headers=JSON)
    assert declared.status_code == 413


def test_a_body_still_arriving_after_serve_timeout_ms_is_408(start_serve: ServeFactory) -> None:
    serve = start_serve(SERVE_TIMEOUT_MS="500")
    serve.wait_ready()
    event = json.dumps(synthetic_events(1)[0]).encode()

    def slowly() -> Iterator[bytes]:
        yield b"["
        time.sleep(1.5)
        yield event + b"]"

    response = httpx.post(serve.base_url + "/v1/score", content=slowly(), headers=JSON)
    assert response.status_code == 408
    assert response.json()["error"]["type"] == "body_timeout"
    assert serve.score(json.loads(event)).status_code == 200
