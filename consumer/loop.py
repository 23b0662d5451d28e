"""The loop: consume what has arrived, process it, produce it, and make offsets durable in order.

Only Kafka plumbing lives here: what a batch turns into is `consumer.batch.process_batch`, a pure
function. Where offsets are stored or committed is where the delivery guarantee is decided, so
each such place says why. Both clients are passed in, so the loop is tested with fakes.

`at_least_once` overlaps publishing with scoring: while the broker acknowledges batch N, batch
N+1 is read, decoded, scored and produced (at most MAX_IN_FLIGHT batches). `exactly_once` runs
one transaction per batch, one batch at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from consumer.batch import BatchResult, process_batch
from consumer.continuity import (
    LOOKUP_TIMEOUT_S,
    InputContinuity,
    LibrdkafkaLog,
    account_for_resets,
)
from consumer.delivery import Publisher
from consumer.errors import ConsumerError, PublishError
from consumer.health import HealthState
from consumer.inflight import InFlight, PendingBatch, Position
from consumer.kafka import ClientEvents, records_only
from consumer.metrics import ScorerMetrics
from consumer.publish import rfc3339_now
from consumer.settings import Settings
from consumer.spans import BatchTracing
from consumer.transactions import in_transaction
from scoring.drift import DriftSentinel
from scoring.metrics import observe_all
from scoring.scorer import Scorer
from scoring.shadow import Shadow

logger = logging.getLogger(__name__)

MAX_RETRY_BACKOFF_S: Final[float] = 5.0
"""Longest pause between two attempts at a batch whose output was not acknowledged."""
MAX_IN_FLIGHT: Final[int] = 2
"""Batches produced but not yet acknowledged, at most (at_least_once): while one waits for its
acknowledgements the next is read, scored and produced. It also bounds what a crash repeats."""
ACK_SLICE_S: Final[float] = 0.01
"""How long one wait for acknowledgements lasts; callbacks are served between slices."""


class ScoringLoop:
    """Runs until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        scorer: Scorer,
        consumer: Consumer,
        producer: Producer,
        publisher: Publisher,
        metrics: ScorerMetrics,
        health: HealthState,
        events: ClientEvents,
        tracing: BatchTracing | None = None,
        drift: DriftSentinel | None = None,
        shadow: Shadow | None = None,
        continuity: InputContinuity | None = None,
        librdkafka_log: LibrdkafkaLog | None = None,
    ) -> None:
        self._drift = drift
        self._continuity = continuity
        self._librdkafka_log = librdkafka_log
        self._settings = settings
        self._tracing = tracing or BatchTracing()
        self._shadow = shadow
        self._scorer = scorer
        self._consumer = consumer
        self._producer = producer
        self._publisher = publisher
        self._metrics = metrics
        self._health = health
        self._events = events
        self._exactly_once = settings.processing_guarantee == "exactly_once"
        self._inflight = InFlight()
        self._written: set[Position] = set()
        """Input positions whose record an abandoned attempt already wrote (at_least_once)."""
        self._retry_backoff_s = 0.0

    # --- rebalance callbacks (they run on this thread, inside poll()/consume()) --------------

    def on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._events.hold([(tp.topic, tp.partition) for tp in partitions])
        self._metrics.rebalances.labels(kind="assign").inc()
        committed = self._committed(partitions)
        if self._continuity is not None:
            # Offsets committed on an earlier topic of the same name would skip the new one's
            # first offsets: those partitions start from the beginning (or the consumer stops).
            moved = self._continuity.check_assignment(committed, self._high_watermark)
            if moved:
                self._assign_at(partitions, moved)
                committed = moved + [tp for tp in committed if tp not in moved]
        logger.info("assigned partitions=%s (committed positions)", _describe(committed))

    def on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._metrics.rebalances.labels(kind="revoke").inc()
        if not self._exactly_once:
            # Finish what is in flight first, so that every acknowledged batch's offsets are
            # committed before another member takes the partitions over.
            self._drain(self._settings.publish_timeout_s)
            self._commit_stored_offsets(partitions)
        positions = self._positions(partitions)
        self._release(partitions)
        logger.info("revoked partitions=%s", _describe(positions))

    def on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Lost partitions may already belong to another member: committing now could move its
        # position, so nothing is committed; at worst the new owner repeats some events.
        self._metrics.rebalances.labels(kind="lost").inc()
        self._release(partitions)
        logger.warning("lost partitions=%s", _describe(partitions))

    def _release(self, partitions: list[TopicPartition]) -> None:
        held = {(tp.topic, tp.partition) for tp in partitions}
        self._written = {p for p in self._written if (p[0], p[1]) not in held}
        self._events.release(list(held))

    # --- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe(
            [self._settings.input_topic],
            on_assign=self.on_assign,
            on_revoke=self.on_revoke,
            on_lost=self.on_lost,
        )
        while not stop.is_set():
            if self._events.fatal_error is not None:
                raise ConsumerError(self._events.fatal_error)
            self._health.beat()
            self._metrics.ready.set(1 if self._health.ready()[0] else 0)
            if self._shadow is not None:  # switches off a shadow over SHADOW_BATCH_TIMEOUT_S
                self._shadow.supervise()
            self._publisher.serve(0)  # delivery reports, the producer's error callback
            self._check_continuity()
            if not self._settle(stop):
                continue
            if len(self._inflight) >= MAX_IN_FLIGHT:
                self._publisher.serve(ACK_SLICE_S)
                continue
            messages = self._next_batch()
            if messages:
                with self._tracing.span(messages):
                    self._process(messages, stop)

    def _next_batch(self) -> list[Any]:
        """Whatever has arrived, up to BATCH_MAX_MESSAGES: batches are not held to fill up.

        Waits for a first message at most BATCH_MAX_WAIT_MS (less while batches are in flight,
        so their acknowledgements are settled promptly), then takes what is already fetched."""
        settings = self._settings
        wait_s = settings.batch_max_wait_ms / 1000
        first = self._consumer.poll(min(wait_s, ACK_SLICE_S) if len(self._inflight) else wait_s)
        if first is None:
            return []
        more = settings.batch_max_messages - 1
        rest = self._consumer.consume(more, 0) if more else []
        return records_only([first, *rest])

    def shutdown(self) -> None:
        """Finish what is in flight, commit what is acknowledged, leave the group, flush."""
        self._health.set_stopping()
        if not self._exactly_once:
            self._drain(self._settings.shutdown_timeout_s / 2)
            self._commit_stored_offsets(None)
        self._consumer.close()
        self._producer.flush(self._settings.shutdown_timeout_s / 2)
        logger.info("consumer closed")

    def _process(self, messages: list[Any], stop: threading.Event) -> None:
        self._metrics.batch_size.observe(len(messages))
        settings = self._settings
        result = process_batch(
            messages,
            self._scorer,
            settings.input_max_message_bytes,
            rfc3339_now(),
            settings.framing,
        )
        self._metrics.observe_stage("decode", result.decode_seconds)
        self._metrics.observe_stage("score", result.score_seconds)
        self._metrics.runtime.set_scoring_path(self._scorer.path)
        if self._drift is not None and result.scored:
            self._drift.observe(result.columns, result.probabilities)
        if self._shadow is not None:
            # Only hands the batch to the shadow's own thread (or drops it if the shadow is
            # busy): never waits, never raises, never changes records, offsets or readiness.
            self._shadow.observe(result)
        sources = [*result.scored, *(r.message for r in result.rejections)]
        batch = PendingBatch(messages, sources, len(result.records), self._commit_metadata())
        try:
            if self._exactly_once:
                self._publish_transaction(result, batch)
                self._completed(batch)
            else:
                self._publisher.publish(result, batch, self._written)
                self._inflight.add(batch)
        except PublishError as exc:
            self._inflight.add(batch)
            self._retry_later(str(exc), stop)

    def _settle(self, stop: threading.Event) -> bool:
        """Store the offsets of acknowledged batches, oldest first; on a failed or overdue
        batch rewind everything in flight. False when a retry is under way."""
        while (oldest := self._inflight.oldest()) is not None:
            if oldest.errors:
                self._retry_later(f"{len(oldest.errors)} failed: {oldest.errors[0]}", stop)
                return False
            if not oldest.done:
                waited = time.monotonic() - oldest.produced_at
                if waited > self._settings.publish_timeout_s:
                    unacknowledged = f"{oldest.unacknowledged} records not acknowledged"
                    self._retry_later(f"{unacknowledged} within {waited:.1f}s", stop)
                    return False
                return True
            self._inflight.pop_oldest()
            # at_least_once: every output and dead letter of this batch, and of every earlier
            # one, is acknowledged (acks=all): now, and only now, its offsets may be stored,
            # and committed at once so that a crash repeats at most what is still in flight.
            started = time.perf_counter()
            self._consumer.store_offsets(
                offsets=oldest.offsets.next_positions(oldest.commit_metadata)
            )
            self._commit(asynchronous=True)
            if self._written:
                self._written.difference_update(oldest.positions)
            self._metrics.observe_stage("commit", time.perf_counter() - started)
            self._completed(oldest)
        return True

    def _completed(self, batch: PendingBatch) -> None:
        metrics = self._metrics
        self._retry_backoff_s = 0.0
        self._health.set_publishing(True)
        metrics.observe_stage("publish", time.monotonic() - batch.produced_at)
        done_ms = batch.done_at_ms or time.time() * 1000
        stamped = batch.timestamps_ms[batch.timestamps_ms > 0]
        # One pass for the batch; the same buckets and sum as one observe() per record.
        observe_all(metrics.end_to_end_latency, np.maximum(0.0, done_ms - stamped) / 1000)
        metrics.count("scored", batch.scored)
        metrics.count("rejected", batch.rejected)

    def _drain(self, timeout_s: float) -> None:
        """Wait (serving callbacks) until what is in flight is acknowledged, and settle it."""
        deadline = time.monotonic() + timeout_s
        while len(self._inflight) and time.monotonic() < deadline:
            oldest = self._inflight.oldest()
            if oldest is not None and (oldest.done or oldest.errors):
                if not self._settle(threading.Event()):
                    return
            else:
                self._publisher.serve(ACK_SLICE_S)

    def _publish_transaction(self, result: BatchResult, batch: PendingBatch) -> None:
        def produce() -> None:
            self._publisher.publish(result, batch)

        started = time.perf_counter()
        # exactly_once: the input offsets commit in the same transaction as the outputs, so a
        # read_committed reader sees both or neither, whatever crashes.
        in_transaction(
            self._producer,
            produce,
            batch.offsets.next_positions(batch.commit_metadata),
            self._consumer.consumer_group_metadata(),
            self._metrics.transactions_aborted.inc,
        )
        self._metrics.observe_stage("commit", time.perf_counter() - started)

    # --- reading continuity (consumer.continuity) ----------------------------------------------

    def _commit_metadata(self) -> str:
        return "" if self._continuity is None else self._continuity.commit_metadata

    def _check_continuity(self) -> None:
        """Account for offsets librdkafka reset; reread a topic found re-created."""
        if self._librdkafka_log is not None and (resets := self._librdkafka_log.take_resets()):
            account_for_resets(resets, self._low_watermark, self._metrics)
        if self._continuity is not None and self._continuity.recreated_since_last_check():
            self._read_again_from_start()

    def _read_again_from_start(self) -> None:
        """ON_TOPIC_RECREATED=from_start while running: settle what is in flight (offsets of the
        old topic, committed with its id), then read every held partition from offset 0."""
        if not self._exactly_once:
            self._drain(self._settings.publish_timeout_s)
            self._commit_stored_offsets(None)
            self._inflight.clear()
            self._written.clear()
        topic = self._settings.input_topic
        for held_topic, partition in sorted(self._events.assigned):
            if held_topic == topic:
                try:
                    self._consumer.seek(TopicPartition(topic, partition, OFFSET_BEGINNING))
                except KafkaException as exc:
                    logger.warning("seek %s[%d] to its start failed: %s", topic, partition, exc)

    def _committed(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        try:
            return list(self._consumer.committed(partitions, timeout=LOOKUP_TIMEOUT_S))
        except KafkaException as exc:
            logger.warning("committed offsets of %s unknown: %s", _describe(partitions), exc)
            return partitions

    def _positions(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        try:
            return list(self._consumer.position(partitions))
        except KafkaException:
            return partitions

    def _assign_at(self, partitions: list[TopicPartition], moved: list[TopicPartition]) -> None:
        """Take the assignment with the `moved` partitions at their new offsets (inside
        on_assign: what the callback assigns replaces what would be assigned after it)."""
        start = {(tp.topic, tp.partition): tp.offset for tp in moved}
        assignment = [
            TopicPartition(tp.topic, tp.partition, start.get((tp.topic, tp.partition), tp.offset))
            for tp in partitions
        ]
        try:
            self._consumer.incremental_assign(assignment)
        except KafkaException:  # an eager assignment strategy (KAFKA_PARTITION_ASSIGNMENT_...)
            self._consumer.assign(assignment)

    def _high_watermark(self, partition: TopicPartition) -> int:
        return self._watermarks(partition)[1]

    def _low_watermark(self, partition: TopicPartition) -> int:
        return self._watermarks(partition)[0]

    def _watermarks(self, partition: TopicPartition) -> tuple[int, int]:
        """(low, high) of one partition from the broker; (-1, -1) when it does not answer."""
        try:
            low, high = self._consumer.get_watermark_offsets(partition, timeout=LOOKUP_TIMEOUT_S)
            return int(low), int(high)
        except KafkaException as exc:
            logger.warning("watermarks of %s unknown: %s", _describe([partition]), exc)
            return -1, -1

    def _retry_later(self, reason: str, stop: threading.Event) -> None:
        """Output is not safely written: rewind every batch in flight so it is read again."""
        inflight = self._inflight
        self._metrics.count("failed", inflight.messages())
        self._health.set_publishing(False)
        positions = inflight.rewind_positions()
        logger.error(
            "batch not published, rewinding to re-read it positions=%s: %s",
            _describe(positions),
            reason,
        )
        if not self._exactly_once:
            # What an attempt already wrote is not produced again when it is re-read.
            self._written |= inflight.written()
        inflight.clear()
        self._publisher.drop_unsent()
        for position in positions:
            if (position.topic, position.partition) in self._events.assigned:
                try:
                    self._consumer.seek(position)
                except KafkaException as seek_error:
                    logger.warning("seek %s failed: %s", _describe([position]), seek_error)
        self._retry_backoff_s = min(MAX_RETRY_BACKOFF_S, max(0.1, self._retry_backoff_s * 2))
        deadline = time.monotonic() + self._retry_backoff_s
        while not stop.is_set() and time.monotonic() < deadline:
            self._publisher.serve(min(0.1, max(0.0, deadline - time.monotonic())))

    def _commit(self, asynchronous: bool) -> None:
        """Commit the stored offsets (nothing stored yet is not an error)."""
        try:
            if asynchronous:
                self._consumer.commit(asynchronous=True)
            else:
                self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError._NO_OFFSET:
                logger.warning("commit of stored offsets failed: %s", error.str())

    def _commit_stored_offsets(self, partitions: list[TopicPartition] | None) -> None:
        started = time.perf_counter()
        self._commit(asynchronous=False)
        self._metrics.observe_stage("commit", time.perf_counter() - started)
        logger.info("committed stored offsets partitions=%s", _describe(partitions or []))


def _describe(partitions: Sequence[TopicPartition]) -> str:
    return ",".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions)
