"""Schema Registry framed values through the real broker and consumer process.

Values are framed by confluent-kafka's real `JSONSerializer` (against its `mock://` registry
client: no registry server runs on these machines), mixed with plain JSON, and one frame carries
a schema id the consumer was not told about (`SCHEMA_REGISTRY_SCHEMA_IDS`).
"""

from __future__ import annotations

import json

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from benchmarks.replay import read_topic
from contract.__main__ import schema_text
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import produce, synthetic_events


def test_framed_events_are_scored_and_an_unknown_schema_id_dead_lettered(
    kafka_bootstrap: str, topics: Topics, start_consumer: ConsumerFactory
) -> None:
    serializer = JSONSerializer(
        schema_text(), SchemaRegistryClient.new_client({"url": "mock://framing-it"})
    )
    context = SerializationContext(topics.input, MessageField.VALUE)
    events = synthetic_events(40, seed=21, prefix="framed")
    messages: list[tuple[bytes | None, bytes | None]] = []
    for i, event in enumerate(events):
        # The pandas way for half of them: counts as floats with a zero fractional part.
        if i % 2:
            event = {**event, "Administrative": float(event["Administrative"] or 0)}
        value = serializer(event, context) if i % 4 else json.dumps(event).encode()
        messages.append((str(event["session_id"]).encode(), value))
    schema_id = int.from_bytes(messages[1][1][1:5], "big")  # type: ignore[index]
    unknown = b"\x00" + (schema_id + 1).to_bytes(4, "big") + json.dumps(events[0]).encode()
    messages.append((b"unknown-id", unknown))
    produce(kafka_bootstrap, topics.input, messages)

    consumer = start_consumer(topics, SCHEMA_REGISTRY_SCHEMA_IDS=str(schema_id))
    consumer.wait_ready()
    scored = read_topic(kafka_bootstrap, topics.output, expected=len(events))
    [dead] = read_topic(kafka_bootstrap, topics.dlq, expected=1)

    assert {r.json()["session_id"] for r in scored} == {e["session_id"] for e in events}
    assert dead.key == b"unknown-id"
    assert dead.headers["error.type"] == b"unknown_schema_id"
    assert dead.value == unknown
