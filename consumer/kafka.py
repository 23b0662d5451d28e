"""librdkafka clients: the settings the delivery guarantees rest on, and what the clients report.

`consumer_config` / `producer_config` are the only places client properties are set.
`ClientEvents` receives the clients' error and statistics callbacks and turns them into
health (broker reachability, the producer holding its producer id, a fatal error) and metrics
(consumer lag).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson
from confluent_kafka import KafkaError, Message

from consumer.continuity import LibrdkafkaLog
from consumer.health import HealthState
from consumer.metrics import ScorerMetrics
from contract.brokers import fatal_client_error

if TYPE_CHECKING:  # consumer.settings imports RESERVED_PROPERTIES from here
    from consumer.settings import Settings

logger = logging.getLogger(__name__)

RESERVED_PROPERTIES: Final = frozenset(
    {
        # set below, whatever the user asks for
        "bootstrap.servers",
        "group.id",
        "auto.offset.reset",
        "statistics.interval.ms",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "isolation.level",
        "acks",
        "enable.idempotence",
        "delivery.report.only.error",
        "transactional.id",
        # librdkafka's other names for two of them (the last one set wins)
        "metadata.broker.list",
        "request.required.acks",
        "logger",
    }
)
"""The librdkafka properties `consumer_config` and `producer_config` set themselves: a
``KAFKA_<PROPERTY>`` naming one is refused when the settings are read, as it would be
overwritten (or would break a delivery guarantee). The callbacks (``error_cb``, ``stats_cb``)
cannot be named by a variable: ``KAFKA_ERROR_CB`` is the property ``error.cb``."""
_DEFAULTS_AND_ALIASES: Final = (
    ("partition.assignment.strategy", "cooperative-sticky", ()),
    # librdkafka's 5 minutes left partitions added to the input topic unread (and out of the lag
    # gauge) that long; 30 s finds them within a minute, for one metadata request per 30 s.
    ("topic.metadata.refresh.interval.ms", 30_000, ()),
    ("linger.ms", 5, ("queue.buffering.max.ms",)),
    ("compression.type", "lz4", ("compression.codec",)),
)
"""Properties with a default of ours that ``KAFKA_<PROPERTY>`` may change, under either name."""


def consumer_config(
    settings: Settings,
    on_error: Callable[[Any], None],
    on_stats: Callable[[str], None],
    log: LibrdkafkaLog | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        **settings.connection_config(),
        "group.id": settings.consumer_group,
        "auto.offset.reset": "earliest",
        # Statistics feed the lag gauge and broker reachability every few seconds.
        "statistics.interval.ms": 5000,
        "error_cb": on_error,
        "stats_cb": on_stats,
    }
    if log is not None:
        # librdkafka's own lines (an offset reset among them) as the service's JSON lines.
        config["logger"] = log
    _set_defaults(config, "partition.assignment.strategy", "topic.metadata.refresh.interval.ms")
    if settings.processing_guarantee == "exactly_once":
        # Offsets travel inside the producer's transaction; the consumer never commits itself.
        config["enable.auto.commit"] = False
        config["isolation.level"] = "read_committed"
    else:
        # at_least_once: the loop stores a batch's offsets only after the broker acknowledged
        # every output and dead letter of it (and of every earlier batch), then commits them at
        # once, asynchronously; on revocation and at shutdown it commits synchronously. No
        # timer: a crash repeats at most the batches that were in flight.
        config["enable.auto.commit"] = False
        config["enable.auto.offset.store"] = False
    return config


PRODUCER_STATS_INTERVAL_MS: Final = 1000
"""How often the producer reports its statistics; readiness follows its producer id within it."""


def producer_config(
    settings: Settings,
    on_error: Callable[[Any], None] | None = None,
    on_stats: Callable[[str], None] | None = None,
    log: LibrdkafkaLog | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        **settings.connection_config(),
        "acks": "all",
        "enable.idempotence": True,
        # A report for every record, success too: a batch is acknowledged when each of its
        # records is, without stopping to flush (consumer.delivery, consumer.inflight).
        "delivery.report.only.error": False,
    }
    if on_error is not None:
        # Served by the producer's poll(): while the loop waits for acknowledgements it still
        # learns that the brokers are down, so readiness drops within seconds.
        config["error_cb"] = on_error
    if log is not None:
        config["logger"] = log
    if on_stats is not None:
        # Say when the producer holds its producer id, for readiness (ClientEvents).
        config["statistics.interval.ms"] = PRODUCER_STATS_INTERVAL_MS
        config["stats_cb"] = on_stats
    _set_defaults(config, "linger.ms", "compression.type")
    if settings.processing_guarantee == "exactly_once":
        config["transactional.id"] = settings.effective_transactional_id
    return config


def admin_config(settings: Settings, log: LibrdkafkaLog | None = None) -> dict[str, Any]:
    """The admin client's (it looks up the input topic's id): the same brokers and credentials."""
    config: dict[str, Any] = {
        **settings.connection_config(),
    }
    if log is not None:
        config["logger"] = log
    return config


def _set_defaults(config: dict[str, Any], *names: str) -> None:
    """Our default for each of `names`, unless the user set the property under any name."""
    for name, default, aliases in _DEFAULTS_AND_ALIASES:
        if name in names and not {name, *aliases} & config.keys():
            config[name] = default


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


def assigned_producer_id(stats: dict[str, Any]) -> int | None:
    """The producer id an idempotent (or transactional) producer holds, from its statistics.

    librdkafka's `eos` object says `idemp_state` "Assigned" once the broker granted one; before
    (a fresh broker answers "Coordinator load in progress" for a second or more) and while it
    is being replaced, nothing is sent.
    """
    eos = stats.get("eos") or {}
    producer_id = eos.get("producer_id", -1)
    if eos.get("idemp_state") == "Assigned" and isinstance(producer_id, int) and producer_id >= 0:
        return producer_id
    return None


def any_broker_up(stats: dict[str, Any]) -> bool:
    """Whether a client's statistics show a connection to a broker (not a bootstrap) up."""
    brokers = (stats.get("brokers") or {}).values()
    return any(b.get("nodeid", -1) >= 0 and b.get("state") == "UP" for b in brokers)


class ClientEvents:
    """The clients' error and statistics callbacks (they run inside `consume()`/`poll()`).

    The broker is reachable while neither client has lost every broker: each client's own
    "all brokers down" error marks it down, and only its own statistics showing a broker up
    again mark it up. The two are never averaged: the consumer's statistics (every 5 s) may
    still show a connection up that the producer has already seen close, and a batch the
    consumer had fetched before the broker went away proves nothing about the broker now.
    """

    def __init__(self, health: HealthState, metrics: ScorerMetrics) -> None:
        self._health = health
        self._metrics = metrics
        self.assigned: set[tuple[str, int]] = set()
        """Input partitions held now; only their lag is exported."""
        self.fatal_error: str | None = None
        """Set when retrying cannot help (wrong credentials, a fatal client error)."""
        self._producer_id: int | None = None
        self._cut_off: set[Literal["consumer", "producer"]] = set()
        """The clients that lost every broker and have not seen one up since."""

    def on_error(self, error: KafkaError) -> None:
        """The consumer's error callback."""
        self._on_error("consumer", error)

    def on_producer_error(self, error: KafkaError) -> None:
        self._on_error("producer", error)

    def _on_error(self, client: Literal["consumer", "producer"], error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._reachable(client, False)
        # Wrong credentials or CA, or a fatal error: retrying cannot succeed, stop clearly.
        self.fatal_error = self.fatal_error or fatal_client_error(error)
        if self.fatal_error is None:
            logger.warning("kafka error: %s", error.str())

    def _reachable(self, client: Literal["consumer", "producer"], up: bool) -> None:
        if up:
            self._cut_off.discard(client)
        else:
            self._cut_off.add(client)
        self._health.set_broker_reachable(not self._cut_off)

    def on_stats(self, stats_json: str) -> None:
        """The consumer's statistics: its reachability, and the lag of the partitions held."""
        stats = orjson.loads(stats_json)
        self._reachable("consumer", any_broker_up(stats))
        for topic, topic_stats in stats.get("topics", {}).items():
            for partition, partition_stats in topic_stats.get("partitions", {}).items():
                lag = partition_stats.get("consumer_lag", -1)
                if int(partition) >= 0 and (topic, int(partition)) in self.assigned and lag >= 0:
                    self._metrics.consumer_lag.labels(topic=topic, partition=partition).set(lag)

    def on_producer_stats(self, stats_json: str) -> None:
        """The producer is ready while it holds a producer id (librdkafka acquires one at
        start; without it every record waits in the producer)."""
        stats = orjson.loads(stats_json)
        self._reachable("producer", any_broker_up(stats))
        producer_id = assigned_producer_id(stats)
        if producer_id != self._producer_id:
            if producer_id is None:
                logger.warning("the producer lost its producer id; not ready until it has one")
            else:
                logger.info("producer initialised producer_id=%d", producer_id)
            self._producer_id = producer_id
        self._health.set_producer_ready(producer_id is not None)

    def hold(self, partitions: Sequence[tuple[str, int]]) -> None:
        self.assigned |= set(partitions)
        # cooperative-sticky also assigns nothing to a member: that member is not ready.
        self._health.set_assigned(bool(self.assigned))

    def release(self, partitions: Sequence[tuple[str, int]]) -> None:
        for topic, partition in partitions:
            self.assigned.discard((topic, partition))
            with contextlib.suppress(KeyError):
                self._metrics.consumer_lag.remove(topic, str(partition))
        # Not ready while holding nothing (all revoked or lost), until the next assignment.
        self._health.set_assigned(bool(self.assigned))
