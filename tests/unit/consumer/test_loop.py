"""The loop's delivery rules, with both Kafka clients replaced by fakes that record every call."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pytest
from confluent_kafka import KafkaError, TopicPartition
from prometheus_client import CollectorRegistry

from consumer.delivery import Publisher
from consumer.health import HealthState
from consumer.kafka import ClientEvents
from consumer.loop import ScoringLoop
from consumer.metrics import ScorerMetrics
from consumer.settings import load_settings
from scoring.scorer import ModelInfo, Scorer
from tests.unit.consumer.fakes import Call, FakeConsumer, FakeProducer
from tests.unit.scoring.fakes import FakeMessage, valid_event

OUTPUT, DLQ = "session-scores", "sessions-dlq"


class ConstantPipeline:
    """A model that gives every row 0.5 (the loop's rules do not depend on the model), served
    by the real `Scorer`; it records the number of rows of each call."""

    def __init__(self) -> None:
        self.rows: list[int] = []

    def predict_proba(self, frame: Any) -> npt.NDArray[np.float64]:
        self.rows.append(len(frame))
        return np.full((len(frame), 2), 0.5)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _logged(name: str) -> Iterator[list[str]]:
    handler = _Records()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


class Harness:
    def __init__(
        self,
        messages: list[FakeMessage],
        batch: int = 1000,
        guarantee: str = "at_least_once",
        timeout_s: str = "0.2",
    ) -> None:
        self.settings = load_settings(
            {
                "MODEL_URI": "/models/b/best_model_full.joblib",
                "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
                "PROCESSING_GUARANTEE": guarantee,
                "PUBLISH_TIMEOUT_S": timeout_s,  # bounds the wait for acknowledgements
            }
        )
        self.stop = threading.Event()
        self.log: list[Call] = []
        self.registry = CollectorRegistry()
        self.metrics = ScorerMetrics.create(self.registry)
        self.health = HealthState(liveness_timeout_s=30)
        self.consumer = FakeConsumer(messages, batch, self.stop, self.log)
        self.producer = FakeProducer(self.log)
        self.pipeline = ConstantPipeline()
        info = ModelInfo(build_id="b", variant="full", git_sha="g", threshold=0.5)
        self.loop = ScoringLoop(
            self.settings,
            Scorer(self.pipeline, info, compiled=False),
            self.consumer,
            self.producer,
            Publisher(self.producer, self.metrics, OUTPUT, DLQ),
            self.metrics,
            self.health,
            ClientEvents(self.health, self.metrics),
        )

    def run(self, at_most_s: float = 10.0) -> list[Call]:
        timer = threading.Timer(at_most_s, self.stop.set)
        timer.start()
        try:
            with _logged("scoring.scorer") as scoring_log:
                self.loop.run(self.stop)
        finally:
            timer.cancel()
        # Every batch took the normal path: one batched call, never the one-by-one fallback.
        assert not [m for m in scoring_log if "batched scoring failed" in m], scoring_log
        return self.log

    def count(self, outcome: str) -> float:
        value = self.registry.get_sample_value("scorer_messages_total", {"outcome": outcome})
        return value or 0.0

    def calls(self, name: str) -> list[object]:
        return [argument for call, argument in self.log if call == name]


def _events(offsets: Sequence[int], partition: int = 0) -> list[FakeMessage]:
    return [
        FakeMessage(orjson.dumps(valid_event(f"s-{o}")), offset=o, partition=partition)
        for o in offsets
    ]


def test_offsets_are_stored_and_committed_only_after_the_batch_is_acknowledged() -> None:
    batch = [*_events([10, 11]), FakeMessage(b"not json", offset=12), *_events([5], partition=1)]
    harness = Harness(batch)
    log = harness.run()
    names = [call for call, _ in log]
    assert [topic for call, topic in log if call == "produce"] == [OUTPUT] * 3 + [DLQ]
    assert harness.calls("store_offsets") == [[(0, 13), (1, 6)]]  # one past the last, each
    last_delivery = max(i for i, name in enumerate(names) if name == "delivered")
    assert names.index("store_offsets") > last_delivery
    assert names[names.index("store_offsets") + 1] == "commit"  # at once, not on a timer
    assert harness.calls("commit") == [True]  # asynchronously
    assert harness.count("scored") == 3
    assert harness.count("rejected") == 1
    assert harness.pipeline.rows == [3]  # the three valid events, scored in one call


def test_the_next_batch_is_produced_while_one_is_unacknowledged_but_never_stored_ahead() -> None:
    harness = Harness(_events(range(1, 7)), batch=2, timeout_s="30")
    harness.producer.never_acknowledge = 1  # the first record of the first batch hangs
    harness.run(at_most_s=1.0)
    # Batch 2 is produced while batch 1 waits; batch 3 waits for room (two in flight at most).
    assert harness.calls("produce").count(OUTPUT) == 4
    assert harness.calls("store_offsets") == []  # and nothing is stored ahead of batch 1


def test_a_batch_not_acknowledged_in_time_is_rewound_without_repeating_what_was_written() -> None:
    harness = Harness(_events([10, 11, 12]))
    harness.producer.never_acknowledge = 2  # two records of the first attempt hang
    harness.run()
    assert harness.calls("seek") == [(0, 10)]  # back to the first offset of the batch
    assert "purge" in [call for call, _ in harness.log]  # the attempt sends nothing more
    assert harness.calls("produce") == [OUTPUT] * 5  # offset 12 was written: not again
    assert harness.calls("store_offsets") == [[(0, 13)]]  # only the retry, acknowledged
    assert harness.count("failed") == 3
    assert harness.count("scored") == 3


def test_a_failed_dead_letter_retries_without_publishing_the_outputs_again() -> None:
    harness = Harness([*_events([1]), FakeMessage(b"{", offset=2)])
    harness.producer.refuse_once = {DLQ}
    harness.run()
    assert harness.calls("produce") == [OUTPUT, DLQ, DLQ]
    assert harness.calls("seek") == [(0, 1)]
    assert harness.calls("store_offsets") == [[(0, 3)]]
    assert harness.health.ready()[1]["publishing"] is True  # the retry succeeded


def test_exactly_once_commits_offsets_inside_the_transaction() -> None:
    harness = Harness(_events([7, 8]), guarantee="exactly_once")
    harness.run()
    names = [call for call, _ in harness.log if call != "delivered"]
    assert names == [
        "begin_transaction",
        "produce",
        "produce",
        "send_offsets",
        "commit_transaction",
    ]
    assert harness.calls("send_offsets") == [[(0, 9)]]
    assert harness.calls("store_offsets") == []
    assert harness.count("scored") == 2


def test_exactly_once_aborts_and_rereads_when_the_commit_needs_an_abort() -> None:
    harness = Harness(_events([7, 8]), guarantee="exactly_once")
    harness.producer.commit_error = KafkaError(
        KafkaError._FENCED, "fenced for the test", txn_requires_abort=True
    )
    harness.run()
    names = [call for call, _ in harness.log]
    assert names.count("abort_transaction") == 1
    assert names.index("abort_transaction") < names.index("seek")
    assert harness.calls("seek") == [(0, 7)]
    assert names.count("commit_transaction") == 1  # the re-read batch commits
    assert harness.calls("produce") == [OUTPUT] * 4  # aborted outputs are produced again
    aborted = harness.registry.get_sample_value("scorer_transactions_aborted_total")
    assert aborted == 1


def test_a_fatal_transaction_error_stops_the_loop() -> None:
    harness = Harness(_events([7]), guarantee="exactly_once")
    harness.producer.commit_error = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    with pytest.raises(Exception, match="fenced"):
        harness.run()
    assert "abort_transaction" not in [call for call, _ in harness.log]


@pytest.mark.parametrize(
    ("guarantee", "commits"), [("at_least_once", [False]), ("exactly_once", [])]
)
def test_revoke_commits_stored_offsets_under_at_least_once_only(
    guarantee: str, commits: list[bool]
) -> None:
    harness = Harness([], guarantee=guarantee)
    harness.loop.on_assign(harness.consumer, [TopicPartition("sessions", 0)])
    harness.loop.on_revoke(harness.consumer, [TopicPartition("sessions", 0)])
    assert harness.calls("commit") == commits
    assert harness.health.ready()[1]["assigned"] is False


def test_lost_partitions_commit_nothing() -> None:
    harness = Harness([])
    harness.loop.on_assign(harness.consumer, [TopicPartition("sessions", 0)])
    harness.loop.on_lost(harness.consumer, [TopicPartition("sessions", 0)])
    assert harness.calls("commit") == []
    assert harness.health.ready()[1]["assigned"] is False


def test_shutdown_commits_what_was_stored_and_closes() -> None:
    harness = Harness(_events([1]))
    harness.run()
    harness.loop.shutdown()
    names = [call for call, _ in harness.log]
    assert names == ["produce", "delivered", "store_offsets", "commit", "commit", "close", "flush"]
    assert harness.calls("store_offsets") == [[(0, 2)]]  # one past the batch's last offset
    assert harness.calls("commit") == [True, False]  # after the batch, then at shutdown
    assert harness.pipeline.rows == [1]
