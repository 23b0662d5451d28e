"""The monitor's loop: read scores and outcomes, join them per partition, export the figures.

Delivery and state (docs/quality.md, "Restarts and replicas"):

- Partition ``i`` of the scores topic, of the outcome topic (and of the shadow's) is one unit:
  the topics are keyed by ``session_id`` with the same partition count and partitioner, so a
  session's score and outcome share ``i``. The ``range`` assignor gives partition ``i`` of every
  topic to the same member; ``on_assign`` checks it and stops the monitor if not.
- No offset is ever committed and no state is written anywhere: on every assignment the
  monitor seeks each partition to ``now - (OUTCOME_WINDOW + QUALITY_HISTORY)``
  (``offsets_for_times``) and replays it through the same join rule, which decides in record
  time (``contract.join``), so the replay reaches the same judgements. A SIGKILL loses nothing
  that the topics still hold. Figures are exported only once every assigned partition has been
  read to its end (``/readyz``), so a replica never shows figures of a half-rebuilt state.
- The join's clock is the watermark of partition ``i``: the least, over its topics, of the
  newest record timestamp read, or, for a partition read to its end, ``now - QUALITY_GRACE``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from confluent_kafka import OFFSET_END, Consumer, KafkaError, Message, TopicPartition

from contract.brokers import ALL_BROKERS_DOWN, fatal_client_error
from contract.join import OutcomeJoin, in_sample
from quality.health import MonitorHealth
from quality.metrics import QualityMetrics
from quality.promised import Promises
from quality.records import RecordError, decode_outcome, decode_score
from quality.settings import QualitySettings
from quality.window import PRIMARY, SHADOW, LabelledWindow, Scored

logger = logging.getLogger(__name__)

CONSUME_BATCH: Final = 1000
CONSUME_TIMEOUT_S: Final = 0.2


class MonitorError(Exception):
    """The monitor cannot go on (topics not co-partitioned, a fatal client error)."""


def consumer_config(settings: QualitySettings, on_error: Callable[[Any], None]) -> dict[str, Any]:
    return {
        **settings.connection_config(),
        "group.id": settings.quality_consumer_group,
        # Partition i of every topic to one member (same partition counts, checked at start).
        "partition.assignment.strategy": "range",
        # State comes from the topics by timestamp, never from committed offsets.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # The end of a partition moves its clock to now - QUALITY_GRACE.
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "error_cb": on_error,
    }


def check_partition_counts(consumer: Consumer, topics: Sequence[str], timeout_s: float) -> int:
    """The topics' common partition count; MonitorError naming them when they differ."""
    metadata = consumer.list_topics(timeout=timeout_s)
    counts: dict[str, int] = {}
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise MonitorError(f"topic {topic} does not exist (or cannot be described)")
        counts[topic] = len(found.partitions)
    if len(set(counts.values())) != 1:
        listed = ", ".join(f"{topic}={n}" for topic, n in counts.items())
        raise MonitorError(
            f"the topics must have the same partition count to be co-partitioned: {listed}"
        )
    return next(iter(counts.values()))


class ClientErrors:
    """The client's error callback: broker reachability, and errors retrying cannot heal."""

    def __init__(self, health: MonitorHealth) -> None:
        self.health = health
        self.fatal_error: str | None = None

    def on_error(self, error: KafkaError) -> None:
        if error.code() == ALL_BROKERS_DOWN:
            self.health.broker_reachable = False
        self.fatal_error = self.fatal_error or fatal_client_error(error)
        if self.fatal_error is None:
            logger.warning("kafka error: %s", error.str())


class QualityMonitor:
    def __init__(
        self,
        settings: QualitySettings,
        consumer: Consumer,
        errors: ClientErrors,
        metrics: QualityMetrics,
        promises: Promises,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.errors = errors
        self.metrics = metrics
        self.health = errors.health
        self.promises = promises
        self.clock = clock
        self.window = LabelledWindow(settings.quality_window_labels)
        self._roles = {settings.scores_topic: PRIMARY}
        if settings.shadow_scores_topic is not None:
            self._roles[settings.shadow_scores_topic] = SHADOW
        self._window_ms = int(settings.outcome_window * 1000)
        self._grace_ms = int(settings.quality_grace * 1000)
        self._joins: dict[int, OutcomeJoin[Scored]] = {}
        self._stream_ms: dict[tuple[str, int], int] = {}
        self._at_end: dict[tuple[str, int], bool] = {}
        self._reached_end: set[tuple[str, int]] = set()
        self._watermark: dict[int, int] = {}
        self._last_refresh = 0.0

    # --- the rebalance callbacks ---------------------------------------------------------

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels("assign").inc()
        by_topic: dict[str, set[int]] = {topic: set() for topic in self.settings.topics}
        for tp in partitions:
            by_topic[tp.topic].add(tp.partition)
        numbers = by_topic[self.settings.scores_topic]
        if any(held != numbers for held in by_topic.values()):
            self.errors.fatal_error = (
                "partitions not co-assigned (check that every topic has the same partition "
                f"count and that all members use the range assignor): {by_topic}"
            )
            return
        start_ms = int((self.clock() - self.settings.outcome_window) * 1000) - int(
            self.settings.quality_history * 1000
        )
        wanted = [TopicPartition(tp.topic, tp.partition, start_ms) for tp in partitions]
        positions = consumer.offsets_for_times(wanted, timeout=30) if wanted else []
        for tp in positions:
            if tp.offset < 0:  # no record at or after the time: start at the end
                tp.offset = OFFSET_END
        sessions = max(1, self.settings.quality_max_sessions // max(1, len(numbers)))
        outcomes = max(1, self.settings.quality_max_pending_outcomes // max(1, len(numbers)))
        for number in numbers:
            self._joins[number] = OutcomeJoin(
                self._window_ms, self.settings.missing_outcome, sessions, outcomes
            )
            self._watermark[number] = -1
        for tp in partitions:
            self._stream_ms[(tp.topic, tp.partition)] = -1
            self._at_end[(tp.topic, tp.partition)] = False
        consumer.assign(positions)
        self.health.assigned = bool(partitions)
        self.health.caught_up = False
        logger.info("assigned partitions=%s replay_from_ms=%d", sorted(numbers), start_ms)

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels("revoke").inc()
        for tp in partitions:
            self._joins.pop(tp.partition, None)
            self._watermark.pop(tp.partition, None)
            self.window.drop(tp.partition)
            key = (tp.topic, tp.partition)
            self._stream_ms.pop(key, None)
            self._at_end.pop(key, None)
            self._reached_end.discard(key)
        self.health.assigned = bool(self._joins)
        # No figure of sessions this replica no longer judges: nothing until caught up again.
        self.metrics.publish({}, {}, {}, {})
        self._last_refresh = 0.0
        logger.info("revoked partitions=%s", sorted({tp.partition for tp in partitions}))

    # --- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.consumer.subscribe(
            list(self.settings.topics),
            on_assign=self.on_assign,
            on_revoke=self.on_revoke,
            on_lost=self.on_revoke,
        )
        while not stop.is_set():
            if self.errors.fatal_error is not None:
                raise MonitorError(self.errors.fatal_error)
            self.turn(self.consumer.consume(CONSUME_BATCH, CONSUME_TIMEOUT_S))
            self.health.beat()

    def turn(self, messages: Sequence[Message]) -> None:
        for message in messages:
            error = message.error()
            if error is None:
                self._read(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                key = (str(message.topic()), int(message.partition() or 0))
                if key in self._at_end:
                    self._at_end[key] = True
                    self._reached_end.add(key)
            else:
                logger.warning(
                    "consume error topic=%s partition=%s: %s",
                    message.topic(),
                    message.partition(),
                    error.str(),
                )
        self._advance()
        if not self.health.caught_up and self._joins:
            self.health.caught_up = self._reached_end >= self._stream_ms.keys()
            if self.health.caught_up:
                logger.info("caught up: every assigned partition read to its end")
        now = self.clock()
        if self.health.caught_up and now - self._last_refresh >= self.settings.quality_refresh:
            self._last_refresh = now
            self.refresh()
        self.metrics.ready.set(1 if self.health.ready()[0] else 0)

    def _read(self, message: Message) -> None:
        self.health.broker_reachable = True
        topic, partition = str(message.topic()), int(message.partition() or 0)
        join = self._joins.get(partition)
        key = (topic, partition)
        if join is None or key not in self._at_end:
            return  # a record of a partition revoked meanwhile
        _, timestamp = message.timestamp()
        self._at_end[key] = False
        self._stream_ms[key] = max(self._stream_ms[key], timestamp)
        try:
            if topic == self.settings.outcome_topic:
                session_id, outcome = decode_outcome(message.value(), timestamp)
                if in_sample(session_id, self.settings.quality_sample_rate):
                    self.metrics.outcomes.inc()
                    join.add_outcome(session_id, outcome)
                return
            record = decode_score(message.value())
        except RecordError as exc:
            self.metrics.invalid.labels(topic).inc()
            logger.warning(
                "invalid record skipped topic=%s partition=%d offset=%s: %s",
                topic,
                partition,
                message.offset(),
                exc,
            )
            return
        if in_sample(record.session_id, self.settings.quality_sample_rate):
            role = self._roles[topic]
            self.metrics.scores.labels(role).inc()
            join.add_record(record.session_id, role, timestamp, record.scored)
            self.window.add_score(partition, role, timestamp, record.scored)

    def _advance(self) -> None:
        now_ms = int(self.clock() * 1000)
        lag_ms = 0
        for number, join in self._joins.items():
            clocks = []
            for topic in self.settings.topics:
                key = (topic, number)
                stream = self._stream_ms.get(key, -1)
                clocks.append(
                    max(stream, now_ms - self._grace_ms) if self._at_end.get(key) else stream
                )
            watermark = max(self._watermark.get(number, -1), min(clocks))
            self._watermark[number] = watermark
            lag_ms = max(lag_ms, now_ms - watermark)
            for judged in join.advance(watermark):
                self.window.add(number, judged)
                outcome = (
                    "missing"
                    if judged.outcome is None
                    else "purchase"
                    if judged.outcome.purchased
                    else "no_purchase"
                )
                for role, scored in judged.held.items():
                    self.metrics.judged.labels(role, scored.build_id, scored.variant, outcome).inc()
                if judged.outcome is not None and judged.held_time_ms:
                    first = min(judged.held_time_ms.values())
                    self.metrics.outcome_delay.observe(
                        max(0, judged.outcome.time_ms - first) / 1000
                    )
            for reason, count in join.ignored.items():
                self.metrics.ignored.labels(reason).inc(count)
            join.ignored.clear()
        self.metrics.held_sessions.set(sum(j.held_sessions for j in self._joins.values()))
        self.metrics.held_outcomes.set(sum(j.held_outcomes for j in self._joins.values()))
        self.metrics.watermark_lag.set(lag_ms / 1000 if self._joins else 0)

    def _clock_of(self, number: int, now_ms: int) -> int:
        """Every record up to this time has been read on partition ``number`` of each topic."""
        clocks = []
        for topic in self.settings.topics:
            key = (topic, number)
            stream = self._stream_ms.get(key, -1)
            at_end = self._at_end.get(key, False)
            clocks.append(max(stream, now_ms - self._grace_ms) if at_end else stream)
        return min(clocks)

    def refresh(self) -> None:
        """Recompute and export every figure (every QUALITY_REFRESH while caught up)."""
        recent = self.window.expected_recent()
        for _, build_id, variant in recent:
            self.promises.of(build_id, variant)
        self.metrics.publish(
            self.window.figures(), recent, self.window.pair_figures(), self.promises.all()
        )
