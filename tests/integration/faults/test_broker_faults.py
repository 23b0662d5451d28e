"""Broker and output faults on a broker of the suite's own: bounced, and its output topic broken."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from tests.integration.broker import LocalBroker
from tests.integration.consumer.conftest import ConsumerFactory, Topics, TopicsFactory
from tests.integration.consumer.kafka_io import produce_events, synthetic_events
from tests.integration.consumer.process import ConsumerProcess
from tests.integration.faults.support import (
    OFFSET_INVALID,
    Ledger,
    ScenarioFactory,
    TopicReader,
    account,
    committed_offsets,
    create_topics,
    end_offsets,
    failed,
    readiness,
    scored,
    wait_until,
)

PARTITIONS = 3
READINESS_DROP_S = 5.0


@pytest.mark.slow
def test_broker_bounce_sigterm_and_sigkill_mid_stream(
    private_broker: LocalBroker,
    private_topics: Callable[..., Topics],
    scenario: ScenarioFactory,
) -> None:
    bootstrap = private_broker.bootstrap
    assert bootstrap is not None
    run = scenario(
        "broker bounce: SIGTERM then SIGKILL, mid-stream",
        private_topics(PARTITIONS),
        synthetic_events(20_000, seed=104, prefix="b"),
        bootstrap=bootstrap,
    )
    # The default PUBLISH_TIMEOUT_S (30 s, the bound on one batch's acknowledgements): readiness
    # must not wait for it.
    process = run.start()
    run.offer(chunk=500, pause_s=0.5)
    bounces: list[dict[str, object]] = []
    how: Literal["TERM", "KILL"]
    for how in ("TERM", "KILL"):
        wait_until(lambda: scored(process) > 0, "progress before the bounce", 120)
        before = scored(process)
        private_broker.stop(how, keep_data=True, grace_s=30)
        # Acknowledgements are awaited in short slices that serve the clients' callbacks, so
        # readiness drops within seconds of losing the broker, whatever PUBLISH_TIMEOUT_S is.
        wait_until(
            lambda: readiness(process).get("broker_reachable") is False,
            f"readiness to drop within 5 s of SIG{how}",
            READINESS_DROP_S,
        )
        dropped = readiness(process)
        assert dropped["ready"] is False
        assert private_broker.start() == bootstrap
        wait_until(lambda: readiness(process).get("ready") is True, "readiness to return", 120)
        wait_until(lambda b=before: scored(process) > b, "progress after the bounce", 120)
        assert process.exit_code() is None, process.log_tail()  # rode it out, same process
        bounces.append({"signal": how, "readyz_while_down": dropped})
    result = run.account(record=False)
    run.record(
        result,
        bounces=[b["signal"] for b in bounces],
        messages_failed_and_retried=failed(process),
    )
    result.assert_nothing_lost()
    assert process.terminate() == 0, process.log_tail()


def _wait_failing(process: ConsumerProcess, what: str) -> dict[str, object]:
    """The consumer keeps retrying an unwritable output: alive, counted, and not ready."""
    wait_until(
        lambda: failed(process) > 0,
        f"failed messages to be counted ({what})",
        120,
    )
    wait_until(lambda: readiness(process).get("publishing") is False, "publishing=false", 60)
    status, _ = process.http("/readyz")
    assert status == 503
    assert process.exit_code() is None, process.log_tail()
    return readiness(process)


def _another_failed_attempt(process: ConsumerProcess) -> None:
    """Wait for one more failed attempt at the batches in flight (not for a fixed time): a loop
    that committed after a failed attempt would have done so by then."""
    before = failed(process)
    wait_until(lambda: failed(process) > before, "another failed attempt", 60)


@pytest.mark.slow
def test_deleted_output_topic_is_retried_without_committing_or_skipping(
    private_broker: LocalBroker,
    private_topics: Callable[..., Topics],
    start_consumer: ConsumerFactory,
    ledger: Ledger,
) -> None:
    started = time.monotonic()
    bootstrap = private_broker.bootstrap
    assert bootstrap is not None
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = private_topics(PARTITIONS)
    group = "faults-output-deleted"
    before = synthetic_events(2000, seed=105, prefix="d1")
    after = synthetic_events(2000, seed=106, prefix="d2")
    process = start_consumer(
        topics,
        group=group,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        PUBLISH_TIMEOUT_S="5",  # bounds the wait for acknowledgements of one batch
        KAFKA_MESSAGE_TIMEOUT_MS="4000",
    )
    process.wait_ready(120)

    produce_events(bootstrap, topics.input, before)
    reader = TopicReader(bootstrap, topics.output)
    try:
        reader.poll_until(reader.has_ids(str(e["session_id"]) for e in before), "phase 1", 120)
        written_before = list(reader.settle(1.0))
    finally:
        reader.close()
    input_end = end_offsets(bootstrap, topics.input, PARTITIONS)
    wait_until(
        lambda: committed_offsets(bootstrap, group, topics.input, PARTITIONS) == input_end,
        "phase 1 offsets committed",
        60,
        1.0,
    )

    # The output topic disappears (auto.create.topics.enable=false on this broker).
    admin.delete_topics([topics.output], operation_timeout=30)[topics.output].result(30)
    produce_events(bootstrap, topics.input, after)
    failing = _wait_failing(process, "deleted output topic")
    _another_failed_attempt(process)  # and the retries commit nothing meanwhile
    assert committed_offsets(bootstrap, group, topics.input, PARTITIONS) == input_end
    assert process.exit_code() is None
    log = process.log_tail(400)
    assert "batch not published" in log, log
    assert topics.output in log, log

    create_topics(admin, {topics.output: PARTITIONS})
    reader = TopicReader(bootstrap, topics.output)
    try:
        reader.poll_until(reader.has_ids(str(e["session_id"]) for e in after), "phase 2", 180)
        written_after = list(reader.settle(1.0))
    finally:
        reader.close()
    wait_until(lambda: readiness(process).get("ready") is True, "readiness to return", 60)
    retried = failed(process)
    assert process.terminate() == 0, process.log_tail()
    assert committed_offsets(bootstrap, group, topics.input, PARTITIONS) == end_offsets(
        bootstrap, topics.input, PARTITIONS
    )
    result = account([str(e["session_id"]) for e in before + after], written_before + written_after)
    ledger.record(
        "output topic deleted mid-stream, then recreated",
        runs=1,
        accounting=result,
        seconds=time.monotonic() - started,
        messages_failed_and_retried=retried,
        readyz_while_failing=failing,
    )
    result.assert_nothing_lost()


@pytest.mark.slow
def test_record_too_large_for_output_topic_is_retried_until_the_topic_allows_it(
    kafka_bootstrap: str,
    admin: AdminClient,
    topics_factory: TopicsFactory,
    start_consumer: ConsumerFactory,
    ledger: Ledger,
) -> None:
    started = time.monotonic()
    # Each output record is ~500 bytes; this topic takes record batches of at most 200 bytes.
    topics = topics_factory(PARTITIONS, output_config={"max.message.bytes": "200"})
    group = "faults-too-large"
    events = synthetic_events(1000, seed=107, prefix="L")
    produce_events(kafka_bootstrap, topics.input, events)
    process = start_consumer(topics, group=group, PUBLISH_TIMEOUT_S="5")
    failing = _wait_failing(process, "record too large")
    _another_failed_attempt(process)  # and the retries commit nothing meanwhile
    committed = committed_offsets(kafka_bootstrap, group, topics.input, PARTITIONS)
    assert committed == [OFFSET_INVALID] * PARTITIONS, committed
    assert scored(process) == 0
    log = process.log_tail(400)
    assert "batch not published" in log, log
    assert "too large" in log, log

    resource = ConfigResource(
        "topic",
        topics.output,
        incremental_configs=[
            ConfigEntry("max.message.bytes", "1048576", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(30)
    reader = TopicReader(kafka_bootstrap, topics.output)
    try:
        wanted = [str(e["session_id"]) for e in events]
        reader.poll_until(reader.has_ids(wanted), "every session_id", 180)
        outputs = reader.settle(1.0)
    finally:
        reader.close()
    retried = failed(process)
    assert process.terminate() == 0, process.log_tail()
    result = account(wanted, outputs)
    ledger.record(
        "output record too large for the topic, then allowed",
        runs=1,
        accounting=result,
        seconds=time.monotonic() - started,
        messages_failed_and_retried=retried,
        readyz_while_failing=failing,
    )
    result.assert_nothing_lost()
