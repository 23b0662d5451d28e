"""Batches whose records are produced but not yet all acknowledged, oldest first.

The loop reads, scores and produces the next batch while the broker acknowledges the previous
ones. A batch's input offsets may be stored only once every one of its records (outputs and dead
letters) is acknowledged, and never ahead of an earlier batch of the same partition: batches
complete strictly in the order they were produced.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from confluent_kafka import KafkaError, TopicPartition

from scoring.decode import MessageLike

Position = tuple[str, int, int]
"""An input message's (topic, partition, offset)."""


def position_of(message: MessageLike) -> Position:
    return (message.topic() or "", message.partition() or 0, message.offset() or 0)


@dataclass
class BatchOffsets:
    """First and last offset of each input partition in one batch."""

    first: dict[tuple[str, int], int] = field(default_factory=dict)
    last: dict[tuple[str, int], int] = field(default_factory=dict)

    @classmethod
    def of(cls, messages: Sequence[MessageLike]) -> BatchOffsets:
        offsets = cls()
        for message in messages:
            key = (message.topic() or "", message.partition() or 0)
            offset = message.offset() or 0
            offsets.first.setdefault(key, offset)
            offsets.last[key] = offset
        return offsets

    def next_positions(self, metadata: str = "") -> list[TopicPartition]:
        """The offsets to commit: one past the last message of each partition, with the
        metadata to commit beside them (the input topic's id, `consumer.continuity`)."""
        return [TopicPartition(t, p, o + 1, metadata=metadata) for (t, p), o in self.last.items()]


class PendingBatch:
    """One produced batch: which of its records the broker acknowledged, and what failed."""

    def __init__(
        self,
        messages: Sequence[MessageLike],
        records: Sequence[MessageLike],
        scored: int,
        commit_metadata: str = "",
    ) -> None:
        self.offsets = BatchOffsets.of(messages)
        self.commit_metadata = commit_metadata
        """Committed beside the offsets: the id of the topic the batch was read from."""
        self.size = len(messages)
        self.scored = scored
        self.rejected = len(records) - scored
        stamps = [m.timestamp() for m in messages]
        self.timestamps_ms: npt.NDArray[np.float64] = np.array(
            [ms for kind, ms in stamps if kind != 0], dtype=np.float64
        )
        """The input records' timestamps (ms), of those that have one."""
        self._records = records
        self._positions: list[Position] | None = None
        self.acknowledged = bytearray(len(records))
        self.unacknowledged = len(records)
        self.errors: list[str] = []
        self.produced_at = time.monotonic()
        self.done_at_ms: float | None = None if records else time.time() * 1000

    @property
    def positions(self) -> list[Position]:
        """The input position of each record this batch produces, by record index (worked
        out when asked: only a retry and a consumer that rewound need them)."""
        if self._positions is None:
            self._positions = [position_of(m) for m in self._records]
        return self._positions

    def delivered(self, index: int, error: KafkaError | None, message: Any) -> None:
        """The producer's delivery report for record `index` (served inside poll/flush)."""
        if error is None:
            self.acknowledged[index] = 1
        else:
            self.errors.append(f"{message.topic()}: {error.str()}")
        self.unacknowledged -= 1
        if self.unacknowledged == 0:
            self.done_at_ms = time.time() * 1000

    def settled(self, index: int) -> None:
        """Record `index` needs no acknowledgement (already written by an earlier attempt, or
        skipped as unwritable)."""
        self.delivered(index, None, None)

    @property
    def done(self) -> bool:
        return self.unacknowledged == 0

    def written(self) -> Iterable[Position]:
        """Input positions whose record is acknowledged."""
        return (p for p, ok in zip(self.positions, self.acknowledged, strict=True) if ok)


class InFlight:
    """The produced batches, oldest first."""

    def __init__(self) -> None:
        self._batches: deque[PendingBatch] = deque()

    def __len__(self) -> int:
        return len(self._batches)

    def add(self, batch: PendingBatch) -> None:
        self._batches.append(batch)

    def oldest(self) -> PendingBatch | None:
        return self._batches[0] if self._batches else None

    def pop_oldest(self) -> PendingBatch:
        return self._batches.popleft()

    def messages(self) -> int:
        return sum(batch.size for batch in self._batches)

    def rewind_positions(self) -> list[TopicPartition]:
        """For each partition, the first offset of its oldest batch in flight."""
        first: dict[tuple[str, int], int] = {}
        for batch in self._batches:
            for key, offset in batch.offsets.first.items():
                first.setdefault(key, offset)
        return [TopicPartition(t, p, o) for (t, p), o in first.items()]

    def written(self) -> set[Position]:
        return {position for batch in self._batches for position in batch.written()}

    def clear(self) -> None:
        self._batches.clear()
