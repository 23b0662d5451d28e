"""What the two comparison processes share: settings from the environment, the same clients.

The ceiling and the naive baseline read the consumer's own environment variables with
`consumer.settings.load_settings` and build their clients with `consumer.kafka`, so they
differ from the consumer as shipped only in what they do between consuming and producing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from consumer.kafka import consumer_config, producer_config
from consumer.publish import DeliveryErrors
from consumer.settings import Settings, load_settings

READY_LINE = "consuming"
"""Printed on stdout once partitions are assigned: the benchmark's clock starts there."""


def _ignore(_: Any) -> None:
    return None


def clients(settings: Settings) -> tuple[Consumer, Producer, DeliveryErrors]:
    errors = DeliveryErrors()
    consumer = Consumer(consumer_config(settings, _ignore, _ignore))
    producer = Producer({**producer_config(settings), "on_delivery": errors})
    announced = False

    def on_assign(_: Consumer, partitions: list[TopicPartition]) -> None:
        nonlocal announced
        if not announced:
            announced = True
            print(READY_LINE, flush=True)

    consumer.subscribe([settings.input_topic], on_assign=on_assign)
    return consumer, producer, errors


def acknowledged(producer: Producer, errors: DeliveryErrors, timeout_s: float) -> None:
    """Wait until every produced record is acknowledged, as the consumer's publisher does."""
    if producer.flush(timeout_s) or errors:
        raise SystemExit(f"records not acknowledged: {list(errors)[:3]}")


Turn = Callable[[Consumer, Producer, DeliveryErrors], None]


def run_until_stopped(settings: Settings, turn: Turn) -> int:
    """Build the clients and call `turn` until SIGTERM/SIGINT; then close them. Exit status 0."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    consumer, producer, errors = clients(settings)
    try:
        while not stop.is_set():
            turn(consumer, producer, errors)
    finally:
        consumer.close()
        producer.flush(10)
    return 0


__all__ = ["READY_LINE", "acknowledged", "clients", "load_settings", "run_until_stopped"]
