"""The consumer end to end against the real broker: probabilities, records, committed offsets.

Bad input, SIGTERM/SIGINT restarts and crashes are tested once, in the fault suite
(tests/integration/faults/test_poison.py, test_crashes.py)."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import jsonschema
import numpy as np

from contract.frame import events_to_frame
from contract.schema import SessionEvent
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import produce_events, read_topic, synthetic_events
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
