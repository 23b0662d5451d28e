"""Trace context through the real broker: an input's W3C headers reach its output or dead letter,
and with OTEL_TRACES_EXPORTER set each batch's span links to the traced inputs."""

from __future__ import annotations

import orjson
from confluent_kafka import Producer

from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import read_topic, synthetic_events

PARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
STATE = b"vendor=opaque-value"


def test_trace_headers_are_carried_and_never_invented(
    kafka_bootstrap: str, topics: Topics, start_consumer: ConsumerFactory
) -> None:
    events = synthetic_events(4, seed=5, prefix="trace")
    traced = [("traceparent", PARENT), ("tracestate", STATE), ("unrelated", b"dropped")]
    inputs: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = [
        (b"valid-traced", orjson.dumps(events[0]), traced),
        (b"valid-plain", orjson.dumps(events[1]), []),
        (b"valid-parent-only", orjson.dumps(events[2]), [("traceparent", PARENT)]),
        (b"bad-traced", b"{not json", traced),
        (b"bad-plain", b"{not json", []),
    ]
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for key, value, headers in inputs:
        producer.produce(topics.input, value=value, key=key, headers=headers or None)
    assert producer.flush(30) == 0

    # The console exporter writes finished spans to the consumer's stdout: its log file.
    consumer = start_consumer(topics, OTEL_TRACES_EXPORTER="console")
    consumer.wait_ready()
    outputs = {r.key: r.headers for r in read_topic(kafka_bootstrap, topics.output, 3, idle_s=1)}
    dead = {r.key: r.headers for r in read_topic(kafka_bootstrap, topics.dlq, 2, idle_s=1)}

    assert set(outputs) == {b"valid-traced", b"valid-plain", b"valid-parent-only"}
    assert outputs[b"valid-traced"] == {"traceparent": PARENT, "tracestate": STATE}
    assert outputs[b"valid-plain"] == {}
    assert outputs[b"valid-parent-only"] == {"traceparent": PARENT}

    assert set(dead) == {b"bad-traced", b"bad-plain"}
    assert dead[b"bad-traced"]["traceparent"] == PARENT
    assert dead[b"bad-traced"]["tracestate"] == STATE
    assert dead[b"bad-traced"]["error.type"] == b"invalid_json"
    assert "unrelated" not in dead[b"bad-traced"]
    assert not {"traceparent", "tracestate"} & set(dead[b"bad-plain"])

    assert consumer.terminate() == 0  # the SDK flushes its spans at exit
    log = consumer.log_path.read_text()
    assert f'"name": "process {topics.input}"' in log
    assert '"kind": "SpanKind.CONSUMER"' in log
    trace_id = PARENT.split(b"-")[1].decode()
    assert f'"trace_id": "0x{trace_id}"' in log, "no span links to the traced input"
