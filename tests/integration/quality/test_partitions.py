"""Co-partitioning, checked on the real broker: librdkafka's range assignor gives partition i of
two topics with the same partition count to the same member, and the monitor refuses topics
whose partition counts differ."""

from __future__ import annotations

import time

from confluent_kafka import Consumer

from tests.integration.broker import GroupFactory, TopicFactory

from .support import Start


def test_range_co_assigns_partition_i_of_both_topics(
    kafka_bootstrap: str, topic_factory: TopicFactory, group_factory: GroupFactory
) -> None:
    scores, outcomes, group = topic_factory(4), topic_factory(4), group_factory()
    members = [
        Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": group,
                "partition.assignment.strategy": "range",
                "session.timeout.ms": 6000,
            }
        )
        for _ in range(3)
    ]
    try:
        for member in members:
            member.subscribe([scores, outcomes])
        deadline = time.monotonic() + 60
        held: list[dict[str, set[int]]] = []
        while time.monotonic() < deadline:
            for member in members:
                member.poll(0.1)
            held = [
                {
                    t: {tp.partition for tp in m.assignment() if tp.topic == t}
                    for t in (scores, outcomes)
                }
                for m in members
            ]
            if sum(len(h[scores]) + len(h[outcomes]) for h in held) == 8:
                break
        assert sum(len(h[scores]) for h in held) == 4, held
        for assignment in held:
            assert assignment[scores] == assignment[outcomes], held
    finally:
        for member in members:
            member.close()


def test_topics_with_different_partition_counts_stop_the_monitor(
    topic_factory: TopicFactory, group_factory: GroupFactory, start_monitor: Start
) -> None:
    scores, outcomes = topic_factory(2), topic_factory(3)
    monitor = start_monitor(
        {
            "SCORES_TOPIC": scores,
            "OUTCOME_TOPIC": outcomes,
            "QUALITY_CONSUMER_GROUP": group_factory(),
        }
    )
    assert monitor.wait_exit(60) == 1
    assert "the same partition count" in monitor.log_tail()
    assert f"{scores}=2" in monitor.log_tail()
