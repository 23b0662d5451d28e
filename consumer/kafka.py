"""librdkafka client configurations: the settings the delivery guarantees rest on, in one place."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message

from consumer.settings import Settings

logger = logging.getLogger(__name__)


def consumer_config(
    settings: Settings, on_error: Callable[[Any], None], on_stats: Callable[[str], None]
) -> dict[str, Any]:
    config: dict[str, Any] = {
        **settings.librdkafka_properties(),
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": settings.consumer_group,
        "auto.offset.reset": "earliest",
        # Statistics feed the lag gauge and broker reachability every few seconds.
        "statistics.interval.ms": 5000,
        "error_cb": on_error,
        "stats_cb": on_stats,
    }
    config.setdefault("partition.assignment.strategy", "cooperative-sticky")
    if settings.processing_guarantee == "exactly_once":
        # Offsets travel inside the producer's transaction; the consumer never commits itself.
        config["enable.auto.commit"] = False
        config["isolation.level"] = "read_committed"
    else:
        # at_least_once: the loop stores an offset only after the broker acknowledged that
        # message's output or dead letter; librdkafka then commits stored offsets periodically,
        # and the loop commits them on revocation and at shutdown.
        config["enable.auto.commit"] = True
        config["enable.auto.offset.store"] = False
        # Commit stored offsets every second (librdkafka: 5 s): fewer repeats after a crash.
        config.setdefault("auto.commit.interval.ms", 1000)
    return config


def producer_config(settings: Settings, on_delivery_error: Callable[..., None]) -> dict[str, Any]:
    config: dict[str, Any] = {
        **settings.librdkafka_properties(),
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "enable.idempotence": True,
        "on_delivery": on_delivery_error,
        # A batch is acknowledged when flush() leaves nothing queued and no error was reported.
        "delivery.report.only.error": True,
    }
    config.setdefault("linger.ms", 5)
    config.setdefault("compression.type", "lz4")
    if settings.processing_guarantee == "exactly_once":
        config["transactional.id"] = settings.effective_transactional_id
    return config


def admin_config(settings: Settings) -> dict[str, Any]:
    return {
        **settings.librdkafka_properties(),
        "bootstrap.servers": settings.kafka_bootstrap_servers,
    }


def fatal_client_error(error: KafkaError) -> str | None:
    """Why the consumer must stop for this client error, or None when librdkafka retries it.

    Credentials and certificates do not heal by retrying: a wrong password or a broker
    certificate that the configured CA does not vouch for stops the consumer at once with a
    message naming the settings to check (never their values).
    """
    if error.code() == KafkaError._AUTHENTICATION:
        return (
            f"authentication failed: {error.str()} "
            "(check KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME "
            "and KAFKA_SASL_PASSWORD)"
        )
    # Other TLS failures ("Disconnected" during a handshake) can be a broker restarting.
    if error.code() == KafkaError._SSL and "certificate" in error.str():
        return (
            f"TLS handshake failed, the broker's certificate was not accepted: {error.str()} "
            "(check KAFKA_SSL_CA_LOCATION: the CA that signed the broker certificate, and that "
            "the certificate names the host in KAFKA_BOOTSTRAP_SERVERS)"
        )
    if error.fatal():
        return f"fatal kafka error: {error.str()}"
    return None


def records_only(messages: Sequence[Message]) -> list[Message]:
    """The records among what `Consumer.consume` returned; errors are logged and dropped.

    End-of-partition events are dropped silently. Other errors (the broker unreachable, a
    partition gone) need no action here: librdkafka retries by itself and offsets stay where
    they are, so no record is skipped.
    """
    records = []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(message)
        elif error.code() != KafkaError._PARTITION_EOF:
            logger.warning(
                "consume error topic=%s partition=%s: %s",
                message.topic(),
                message.partition(),
                error.str(),
            )
    return records
