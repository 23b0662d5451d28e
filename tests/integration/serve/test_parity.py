"""One runtime, two front doors: for the same events, serve answers what the offline pipeline
computes and what the consumer publishes; for the same bad input, what it dead-letters."""

from __future__ import annotations

import joblib
import numpy as np
import orjson

from contract.frame import events_to_frame
from contract.schema import SessionEvent
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import produce, read_topic, synthetic_events
from tests.integration.faults.test_poison import poison_catalogue
from tests.integration.serve.conftest import ServeFactory

POISON_KINDS = (
    "malformed JSON",
    "binary",
    "invalid UTF-8 inside a JSON string",
    "missing feature",
    "wrong type: fractional count",
    "NaN",
    "negative count",
    "unknown month",
    "extra field",
    "duplicate JSON key",
    "nested arrays 300 deep",
)


def test_http_probabilities_equal_the_offline_pipelines(
    start_serve: ServeFactory, model_uri: str
) -> None:
    serve = start_serve()
    serve.wait_ready()
    events = synthetic_events(500, seed=41, prefix="offline")
    response = serve.score(events)
    assert response.status_code == 200
    served = [result["probability"] for result in response.json()["results"]]
    pipeline = joblib.load(model_uri.removeprefix("file://"))
    frame = events_to_frame([SessionEvent.model_validate(event) for event in events])
    offline = pipeline.predict_proba(frame)[:, 1]
    np.testing.assert_allclose(served, offline, rtol=0, atol=1e-12)


def test_http_answers_what_the_consumer_publishes_and_dead_letters(
    start_serve: ServeFactory,
    start_consumer: ConsumerFactory,
    topics: Topics,
    kafka_bootstrap: str,
) -> None:
    events = synthetic_events(200, seed=43, prefix="parity")
    catalogue = {kind: value for kind, value, _ in poison_catalogue()}
    poison = [(kind, catalogue[kind]) for kind in POISON_KINDS]
    serve = start_serve()
    consumer = start_consumer(topics)
    serve.wait_ready()
    consumer.wait_ready()

    messages: list[tuple[bytes, bytes | None]] = [
        (str(e["session_id"]).encode(), orjson.dumps(e)) for e in events
    ]
    messages += [(f"poison-{i}".encode(), value) for i, (_, value) in enumerate(poison)]
    produce(kafka_bootstrap, topics.input, messages)
    published = read_topic(kafka_bootstrap, topics.output, expected=len(events))
    dead = read_topic(kafka_bootstrap, topics.dlq, expected=len(poison))

    by_session = {record.json()["session_id"]: record.json() for record in published}
    answers = serve.score(events).json()["results"]
    assert len(by_session) == len(answers) == len(events)
    for answer in answers:
        record = by_session[answer["session_id"]]
        assert abs(answer["probability"] - record["probability"]) <= 1e-12
        assert answer["label"] == record["label"]
        assert answer["model_build_id"] == record["model_build_id"]

    letters = {(record.key or b"").decode(): record.headers for record in dead}
    with serve.client() as client:
        for i, (kind, value) in enumerate(poison):
            response = client.post(
                "/v1/score", content=value, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 422, kind
            error = response.json()["error"]
            headers = letters[f"poison-{i}"]
            assert error["type"] == headers["error.type"].decode(), kind
            assert error["field"] == headers["error.field"].decode(), kind
            assert error["reason"] == headers["error.message"].decode(), kind
