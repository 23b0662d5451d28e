"""Producing test events and reading topics back, with the real client against the real broker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from contract.frame import dataset_row_to_event_dict
from training.synthetic import generate_sessions


def synthetic_events(n: int, seed: int = 11, prefix: str = "s") -> list[dict[str, object]]:
    frame = generate_sessions(n, seed=seed)
    return [
        dataset_row_to_event_dict(row, session_id=f"{prefix}-{i}")
        for i, row in enumerate(frame.to_dict(orient="records"))
    ]


def produce(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    count = 0
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} test messages not delivered"
    return count


def produce_events(bootstrap: str, topic: str, events: Sequence[dict[str, object]]) -> int:
    return produce(
        bootstrap,
        topic,
        ((str(e["session_id"]).encode(), json.dumps(e).encode()) for e in events),
    )


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int

    def json(self) -> dict[str, object]:
        assert self.value is not None
        return dict(json.loads(self.value))


def read_topic(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout_s: float = 60,
    read_committed: bool = True,
    idle_s: float = 2.0,
) -> list[Record]:
    """Read a topic from the beginning until ``expected`` records arrived and it stays idle."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    last_arrival = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, 0.2)
            for message in batch:
                if message.error():
                    continue
                records.append(
                    Record(
                        message.key(),
                        message.value(),
                        {k: v or b"" for k, v in (message.headers() or [])},
                        message.partition() or 0,
                        message.offset() or 0,
                    )
                )
                last_arrival = time.monotonic()
            if len(records) >= expected and time.monotonic() - last_arrival >= idle_s:
                break
    finally:
        consumer.close()
    return records
