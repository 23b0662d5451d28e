"""Reading continuity: no input offset is passed over without a count and a log line.

Two things make a Kafka consumer pass over input it never read, both silent by default:

- **The input topic was deleted and created again** under the same name. The group's committed
  offsets, and the position a running consumer holds, belong to the old log; on the new one
  they skip its first offsets. Kafka gives each creation a new *topic id*: the consumer writes
  the id it read from into the metadata of every offset it commits, compares it on assignment,
  and looks the id up every ``TOPIC_CHECK_INTERVAL_S`` while running (a consumer paused across
  the re-creation sees no rebalance and no error at all). ``ON_TOPIC_RECREATED`` decides what
  follows: ``from_start`` reads the new topic from its first offset, ``fail`` stops the consumer
  so that an operator decides (exit 1; the offsets stay where they were).
- **Offsets were deleted before they were read** (retention, ``delete_records``). librdkafka
  finds the position out of range and resets it to the earliest offset, saying so only in its
  own log. Its log lines come here (``LibrdkafkaLog``), go out through the service's logger,
  and a reset is counted per partition with the number of offsets it passed over.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from confluent_kafka import OFFSET_BEGINNING, TopicCollection, TopicPartition

from consumer.errors import ConsumerError

logger = logging.getLogger(__name__)
librdkafka_logger = logging.getLogger("librdkafka")

TopicRecreatedRule = Literal["from_start", "fail"]

TOPIC_CHECK_INTERVAL_S: Final[float] = 10.0
"""How often a running consumer looks up its input topic's id."""
LOOKUP_TIMEOUT_S: Final[float] = 5.0
"""Bound on one blocking look-up (a topic id on assignment, the watermarks after a reset)."""

# librdkafka's OFFSET log line for a reset, e.g. "[thrd:main]: sessions [0]: offset reset (at
# offset 10 (leader epoch 0), broker 1) to offset BEGINNING (leader epoch -1): fetch failed due
# to requested offset not available on the broker: Broker: Offset out of range"
_RESET_LINE = re.compile(
    r"(?P<topic>[^\s\]]+) \[(?P<partition>\d+)\]: offset reset \(at (?:offset )?(?P<at>-?\w+)"
)


class TopicRecreatedError(ConsumerError):
    """The input topic was recreated and ON_TOPIC_RECREATED=fail."""


class AdminLike(Protocol):
    def describe_topics(self, topics: TopicCollection, **kwargs: Any) -> dict[str, Future[Any]]: ...
    def poll(self, timeout: float) -> int: ...


@dataclass(frozen=True, slots=True)
class OffsetReset:
    """librdkafka moved a partition's position because it was out of range."""

    topic: str
    partition: int
    at_offset: int | None
    """The position that was out of range, when the log line says it."""


class LibrdkafkaLog:
    """librdkafka's log lines through the ``librdkafka`` logger (JSON like every other line),
    and the offset resets among them, kept for the loop to account for.

    confluent-kafka calls ``log(level, "%s [%s] %s", facility, client, message)`` from inside
    ``poll``/``consume``, on the loop's thread.
    """

    def __init__(self) -> None:
        self._resets: list[OffsetReset] = []

    def log(self, level: int, msg: str, *args: Any) -> None:
        librdkafka_logger.log(level, msg, *args)
        facility, message = (args[0], args[-1]) if len(args) >= 2 else ("", msg)
        if facility == "OFFSET" and (match := _RESET_LINE.search(str(message))):
            at = match["at"]
            self._resets.append(
                OffsetReset(
                    match["topic"],
                    int(match["partition"]),
                    int(at) if at.lstrip("-").isdigit() and int(at) >= 0 else None,
                )
            )

    def take_resets(self) -> list[OffsetReset]:
        resets, self._resets = self._resets, []
        return resets


class ContinuityMetrics(Protocol):
    def topic_recreated(self, topic: str) -> None: ...
    def offset_reset(self, topic: str, partition: int, skipped: int) -> None: ...


class InputContinuity:
    """The input topic's identity and the rule for a re-created topic (see the module doc)."""

    def __init__(
        self,
        admin: AdminLike,
        topic: str,
        rule: TopicRecreatedRule,
        metrics: ContinuityMetrics,
        clock: Callable[[], float] = time.monotonic,
        check_interval_s: float = TOPIC_CHECK_INTERVAL_S,
    ) -> None:
        self._admin = admin
        self._topic = topic
        self._rule = rule
        self._metrics = metrics
        self._clock = clock
        self._check_interval_s = check_interval_s
        self.topic_id: str | None = None
        """The id of the topic the consumer reads now (None until the topic exists)."""
        self._pending: Future[Any] | None = None
        self._next_check = clock()

    @property
    def commit_metadata(self) -> str:
        """Written beside every committed offset: the id of the topic the offset belongs to."""
        return self.topic_id or ""

    def look_up(self) -> str | None:
        """The topic's id now, waiting at most LOOKUP_TIMEOUT_S (None: unknown or no topic)."""
        try:
            future = self._admin.describe_topics(
                TopicCollection([self._topic]), request_timeout=LOOKUP_TIMEOUT_S
            )[self._topic]
            return _topic_id(future.result(timeout=LOOKUP_TIMEOUT_S))
        except Exception as exc:  # the topic does not exist (yet), the broker is away, ...
            logger.debug("topic id of %s not known: %s", self._topic, exc)
            return None

    def start(self) -> None:
        self.topic_id = self.look_up()

    def check_assignment(
        self, committed: Sequence[TopicPartition], high_watermark: Callable[[TopicPartition], int]
    ) -> list[TopicPartition]:
        """On assignment: the partitions of ``committed`` whose committed offset belongs to an
        earlier topic of the same name, moved to the first offset (``from_start``).

        An offset committed with another topic id was read from an earlier topic; one committed
        without an id (by an older version) is judged by the log: past its end, it cannot be
        this topic's. Raises TopicRecreatedError under ``fail``.
        """
        current = self.look_up() or self.topic_id
        self.topic_id = current
        stale = []
        for tp in committed:
            if tp.topic != self._topic or tp.offset < 0:
                continue
            if tp.metadata:
                if current is not None and tp.metadata != current:
                    stale.append((tp, f"committed for topic id {tp.metadata}, now {current}"))
            elif tp.offset > (high := high_watermark(tp)) >= 0:
                stale.append((tp, f"committed offset {tp.offset} is past the log's end {high}"))
        if not stale:
            return []
        self._recreated(
            ",".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp, _ in stale), stale[0][1]
        )
        return [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp, _ in stale]

    def recreated_since_last_check(self) -> bool:
        """Never blocks: starts a look-up every TOPIC_CHECK_INTERVAL_S and reads its answer on a
        later call. True once when the id changed (the caller then rereads from the start);
        raises TopicRecreatedError under ``fail``."""
        self._admin.poll(0)  # serves the admin client's log lines
        if self._pending is not None and self._pending.done():
            future, self._pending = self._pending, None
            try:
                found = _topic_id(future.result())
            except Exception as exc:  # deleted and not yet created again, broker away, ...
                logger.debug("topic id of %s not known: %s", self._topic, exc)
                return False
            previous, self.topic_id = self.topic_id, found
            if previous is not None and found != previous:
                self._recreated(self._topic, f"topic id {previous} is now {found}")
                return True
            return False
        if self._pending is None and self._clock() >= self._next_check:
            self._next_check = self._clock() + self._check_interval_s
            try:
                self._pending = self._admin.describe_topics(
                    TopicCollection([self._topic]), request_timeout=LOOKUP_TIMEOUT_S
                )[self._topic]
            except Exception as exc:
                logger.debug("cannot look up topic %s: %s", self._topic, exc)
        return False

    def _recreated(self, where: str, why: str) -> None:
        self._metrics.topic_recreated(self._topic)
        if self._rule == "fail":
            logger.error(
                "input topic recreated: %s (%s); ON_TOPIC_RECREATED=fail, stopping", where, why
            )
            raise TopicRecreatedError(
                f"input topic {self._topic} was recreated ({why}); ON_TOPIC_RECREATED=fail: "
                "reset the group's offsets (or set ON_TOPIC_RECREATED=from_start) and restart"
            )
        logger.error(
            "input topic recreated: %s (%s); ON_TOPIC_RECREATED=from_start, reading it from "
            "its first offset",
            where,
            why,
        )


def account_for_resets(
    resets: Sequence[OffsetReset],
    low_watermark: Callable[[TopicPartition], int],
    metrics: ContinuityMetrics,
) -> None:
    """Count and log each reset with the offsets it passed over: from the position that was out
    of range to the log's first offset now (0 when that is unknown or behind the position)."""
    for reset in resets:
        where = f"{reset.topic}[{reset.partition}]"
        low = low_watermark(TopicPartition(reset.topic, reset.partition))
        if reset.at_offset is None or low < 0:
            skipped, detail = 0, "number of offsets skipped unknown"
        else:
            skipped = max(0, low - reset.at_offset)
            detail = f"{skipped} offsets deleted before they were read ({reset.at_offset}..{low})"
        metrics.offset_reset(reset.topic, reset.partition, skipped)
        logger.error(
            "offset reset %s@%s: position out of range, now at the earliest offset %s: %s "
            "(retention or delete_records removed unread input)",
            where,
            reset.at_offset if reset.at_offset is not None else "?",
            low if low >= 0 else "?",
            detail,
        )


def _topic_id(description: Any) -> str | None:
    topic_id = getattr(description, "topic_id", None)
    return None if topic_id is None else str(topic_id)
