"""The loop: consume a micro-batch, decode, score, publish, then make its offsets durable.

Only wiring lives here; each stage is a function of its own module. Where the offsets are
stored or committed is where the delivery guarantee is decided, so each such place says why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from consumer.decode import MessageLike, Rejection, decode_batch
from consumer.errors import ConsumerError, PublishError
from consumer.health import HealthState
from consumer.kafka import consumer_config, records_only
from consumer.metrics import ScorerMetrics
from consumer.publish import Publisher, output_records, rfc3339_now
from consumer.scoring import Scorer, score_isolating_failures
from consumer.settings import Settings
from consumer.shadow import Shadow

logger = logging.getLogger(__name__)

MAX_RETRY_BACKOFF_S = 5.0
"""Longest pause between two attempts at a batch whose output was not acknowledged."""
_TRANSACTION_TIMEOUT_S = 30.0


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
        producer: Producer,
        publisher: Publisher,
        metrics: ScorerMetrics,
        health: HealthState,
        shadow: Shadow | None = None,
    ) -> None:
        self._settings = settings
        self._shadow = shadow
        self._scorer = scorer
        self._producer = producer
        self._publisher = publisher
        self._metrics = metrics
        self._health = health
        self._exactly_once = settings.processing_guarantee == "exactly_once"
        self._assigned: set[tuple[str, int]] = set()
        self._retry_backoff_s = 0.0
        self._batches_produced = 0
        self.fatal_error: str | None = None
        self._consumer = Consumer(consumer_config(settings, self.on_error, self.on_stats))

    # --- Kafka callbacks (they run on this thread, inside consume()) -------------------------

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self._metrics.rebalances.labels(kind="assign").inc()
        # cooperative-sticky also calls this with no partitions: that member holds nothing.
        self._health.set_assigned(bool(self._assigned))
        logger.info("assigned partitions=%s", _describe(partitions))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._metrics.rebalances.labels(kind="revoke").inc()
        if not self._exactly_once:
            # The batch in hand is finished before consume() runs this callback, so every
            # stored offset is acknowledged output: commit them before another member takes over.
            self._commit_stored_offsets(partitions)
        self._forget(partitions)
        logger.info("revoked partitions=%s", _describe(partitions))

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost partitions may already belong to another member: committing now could move its
        # position, so nothing is committed; at worst the new owner repeats some events.
        self._metrics.rebalances.labels(kind="lost").inc()
        self._forget(partitions)
        logger.warning("lost partitions=%s", _describe(partitions))

    def on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._health.set_broker_reachable(False)
        if error.code() == KafkaError._AUTHENTICATION:
            # Retrying with the same credentials cannot succeed: stop with a clear message.
            self.fatal_error = (
                f"authentication failed: {error.str()} "
                "(check KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME "
                "and KAFKA_SASL_PASSWORD)"
            )
        elif error.fatal():
            self.fatal_error = f"fatal kafka error: {error.str()}"
        else:
            logger.warning("kafka error: %s", error.str())

    def on_stats(self, stats_json: str) -> None:
        stats = orjson.loads(stats_json)
        brokers = stats.get("brokers", {}).values()
        self._health.set_broker_reachable(
            any(b.get("nodeid", -1) >= 0 and b.get("state") == "UP" for b in brokers)
        )
        for topic, topic_stats in stats.get("topics", {}).items():
            for partition, partition_stats in topic_stats.get("partitions", {}).items():
                lag = partition_stats.get("consumer_lag", -1)
                if int(partition) >= 0 and (topic, int(partition)) in self._assigned and lag >= 0:
                    self._metrics.consumer_lag.labels(topic=topic, partition=partition).set(lag)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._assigned.discard((tp.topic, tp.partition))
            with contextlib.suppress(KeyError):
                self._metrics.consumer_lag.remove(tp.topic, str(tp.partition))
        # Not ready while holding nothing (all revoked or lost), until the next assignment.
        self._health.set_assigned(bool(self._assigned))

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
            if self.fatal_error is not None:
                raise ConsumerError(self.fatal_error)
            self._health.beat()
            self._metrics.ready.set(1 if self._health.ready()[0] else 0)
            self._publisher.poll()  # serve delivery reports so the producer's queue drains
            messages = self._consumer.consume(settings.batch_max_messages, wait_s)
            records = self._usable(messages)
            if records:
                self._process(records, stop)

    def shutdown(self) -> None:
        """Commit what is acknowledged, leave the group, and flush the producer."""
        self._health.set_stopping()
        if not self._exactly_once:
            self._commit_stored_offsets(None)
        self._consumer.close()
        self._producer.flush(self._settings.shutdown_timeout_s / 2)
        logger.info("consumer closed")

    def _usable(self, messages: list[Message]) -> list[Message]:
        records = records_only(messages)
        if records:
            self._health.set_broker_reachable(True)
        return records

    def _process(self, messages: list[Message], stop: threading.Event) -> None:
        metrics = self._metrics
        metrics.batch_size.observe(len(messages))
        offsets = BatchOffsets.of(messages)

        started = time.perf_counter()
        decoded = decode_batch(messages, self._settings.max_message_bytes)
        decoded_at = time.perf_counter()
        metrics.observe_stage("decode", decoded_at - started)

        probabilities, failures = score_isolating_failures(self._scorer, decoded.events)
        rejections = list(decoded.rejections)
        events, scored_messages = decoded.events, decoded.messages
        if failures:
            failed = {index for index, _ in failures}
            rejections += [
                Rejection(decoded.messages[i], "scoring_failed", "<event>", reason)
                for i, reason in failures
            ]
            events = [e for i, e in enumerate(events) if i not in failed]
            scored_messages = [m for i, m in enumerate(scored_messages) if i not in failed]
            probabilities = probabilities[[i not in failed for i in range(len(probabilities))]]
        records = output_records(
            events, scored_messages, probabilities, self._scorer.info, rfc3339_now()
        )
        scored_at = time.perf_counter()
        metrics.observe_stage("score", scored_at - decoded_at)
        if self._shadow is not None:  # never raises; never changes records, offsets, readiness
            self._shadow.observe(events, scored_messages, probabilities)

        try:
            if self._exactly_once:
                self._publish_transaction(records, scored_messages, rejections, offsets)
            else:
                self._publish_and_store(records, scored_messages, rejections, messages)
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
        metrics.count("scored", len(records))
        metrics.count("rejected", len(rejections))

    def _publish_and_store(
        self,
        records: list[bytes],
        scored_messages: Sequence[MessageLike],
        rejections: list[Rejection],
        messages: list[Message],
    ) -> None:
        settings = self._settings
        started = time.perf_counter()
        self._publisher.produce_outputs(settings.output_topic, records, scored_messages)
        self._publisher.produce_dead_letters(settings.dlq_topic, rejections)
        self._publisher.wait_acknowledged(settings.shutdown_timeout_s)
        published = time.perf_counter()
        self._metrics.observe_stage("publish", published - started)
        self._maybe_crash_for_test()
        # at_least_once: every output and dead letter of this batch is acknowledged (acks=all),
        # so now, and only now, its input offsets may be stored for the next commit.
        self._consumer.store_offsets(offsets=BatchOffsets.of(messages).next_positions())
        self._metrics.observe_stage("commit", time.perf_counter() - published)

    def _publish_transaction(
        self,
        records: list[bytes],
        scored_messages: Sequence[MessageLike],
        rejections: list[Rejection],
        offsets: BatchOffsets,
    ) -> None:
        settings = self._settings
        started = time.perf_counter()
        try:
            self._producer.begin_transaction()
            self._publisher.produce_outputs(settings.output_topic, records, scored_messages)
            self._publisher.produce_dead_letters(settings.dlq_topic, rejections)
            published = time.perf_counter()
            self._metrics.observe_stage("publish", published - started)
            self._maybe_crash_for_test()
            # exactly_once: the input offsets commit in the same transaction as the outputs,
            # so a read_committed reader sees both or neither, whatever crashes.
            self._producer.send_offsets_to_transaction(
                offsets.next_positions(),
                self._consumer.consumer_group_metadata(),
                _TRANSACTION_TIMEOUT_S,
            )
            self._commit_transaction()
            self._metrics.observe_stage("commit", time.perf_counter() - published)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.fatal() or not error.txn_requires_abort():
                raise
            self._abort_transaction()
            raise PublishError(
                settings.output_topic, f"transaction aborted: {error.str()}"
            ) from exc

    def _maybe_crash_for_test(self) -> None:
        """FAULT_CRASH_BEFORE_COMMIT_BATCH: die between producing and committing, on purpose."""
        self._batches_produced += 1
        if self._batches_produced == self._settings.fault_crash_before_commit_batch:
            # Make sure the records really are in the log (uncommitted) before dying.
            self._producer.flush(_TRANSACTION_TIMEOUT_S)
            logger.warning(
                "fault injection: SIGKILL before commit of batch %d", self._batches_produced
            )
            os.kill(os.getpid(), signal.SIGKILL)

    def _commit_transaction(self) -> None:
        while True:
            try:
                self._producer.commit_transaction(_TRANSACTION_TIMEOUT_S)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.retriable() and not error.txn_requires_abort():
                    logger.warning("commit_transaction will be retried: %s", error.str())
                    continue
                raise

    def _abort_transaction(self) -> None:
        self._metrics.transactions_aborted.inc()
        while True:
            try:
                self._producer.abort_transaction(_TRANSACTION_TIMEOUT_S)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.retriable():
                    logger.warning("abort_transaction will be retried: %s", error.str())
                    continue
                raise

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
            if (position.topic, position.partition) in self._assigned:
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
