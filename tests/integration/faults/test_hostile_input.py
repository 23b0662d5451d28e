"""Hostile producers and careless operators: what once stopped the consumer must not any more.

Named tests for the cases of issue 17 (an oversized record key, a METRICS_PORT in use), and a
seeded fuzz test: random keys, headers and values among valid events, with the output and
dead-letter topics deleted and recreated mid-run, under both guarantees.
"""

from __future__ import annotations

import collections
import json
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from benchmarks.replay import Record
from contract.limits import MAX_KEY_BYTES
from tests.integration.broker import LocalBroker
from tests.integration.consumer.conftest import ConsumerFactory, Topics, TopicsFactory
from tests.integration.consumer.kafka_io import produce, synthetic_events
from tests.integration.faults.support import (
    Accounting,
    Ledger,
    TopicReader,
    account,
    create_topics,
    failed,
    metric,
    wait_until,
)

BIG_KEY = b"K" * 999_900  # the key: with any headers, its dead letter was over 1,000,000


def test_oversized_key_is_dead_lettered_with_a_cut_key_and_the_partition_moves_on(
    kafka_bootstrap: str,
    topics_factory: TopicsFactory,
    start_consumer: ConsumerFactory,
    ledger: Ledger,
) -> None:
    started = time.monotonic()
    topics = topics_factory(partitions=1)  # one partition: the big key sits between the events
    events = synthetic_events(40, seed=171, prefix="around-big-key")
    messages: list[tuple[bytes | None, bytes | None]] = [
        (str(e["session_id"]).encode(), json.dumps(e).encode()) for e in events
    ]
    messages.insert(20, (BIG_KEY, b"not json"))
    produce(kafka_bootstrap, topics.input, messages)

    consumer = start_consumer(topics)
    outputs_reader = TopicReader(kafka_bootstrap, topics.output)
    dead_reader = TopicReader(kafka_bootstrap, topics.dlq)
    try:
        outputs_reader.poll_until(
            outputs_reader.has_ids(str(e["session_id"]) for e in events), "the 40 events", 120
        )
        dead = dead_reader.poll_until(lambda records: len(records) >= 1, "the dead letter", 60)
        outputs, dead = outputs_reader.settle(2.0), dead_reader.settle(1.0)
    finally:
        outputs_reader.close()
        dead_reader.close()

    result = account([str(e["session_id"]) for e in events], outputs)
    ledger.record(
        "record key of 999,900 bytes among 40 events",
        runs=1,
        accounting=Accounting(
            result.events + 1,
            result.lost,
            result.duplicates,
            result.scored,
            len(dead),
            result.unexpected,
        ),
        seconds=time.monotonic() - started,
    )
    result.assert_nothing_lost()
    assert result.duplicates == 0  # scored once: the consumer never restarted on this message
    assert result.scored == 40
    assert len(dead) == 1
    letter = dead[0]
    assert letter.headers["error.type"] == b"key_too_large"
    assert letter.headers["error.field"] == b"<key>"
    assert letter.headers["source.offset"] == b"20"
    assert letter.headers["key.truncated_from_bytes"] == str(len(BIG_KEY)).encode()
    assert "payload.truncated_from_bytes" not in letter.headers
    assert letter.value == b"not json"
    assert letter.key is not None
    assert MAX_KEY_BYTES < len(letter.key) < len(BIG_KEY)
    assert BIG_KEY.startswith(letter.key)
    assert consumer.exit_code() is None, consumer.log_tail()
    assert consumer.metric("scorer_messages_total", 'outcome="rejected"') == 1
    assert consumer.terminate() == 0


def test_metrics_port_in_use_is_a_bad_setting_exit_2(
    topics: Topics, start_consumer: ConsumerFactory
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        consumer = start_consumer(topics, METRICS_PORT=str(port))
        code = consumer.wait_exit(60)
    log = consumer.log_tail(40)
    assert code == 2, log
    assert f"METRICS_PORT={port}" in log, log
    assert "Traceback" not in log, log


# --- the fuzz test -----------------------------------------------------------------------------

FUZZ_SEED = 1717
PARTITIONS = 3
PRODUCER_MAX_BYTES = 1_048_000  # the test's producer may send up to the broker's limit


@dataclass
class Sent:
    """What was produced, by (partition, offset) of the input topic."""

    kinds: dict[tuple[int, int], str] = field(default_factory=dict)

    def valid(self) -> set[tuple[int, int]]:
        return {where for where, kind in self.kinds.items() if kind == "valid"}


Message_ = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]


def fuzz_messages(rnd: random.Random, events: Sequence[dict[str, object]]) -> list[Message_]:
    """Valid events (kind "valid") with fuzz interleaved, about one message in five."""
    texts = [json.dumps(e) for e in events]
    out: list[Message_] = []
    for event, text in zip(events, texts, strict=True):
        out.append(("valid", str(event["session_id"]).encode(), text.encode(), []))
        if rnd.random() < 0.25:
            out.append(fuzz_one(rnd, rnd.choice(texts)))
    return out


def fuzz_one(rnd: random.Random, text: str) -> Message_:
    raw = text.encode()
    kind = rnd.choice(
        [
            "random_bytes",
            "truncated",
            "mutated",
            "extra_fields",
            "many_headers",
            "random_key",
            "huge_key",
        ]
    )
    key: bytes | None = rnd.randbytes(rnd.randrange(0, 64)) if rnd.random() < 0.9 else None
    headers: list[tuple[str, bytes]] = []
    value: bytes | None = raw
    if kind == "random_bytes":
        value = rnd.randbytes(rnd.choice([0, 1, 7, 300, 5000, 70_000]))
    elif kind == "truncated":
        value = raw[: rnd.randrange(len(raw))]
    elif kind == "mutated":
        mutated = bytearray(raw)
        for _ in range(rnd.randint(1, 8)):
            mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
        value = bytes(mutated)
    elif kind == "extra_fields":
        extra = {f"f{i}": rnd.random() for i in range(rnd.choice([1, 30, 1000, 3000, 6000]))}
        value = json.dumps({**json.loads(text), **extra}).encode()
    elif kind == "many_headers":
        headers = [
            (f"h{i}", rnd.randbytes(rnd.randrange(0, 40))) for i in range(rnd.randint(100, 600))
        ]
        if rnd.random() < 0.5:
            value = rnd.randbytes(100)
    elif kind == "random_key":
        key = rnd.randbytes(rnd.randrange(0, MAX_KEY_BYTES + 1))
    else:  # huge_key: from just over the key limit to just under the broker's limit
        size = rnd.choice([MAX_KEY_BYTES + 1, 100_000, 999_900, PRODUCER_MAX_BYTES - 8_000])
        key = rnd.randbytes(size)
        value = raw if rnd.random() < 0.5 else b"not json"
    return kind, key, value, headers


def produce_fuzz(bootstrap: str, topic: str, messages: Sequence[Message_], sent: Sent) -> None:
    """Produce every message and note where each landed; raise if one was not acknowledged."""
    failures: list[str] = []

    def make_callback(kind: str) -> Callable[[KafkaError | None, Message], None]:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                failures.append(f"{kind}: {error.str()}")
            else:
                sent.kinds[(message.partition() or 0, message.offset() or 0)] = kind

        return delivered

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "message.max.bytes": PRODUCER_MAX_BYTES + 40_000,
        }
    )
    for kind, key, value, headers in messages:
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=make_callback(kind)
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0
    assert not failures, failures[:5]


def source_of_output(record: Record) -> tuple[int, int]:
    source = record.json()["source"]
    return int(source["partition"]), int(source["offset"])


def source_of_dead_letter(record: Record) -> tuple[int, int]:
    return int(record.headers["source.partition"]), int(record.headers["source.offset"])


def read_all(
    bootstrap: str, topics: Topics, until: Callable[[set[tuple[int, int]]], bool]
) -> tuple[list[Record], list[Record]]:
    """Read the output and dead-letter topics until `until(sources seen)` holds."""
    outputs = TopicReader(bootstrap, topics.output)
    dead = TopicReader(bootstrap, topics.dlq)
    try:
        deadline = time.monotonic() + 120
        while True:
            outputs.settle(0.5)
            dead.settle(0.5)
            seen = {source_of_output(r) for r in outputs.records}
            seen |= {source_of_dead_letter(r) for r in dead.records}
            if until(seen):
                return list(outputs.settle(1.0)), list(dead.settle(0.5))
            assert time.monotonic() < deadline, f"timed out: {len(seen)} inputs accounted"
    finally:
        outputs.close()
        dead.close()


@pytest.mark.slow
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_fuzz_never_stops_the_consumer_and_accounts_for_every_input(
    guarantee: str,
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
    rnd = random.Random(f"{FUZZ_SEED}-{guarantee}")
    phase1 = fuzz_messages(rnd, synthetic_events(400, seed=172, prefix=f"fz1-{guarantee}"))
    phase2 = fuzz_messages(rnd, synthetic_events(400, seed=173, prefix=f"fz2-{guarantee}"))
    sent = Sent()
    consumer = start_consumer(
        topics,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        PROCESSING_GUARANTEE=guarantee,
        BATCH_MAX_MESSAGES="100",
        PUBLISH_TIMEOUT_S="5",  # bounds one batch's wait for acknowledgements
        KAFKA_MESSAGE_TIMEOUT_MS="4000",  # a record for a missing topic fails within 4 s
        # librdkafka reports a topic missing from the metadata after this long (30 s by
        # default); shortened so that the outage below is seen as one, not as propagation.
        KAFKA_TOPIC_METADATA_PROPAGATION_MAX_MS="3000",
    )
    produce_fuzz(bootstrap, topics.input, phase1, sent)
    phase1_sources = set(sent.kinds)
    outputs1, dead1 = read_all(bootstrap, topics, lambda seen: phase1_sources <= seen)
    assert consumer.exit_code() is None, consumer.log_tail(60)

    # The operator deletes both topics; input keeps arriving; the topics come back once the
    # consumer has met the outage (a failed attempt naming the topic), not after a fixed time.
    failed_before = failed(consumer)
    outage_started = time.monotonic()
    for topic in (topics.output, topics.dlq):
        admin.delete_topics([topic], operation_timeout=30)[topic].result(30)
    produce_fuzz(bootstrap, topics.input, phase2, sent)

    def outage_met() -> bool:
        """A batch failed for a missing topic (the log names it), and was counted."""
        named = any(
            "batch not published" in line and (topics.output in line or topics.dlq in line)
            for line in consumer.log_tail(400).splitlines()
        )
        return named and failed(consumer) > failed_before

    wait_until(
        lambda: consumer.exit_code() is not None or outage_met(),
        "a failed attempt naming a missing topic",
        120,
        0.5,
    )
    assert consumer.exit_code() is None, "exited while the topics were missing:\n" + (
        consumer.log_tail(60)
    )
    outage_s = time.monotonic() - outage_started
    create_topics(admin, {topics.output: PARTITIONS, topics.dlq: 1})
    phase2_sources = set(sent.kinds) - phase1_sources
    outputs2, dead2 = read_all(bootstrap, topics, lambda seen: phase2_sources <= seen)
    assert consumer.exit_code() is None, consumer.log_tail(60)

    outputs, dead = outputs1 + outputs2, dead1 + dead2
    appearances = collections.Counter(
        [source_of_output(r) for r in outputs] + [source_of_dead_letter(r) for r in dead]
    )
    lost = sorted(set(sent.kinds) - set(appearances))
    unexpected = sorted(set(appearances) - set(sent.kinds))
    duplicates = sum(n - 1 for n in appearances.values() if n > 1)
    kinds = collections.Counter(sent.kinds.values())
    result = Accounting(
        len(sent.kinds),
        [str(s) for s in lost],
        duplicates,
        len(outputs),
        len(dead),
        [str(s) for s in unexpected],
    )
    ledger.record(
        f"fuzz: {sum(kinds.values()) - kinds['valid']} hostile among {kinds['valid']} valid, "
        f"output and DLQ deleted until a failed attempt ({guarantee})",
        runs=1,
        accounting=result,
        seconds=time.monotonic() - started,
        kinds=dict(kinds),
        outage_s=round(outage_s, 1),
        failed_and_retried=metric(consumer, "scorer_messages_total", 'outcome="failed"'),
    )
    result.assert_nothing_lost()
    scored_sources = {source_of_output(r) for r in outputs}
    assert sent.valid() <= scored_sources, "a valid event was not scored"
    for letter in dead:
        assert letter.headers["error.type"], letter.headers
        if "key.truncated_from_bytes" in letter.headers:
            assert int(letter.headers["key.truncated_from_bytes"]) > len(letter.key or b"")
    if guarantee == "exactly_once":
        assert duplicates == 0, f"{duplicates} inputs published more than once"
    assert consumer.exit_code() is None, consumer.log_tail(60)
    assert consumer.terminate() == 0
