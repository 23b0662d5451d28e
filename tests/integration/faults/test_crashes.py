"""Process faults: SIGKILL (at-least-once and exactly-once) and SIGTERM restarts, mid-stream."""

from __future__ import annotations

import collections
import random
import signal
import time

import pytest
from confluent_kafka import Producer

from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import produce_events, synthetic_events
from tests.integration.faults.support import (
    FAST_FAILOVER,
    Ledger,
    Stream,
    TopicReader,
    account,
    committed_offsets,
    output_id,
    scored,
    wait_until,
)

PARTITIONS = 3  # the `topics` fixture's input and output topics
BATCH_MAX_MESSAGES = 1000  # the consumer's default


@pytest.mark.slow
def test_sigkill_five_times_while_50000_events_stream_loses_nothing(
    kafka_bootstrap: str, topics: Topics, start_consumer: ConsumerFactory, ledger: Ledger
) -> None:
    started = time.monotonic()
    rng = random.Random(1)
    events = synthetic_events(50_000, seed=101, prefix="k")
    stream = Stream.of_events(kafka_bootstrap, topics.input, events, chunk=2500, pause_s=1.5)
    group = "faults-sigkill"
    stream.start()
    kills: list[dict[str, int]] = []
    for _ in range(5):
        process = start_consumer(topics, group=group, **FAST_FAILOVER)
        process.wait_ready(120)
        # A random point: after a random amount of this process's own progress, plus a jitter.
        target = rng.randint(1, 6000)
        wait_until(lambda p=process, t=target: scored(p) >= t, f"{target} scored", 180, 0.02)
        time.sleep(rng.uniform(0, 0.3))
        kills.append({"scored_by_process": int(scored(process)), "streamed": stream.sent})
        process.kill()
        assert process.exit_code() == -signal.SIGKILL
    final = start_consumer(topics, group=group, **FAST_FAILOVER)
    stream.finish()
    reader = TopicReader(kafka_bootstrap, topics.output)
    try:
        wanted = [str(e["session_id"]) for e in events]
        reader.poll_until(reader.has_ids(wanted), "every session_id", timeout_s=300)
        outputs = reader.settle()
    finally:
        reader.close()
    result = account(wanted, outputs)
    ledger.record(
        "SIGKILL x5 mid-stream (at_least_once)",
        runs=6,
        accounting=result,
        seconds=time.monotonic() - started,
        kills=kills,
    )
    result.assert_nothing_lost()
    # Offsets are committed after every acknowledged batch: a kill repeats at most what was in
    # flight (two batches of BATCH_MAX_MESSAGES), not a timer's worth of work.
    assert result.duplicates <= len(kills) * 2 * BATCH_MAX_MESSAGES, result
    assert final.terminate() == 0


@pytest.mark.slow
def test_sigterm_restarts_leave_no_duplicate_and_commit_the_consumed_position(
    kafka_bootstrap: str, topics: Topics, start_consumer: ConsumerFactory, ledger: Ledger
) -> None:
    started = time.monotonic()
    rng = random.Random(2)
    events = synthetic_events(12_000, seed=102, prefix="t")
    stream = Stream.of_events(kafka_bootstrap, topics.input, events, chunk=1000, pause_s=2.0)
    group = "faults-sigterm"
    reader = TopicReader(kafka_bootstrap, topics.output)
    stream.start()
    runs = 0
    try:
        for _ in range(3):
            process = start_consumer(topics, group=group)
            runs += 1
            process.wait_ready(120)
            target = rng.randint(1, 3000)
            wait_until(lambda p=process, t=target: scored(p) >= t, f"{target} scored", 180, 0.02)
            assert process.terminate() == 0, process.log_tail()
            # Every output the process wrote is in the topic (it waited for the acks), and the
            # group's committed offset of each input partition is one past its last source offset.
            outputs = reader.read_to_end()
            consumed = [-1] * PARTITIONS
            for record in outputs:
                source = record.json()["source"]
                consumed[source["partition"]] = max(consumed[source["partition"]], source["offset"])
            committed = committed_offsets(kafka_bootstrap, group, topics.input, PARTITIONS)
            expected = [o + 1 if o >= 0 else -1001 for o in consumed]
            assert committed == expected, f"committed {committed}, consumed up to {consumed}"
        final = start_consumer(topics, group=group)
        runs += 1
        stream.finish()
        wanted = [str(e["session_id"]) for e in events]
        reader.poll_until(reader.has_ids(wanted), "every session_id", timeout_s=240)
        assert final.terminate() == 0
        outputs = reader.read_to_end()
    finally:
        reader.close()
    result = account(wanted, outputs)
    ledger.record(
        "SIGTERM x3 + restart (at_least_once)",
        runs=runs,
        accounting=result,
        seconds=time.monotonic() - started,
    )
    result.assert_nothing_lost()
    assert result.duplicates == 0


@pytest.mark.slow
def test_exactly_once_survives_repeated_sigkill_between_produce_and_commit(
    kafka_bootstrap: str, topics: Topics, start_consumer: ConsumerFactory, ledger: Ledger
) -> None:
    started = time.monotonic()
    events = synthetic_events(3000, seed=103, prefix="e")
    produce_events(kafka_bootstrap, topics.input, events)
    group = "faults-eos"
    common = {
        "PROCESSING_GUARANTEE": "exactly_once",
        "BATCH_MAX_MESSAGES": "100",
        "TRANSACTIONAL_ID": "faults-eos-replica-0",
        **FAST_FAILOVER,
    }
    crash_batches = [3, 1, 5, 2]  # a different batch each run: the Nth since that start
    for batch in crash_batches:
        crashing = start_consumer(
            topics, group=group, FAULT_CRASH_BEFORE_COMMIT_BATCH=str(batch), **common
        )
        assert crashing.wait_exit(180) == -signal.SIGKILL, crashing.log_tail()
        assert "fault injection" in crashing.log_tail()
    clean = start_consumer(topics, group=group, **common)
    reader = TopicReader(kafka_bootstrap, topics.output)
    try:
        wanted = [str(e["session_id"]) for e in events]
        reader.poll_until(reader.has_ids(wanted), "every session_id", timeout_s=240)
        assert clean.terminate() == 0, clean.log_tail()
        committed = reader.read_to_end()
    finally:
        reader.close()

    result = account(wanted, committed)
    # Per-partition order: within one output partition, the records of one input partition
    # appear in their source-offset order.
    sources: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
    for record in sorted(committed, key=lambda r: (r.partition, r.offset)):
        source = record.json()["source"]
        sources[(record.partition, source["partition"])].append(source["offset"])
    out_of_order = [key for key, offsets in sources.items() if offsets != sorted(offsets)]

    uncommitted_reader = TopicReader(kafka_bootstrap, topics.output, read_committed=False)
    try:
        aborted = len(uncommitted_reader.read_to_end()) - len(committed)
    finally:
        uncommitted_reader.close()

    # No transaction is left hanging: a marker written now to every output partition is
    # visible to a read_committed reader (an open transaction would hold back the LSO).
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for partition in range(PARTITIONS):
        producer.produce(topics.output, b'{"marker": true}', b"marker", partition=partition)
    assert producer.flush(30) == 0
    marker_reader = TopicReader(kafka_bootstrap, topics.output)
    try:
        markers = [r for r in marker_reader.read_to_end() if r.key == b"marker"]
    finally:
        marker_reader.close()

    ledger.record(
        "SIGKILL between produce and commit x4 (exactly_once)",
        runs=len(crash_batches) + 1,
        accounting=result,
        seconds=time.monotonic() - started,
        aborted_records_in_log=aborted,
    )
    result.assert_nothing_lost()
    assert result.duplicates == 0, "a read_committed reader saw an input twice"
    assert not out_of_order, f"source order broken in (output, input) partitions {out_of_order}"
    assert aborted > 0, "no crash left an aborted batch in the log: the fault did not bite"
    assert sorted(r.partition for r in markers) == list(range(PARTITIONS))
    assert {output_id(r) for r in committed} == set(wanted)
