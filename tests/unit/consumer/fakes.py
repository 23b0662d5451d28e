"""Stand-ins for confluent_kafka's Consumer and Producer in pure unit tests of the stages and the
loop (never for the broker: integration tests use a real one). Its Message:
``tests.unit.scoring.fakes.FakeMessage``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tests.unit.scoring.fakes import FakeMessage

Call = tuple[str, Any]


class FakeConsumer:
    """A partition log read in batches of `batch` (poll: the first message, consume: the rest
    of the batch); seek moves the read position back. Sets `stop` once the log has been read to
    its end and nothing was asked of it for `idle_s`. Records every call in the shared `log`."""

    def __init__(
        self,
        messages: list[FakeMessage],
        batch: int,
        stop: threading.Event,
        log: list[Call],
        idle_s: float = 0.5,
    ) -> None:
        self._messages = messages
        self._batch = batch
        self._cursor = 0
        self._left_in_batch = 0
        self._stop = stop
        self._idle_s = idle_s
        self._last_read = time.monotonic()
        self.log = log
        self.callbacks: dict[str, Callable[..., None]] = {}

    def subscribe(self, topics: list[str], **callbacks: Callable[..., None]) -> None:
        self.callbacks = callbacks
        held = sorted({(m.topic() or "", m.partition() or 0) for m in self._messages})
        callbacks["on_assign"](self, [TopicPartition(t, p) for t, p in held])

    def poll(self, timeout: float) -> FakeMessage | None:
        if self._cursor >= len(self._messages):
            if time.monotonic() - self._last_read > self._idle_s:
                self._stop.set()
            return None
        self._left_in_batch = self._batch - 1
        return self._take(1)[0]

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        taken = self._take(min(num_messages, self._left_in_batch))
        self._left_in_batch = 0
        return taken

    def _take(self, n: int) -> list[FakeMessage]:
        taken = self._messages[self._cursor : self._cursor + n]
        self._cursor += len(taken)
        self._last_read = time.monotonic()
        return taken

    def store_offsets(self, offsets: list[TopicPartition]) -> None:
        self.log.append(("store_offsets", [(tp.partition, tp.offset) for tp in offsets]))

    def commit(self, asynchronous: bool = True) -> None:
        self.log.append(("commit", asynchronous))

    def seek(self, position: TopicPartition) -> None:
        self.log.append(("seek", (position.partition, position.offset)))
        where = (position.partition, position.offset)
        self._cursor = next(
            i for i, m in enumerate(self._messages) if (m.partition(), m.offset()) == where
        )

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        """Nothing committed before the test (a new group)."""
        return [TopicPartition(tp.topic, tp.partition) for tp in partitions]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return partitions

    def consumer_group_metadata(self) -> str:
        return "group-metadata"

    def close(self) -> None:
        self.log.append(("close", None))


@dataclass
class _Produced:
    """A produced record, as a delivery report shows it."""

    name: str
    on_delivery: Callable[..., None] | None

    def topic(self) -> str:
        return self.name


class FakeProducer:
    """Records every produced record in `log` and reports its delivery on the next poll or
    flush. `never_acknowledge` records of the next produces get no report until purged; the
    next record to a topic in `refuse_once` gets a failed report; `commit_error` makes
    commit_transaction raise once."""

    def __init__(self, log: list[Call]) -> None:
        self.log = log
        self.never_acknowledge = 0
        self.refuse_once: set[str] = set()
        self.commit_error: KafkaError | None = None
        self._queued: list[_Produced] = []
        self._stuck: list[_Produced] = []

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        on_delivery: Callable[..., None] | None = None,
        *,
        headers: Any = None,
    ) -> None:
        """confluent_kafka's `produce` as far as the consumer uses it, in its argument order."""
        self.log.append(("produce", topic))
        record = _Produced(topic, on_delivery)
        if self.never_acknowledge:
            self.never_acknowledge -= 1
            self._stuck.append(record)
        else:
            self._queued.append(record)

    def poll(self, timeout: float) -> int:
        queued, self._queued = self._queued, []
        for record in queued:
            failed = None
            if record.name in self.refuse_once:
                self.refuse_once.discard(record.name)
                failed = KafkaError(KafkaError._MSG_TIMED_OUT)
            self.log.append(("delivered", record.name))
            if record.on_delivery is not None:
                record.on_delivery(failed, record)
        return len(queued)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        self.log.append(("flush", len(self._stuck)))
        return len(self._stuck)

    def purge(self, in_queue: bool = True, in_flight: bool = True) -> None:
        self._stuck.clear()
        self.log.append(("purge", None))

    def begin_transaction(self) -> None:
        self.log.append(("begin_transaction", None))

    def send_offsets_to_transaction(self, positions: list[TopicPartition], *_: Any) -> None:
        self.log.append(("send_offsets", [(tp.partition, tp.offset) for tp in positions]))

    def commit_transaction(self, timeout: float) -> None:
        self.poll(0)
        if self.commit_error is not None:
            error, self.commit_error = self.commit_error, None
            raise KafkaException(error)
        self.log.append(("commit_transaction", None))

    def abort_transaction(self, timeout: float) -> None:
        self.log.append(("abort_transaction", None))
