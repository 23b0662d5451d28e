"""The broker the integration tests get is a real Kafka: groups, transactions, SASL, restarts."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .broker import (
    KAFKA_SH,
    REPO_ROOT,
    GroupFactory,
    LocalBroker,
    SaslCluster,
    TopicFactory,
    unique_broker_name,
    wait_for_topic,
)

TIMEOUT_S = 30.0
# Where kafka.sh keeps each broker's folder (see its header).
DATA_ROOT = Path(os.environ.get("KAFKA_LOCAL_DIR", REPO_ROOT / ".local" / "kafka")) / "data"


def produce(
    bootstrap: str, topic: str, values: list[str], **config: str | int | float | bool
) -> None:
    """Produce `values` in order and fail unless every record was acknowledged."""
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, **config})
    for value in values:
        producer.produce(topic, value.encode(), on_delivery=on_delivery)
    assert producer.flush(TIMEOUT_S) == 0, "records still in flight"
    assert errors == []


def _value(msg: Message) -> str:
    value = msg.value()
    assert isinstance(value, bytes), f"record without a value at offset {msg.offset()}"
    return value.decode()


def consume(consumer: Consumer, count: int, timeout_s: float = TIMEOUT_S) -> list[str]:
    """Poll until `count` records arrived (or the deadline passed); returns their values."""
    values: list[str] = []
    deadline = time.monotonic() + timeout_s
    while len(values) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        values.append(_value(msg))
    return values


def consume_until(consumer: Consumer, last: str, timeout_s: float = TIMEOUT_S) -> list[str]:
    """Poll until the record `last` arrived; returns every value read, `last` included."""
    values: list[str] = []
    deadline = time.monotonic() + timeout_s
    while last not in values:
        assert time.monotonic() < deadline, f"{last!r} not seen within {timeout_s}s: {values}"
        msg = consumer.poll(0.5)
        if msg is not None:
            assert msg.error() is None, msg.error()
            values.append(_value(msg))
    return values


def group_consumer(bootstrap: str, group: str, **config: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )


def test_topic_factory_creates_fresh_topics_with_requested_partitions(
    admin: AdminClient, topic_factory: TopicFactory
) -> None:
    first = topic_factory(partitions=3)
    second = topic_factory()
    topics = admin.list_topics(timeout=TIMEOUT_S).topics
    assert first != second
    assert len(topics[first].partitions) == 3
    assert len(topics[second].partitions) == 1


def test_second_consumer_resumes_from_committed_offset(
    kafka_bootstrap: str, topic_factory: TopicFactory, group_factory: GroupFactory
) -> None:
    topic, group = topic_factory(), group_factory()
    produce(kafka_bootstrap, topic, [f"v{i}" for i in range(10)])

    first = group_consumer(kafka_bootstrap, group)
    first.subscribe([topic])
    assert consume(first, 6) == [f"v{i}" for i in range(6)]
    # Commit a position behind what was read: the next member must resume from the commit,
    # not from wherever the first one got to.
    first.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    assert first.committed([TopicPartition(topic, 0)], timeout=TIMEOUT_S)[0].offset == 4
    first.close()

    second = group_consumer(kafka_bootstrap, group)
    second.subscribe([topic])
    try:
        assert consume(second, 6) == [f"v{i}" for i in range(4, 10)]
    finally:
        second.close()


def test_transaction_commits_offsets_and_read_committed_hides_aborted_records(
    kafka_bootstrap: str, topic_factory: TopicFactory, group_factory: GroupFactory
) -> None:
    source, sink, group = topic_factory(), topic_factory(), group_factory()
    produce(kafka_bootstrap, source, [f"in{i}" for i in range(5)])

    consumer = group_consumer(kafka_bootstrap, group, **{"isolation.level": "read_committed"})
    consumer.subscribe([source])
    assert consume(consumer, 5) == [f"in{i}" for i in range(5)]

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"{group}-tx"})
    producer.init_transactions(TIMEOUT_S)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(sink, f"committed{i}".encode())
    producer.send_offsets_to_transaction(
        consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), TIMEOUT_S
    )
    producer.commit_transaction(TIMEOUT_S)

    producer.begin_transaction()
    for i in range(3):
        producer.produce(sink, f"aborted{i}".encode())
    assert producer.flush(TIMEOUT_S) == 0  # the aborted records really reach the log
    producer.abort_transaction(TIMEOUT_S)

    producer.begin_transaction()
    producer.produce(sink, b"after")
    producer.commit_transaction(TIMEOUT_S)

    # The offsets went through the transaction, not through a consumer commit.
    assert consumer.committed([TopicPartition(source, 0)], timeout=TIMEOUT_S)[0].offset == 5
    consumer.close()

    committed_reader = group_consumer(
        kafka_bootstrap, group_factory(), **{"isolation.level": "read_committed"}
    )
    committed_reader.subscribe([sink])
    try:
        seen = consume_until(committed_reader, "after")
    finally:
        committed_reader.close()
    assert seen == [f"committed{i}" for i in range(5)] + ["after"]

    uncommitted_reader = group_consumer(
        kafka_bootstrap, group_factory(), **{"isolation.level": "read_uncommitted"}
    )
    uncommitted_reader.subscribe([sink])
    try:
        raw = consume_until(uncommitted_reader, "after")
    finally:
        uncommitted_reader.close()
    assert [v for v in raw if v.startswith("aborted")] == [f"aborted{i}" for i in range(3)]


def _sasl_topic(cluster: SaslCluster) -> str:
    admin = AdminClient(cluster.client_config())
    name = f"it-sasl-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=1)], operation_timeout=30)[name].result(30)
    wait_for_topic(admin, name, 1)
    return name


def test_sasl_right_credentials_produce_and_consume(kafka_sasl: SaslCluster) -> None:
    topic = _sasl_topic(kafka_sasl)
    produce(kafka_sasl.bootstrap, topic, ["secured"], **kafka_sasl.client_config())
    consumer = Consumer(
        {
            **kafka_sasl.client_config(),
            "group.id": f"itg-sasl-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        assert consume(consumer, 1) == ["secured"]
    finally:
        consumer.close()


def test_sasl_wrong_password_fails_with_authentication_error(kafka_sasl: SaslCluster) -> None:
    errors: list[KafkaError] = []
    config: dict[str, Any] = {
        **kafka_sasl.client_config(password="not-the-password"),
        "error_cb": errors.append,
    }
    producer = Producer(config)
    producer.produce("any-topic", b"never delivered")
    deadline = time.monotonic() + TIMEOUT_S
    while not errors and time.monotonic() < deadline:
        producer.poll(0.5)
    producer.purge()
    assert errors, "no error reported for a wrong password"
    assert errors[0].code() == KafkaError._AUTHENTICATION, errors[0]
    assert "Authentication failed" in errors[0].str()


@pytest.mark.slow
def test_local_broker_restarts_on_kept_data_after_sigkill() -> None:
    """What fault-injection tests rely on: kill -9, restart on the same port, records intact."""
    broker = LocalBroker(unique_broker_name("it-restart"), owner_pid=os.getpid())
    bootstrap = broker.start()
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("durable", num_partitions=1)])["durable"].result(30)
        wait_for_topic(admin, "durable", 1)
        produce(bootstrap, "durable", ["a", "b", "c"], acks="all")

        broker.stop(signal="KILL", keep_data=True)
        assert not broker.is_running()
        assert broker.start() == bootstrap
        assert broker.is_running()

        reader = group_consumer(bootstrap, "restart-reader")
        reader.assign([TopicPartition("durable", 0, 0)])
        try:
            assert consume(reader, 3) == ["a", "b", "c"]
        finally:
            reader.close()
    finally:
        broker.stop()
    assert not broker.is_running()


def test_a_broker_that_dies_during_start_up_is_reported_with_its_exit_status() -> None:
    """A JVM that cannot start fails `start` at once, says why, and leaves no instance behind."""
    name = unique_broker_name("it-dies")
    env = {**os.environ, "KAFKA_HEAP_OPTS": "-Xmx1k"}  # the JVM refuses a heap this small
    proc = subprocess.run(
        [str(KAFKA_SH), "start", "--name", name, "--timeout", "60"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1
    assert "the broker process exited with status 1 during start-up" in proc.stderr
    assert "Too small maximum heap" in proc.stderr  # the tail of broker.log says why
    assert f"broker '{name}' failed to start" in proc.stderr
    assert not (DATA_ROOT / name).exists()


def test_cluster_ids_never_start_with_a_dash() -> None:
    """The storage tool reads an id starting with '-' as an option and refuses to format.

    One random id in 64 starts with '-'; among 1,000 ids the old generator gave one with
    probability 1 - (63/64)**1000 > 0.9999998, so this fails if the redraw is ever lost.
    """
    proc = subprocess.run(
        [str(KAFKA_SH), "_cluster-ids", "1000"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ids = proc.stdout.split()
    assert len(ids) == 1000
    assert len(set(ids)) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id) for cluster_id in ids)
    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]
