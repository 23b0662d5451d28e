"""The consumer's security settings against a real SASL_PLAINTEXT listener."""

from __future__ import annotations

import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.replay import event_messages, produce_messages, read_topic
from tests.integration.broker import SaslCluster
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import synthetic_events


def sasl_topics(sasl: SaslCluster) -> Topics:
    admin = AdminClient(sasl.client_config())
    run = uuid.uuid4().hex[:8]
    topics = Topics(input=f"sasl-in-{run}", output=f"sasl-out-{run}", dlq=f"sasl-dlq-{run}")
    futures = admin.create_topics(
        [NewTopic(t, 1, 1) for t in (topics.input, topics.output, topics.dlq)]
    )
    for future in futures.values():
        future.result(30)
    return topics


def sasl_env(sasl: SaslCluster, password_file: Path) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": sasl.bootstrap,
        "KAFKA_SECURITY_PROTOCOL": sasl.security_protocol,
        "KAFKA_SASL_MECHANISM": sasl.mechanism,
        "KAFKA_SASL_USERNAME": sasl.username,
        "KAFKA_SASL_PASSWORD_FILE": str(password_file),
    }


def test_sasl_credentials_work(
    kafka_sasl: SaslCluster, start_consumer: ConsumerFactory, tmp_path: Path
) -> None:
    topics = sasl_topics(kafka_sasl)
    events = synthetic_events(200, seed=31)
    produce_messages(
        kafka_sasl.bootstrap, topics.input, event_messages(events), kafka_sasl.client_config()
    )
    password = tmp_path / "password"
    password.write_text(kafka_sasl.password + "\n")  # as a Secret volume would hold it
    consumer = start_consumer(topics, **sasl_env(kafka_sasl, password))
    consumer.wait_ready()
    records = read_topic(
        kafka_sasl.bootstrap, topics.output, len(events), extra_config=kafka_sasl.client_config()
    )
    assert {r.json()["session_id"] for r in records} == {e["session_id"] for e in events}
    assert consumer.terminate() == 0


def test_wrong_sasl_password_stops_with_a_clear_error(
    kafka_sasl: SaslCluster, start_consumer: ConsumerFactory, tmp_path: Path
) -> None:
    topics = sasl_topics(kafka_sasl)
    password = tmp_path / "password"
    password.write_text("not-the-password")
    consumer = start_consumer(topics, **sasl_env(kafka_sasl, password))
    assert consumer.wait_exit(90) == 1
    log = consumer.log_tail()
    assert "authentication failed" in log, log
    assert "KAFKA_SASL_PASSWORD" in log
    assert "not-the-password" not in log  # the secret is never logged
