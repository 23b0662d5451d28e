"""Stand-ins for confluent_kafka's Message, Consumer and Producer in pure unit tests of the
stages and the loop (never for the broker: integration tests use a real one)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition


def valid_event(session_id: str = "s-1") -> dict[str, object]:
    return {
        "session_id": session_id,
        "event_time": "2026-11-26T10:00:00Z",
        "Administrative": 2,
        "Administrative_Duration": 30.5,
        "Informational": 0,
        "Informational_Duration": 0.0,
        "ProductRelated": 12,
        "ProductRelated_Duration": 400.0,
        "BounceRates": 0.01,
        "ExitRates": 0.02,
        "PageValues": 5.5,
        "SpecialDay": 0.0,
        "Month": "Nov",
        "OperatingSystems": 2,
        "Browser": 2,
        "Region": 1,
        "TrafficType": 2,
        "VisitorType": "Returning_Visitor",
        "Weekend": False,
    }


@dataclass
class FakeMessage:
    _value: bytes | None
    _key: bytes | None = b"k"
    _topic: str = "sessions"
    _partition: int = 0
    offset_: int = 0
    _timestamp: tuple[int, int] = (1, 1_700_000_000_000)

    def __init__(
        self, value: bytes | None, offset: int = 0, key: bytes | None = b"k", partition: int = 0
    ) -> None:
        self._value = value
        self._key = key
        self._topic = "sessions"
        self._partition = partition
        self.offset_ = offset
        self._timestamp = (1, 1_700_000_000_000)

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self.offset_

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def error(self) -> None:
        return None


Call = tuple[str, Any]


class FakeConsumer:
    """Hands out scripted batches, then sets `stop`; records every call in the shared `log`."""

    def __init__(
        self, batches: list[list[FakeMessage]], stop: threading.Event, log: list[Call]
    ) -> None:
        self._batches = list(batches)
        self._stop = stop
        self.log = log
        self.callbacks: dict[str, Callable[..., None]] = {}

    def subscribe(self, topics: list[str], **callbacks: Callable[..., None]) -> None:
        self.callbacks = callbacks

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        if not self._batches:
            self._stop.set()
            return []
        batch = self._batches.pop(0)
        held = sorted({(m.topic() or "", m.partition() or 0) for m in batch})
        self.callbacks["on_assign"](self, [TopicPartition(t, p) for t, p in held])
        return batch

    def store_offsets(self, offsets: list[TopicPartition]) -> None:
        self.log.append(("store_offsets", [(tp.partition, tp.offset) for tp in offsets]))

    def commit(self, asynchronous: bool = True) -> None:
        self.log.append(("commit", asynchronous))

    def seek(self, position: TopicPartition) -> None:
        self.log.append(("seek", (position.partition, position.offset)))

    def consumer_group_metadata(self) -> str:
        return "group-metadata"

    def close(self) -> None:
        self.log.append(("close", None))


class FakeProducer:
    """Records produced records in `log`; `unacknowledged` records stay unacknowledged by every
    flush until they are purged; `commit_error` makes commit_transaction raise it once."""

    def __init__(self, log: list[Call]) -> None:
        self.log = log
        self.unacknowledged = 0
        self.commit_error: KafkaError | None = None

    def produce(self, topic: str, value: bytes, key: bytes | None, headers: Any = None) -> None:
        self.log.append(("produce", topic))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        self.log.append(("flush", self.unacknowledged))
        return self.unacknowledged

    def purge(self, in_queue: bool = True, in_flight: bool = True) -> None:
        self.unacknowledged = 0
        self.log.append(("purge", None))

    def begin_transaction(self) -> None:
        self.log.append(("begin_transaction", None))

    def send_offsets_to_transaction(self, positions: list[TopicPartition], *_: Any) -> None:
        self.log.append(("send_offsets", [(tp.partition, tp.offset) for tp in positions]))

    def commit_transaction(self, timeout: float) -> None:
        if self.commit_error is not None:
            error, self.commit_error = self.commit_error, None
            raise KafkaException(error)
        self.log.append(("commit_transaction", None))

    def abort_transaction(self, timeout: float) -> None:
        self.log.append(("abort_transaction", None))
