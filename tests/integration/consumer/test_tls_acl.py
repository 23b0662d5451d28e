"""The consumer over SASL_SSL + SCRAM-SHA-512 as the least-privilege `scorer` user.

One broker for the session (`kafka.sh start --tls --acl`, fixture `kafka_secure`); each test
creates its own topics as `admin` and grants `scorer` its ACLs on them with `kafka.sh grant`.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.replay import KeyValue, event_messages, produce_messages, read_topic
from tests.integration.broker import SASL_PASSWORD, SASL_USERNAME, SecureCluster
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import synthetic_events


def secure_topics(cluster: SecureCluster) -> tuple[Topics, str]:
    """Fresh topics (created by admin) and a group, on which `scorer` is granted its ACLs."""
    run = uuid.uuid4().hex[:8]
    topics = Topics(input=f"tls-in-{run}", output=f"tls-out-{run}", dlq=f"tls-dlq-{run}")
    group = f"tls-group-{run}"
    admin = AdminClient(cluster.client_config())
    futures = admin.create_topics(
        [NewTopic(t, 2, 1) for t in (topics.input, topics.output, topics.dlq)]
    )
    for future in futures.values():
        future.result(30)
    cluster.grant_scorer(topics.input, topics.output, topics.dlq, group)
    return topics, group


def scorer_env(
    cluster: SecureCluster, topics: Topics, group: str, secrets: Path, **overrides: str
) -> dict[str, str]:
    """The consumer's settings as a Deployment would set them: the password from a file."""
    password = secrets / "kafka-password"
    password.write_text(overrides.pop("password", SASL_PASSWORD) + "\n")
    return {
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": SASL_USERNAME,
        "KAFKA_SASL_PASSWORD_FILE": str(password),
        "KAFKA_SSL_CA_LOCATION": str(cluster.ca_file),
        "INPUT_TOPIC": topics.input,
        "OUTPUT_TOPIC": topics.output,
        "DLQ_TOPIC": topics.dlq,
        "CONSUMER_GROUP": group,
        **overrides,
    }


def test_both_guarantees_score_over_sasl_ssl_as_the_least_privilege_scorer(
    kafka_secure: SecureCluster, start_consumer: ConsumerFactory, tmp_path: Path
) -> None:
    admin = kafka_secure.client_config()
    runs = {}
    # Both consumers run side by side (the imports dominate), each on its own topics and group.
    for guarantee in ("at_least_once", "exactly_once"):
        topics, group = secure_topics(kafka_secure)
        events = synthetic_events(120, seed=53, prefix=f"tls-{guarantee}")
        messages: list[KeyValue] = [*event_messages(events), (b"bad", b"{not json")]
        produce_messages(kafka_secure.bootstrap, topics.input, messages, admin)
        secrets = tmp_path / guarantee
        secrets.mkdir()
        env = scorer_env(
            kafka_secure,
            topics,
            group,
            secrets,
            PROCESSING_GUARANTEE=guarantee,
        )
        if guarantee == "exactly_once":  # at_least_once refuses a TRANSACTIONAL_ID
            # Its transactional id starts with "<group>-", as the grant allows.
            env["TRANSACTIONAL_ID"] = f"{group}-replica-0"
        runs[guarantee] = (topics, events, start_consumer(topics, group=group, **env))
    for guarantee, (topics, events, consumer) in runs.items():
        consumer.wait_ready(120)
        records = read_topic(kafka_secure.bootstrap, topics.output, len(events), extra_config=admin)
        dead = read_topic(kafka_secure.bootstrap, topics.dlq, 1, extra_config=admin)
        assert consumer.terminate() == 0, f"{guarantee}: {consumer.log_tail()}"
        assert sorted(r.json()["session_id"] for r in records) == sorted(
            str(e["session_id"]) for e in events
        ), guarantee
        assert [d.key for d in dead] == [b"bad"], guarantee


def test_the_scorer_cannot_write_its_input_or_read_its_output(
    kafka_secure: SecureCluster,
) -> None:
    topics, group = secure_topics(kafka_secure)
    scorer = kafka_secure.client_config(SASL_USERNAME)
    reports: list[KafkaError | None] = []
    producer = Producer(scorer)
    producer.produce(topics.input, b"forged", on_delivery=lambda err, _msg: reports.append(err))
    producer.flush(30)
    assert len(reports) == 1
    assert reports[0] is not None
    assert reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    # Even with the group it may use, the output topic is not readable by the scorer.
    consumer = Consumer({**scorer, "group.id": group, "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topics.output])
        codes = set()
        for _ in range(60):
            message = consumer.poll(0.5)
            if message is not None and message.error() is not None:
                codes.add(message.error().code())
                if KafkaError.TOPIC_AUTHORIZATION_FAILED in codes:
                    break
        assert KafkaError.TOPIC_AUTHORIZATION_FAILED in codes, codes
    finally:
        consumer.close()


def _other_ca(root: Path) -> Path:
    """A CA that did not sign the broker's certificate."""
    key, cert = root / "other-ca.key", root / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=not the broker's CA",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert


def test_a_wrong_ca_file_or_password_stops_the_consumer_naming_the_cause(
    kafka_secure: SecureCluster, start_consumer: ConsumerFactory, tmp_path: Path
) -> None:
    cases = {
        "ca_file": (
            {"KAFKA_SSL_CA_LOCATION": str(_other_ca(tmp_path))},
            ("certificate verify failed", "KAFKA_SSL_CA_LOCATION"),
        ),
        "missing ca_file": (
            {"KAFKA_SSL_CA_LOCATION": str(tmp_path / "no-such-ca.pem")},
            ("the Kafka client cannot be created", "ssl.ca.location failed"),
        ),
        "password": (
            {"password": "not-the-scram-password"},
            ("authentication failed", "KAFKA_SASL_PASSWORD"),
        ),
    }
    started = {}
    # Each stops before it could read a topic: no topics or grants are needed.
    topics, group = Topics("never-in", "never-out", "never-dlq"), "never-group"
    for wrong, (overrides, _) in cases.items():
        secrets = tmp_path / wrong.replace(" ", "-")
        secrets.mkdir()
        env = scorer_env(kafka_secure, topics, group, secrets, **dict(overrides))
        started[wrong] = start_consumer(topics, group=group, **env)
    for wrong, (_, expected) in cases.items():
        consumer = started[wrong]
        assert consumer.wait_exit(90) == 1, f"{wrong}: {consumer.log_tail()}"
        log = consumer.log_tail(200)
        for text in expected:
            assert text in log, f"{wrong}: {text!r} not in {log}"
        assert "not-the-scram-password" not in log
