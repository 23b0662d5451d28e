"""consumer.kafka.records_only: which of consume()'s results are records."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, Message

from consumer.kafka import records_only


def _record(offset: int) -> Message:
    return Message(topic="in", partition=0, offset=offset, value=b"{}")


def _error(code: int) -> Message:
    return Message(topic="in", partition=2, error=KafkaError(code))


def test_records_are_kept_in_order_and_errors_dropped(caplog: pytest.LogCaptureFixture) -> None:
    messages = [
        _record(5),
        _error(KafkaError._PARTITION_EOF),
        _record(6),
        _error(KafkaError._TRANSPORT),
        _record(7),
    ]
    with caplog.at_level(logging.WARNING, logger="consumer.kafka"):
        records = records_only(messages)
    assert [m.offset() for m in records] == [5, 6, 7]
    # End of partition is routine and silent; any other error is logged with where it came from.
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith("consume error topic=in partition=2:")


def test_no_records() -> None:
    assert records_only([]) == []
    assert records_only([_error(KafkaError._PARTITION_EOF)]) == []


def test_wrong_credentials_and_untrusted_certificates_are_fatal_and_say_what_to_check() -> None:
    from confluent_kafka import KafkaError

    from consumer.kafka import fatal_client_error

    auth = fatal_client_error(KafkaError(KafkaError._AUTHENTICATION, "invalid credentials"))
    assert auth is not None
    assert "authentication failed" in auth
    assert "KAFKA_SASL_PASSWORD" in auth
    verify = "SSL handshake failed: certificate verify failed"
    ssl = fatal_client_error(KafkaError(KafkaError._SSL, verify))
    assert ssl is not None
    assert "KAFKA_SSL_CA_LOCATION" in ssl
    # A handshake cut short may be a broker restarting: librdkafka retries it.
    assert (
        fatal_client_error(KafkaError(KafkaError._SSL, "SSL handshake failed: Disconnected"))
        is None
    )
    assert fatal_client_error(KafkaError(KafkaError._TRANSPORT, "connection refused")) is None
    assert fatal_client_error(KafkaError(KafkaError._FENCED, "fenced", fatal=True)) is not None


def test_new_partitions_are_looked_for_every_30_s_unless_set() -> None:
    from consumer.kafka import consumer_config
    from consumer.settings import load_settings

    base = {"MODEL_URI": "file:///models/m.joblib", "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092"}

    def refresh(environ: dict[str, str]) -> object:
        config = consumer_config(load_settings(environ), print, print)
        return config["topic.metadata.refresh.interval.ms"]

    # librdkafka's own default is 5 minutes: partitions added to the input would wait that long.
    assert refresh(base) == 30_000
    assert refresh({**base, "KAFKA_TOPIC_METADATA_REFRESH_INTERVAL_MS": "2000"}) == "2000"
