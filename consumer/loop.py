"""The loop: consume a micro-batch, process it, publish, then make its offsets durable.

Only Kafka plumbing lives here: what a batch turns into is `consumer.batch.process_batch`, a pure
function. Where the offsets are stored or committed is where the delivery guarantee is decided,
so each such place says why. Both clients are passed in, so the loop is tested with fakes.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from consumer.batch import BatchResult, process_batch
from consumer.decode import MessageLike
from consumer.errors import ConsumerError, PublishError
from consumer.health import HealthState
from consumer.kafka import ClientEvents, records_only
from consumer.metrics import ScorerMetrics
from consumer.publish import Publisher, rfc3339_now
from consumer.scoring import Scorer
from consumer.settings import Settings
from consumer.transactions import TRANSACTION_TIMEOUT_S, abort_transaction, commit_transaction

logger = logging.getLogger(__name__)

MAX_RETRY_BACKOFF_S = 5.0
"""Longest pause between two attempts at a batch whose output was not acknowledged."""


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

    def next_positions(self) -> list[TopicPartition]:
        """The offsets to commit: one past the last message of each partition."""
        return [TopicPartition(t, p, o + 1) for (t, p), o in self.last.items()]

    def start_positions(self) -> list[TopicPartition]:
        """Where to rewind to so the whole batch is read again."""
        return [TopicPartition(t, p, o) for (t, p), o in self.first.items()]


class ScoringLoop:
    """Runs until ``stop`` is set; one batch at a time, so a batch is never half-committed."""

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
    ) -> None:
        self._settings = settings
        self._scorer = scorer
        self._consumer = consumer
        self._producer = producer
        self._publisher = publisher
        self._metrics = metrics
        self._health = health
        self._events = events
        self._exactly_once = settings.processing_guarantee == "exactly_once"
        self._retry_backoff_s = 0.0
        self._batches_produced = 0

    # --- rebalance callbacks (they run on this thread, inside consume()) ---------------------

    def on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._events.hold([(tp.topic, tp.partition) for tp in partitions])
        self._metrics.rebalances.labels(kind="assign").inc()
        logger.info("assigned partitions=%s", _describe(partitions))

    def on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._metrics.rebalances.labels(kind="revoke").inc()
        if not self._exactly_once:
            # The batch in hand is finished before consume() runs this callback, so every
            # stored offset is acknowledged output: commit them before another member takes over.
            self._commit_stored_offsets(partitions)
        self._events.release([(tp.topic, tp.partition) for tp in partitions])
        logger.info("revoked partitions=%s", _describe(partitions))

    def on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Lost partitions may already belong to another member: committing now could move its
        # position, so nothing is committed; at worst the new owner repeats some events.
        self._metrics.rebalances.labels(kind="lost").inc()
        self._events.release([(tp.topic, tp.partition) for tp in partitions])
        logger.warning("lost partitions=%s", _describe(partitions))

    # --- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        settings = self._settings
        self._consumer.subscribe(
            [settings.input_topic],
            on_assign=self.on_assign,
            on_revoke=self.on_revoke,
            on_lost=self.on_lost,
        )
        wait_s = settings.batch_max_wait_ms / 1000
        while not stop.is_set():
            if self._events.fatal_error is not None:
                raise ConsumerError(self._events.fatal_error)
            self._health.beat()
            self._metrics.ready.set(1 if self._health.ready()[0] else 0)
            self._publisher.poll()  # serve delivery reports so the producer's queue drains
            records = records_only(self._consumer.consume(settings.batch_max_messages, wait_s))
            if records:
                self._health.set_broker_reachable(True)
                self._process(records, stop)

    def shutdown(self) -> None:
        """Commit what is acknowledged, leave the group, and flush the producer."""
        self._health.set_stopping()
        if not self._exactly_once:
            self._commit_stored_offsets(None)
        self._consumer.close()
        self._producer.flush(self._settings.shutdown_timeout_s / 2)
        logger.info("consumer closed")

    def _process(self, messages: list[Any], stop: threading.Event) -> None:
        metrics = self._metrics
        metrics.batch_size.observe(len(messages))
        offsets = BatchOffsets.of(messages)
        result = process_batch(
            messages, self._scorer, self._settings.max_message_bytes, rfc3339_now()
        )
        metrics.observe_stage("decode", result.decode_seconds)
        metrics.observe_stage("score", result.score_seconds)
        metrics.set_scoring_path(self._scorer.path)
        try:
            if self._exactly_once:
                self._publish_transaction(result, offsets)
            else:
                self._publish_and_store(result, offsets)
        except PublishError as exc:
            self._retry_later(exc, offsets, len(messages), stop)
            return
        self._retry_backoff_s = 0.0
        self._health.set_publishing(True)
        acknowledged_ms = time.time() * 1000
        for message in messages:
            kind, timestamp_ms = message.timestamp()
            if kind != 0 and timestamp_ms > 0:  # 0 = TIMESTAMP_NOT_AVAILABLE
                metrics.end_to_end_latency.observe(max(0.0, acknowledged_ms - timestamp_ms) / 1000)
        metrics.count("scored", len(result.records))
        metrics.count("rejected", len(result.rejections))

    def _produce(self, result: BatchResult) -> None:
        settings = self._settings
        self._publisher.produce_outputs(settings.output_topic, result.records, result.scored)
        self._publisher.produce_dead_letters(settings.dlq_topic, result.rejections)

    def _publish_and_store(self, result: BatchResult, offsets: BatchOffsets) -> None:
        started = time.perf_counter()
        self._produce(result)
        self._publisher.wait_acknowledged(self._settings.shutdown_timeout_s)
        published = time.perf_counter()
        self._metrics.observe_stage("publish", published - started)
        self._maybe_crash_for_test()
        # at_least_once: every output and dead letter of this batch is acknowledged (acks=all),
        # so now, and only now, its input offsets may be stored for the next commit.
        self._consumer.store_offsets(offsets=offsets.next_positions())
        self._metrics.observe_stage("commit", time.perf_counter() - published)

    def _publish_transaction(self, result: BatchResult, offsets: BatchOffsets) -> None:
        started = time.perf_counter()
        try:
            self._producer.begin_transaction()
            self._produce(result)
            published = time.perf_counter()
            self._metrics.observe_stage("publish", published - started)
            self._maybe_crash_for_test()
            # exactly_once: the input offsets commit in the same transaction as the outputs,
            # so a read_committed reader sees both or neither, whatever crashes.
            self._producer.send_offsets_to_transaction(
                offsets.next_positions(),
                self._consumer.consumer_group_metadata(),
                TRANSACTION_TIMEOUT_S,
            )
            commit_transaction(self._producer)
            self._metrics.observe_stage("commit", time.perf_counter() - published)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.fatal() or not error.txn_requires_abort():
                raise
            self._metrics.transactions_aborted.inc()
            abort_transaction(self._producer)
            raise PublishError(
                self._settings.output_topic, f"transaction aborted: {error.str()}"
            ) from exc

    def _maybe_crash_for_test(self) -> None:
        """FAULT_CRASH_BEFORE_COMMIT_BATCH: die between producing and committing, on purpose."""
        self._batches_produced += 1
        if self._batches_produced == self._settings.fault_crash_before_commit_batch:
            # Make sure the records really are in the log (uncommitted) before dying.
            self._producer.flush(TRANSACTION_TIMEOUT_S)
            logger.warning(
                "fault injection: SIGKILL before commit of batch %d", self._batches_produced
            )
            os.kill(os.getpid(), signal.SIGKILL)

    def _retry_later(
        self, exc: PublishError, offsets: BatchOffsets, count: int, stop: threading.Event
    ) -> None:
        """The batch's output is not safely written: rewind so that it is read again."""
        self._metrics.count("failed", count)
        self._health.set_publishing(False)
        logger.error(
            "batch not published, rewinding to re-read it positions=%s: %s",
            _describe(offsets.start_positions()),
            exc,
        )
        for position in offsets.start_positions():
            if (position.topic, position.partition) in self._events.assigned:
                try:
                    self._consumer.seek(position)
                except KafkaException as seek_error:
                    logger.warning("seek %s failed: %s", _describe([position]), seek_error)
        self._retry_backoff_s = min(MAX_RETRY_BACKOFF_S, max(0.1, self._retry_backoff_s * 2))
        stop.wait(self._retry_backoff_s)

    def _commit_stored_offsets(self, partitions: list[TopicPartition] | None) -> None:
        started = time.perf_counter()
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError._NO_OFFSET:
                logger.warning("commit of stored offsets failed: %s", error.str())
        self._metrics.observe_stage("commit", time.perf_counter() - started)
        logger.info("committed stored offsets partitions=%s", _describe(partitions or []))


def _describe(partitions: Sequence[TopicPartition]) -> str:
    return ",".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions)
