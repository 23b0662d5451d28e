"""Replay determinism: re-scoring the input topic from offset 0 gives identical probabilities."""

from __future__ import annotations

import collections
import time

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import produce_events, synthetic_events
from tests.integration.faults.support import (
    Ledger,
    TopicReader,
    account,
    committed_offsets,
    end_offsets,
)

PARTITIONS = 3


def test_replay_from_offset_zero_gives_identical_probabilities(
    kafka_bootstrap: str,
    admin: AdminClient,
    topics: Topics,
    start_consumer: ConsumerFactory,
    ledger: Ledger,
) -> None:
    started = time.monotonic()
    events = synthetic_events(5000, seed=111, prefix="r")
    produce_events(kafka_bootstrap, topics.input, events)
    wanted = [str(e["session_id"]) for e in events]
    group = "faults-replay"
    end = end_offsets(kafka_bootstrap, topics.input, PARTITIONS)
    reader = TopicReader(kafka_bootstrap, topics.output)
    try:
        first = start_consumer(topics, group=group, BATCH_MAX_MESSAGES="1000")
        reader.poll_until(reader.has_ids(wanted), "the first pass", 180)
        assert first.terminate() == 0
        assert committed_offsets(kafka_bootstrap, group, topics.input, PARTITIONS) == end
        first_end = end_offsets(kafka_bootstrap, topics.output, PARTITIONS)

        # The operator's replay: reset the group to offset 0 and start again (other batch sizes).
        reset = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topics.input, p, 0) for p in range(PARTITIONS)]
        )
        admin.alter_consumer_group_offsets([reset])[group].result(30)
        second = start_consumer(topics, group=group, BATCH_MAX_MESSAGES="37")
        reader.poll_until(lambda records: len(records) >= 2 * len(events), "the replay", 180)
        assert second.terminate() == 0
        outputs = reader.read_to_end()
    finally:
        reader.close()
    first_pass = [r for r in outputs if r.offset < first_end[r.partition]]
    replay = [r for r in outputs if r.offset >= first_end[r.partition]]

    probabilities: dict[str, list[float]] = collections.defaultdict(list)
    for record in outputs:
        body = record.json()
        probabilities[body["session_id"]].append(body["probability"])
    differ = {sid: p for sid, p in probabilities.items() if len(set(p)) != 1}
    result = account(wanted, replay)
    ledger.record(
        "replay from offset 0 (batch 1000 vs 37)",
        runs=2,
        accounting=result,
        seconds=time.monotonic() - started,
        differing_probabilities=len(differ),
    )
    result.assert_nothing_lost()
    assert result.duplicates == 0
    assert account(wanted, first_pass).duplicates == 0
    assert all(len(p) == 2 for p in probabilities.values()), "each event is scored once per pass"
    assert not differ, f"{len(differ)} events scored differently, e.g. {list(differ.items())[:3]}"
