"""Delivery: produce a batch's records and learn, record by record, which the broker acknowledged.

Every record is produced with its own delivery report (`PendingBatch.delivered`), so the loop
knows when a whole batch is acknowledged without stopping to flush, and which records an
attempt already wrote. `produce()` itself can refuse a record; what that means decides whether
the batch is retried or the record is handled on its own:

- the topic does not exist (deleted, not yet created): an outage of the topic, `PublishError`,
  and the batch is read again after a backoff;
- the record itself cannot be written (too large, invalid): it is a property of that record, so
  an output record becomes a dead letter instead, and a dead letter that cannot be written
  even cut to fit (`publish.fit_dead_letter`) is counted as `skipped` and logged with its
  offset; never a crash, never a blocked partition;
- anything else is treated as an outage too (retried), never as a reason to stop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from functools import partial
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Producer

from consumer.batch import BatchResult
from consumer.errors import PublishError
from consumer.inflight import PendingBatch, Position, position_of
from consumer.metrics import ScorerMetrics
from consumer.publish import DEAD_LETTER_BUDGET_BYTES, fit_dead_letter, produce_when_room
from scoring.decode import Rejection
from scoring.tracing import trace_headers

logger = logging.getLogger(__name__)

_MISSING_TOPIC: Final[frozenset[int]] = frozenset(
    {KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_OR_PART}
)
_RECORD_REFUSED: Final[frozenset[int]] = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError._INVALID_ARG, KafkaError.INVALID_RECORD}
)


class Publisher:
    """Produces the records of batches to the output and dead-letter topics."""

    def __init__(
        self,
        producer: Producer,
        metrics: ScorerMetrics,
        output_topic: str,
        dlq_topic: str,
        dead_letter_budget_bytes: int = DEAD_LETTER_BUDGET_BYTES,
    ) -> None:
        self._producer = producer
        self._metrics = metrics
        self._output_topic = output_topic
        self._dlq_topic = dlq_topic
        self._dead_letter_budget = dead_letter_budget_bytes
        self._on_queue_full = metrics.producer_queue_full.inc

    def publish(
        self, result: BatchResult, batch: PendingBatch, written: Collection[Position] = ()
    ) -> None:
        """Produce every record of `result` (outputs, then dead letters) with its delivery
        report going to `batch`; records whose input position is in `written` were acknowledged
        by an earlier attempt and are not produced again. Raises PublishError (retry the batch).
        """
        topic, delivered = self._output_topic, batch.delivered
        for index, (record, message) in enumerate(zip(result.records, result.scored, strict=True)):
            if written and position_of(message) in written:
                batch.settled(index)
            elif not self._produce(
                topic,
                record,
                message.key(),
                trace_headers(message.headers()),
                partial(delivered, index),
            ):
                reason = f"the output record ({len(record)} bytes) was refused by the producer"
                self._dead_letter(
                    Rejection(message, "output_refused", "<record>", reason), batch, index
                )
        offset = len(result.records)
        for index, rejection in enumerate(result.rejections, start=offset):
            if written and position_of(rejection.message) in written:
                batch.settled(index)
            else:
                self._dead_letter(rejection, batch, index)

    def _dead_letter(self, rejection: Rejection, batch: PendingBatch, index: int) -> None:
        letter = fit_dead_letter(rejection, self._dead_letter_budget)
        if not self._produce(
            self._dlq_topic,
            letter.value,
            letter.key,
            letter.headers,
            partial(batch.delivered, index),
        ):
            topic, partition, offset = position_of(rejection.message)
            logger.error(
                "skipping a message no dead letter can hold topic=%s partition=%d offset=%d "
                "error.type=%s",
                topic,
                partition,
                offset,
                rejection.error_type,
            )
            self._metrics.count("skipped")
            batch.settled(index)

    def _produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: Any,
        on_delivery: Callable[..., None],
    ) -> bool:
        """Produce one record with its delivery report going to `on_delivery`; False when the
        producer refused the record itself."""
        try:
            produce_when_room(
                self._producer, topic, value, key, headers, self._on_queue_full, on_delivery
            )
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() in _RECORD_REFUSED:
                logger.warning("the producer refused a record for %s: %s", topic, error.str())
                return False
            reason = "the topic does not exist" if error.code() in _MISSING_TOPIC else "produce"
            raise PublishError(topic, f"{reason}: {error.str()}") from exc
        return True

    def serve(self, timeout_s: float = 0.0) -> None:
        """Serve delivery reports (and the producer's error callback), waiting up to timeout_s."""
        self._producer.poll(timeout_s)

    def drop_unsent(self) -> None:
        """Drop what never left this process, so that an abandoned attempt sends nothing more."""
        self._producer.purge(in_queue=True, in_flight=False)
        self._producer.poll(0)
