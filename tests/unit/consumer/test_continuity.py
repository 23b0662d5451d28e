"""Reading continuity without a broker: the re-created-topic rule, the topic id check, and the
offset resets read from librdkafka's log lines (the broker tests are in
tests/integration/consumer/test_continuity.py)."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicCollection, TopicPartition

from consumer.continuity import (
    InputContinuity,
    LibrdkafkaLog,
    OffsetReset,
    TopicRecreatedError,
    TopicRecreatedRule,
    account_for_resets,
)

# A line librdkafka 2.16 logged for a position deleted by delete_records (facility OFFSET).
RESET_LINE = (
    "[thrd:main]: sessions [1]: offset reset (at offset 10 (leader epoch -1), broker 1) to "
    "offset BEGINNING (leader epoch -1): fetch failed due to requested offset not available on "
    "the broker: Broker: Offset out of range"
)


@dataclass
class Description:
    topic_id: str


@dataclass
class Admin:
    """Answers describe_topics with the id it holds now (the real interface's shape)."""

    topic_id: str | None
    calls: int = 0
    answer_later: bool = False
    pending: list[Future[Any]] = field(default_factory=list)

    def describe_topics(self, topics: TopicCollection, **kwargs: Any) -> dict[str, Future[Any]]:
        self.calls += 1
        future: Future[Any] = Future()
        if self.answer_later:
            self.pending.append(future)
        elif self.topic_id is None:
            future.set_exception(RuntimeError("UNKNOWN_TOPIC_OR_PART"))
        else:
            future.set_result(Description(self.topic_id))
        return {"sessions": future}

    def poll(self, timeout: float) -> int:
        return 0

    def answer(self) -> None:
        for future in self.pending:
            future.set_result(Description(self.topic_id or ""))
        self.pending.clear()


@dataclass
class Counts:
    recreated: list[str] = field(default_factory=list)
    resets: list[tuple[str, int, int]] = field(default_factory=list)

    def topic_recreated(self, topic: str) -> None:
        self.recreated.append(topic)

    def offset_reset(self, topic: str, partition: int, skipped: int) -> None:
        self.resets.append((topic, partition, skipped))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _continuity(
    admin: Admin, rule: TopicRecreatedRule = "from_start"
) -> tuple[InputContinuity, Counts, Clock]:
    counts, clock = Counts(), Clock()
    continuity = InputContinuity(admin, "sessions", rule, counts, clock)
    continuity.start()
    return continuity, counts, clock


def _committed(offset: int, metadata: str | None, partition: int = 0) -> TopicPartition:
    if metadata is None:  # what an offset committed without metadata reads back as
        return TopicPartition("sessions", partition, offset)
    return TopicPartition("sessions", partition, offset, metadata=metadata)


def test_offsets_committed_for_another_topic_id_start_from_the_beginning() -> None:
    continuity, counts, _ = _continuity(Admin("new-id"))
    moved = continuity.check_assignment(
        [_committed(1500, "old-id", 0), _committed(1500, "new-id", 1)], lambda tp: 3000
    )
    assert [(tp.partition, tp.offset) for tp in moved] == [(0, OFFSET_BEGINNING)]
    assert counts.recreated == ["sessions"]
    assert continuity.commit_metadata == "new-id"


def test_an_offset_without_id_past_the_end_of_the_log_is_a_recreated_topic() -> None:
    continuity, counts, _ = _continuity(Admin("id"))
    moved = continuity.check_assignment(
        [_committed(1500, None, 0), _committed(200, None, 1), _committed(-1001, None, 2)],
        lambda tp: 1000,
    )
    assert [tp.partition for tp in moved] == [0]
    assert counts.recreated == ["sessions"]


def test_fail_rule_stops_and_names_the_topic_and_both_ids() -> None:
    continuity, counts, _ = _continuity(Admin("new-id"), rule="fail")
    with pytest.raises(TopicRecreatedError, match=r"sessions was recreated.*old-id.*new-id"):
        continuity.check_assignment([_committed(5, "old-id")], lambda tp: 10)
    assert counts.recreated == ["sessions"]


def test_a_running_check_never_blocks_and_reports_a_changed_id_once() -> None:
    admin = Admin("old-id")
    continuity, counts, clock = _continuity(admin)
    admin.answer_later = True
    assert not continuity.recreated_since_last_check()  # starts a look-up, does not wait
    assert admin.calls == 2
    admin.topic_id = "new-id"
    assert not continuity.recreated_since_last_check()  # no answer yet, no second look-up
    assert admin.calls == 2
    admin.answer()
    assert continuity.recreated_since_last_check()
    assert not continuity.recreated_since_last_check()
    assert counts.recreated == ["sessions"]
    assert continuity.commit_metadata == "new-id"
    clock.now += 5
    continuity.recreated_since_last_check()
    assert admin.calls == 2, "the next look-up waits for TOPIC_CHECK_INTERVAL_S"
    clock.now += 10
    continuity.recreated_since_last_check()
    assert admin.calls == 3


def test_a_deleted_topic_is_not_a_change_until_it_exists_again() -> None:
    admin = Admin("old-id")
    continuity, counts, clock = _continuity(admin)
    admin.topic_id = None  # deleted
    continuity.recreated_since_last_check()
    assert not continuity.recreated_since_last_check()
    assert continuity.topic_id == "old-id"
    admin.topic_id = "new-id"
    clock.now += 10
    continuity.recreated_since_last_check()
    assert continuity.recreated_since_last_check()
    assert counts.recreated == ["sessions"]


def test_librdkafka_lines_go_through_the_service_logger_and_resets_are_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = LibrdkafkaLog()
    with caplog.at_level(logging.INFO, logger="librdkafka"):
        log.log(logging.WARNING, "%s [%s] %s", "OFFSET", "rdkafka#consumer-1", RESET_LINE)
        log.log(logging.INFO, "%s [%s] %s", "CONFWARN", "rdkafka#consumer-1", "some warning")
    assert [r.name for r in caplog.records] == ["librdkafka", "librdkafka"]
    assert "offset reset" in caplog.records[0].getMessage()
    assert log.take_resets() == [OffsetReset("sessions", 1, 10)]
    assert log.take_resets() == []


def test_resets_are_counted_with_the_offsets_passed_over(caplog: pytest.LogCaptureFixture) -> None:
    counts = Counts()
    with caplog.at_level(logging.ERROR, logger="consumer.continuity"):
        account_for_resets(
            [OffsetReset("sessions", 1, 10), OffsetReset("sessions", 0, None)],
            lambda tp: 80,
            counts,
        )
    assert counts.resets == [("sessions", 1, 70), ("sessions", 0, 0)]
    assert "sessions[1]@10" in caplog.records[0].getMessage()
    assert "70 offsets deleted" in caplog.records[0].getMessage()
    assert "unknown" in caplog.records[1].getMessage()
