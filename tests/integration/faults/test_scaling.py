"""Scale out and in: members join and leave one group on a 6-partition topic, mid-stream."""

from __future__ import annotations

import time

import pytest

from tests.integration.consumer.conftest import ConsumerFactory, TopicsFactory
from tests.integration.consumer.kafka_io import synthetic_events
from tests.integration.faults.support import (
    Ledger,
    Stream,
    TopicReader,
    account,
    committed_offsets,
    end_offsets,
    scored,
    wait_until,
)

PARTITIONS = 6


@pytest.mark.slow
def test_two_then_three_members_then_one_leaves_loses_nothing(
    kafka_bootstrap: str,
    topics_factory: TopicsFactory,
    start_consumer: ConsumerFactory,
    ledger: Ledger,
) -> None:
    started = time.monotonic()
    topics = topics_factory(PARTITIONS)
    group = "faults-scale"
    events = synthetic_events(15_000, seed=108, prefix="x")
    first = start_consumer(topics, group=group)
    second = start_consumer(topics, group=group)
    first.wait_ready(120)
    second.wait_ready(120)
    # Half the events stream in, then the stream holds until the membership changes are done.
    stream = Stream.of_events(
        kafka_bootstrap, topics.input, events, chunk=500, pause_s=0.2, hold_after=len(events) // 2
    )
    stream.start()
    wait_until(lambda: scored(first) > 0 and scored(second) > 0, "both members scoring", 120)

    third = start_consumer(topics, group=group)  # scale out mid-stream
    third.wait_ready(120)  # ready = gates passed and partitions held (the stream is on hold)
    left_after = scored(first)
    assert first.terminate() == 0, first.log_tail()  # scale in mid-stream
    assert stream.is_alive(), "the stream ended before the member left: not mid-stream"
    stream.release()
    stream.finish()
    reader = TopicReader(kafka_bootstrap, topics.output)
    try:
        wanted = [str(e["session_id"]) for e in events]
        reader.poll_until(reader.has_ids(wanted), "every session_id", 240)
        outputs = reader.settle()
    finally:
        reader.close()
    per_member = [left_after, scored(second), scored(third)]
    assert second.terminate() == 0, second.log_tail()
    assert third.terminate() == 0, third.log_tail()

    served = {record.json()["source"]["partition"] for record in outputs}
    result = account(wanted, outputs)
    ledger.record(
        "scale 2 -> 3 -> 2 members (SIGTERM), 6 partitions",
        runs=3,
        accounting=result,
        seconds=time.monotonic() - started,
        scored_per_member=per_member,
    )
    result.assert_nothing_lost()
    assert served == set(range(PARTITIONS))
    assert all(count > 0 for count in per_member), per_member
    assert committed_offsets(kafka_bootstrap, group, topics.input, PARTITIONS) == end_offsets(
        kafka_bootstrap, topics.input, PARTITIONS
    )
