"""Process faults: SIGKILL (at-least-once and exactly-once) and SIGTERM/SIGINT restarts,
mid-stream. The suite's only tests of these: the consumer tests do not repeat them."""

from __future__ import annotations

import collections
import random
import signal
import time

import pytest
from confluent_kafka import Producer

from benchmarks.replay import Record
from tests.integration.consumer.conftest import Topics
from tests.integration.consumer.kafka_io import synthetic_events
from tests.integration.consumer.process import ConsumerProcess
from tests.integration.faults.crash_before_commit import LOG_LINE
from tests.integration.faults.support import (
    FAST_FAILOVER,
    OFFSET_INVALID,
    ScenarioFactory,
    Stream,
    TopicReader,
    committed_offsets,
    end_offsets,
    output_id,
    scored,
    wait_until,
)

PARTITIONS = 3  # the `topics` fixture's input and output topics
BATCH_MAX_MESSAGES = 1000  # the consumer's default
MAX_IN_FLIGHT = 2  # consumer.loop.MAX_IN_FLIGHT: batches produced, not yet acknowledged
CRASH_BEFORE_COMMIT = "tests.integration.faults.crash_before_commit"
KILLS = 3


@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing_and_repeats_at_most_the_batches_in_flight(
    topics: Topics, scenario: ScenarioFactory
) -> None:
    run = scenario(
        f"SIGKILL x{KILLS} mid-stream (at_least_once)",
        topics,
        synthetic_events(30_000, seed=101, prefix="k"),
    )
    rng = random.Random(1)
    process = run.start(**FAST_FAILOVER)  # ready first, so that the kills land mid-stream
    run.offer(chunk=2000, pause_s=1.5)  # ~25 s: each restart waits ~6 s for the session to end
    stream = run.stream
    assert stream is not None
    kills: list[dict[str, int]] = []
    for kill in range(KILLS):
        if kill:
            process = run.start(**FAST_FAILOVER)
        # A random point: after a random amount of this process's own progress, plus a jitter.
        target = rng.randint(1, 6000)
        wait_until(
            lambda p=process, t=target: _progressed(p, t, stream), f"{target} scored", 180, 0.02
        )
        time.sleep(rng.uniform(0, 0.3))
        kills.append({"scored_by_process": int(scored(process)), "streamed": stream.sent})
        run.kill(process)
    final = run.start(**FAST_FAILOVER)  # ready (signal handlers in place) before it is stopped
    result = run.account(timeout_s=300, kills=kills)
    result.assert_nothing_lost()
    # Offsets are committed after every acknowledged batch (docs/consumer.md): a kill repeats at
    # most what was in flight, MAX_IN_FLIGHT batches of BATCH_MAX_MESSAGES, not a timer's worth.
    assert result.duplicates <= len(kills) * MAX_IN_FLIGHT * BATCH_MAX_MESSAGES, result
    assert final.terminate() == 0, final.log_tail()


def _progressed(process: ConsumerProcess, target: int, stream: Stream) -> bool:
    """The process scored `target` events, or the stream ended (what is left may be less)."""
    return scored(process) >= target or not stream.is_alive()


def _consumed(outputs: list[Record]) -> list[int]:
    """One past the last source offset of each input partition found in the output."""
    consumed = [-1] * PARTITIONS
    for record in outputs:
        source = record.json()["source"]
        consumed[source["partition"]] = max(consumed[source["partition"]], source["offset"])
    return [offset + 1 if offset >= 0 else OFFSET_INVALID for offset in consumed]


@pytest.mark.slow
def test_sigterm_and_sigint_restarts_leave_no_duplicate_and_commit_the_consumed_position(
    kafka_bootstrap: str, topics: Topics, scenario: ScenarioFactory
) -> None:
    run = scenario(
        "SIGTERM/SIGINT x3 + restart (at_least_once)",
        topics,
        synthetic_events(12_000, seed=102, prefix="t"),
    )
    rng = random.Random(2)
    run.offer(chunk=1000, pause_s=2.0)  # ~24 s: the three stops land while it streams
    stream = run.stream
    assert stream is not None
    reader = TopicReader(kafka_bootstrap, topics.output)
    try:
        for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
            process = run.start()
            target = rng.randint(1, 3000)
            wait_until(
                lambda p=process, t=target: _progressed(p, t, stream), f"{target} scored", 180, 0.02
            )
            process.signal(stop)
            assert process.wait_exit(60) == 0, process.log_tail()
            # Every output the process wrote is in the topic (it waited for the acks), and the
            # group's committed offset of each input partition is one past its last source offset.
            expected = _consumed(reader.read_to_end())
            committed = committed_offsets(kafka_bootstrap, run.group, topics.input, PARTITIONS)
            assert committed == expected, f"committed {committed}, consumed up to {expected}"
    finally:
        reader.close()
    final = run.start()  # ready (signal handlers in place) before it is stopped
    result = run.account()
    final.signal(signal.SIGINT)  # SIGINT as SIGTERM: finish, commit everything, exit 0
    assert final.wait_exit(60) == 0, final.log_tail()
    assert committed_offsets(kafka_bootstrap, run.group, topics.input, PARTITIONS) == end_offsets(
        kafka_bootstrap, topics.input, PARTITIONS
    )
    result.assert_nothing_lost()
    assert result.duplicates == 0


@pytest.mark.slow
def test_exactly_once_survives_repeated_sigkill_between_produce_and_commit(
    kafka_bootstrap: str, topics: Topics, scenario: ScenarioFactory
) -> None:
    crash_batches = [3, 1]  # after committed transactions, then at once after a restart
    run = scenario(
        f"SIGKILL between produce and commit x{len(crash_batches)} (exactly_once)",
        topics,
        synthetic_events(3000, seed=103, prefix="e"),
        PROCESSING_GUARANTEE="exactly_once",
        BATCH_MAX_MESSAGES="100",
        TRANSACTIONAL_ID=f"faults-eos-{time.monotonic_ns()}",
        **FAST_FAILOVER,
    )
    run.offer()
    for batch in crash_batches:  # the Nth batch since that start
        crashing = run.launch(module=CRASH_BEFORE_COMMIT, args=[str(batch)])
        assert crashing.wait_exit(180) == -signal.SIGKILL, crashing.log_tail()
        assert LOG_LINE.format(batch) in crashing.log_tail()
    clean = run.start()
    uncommitted_reader = TopicReader(kafka_bootstrap, topics.output, read_committed=False)
    try:
        result = run.account(record=False)
        assert clean.terminate() == 0, clean.log_tail()
        aborted = len(uncommitted_reader.read_to_end()) - len(run.outputs)
    finally:
        uncommitted_reader.close()
    run.record(result, aborted_records_in_log=aborted)
    committed = run.outputs

    # Per-partition order: within one output partition, the records of one input partition
    # appear in their source-offset order.
    sources: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
    for record in sorted(committed, key=lambda r: (r.partition, r.offset)):
        source = record.json()["source"]
        sources[(record.partition, source["partition"])].append(source["offset"])
    out_of_order = [key for key, offsets in sources.items() if offsets != sorted(offsets)]

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

    result.assert_nothing_lost()
    assert result.duplicates == 0, "a read_committed reader saw an input twice"
    assert not out_of_order, f"source order broken in (output, input) partitions {out_of_order}"
    assert aborted > 0, "no crash left an aborted batch in the log: the fault did not bite"
    assert sorted(r.partition for r in markers) == list(range(PARTITIONS))
    assert {output_id(r) for r in committed} == set(run.wanted)
