"""``python -m tests.integration.faults.crash_before_commit N``: the real consumer that SIGKILLs
itself once the records of its Nth batch are produced, before that batch's offsets are committed.

Test-only. It runs the real ``consumer.__main__.main`` (settings from the environment as usual)
with a publisher that counts batches: the loop calls ``Publisher.publish`` once a batch is scored
and commits the batch's offsets (under ``exactly_once``: its transaction) only after ``publish``
returned, so a kill right after ``publish`` is a crash between produce and commit.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Collection

from confluent_kafka import Producer

from consumer.__main__ import main as consumer_main
from consumer.batch import BatchResult
from consumer.delivery import Publisher
from consumer.inflight import PendingBatch, Position
from consumer.metrics import ScorerMetrics
from consumer.publish import DEAD_LETTER_BUDGET_BYTES
from consumer.transactions import TRANSACTION_TIMEOUT_S

logger = logging.getLogger("consumer.fault")

LOG_LINE = "fault injection: SIGKILL before batch {} commits"


def crashing_publisher(crash_at: int) -> type[Publisher]:
    """A `Publisher` that SIGKILLs the process after its `crash_at`-th `publish`."""

    class CrashBeforeCommit(Publisher):
        def __init__(
            self,
            producer: Producer,
            metrics: ScorerMetrics,
            output_topic: str,
            dlq_topic: str,
            dead_letter_budget_bytes: int = DEAD_LETTER_BUDGET_BYTES,
        ) -> None:
            super().__init__(producer, metrics, output_topic, dlq_topic, dead_letter_budget_bytes)
            self._flushable = producer
            self._batches = 0

        def publish(
            self, result: BatchResult, batch: PendingBatch, written: Collection[Position] = ()
        ) -> None:
            super().publish(result, batch, written)
            self._batches += 1
            if self._batches == crash_at:
                # The records really are in the log (uncommitted) before the process dies.
                self._flushable.flush(TRANSACTION_TIMEOUT_S)
                logger.warning(LOG_LINE.format(self._batches))
                os.kill(os.getpid(), signal.SIGKILL)

    return CrashBeforeCommit


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit() or int(argv[0]) < 1:
        print("usage: python -m tests.integration.faults.crash_before_commit N (N >= 1)")
        return 2
    return consumer_main(publisher_type=crashing_publisher(int(argv[0])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
