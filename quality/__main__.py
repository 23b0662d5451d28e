"""``python -m quality``: the live quality monitor (docs/quality.md).

Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for a bad setting, 1 for anything
else (topics not co-partitioned, a fatal Kafka client error).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from confluent_kafka import Consumer, KafkaException
from prometheus_client import CollectorRegistry

from contract.storage import Store
from quality.health import MonitorHealth
from quality.metrics import QualityMetrics
from quality.monitor import (
    ClientErrors,
    MonitorError,
    QualityMonitor,
    check_partition_counts,
    consumer_config,
)
from quality.promised import Promises
from quality.settings import QualitySettings, load_settings
from scoring.errors import SettingsError
from scoring.logs import configure_logging
from scoring.probes import ProbeServer

logger = logging.getLogger("quality")

EXIT_OK, EXIT_ERROR, EXIT_SETTINGS = 0, 1, 2
LIVENESS_TIMEOUT_S = 60.0


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"quality: bad setting: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging(settings.log_format, settings.log_level)
    try:
        return run(settings)
    except SettingsError as exc:  # found only when used: METRICS_PORT already taken
        print(f"quality: bad setting: {exc}", file=sys.stderr)
        return EXIT_SETTINGS


def run(settings: QualitySettings) -> int:
    registry = CollectorRegistry()
    metrics = QualityMetrics.create(registry)
    health = MonitorHealth(LIVENESS_TIMEOUT_S)
    server = ProbeServer.bind(
        health.alive, health.ready, registry, "0.0.0.0", settings.metrics_port
    )
    server.start()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %s: stopping", signum)
        health.stopping = True
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    promises = Promises(settings.quality_model_registry, Store(settings.object_store))
    consumer: Consumer | None = None
    try:
        errors = ClientErrors(health)
        consumer = Consumer(consumer_config(settings, errors.on_error))
        monitor = QualityMonitor(settings, consumer, errors, metrics, promises)
        partitions = check_partition_counts(consumer, settings.topics, timeout_s=30)
        logger.info(
            "monitoring scores=%s outcomes=%s shadow=%s partitions=%d group=%s window_s=%g "
            "missing_outcome=%s sample_rate=%g",
            settings.scores_topic,
            settings.outcome_topic,
            settings.shadow_scores_topic,
            partitions,
            settings.quality_consumer_group,
            settings.outcome_window,
            settings.missing_outcome,
            settings.quality_sample_rate,
        )
        monitor.run(stop)
    except (KafkaException, MonitorError) as exc:
        logger.error("stopping: %s", exc)
        return EXIT_ERROR
    finally:
        if consumer is not None:
            consumer.close()
            logger.info("consumer closed")
        server.stop()
        logger.info("stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
