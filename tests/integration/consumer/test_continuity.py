"""No input passed over unaccounted, on a real broker: a re-created input topic (under a running
consumer paused across the re-creation, and between two runs, under both rules), offsets
deleted before they were read, partitions added while running."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from confluent_kafka import Consumer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from tests.integration.broker import wait_for_topic
from tests.integration.consumer.conftest import ConsumerFactory, TopicsFactory
from tests.integration.consumer.kafka_io import (
    event_messages,
    produce_events,
    produce_messages,
    read_topic,
    synthetic_events,
)
from tests.integration.consumer.process import ConsumerProcess

PARTITIONS = 2


def _scored_ids(bootstrap: str, topic: str, expected: int, timeout_s: float = 90) -> set[str]:
    return {
        str(r.json()["session_id"])
        for r in read_topic(bootstrap, topic, expected, timeout_s=timeout_s, idle_s=1.0)
    }


def _recreate(admin: AdminClient, topic: str) -> None:
    """Delete the topic, wait until it is gone, and create it again with the same partitions."""
    admin.delete_topics([topic], operation_timeout=30)[topic].result(30)
    deadline = time.monotonic() + 30
    while topic in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    while time.monotonic() < deadline:
        try:
            admin.create_topics([NewTopic(topic, PARTITIONS)], operation_timeout=30)[topic].result(
                30
            )
            break
        except Exception:  # the deletion is still being finished
            time.sleep(0.5)
    wait_for_topic(admin, topic, PARTITIONS)


def _wait_for_metric(
    consumer: ConsumerProcess,
    name: str,
    labels: str = "",
    minimum: float = 1,
    timeout_s: float = 60,
) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (value := consumer.metric(name, labels)) >= minimum:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{name}{{{labels}}} stayed below {minimum}:\n{consumer.log_tail()}")


def _log_lines(consumer: ConsumerProcess, text: str) -> list[str]:
    return [line for line in consumer.log_path.read_text().splitlines() if text in line]


def _produce_ids(bootstrap: str, topic: str, prefix: str, n: int) -> set[str]:
    events = synthetic_events(n, prefix=prefix)
    produce_events(bootstrap, topic, events)
    return {str(e["session_id"]) for e in events}


def test_a_topic_recreated_under_a_paused_consumer_is_read_from_its_start(
    kafka_bootstrap: str,
    admin: AdminClient,
    topics_factory: TopicsFactory,
    start_consumer: ConsumerFactory,
) -> None:
    topics = topics_factory(partitions=PARTITIONS)
    consumer = start_consumer(topics)
    consumer.wait_ready()
    old = _produce_ids(kafka_bootstrap, topics.input, "old", 300)
    assert old <= _scored_ids(kafka_bootstrap, topics.output, len(old))
    # Paused, the consumer sees neither the deletion nor a rebalance: it resumes at its old
    # position (about 150 per partition) on a new log of 300 per partition.
    consumer.signal(signal.SIGSTOP)
    try:
        _recreate(admin, topics.input)
        new = _produce_ids(kafka_bootstrap, topics.input, "new", 600)
    finally:
        consumer.signal(signal.SIGCONT)
    scored = _scored_ids(kafka_bootstrap, topics.output, len(old) + len(new))
    assert new <= scored, f"{len(new - scored)} events of the new topic never scored"
    _wait_for_metric(consumer, "scorer_input_topic_recreated_total", f'topic="{topics.input}"')
    assert _log_lines(consumer, "input topic recreated"), consumer.log_tail()
    assert consumer.terminate() == 0


def test_offsets_committed_on_a_recreated_topic_fail_or_are_read_from_its_start(
    kafka_bootstrap: str,
    admin: AdminClient,
    topics_factory: TopicsFactory,
    group_factory: Callable[[], str],
    start_consumer: ConsumerFactory,
) -> None:
    """Kafka drops a group's offsets with the topic; what survives is an offset committed after
    the re-creation by a consumer that read the old topic (one paused across it, killed before
    its next check): here committed by hand, with the old topic's id as the consumer writes it."""
    topics = topics_factory(partitions=PARTITIONS)
    group = group_factory()
    old_id = _topic_id(admin, topics.input)
    _recreate(admin, topics.input)
    new = _produce_ids(kafka_bootstrap, topics.input, "new", 600)
    _commit(kafka_bootstrap, group, [TopicPartition(topics.input, p, 150, old_id) for p in (0, 1)])

    failing = start_consumer(topics, group, ON_TOPIC_RECREATED="fail")
    assert failing.wait_exit(60) == 1
    assert _log_lines(failing, "ON_TOPIC_RECREATED=fail"), failing.log_tail()
    assert not read_topic(kafka_bootstrap, topics.output, 1, timeout_s=3, idle_s=0.5)

    reading = start_consumer(topics, group)  # ON_TOPIC_RECREATED=from_start, the default
    scored = _scored_ids(kafka_bootstrap, topics.output, len(new))
    assert new <= scored, f"{len(new - scored)} events of the new topic never scored"
    assert reading.metric("scorer_input_topic_recreated_total", f'topic="{topics.input}"') == 1
    assert _log_lines(reading, "input topic recreated"), reading.log_tail()
    assert reading.terminate() == 0


def _topic_id(admin: AdminClient, topic: str) -> str:
    description = admin.describe_topics(TopicCollection([topic]))[topic].result(30)
    return str(description.topic_id)


def _commit(bootstrap: str, group: str, offsets: list[TopicPartition]) -> None:
    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        committer.commit(offsets=offsets, asynchronous=False)
    finally:
        committer.close()


def test_offsets_deleted_before_they_were_read_are_counted_per_partition(
    kafka_bootstrap: str,
    admin: AdminClient,
    topics_factory: TopicsFactory,
    start_consumer: ConsumerFactory,
) -> None:
    topics = topics_factory(partitions=PARTITIONS)
    # A fetch the broker answers while the process is stopped delivers whole record batches up
    # to this size per partition: with small batches it can never hold all of a partition's
    # deleted events, so every partition meets the deleted range (with the defaults, one fetch
    # of 1 MiB could hold a partition's whole ~1 MB and leave nothing to reset there).
    consumer = start_consumer(topics, KAFKA_MAX_PARTITION_FETCH_BYTES="65536")
    consumer.wait_ready()
    before = _produce_ids(kafka_bootstrap, topics.input, "before", 100)
    assert before <= _scored_ids(kafka_bootstrap, topics.output, len(before))
    consumer.signal(signal.SIGSTOP)
    try:
        events = synthetic_events(4000, prefix="deleted")
        small_batches = {"batch.num.messages": 50}
        produce_messages(kafka_bootstrap, topics.input, event_messages(events), small_batches)
        deleted = {str(e["session_id"]) for e in events}
        ends = _high_watermarks(kafka_bootstrap, topics.input)
        futures = admin.delete_records([TopicPartition(topics.input, p, o) for p, o in ends])
        for future in futures.values():
            future.result(30)
        after = _produce_ids(kafka_bootstrap, topics.input, "after", 100)
    finally:
        consumer.signal(signal.SIGCONT)
    scored = _scored_ids(kafka_bootstrap, topics.output, len(before) + len(after))
    assert before | after <= scored
    skipped = 0.0
    for partition, _ in ends:
        labels = f'partition="{partition}",topic="{topics.input}"'
        _wait_for_metric(consumer, "scorer_offset_resets_total", labels)
        skipped += consumer.metric("scorer_offsets_skipped_total", labels)
    # A fetch answered while the process was stopped may still deliver some of the deleted
    # events: each is scored, or counted as skipped, never both, never neither.
    assert len(scored & deleted) + skipped == len(deleted)
    assert skipped > 0
    lines = _log_lines(consumer, "offset reset")
    assert any("deleted before they were read" in line for line in lines), consumer.log_tail()
    assert all('"level":"ERROR"' in line for line in lines if "consumer.continuity" in line)
    assert consumer.terminate() == 0


def test_partitions_added_while_running_are_read_and_their_lag_exported(
    kafka_bootstrap: str,
    admin: AdminClient,
    topics_factory: TopicsFactory,
    start_consumer: ConsumerFactory,
) -> None:
    topics = topics_factory(partitions=PARTITIONS)
    # A short metadata refresh, so the test need not wait out the default 30 s (whose value
    # tests/unit/consumer/test_kafka.py checks): found by the refresh, whatever its interval.
    consumer = start_consumer(topics, KAFKA_TOPIC_METADATA_REFRESH_INTERVAL_MS="2000")
    consumer.wait_ready()
    admin.create_partitions([NewPartitions(topics.input, 4)])[topics.input].result(30)
    wait_for_topic(admin, topics.input, 4)
    late = _produce_ids(kafka_bootstrap, topics.input, "late", 400)  # keyed over 4 partitions
    # Read within a metadata refresh and a rebalance.
    records = read_topic(kafka_bootstrap, topics.output, len(late), timeout_s=60, idle_s=1.0)
    assert late <= {str(r.json()["session_id"]) for r in records}
    assert {2, 3} <= {int(r.json()["source"]["partition"]) for r in records}
    metrics = _exported_lag(consumer, partitions=4)
    for partition in (2, 3):
        assert f'scorer_consumer_lag{{partition="{partition}",topic="{topics.input}"}}' in metrics
    assert consumer.terminate() == 0


def _exported_lag(consumer: ConsumerProcess, partitions: int, timeout_s: float = 15) -> str:
    """/metrics once the lag of every held partition has been reported (statistics every 5 s)."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = consumer.http("/metrics")[1]
        if text.count("scorer_consumer_lag{") >= partitions:
            break
        time.sleep(0.5)
    return text


def _high_watermarks(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return [
            (p, reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
            for p in range(PARTITIONS)
        ]
    finally:
        reader.close()
