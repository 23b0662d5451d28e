"""Kafka transactions for `exactly_once`: begin, commit and abort, with the retries each allows.

librdkafka says for every failed transactional call whether it may be retried as it is
(`retriable`), needs the transaction aborted first (`txn_requires_abort`), or is fatal for the
producer; these helpers retry the first kind and raise the others to the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from consumer.errors import PublishError

logger = logging.getLogger(__name__)

TRANSACTION_TIMEOUT_S: Final[float] = 30.0


def _retrying(
    call: Callable[[], object],
    what: str,
    may_retry: Callable[[KafkaError], bool],
    stop: threading.Event | None = None,
) -> None:
    """Call until it succeeds; an error `may_retry` refuses is raised, as is any other error."""
    while stop is None or not stop.is_set():
        try:
            call()
            return
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if not may_retry(error):
                raise
            logger.warning("%s will be retried: %s", what, error.str())


def init_transactions(producer: Producer, stop: threading.Event) -> None:
    """Fence older instances with our transactional.id; retry while the broker is not there."""
    _retrying(
        lambda: producer.init_transactions(TRANSACTION_TIMEOUT_S),
        "init_transactions",
        lambda error: bool(error.retriable()),
        stop,
    )


def commit_transaction(producer: Producer) -> None:
    """Commit; a retriable error that does not need an abort is retried as it is."""
    _retrying(
        lambda: producer.commit_transaction(TRANSACTION_TIMEOUT_S),
        "commit_transaction",
        lambda error: bool(error.retriable() and not error.txn_requires_abort()),
    )


def abort_transaction(producer: Producer) -> None:
    _retrying(
        lambda: producer.abort_transaction(TRANSACTION_TIMEOUT_S),
        "abort_transaction",
        lambda error: bool(error.retriable()),
    )


def in_transaction(
    producer: Producer,
    produce: Callable[[], None],
    offsets: list[TopicPartition],
    group_metadata: Any,
    on_abort: Callable[[], None],
) -> None:
    """Produce a batch's records and commit its input offsets in one transaction.

    An error that needs an abort aborts the transaction (`on_abort` counts it) and raises
    PublishError, so the caller reads the batch again from its committed position; a fatal
    error is raised as it is."""
    try:
        producer.begin_transaction()
        produce()
        producer.send_offsets_to_transaction(offsets, group_metadata, TRANSACTION_TIMEOUT_S)
        commit_transaction(producer)
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        if error.fatal() or not error.txn_requires_abort():
            raise
        on_abort()
        abort_transaction(producer)
        raise PublishError("the transaction", f"aborted: {error.str()}") from exc
    except PublishError:
        on_abort()
        abort_transaction(producer)
        raise
