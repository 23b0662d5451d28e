"""Scale out and in: members join and leave one group on a 6-partition topic, mid-stream."""

from __future__ import annotations

import pytest

from tests.integration.consumer.conftest import TopicsFactory
from tests.integration.consumer.kafka_io import synthetic_events
from tests.integration.faults.support import (
    ScenarioFactory,
    committed_offsets,
    end_offsets,
    scored,
    wait_until,
)

PARTITIONS = 6


@pytest.mark.slow
def test_two_then_three_members_then_one_leaves_loses_nothing(
    kafka_bootstrap: str, topics_factory: TopicsFactory, scenario: ScenarioFactory
) -> None:
    events = synthetic_events(15_000, seed=108, prefix="x")
    run = scenario(
        "scale 2 -> 3 -> 2 members (SIGTERM), 6 partitions", topics_factory(PARTITIONS), events
    )
    first, second = run.launch(), run.launch()
    first.wait_ready(120)
    second.wait_ready(120)
    # Half the events stream in, then the stream holds until the membership changes are done.
    run.offer(chunk=500, pause_s=0.2, hold_after=len(events) // 2)
    stream = run.stream
    assert stream is not None
    wait_until(lambda: scored(first) > 0 and scored(second) > 0, "both members scoring", 120)

    third = run.start()  # scale out mid-stream; ready = gates passed, partitions held
    left_after = scored(first)
    assert first.terminate() == 0, first.log_tail()  # scale in mid-stream
    assert stream.is_alive(), "the stream ended before the member left: not mid-stream"
    stream.release()
    result = run.account(record=False)
    per_member = [left_after, scored(second), scored(third)]
    assert second.terminate() == 0, second.log_tail()
    assert third.terminate() == 0, third.log_tail()
    run.record(result, scored_per_member=per_member)

    served = {record.json()["source"]["partition"] for record in run.outputs}
    result.assert_nothing_lost()
    assert served == set(range(PARTITIONS))
    assert all(count > 0 for count in per_member), per_member
    assert committed_offsets(kafka_bootstrap, run.group, run.topics.input, PARTITIONS) == (
        end_offsets(kafka_bootstrap, run.topics.input, PARTITIONS)
    )
