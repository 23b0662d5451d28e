"""Kafka transactions for `exactly_once`: begin, commit and abort, with the retries each allows.

librdkafka says for every failed transactional call whether it may be retried as it is
(`retriable`), needs the transaction aborted first (`txn_requires_abort`), or is fatal for the
producer; these helpers retry the first kind and raise the others to the loop.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from confluent_kafka import KafkaError, KafkaException, Producer

logger = logging.getLogger(__name__)

TRANSACTION_TIMEOUT_S: Final[float] = 30.0


def init_transactions(producer: Producer, stop: threading.Event) -> None:
    """Fence older instances with our transactional.id; retry while the broker is not there."""
    while not stop.is_set():
        try:
            producer.init_transactions(TRANSACTION_TIMEOUT_S)
            return
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if not error.retriable():
                raise
            logger.warning("init_transactions will be retried: %s", error.str())


def commit_transaction(producer: Producer) -> None:
    while True:
        try:
            producer.commit_transaction(TRANSACTION_TIMEOUT_S)
            return
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.retriable() and not error.txn_requires_abort():
                logger.warning("commit_transaction will be retried: %s", error.str())
                continue
            raise


def abort_transaction(producer: Producer) -> None:
    while True:
        try:
            producer.abort_transaction(TRANSACTION_TIMEOUT_S)
            return
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.retriable():
                logger.warning("abort_transaction will be retried: %s", error.str())
                continue
            raise
