"""Replay tooling: produce session events to a topic and read a topic back in full.

Used by the benchmark, the demo (deploy/local/demo.py) and the integration tests; not on the
service's data path, so it lives outside the `consumer` package (tests/unit/test_dependencies.py
keeps the service from importing it). Also `free_port`, for the processes they start.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from consumer.publish import produce_when_room

KeyValue = tuple[bytes | None, bytes | None]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a process started next (METRICS_PORT)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def produce_messages(
    bootstrap: str,
    topic: str,
    messages: Iterable[KeyValue],
    extra_config: dict[str, Any] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Produce every (key, value) and wait for all acknowledgements; return the count."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all", **(extra_config or {})}
    )
    count = 0
    for key, value in messages:
        produce_when_room(producer, topic, value, key)
        count += 1
        producer.poll(0)
        if on_progress is not None:
            on_progress(1)
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} of {count} messages to {topic} were not acknowledged")
    return count


def event_messages(events: Iterable[dict[str, object]]) -> Iterable[KeyValue]:
    """Events keyed by their session_id, so one session's events stay in one partition."""
    for event in events:
        yield str(event["session_id"]).encode(), orjson.dumps(event)


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int
    timestamp_ms: int

    @classmethod
    def of(cls, message: Message) -> Record:
        return cls(
            message.key(),
            message.value(),
            headers_dict(message.headers()),
            message.partition() or 0,
            message.offset() or 0,
            message.timestamp()[1],
        )

    def json(self) -> dict[str, Any]:
        if self.value is None:
            raise ValueError("the record has no value")
        parsed = orjson.loads(self.value)
        if not isinstance(parsed, dict):
            raise ValueError("the record's value is not a JSON object")
        return parsed


def read_topic(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout_s: float = 60,
    read_committed: bool = True,
    idle_s: float = 2.0,
    extra_config: dict[str, Any] | None = None,
) -> list[Record]:
    """Read ``topic`` from offset 0 until ``expected`` records arrived and it stayed idle."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            **(extra_config or {}),
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        consumer.assign([TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions])
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        last_arrival = time.monotonic()
        while time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.2):
                if message.error():
                    continue
                records.append(Record.of(message))
                last_arrival = time.monotonic()
            if len(records) >= expected and time.monotonic() - last_arrival >= idle_s:
                break
        return records
    finally:
        consumer.close()


def headers_dict(raw: Any) -> dict[str, bytes]:
    """A message's headers as a dict of bytes (None and str values normalised)."""
    pairs: list[tuple[str, str | bytes | None]] = list(raw or [])
    return {
        name: value.encode() if isinstance(value, str) else (value or b"") for name, value in pairs
    }
