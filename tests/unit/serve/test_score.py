"""POST /v1/score: response shapes, one batch per request (and per requests scored together),
and the runtime's decisions."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from contract.decoding import Refusal, decode_value
from contract.frame import events_to_frame
from contract.samples import EXAMPLE_EVENT, edge_event_dicts
from contract.schema import CONTRACT_VERSION, SessionEvent
from serve.answers import SCORING_FAILED_REASON, Answer, score_bodies
from serve.errors import RequestRefused
from tests.integration.faults.test_poison import INPUT_MAX_MESSAGE_BYTES, poison_catalogue
from tests.unit.serve.conftest import INFO, CountingPipeline, ServeFactory, served_model

JSON = {"Content-Type": "application/json"}


def event(session_id: str = "s-1", **changes: object) -> dict[str, object]:
    return {**EXAMPLE_EVENT, "session_id": session_id, **changes}


def test_one_event_is_scored_with_the_builds_identity(
    serve_app: ServeFactory, pipeline: Pipeline
) -> None:
    served = serve_app()
    response = served.client.post("/v1/score", json=event("one"))
    assert response.status_code == 200
    body = response.json()
    expected = pipeline.predict_proba(frame([event("one")]))[0, 1]
    assert body == {
        "session_id": "one",
        "probability": pytest.approx(expected, abs=1e-12),
        "label": expected >= INFO.threshold,
        "threshold": INFO.threshold,
        "model_build_id": INFO.build_id,
        "model_variant": INFO.variant,
        "contract_version": CONTRACT_VERSION,
    }


def frame(events: list[dict[str, object]]) -> pd.DataFrame:
    """The raw feature frame of valid events, as the offline pipeline takes it."""
    return events_to_frame([SessionEvent.model_validate(e) for e in events])


def test_an_invalid_event_is_422_with_the_dead_letters_type_field_and_reason(
    serve_app: ServeFactory,
) -> None:
    served = serve_app()
    raw = json.dumps(event(Region=0)).encode()
    response = served.client.post("/v1/score", content=raw, headers=JSON)
    assert response.status_code == 422
    settings = served.settings
    refusal = decode_value(raw, None, settings.input_max_message_bytes, settings.framing)
    assert isinstance(refusal, Refusal)
    assert response.json() == {
        "error": {"type": refusal.error_type, "field": refusal.field, "reason": refusal.reason}
    }
    assert response.json()["error"]["type"] == "greater_than_equal"
    assert response.json()["error"]["field"] == "Region"


def test_a_list_is_answered_item_by_item_in_order_and_scored_as_one_batch(
    serve_app: ServeFactory, pipeline: Pipeline
) -> None:
    counting = CountingPipeline(pipeline)
    served = serve_app(model=served_model(counting))
    valid = [{**e, "session_id": f"v{i}"} for i, e in enumerate(edge_event_dicts(40, seed=3))]
    items = [*valid[:20], event("bad", Month="Smarch"), *valid[20:], {"session_id": "x"}]
    response = served.client.post("/v1/score", json=items)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == len(items)
    assert results[20]["error"]["type"] == "literal_error"
    assert results[-1]["error"]["type"] == "missing"
    scored = [r for i, r in enumerate(results) if i not in (20, len(items) - 1)]
    assert [r["session_id"] for r in scored] == [e["session_id"] for e in valid]
    expected = pipeline.predict_proba(frame(valid))[:, 1]
    np.testing.assert_allclose([r["probability"] for r in scored], expected, rtol=0, atol=1e-12)
    assert counting.calls == [40], "the valid items are scored in one vectorised call"
    assert served.metric("scorer_messages_total", outcome="scored") == 40
    assert served.metric("scorer_messages_total", outcome="rejected") == 2
    assert served.metric("scorer_batch_size_count") == 1


def test_requests_scored_together_each_get_their_own_answer(
    serve_app: ServeFactory, pipeline: Pipeline
) -> None:
    """What the scoring thread does with the requests waiting together (serve.work): one
    vectorised call for all their valid events, and each body its own answer, in order."""
    counting = CountingPipeline(pipeline)
    served = serve_app(model=served_model(counting))
    model = served.state.model
    assert model is not None
    bodies = [
        orjson.dumps(event("alone")),
        orjson.dumps([event("first"), event("bad", Month="Smarch"), event("last")]),
        b'[{"session_id": "a"} {"session_id": "b"}]',  # cannot be split: refused whole
        orjson.dumps(event("invalid", Region=0)),
        orjson.dumps([event(f"many-{i}") for i in range(4)]),  # over SERVE_MAX_EVENTS=3
    ]
    settings = served.settings
    alone, listed, unsplit, invalid, too_many = score_bodies(
        bodies, model, served.metrics, 3, settings.input_max_message_bytes, settings.framing
    )
    assert counting.calls == [3], "the valid events of every body in one call"
    expected = pipeline.predict_proba(frame([event("alone"), event("first"), event("last")]))
    assert isinstance(alone, Answer)
    assert isinstance(listed, Answer)
    assert alone.status == 200
    assert alone.payload["probability"] == pytest.approx(expected[0, 1], abs=1e-12)
    results = listed.payload["results"]
    assert [r.get("session_id") for r in results] == ["first", None, "last"]
    assert results[1]["error"]["type"] == "literal_error"
    assert [r["probability"] for r in (results[0], results[2])] == pytest.approx(
        expected[1:, 1], abs=1e-12
    )
    assert isinstance(unsplit, RequestRefused)
    assert unsplit.error_type == "invalid_json"
    assert isinstance(invalid, Answer)
    assert invalid.status == 422
    assert isinstance(too_many, RequestRefused)
    assert too_many.error_type == "too_many_events"


def test_an_empty_list_is_an_empty_answer(serve_app: ServeFactory) -> None:
    response = serve_app().client.post("/v1/score", content=b" [ ] ", headers=JSON)
    assert (response.status_code, response.json()) == (200, {"results": []})


def test_a_list_over_serve_max_events_is_413(serve_app: ServeFactory) -> None:
    served = serve_app(serve_max_events=3)
    assert served.client.post("/v1/score", json=[event()] * 3).status_code == 200
    response = served.client.post("/v1/score", json=[event()] * 4)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "too_many_events"


def test_a_list_that_cannot_be_split_is_422_whole(serve_app: ServeFactory) -> None:
    body = b'[{"session_id": "a"} {"session_id": "b"}]'
    response = serve_app().client.post("/v1/score", content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_json"


def test_every_poison_kind_gets_the_consumers_code_alone_and_in_a_list(
    serve_app: ServeFactory,
) -> None:
    """The same bytes, the same decision as the dead-letter topic's: alone, the body is the
    Kafka value; in a list, the item's bytes are. Only a list's structure is HTTP's own."""
    served = serve_app(input_max_message_bytes=INPUT_MAX_MESSAGE_BYTES, serve_max_body_bytes=2**22)
    for kind, value, expected in poison_catalogue():
        raw = b"" if value is None else value
        decided = decode_value(raw, None, INPUT_MAX_MESSAGE_BYTES, served.settings.framing)
        assert isinstance(decided, Refusal), kind
        response = served.client.post("/v1/score", content=raw, headers=JSON)
        if raw.lstrip()[:1] == b"[":  # a body that is an array is a list of events
            assert response.status_code in (200, 422), kind
            continue
        assert response.status_code == 422, kind
        error = response.json()["error"]
        assert (error["type"], error["field"], error["reason"]) == decided, kind
        assert error["type"] == expected, kind
    good = json.dumps(event("good")).encode()
    for kind, value, _ in poison_catalogue():
        if value is None or not value or value.lstrip()[:1] != b"{":
            continue  # a list item is JSON text: bytes that are not are the list's problem
        if b"\xef\xbb\xbf" in value or value.endswith(b" }{") or len(value) < 40:
            continue
        try:
            body = b"[" + good + b", " + value + b", " + good + b"]"
            json.loads(body.decode("utf-8", "surrogateescape"))
        except (ValueError, RecursionError):
            continue  # not delimitable as an item: refused whole, checked above
        response = served.client.post("/v1/score", content=body, headers=JSON)
        assert response.status_code == 200, kind
        first, middle, last = response.json()["results"]
        assert "probability" in first, kind
        assert "probability" in last, kind
        decided = decode_value(value, None, INPUT_MAX_MESSAGE_BYTES, served.settings.framing)
        assert isinstance(decided, Refusal)
        error = middle["error"]
        assert (error["type"], error["field"], error["reason"]) == decided, kind


def test_a_scoring_failure_is_500_without_its_exception(
    serve_app: ServeFactory, pipeline: Pipeline
) -> None:
    served = serve_app(model=served_model(CountingPipeline(pipeline, fail=True)))
    one = served.client.post("/v1/score", json=event())
    assert one.status_code == 500
    assert one.json() == {
        "error": {"type": "scoring_failed", "field": "<event>", "reason": SCORING_FAILED_REASON}
    }
    many = served.client.post("/v1/score", json=[event("a"), event("b")])
    assert many.status_code == 200
    assert [r["error"]["type"] for r in many.json()["results"]] == ["scoring_failed"] * 2
    assert b"secret" not in one.content + many.content


def test_an_unexpected_failure_is_a_generic_500(
    serve_app: ServeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = serve_app()

    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("/secret/internal/state")

    monkeypatch.setattr("serve.app.score_bodies", broken)
    response = served.client.post("/v1/score", json=event())
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "internal_error"
    assert b"secret" not in response.content
    assert b"Traceback" not in response.content
    assert served.metric("serve_requests_total", path="/v1/score", status="500") == 1


def test_answers_are_json_with_exact_probabilities(serve_app: ServeFactory) -> None:
    response = serve_app().client.post("/v1/score", json=event())
    assert response.headers["content-type"] == "application/json"
    probability = orjson.loads(response.content)["probability"]
    assert isinstance(probability, float)
    assert 0.0 <= probability <= 1.0
