"""The consumer end to end against the real broker: probabilities, dead letters, accounting."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import joblib
import jsonschema
import numpy as np

from contract.frame import events_to_frame
from contract.schema import SessionEvent
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import (
    produce,
    produce_events,
    read_topic,
    synthetic_events,
)
from tests.integration.faults.support import committed_offsets, end_offsets

REPO = Path(__file__).resolve().parents[3]
OUTPUT_SCHEMA = json.loads((REPO / "consumer" / "output_record.schema.json").read_text())


def test_probabilities_equal_offline_scoring(
    kafka_bootstrap: str,
    topics: Topics,
    start_consumer: ConsumerFactory,
    model_build: Path,
    group_factory: object,
) -> None:
    events = synthetic_events(600, seed=3)
    produce_events(kafka_bootstrap, topics.input, events)
    group = "offline-parity"
    consumer = start_consumer(topics, group=group, BATCH_MAX_MESSAGES="128")
    consumer.wait_ready()

    records = read_topic(kafka_bootstrap, topics.output, expected=len(events))
    assert len(records) == len(events)
    by_id = {record.json()["session_id"]: record for record in records}
    assert set(by_id) == {e["session_id"] for e in events}

    artifact = model_build / "best_model_full.joblib"
    validated = [SessionEvent.model_validate(e) for e in events]
    offline = joblib.load(artifact).predict_proba(events_to_frame(validated))[:, 1]
    online = np.array([by_id[e.session_id].json()["probability"] for e in validated])
    np.testing.assert_allclose(online, offline, rtol=0, atol=1e-12)

    manifest = json.loads((model_build / "manifest.json").read_text())
    threshold = manifest["artifacts"]["best_model_full.joblib"]["threshold"]
    for event in validated:
        record = by_id[event.session_id]
        body = record.json()
        jsonschema.validate(body, OUTPUT_SCHEMA, format_checker=jsonschema.FormatChecker())
        assert record.key == event.session_id.encode()  # the input's key
        assert body["label"] == (body["probability"] >= threshold)
        assert body["model_build_id"] == manifest["build_id"]
        assert body.get("event_time") == event.event_time

    assert consumer.metric("scorer_messages_total", 'outcome="scored"') == len(events)
    assert consumer.terminate() == 0  # SIGTERM: finish, commit, exit 0
    assert committed_offsets(kafka_bootstrap, group, topics.input, 3) == end_offsets(
        kafka_bootstrap, topics.input, 3
    )


def bad_inputs() -> list[tuple[str, bytes | None, str]]:
    """(name, value, expected error.type) for every class of bad input the loop must survive."""
    good = synthetic_events(1, seed=99, prefix="bad")[0]

    def event(**changes: object) -> bytes:
        return json.dumps({**good, **changes}).encode()

    def raw_number(field: str, literal: str) -> bytes:
        """The good event with one number written as a bare literal JSON itself cannot hold."""
        text = re.sub(rf'"{field}": [^,}}]+', f'"{field}": {literal}', json.dumps(good))
        assert literal in text
        return text.encode()

    return [
        ("oversized", event(session_id="x" * 128, padding="y" * 70_000), "message_too_large"),
        ("not utf-8", b'{"session_id": "\xff\xfe"}', "invalid_utf8"),
        ("not json", b"{this is not json", "invalid_json"),
        ("json array", b"[1,2,3]", "not_an_object"),
        ("empty", b"", "empty_value"),
        ("wrong type", event(ProductRelated="many"), "int_type"),
        ("out of range", event(BounceRates=3.5), "less_than_equal"),
        ("negative count", event(Administrative=-2), "greater_than_equal"),
        (
            "missing field",
            json.dumps({k: v for k, v in good.items() if k != "Region"}).encode(),
            "missing",
        ),
        ("NaN", raw_number("SpecialDay", "NaN"), "finite_number"),
        ("Infinity", raw_number("ExitRates", "Infinity"), "finite_number"),
        ("label present", event(Revenue=True), "label_not_allowed"),
        ("unknown month", event(Month="Smarch"), "literal_error"),
    ]


def test_every_bad_input_is_dead_lettered_with_its_reason(
    kafka_bootstrap: str, topics: Topics, start_consumer: ConsumerFactory
) -> None:
    bad = bad_inputs()
    assert (
        b'"SpecialDay": 0.0' in json.dumps(synthetic_events(1, seed=99, prefix="bad")[0]).encode()
    )
    valid = synthetic_events(60, seed=5, prefix="ok")
    messages: list[tuple[bytes | None, bytes | None]] = []
    for i, event in enumerate(valid):
        messages.append((str(event["session_id"]).encode(), json.dumps(event).encode()))
        if i < len(bad):
            messages.append((f"bad-{i}".encode(), bad[i][1]))
    produce(kafka_bootstrap, topics.input, messages)

    consumer = start_consumer(topics, BATCH_MAX_MESSAGES="16")
    consumer.wait_ready()
    scored = read_topic(kafka_bootstrap, topics.output, expected=len(valid))
    dead = read_topic(kafka_bootstrap, topics.dlq, expected=len(bad))

    assert len(scored) + len(dead) == len(messages)  # events in = scored + dead-lettered
    assert {r.json()["session_id"] for r in scored} == {e["session_id"] for e in valid}
    by_key = {r.key: r for r in dead}
    for i, (name, value, error_type) in enumerate(bad):
        record = by_key[f"bad-{i}".encode()]
        assert record.headers["error.type"].decode() == error_type, name
        assert record.headers["error.message"], name
        assert record.headers["source.topic"].decode() == topics.input
        assert int(record.headers["source.offset"]) >= 0
        assert record.headers["contract.version"]
        assert (record.value or b"") == (value or b""), name  # the original bytes
    assert consumer.metric("scorer_messages_total", 'outcome="rejected"') == len(bad)
    assert consumer.exit_code() is None  # none of it crashed or stalled the loop
    assert consumer.terminate() == 0


def test_sigterm_exits_zero_and_commits_the_consumed_position(
    kafka_bootstrap: str, topics: Topics, start_consumer: ConsumerFactory
) -> None:
    events = synthetic_events(300, seed=8)
    produce_events(kafka_bootstrap, topics.input, events)
    group = "sigterm-commit"
    consumer = start_consumer(topics, group=group)
    consumer.wait_ready()
    read_topic(kafka_bootstrap, topics.output, expected=len(events))
    consumer.signal(signal.SIGINT)
    assert consumer.wait_exit(60) == 0
    assert committed_offsets(kafka_bootstrap, group, topics.input, 3) == end_offsets(
        kafka_bootstrap, topics.input, 3
    )
