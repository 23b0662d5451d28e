"""``python -m consumer``: the long-running scoring service.

Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for a bad setting, 3 when a model
gate refuses the artifact (``fetch`` included: an s3:// build that cannot be downloaded), 1 for
anything else (including a shutdown that overran its bound).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from types import FrameType

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from consumer.continuity import InputContinuity, LibrdkafkaLog
from consumer.delivery import Publisher
from consumer.errors import ConsumerError
from consumer.health import HealthState
from consumer.kafka import ClientEvents, admin_config, consumer_config, producer_config
from consumer.loop import MAX_RETRY_BACKOFF_S, ScoringLoop
from consumer.metrics import ScorerMetrics
from consumer.settings import Settings, load_settings
from consumer.shadow_output import shadow_output
from consumer.spans import BatchTracing, configure_tracing
from consumer.transactions import init_transactions
from contract.storage import Store
from scoring.drift import drift_sentinel
from scoring.errors import GateError, ScoringError, SettingsError
from scoring.fetch import load_model
from scoring.logs import configure_logging
from scoring.probes import ProbeServer
from scoring.shadow import set_primary_info, start_shadow

logger = logging.getLogger("consumer")

EXIT_OK, EXIT_ERROR, EXIT_SETTINGS, EXIT_GATE = 0, 1, 2, 3


def main(*, publisher_type: type[Publisher] = Publisher) -> int:
    """Run the service; `publisher_type` is passed on to `serve`."""
    try:
        settings = load_settings()
        tracing = configure_tracing(os.environ)  # the OTEL_* variables, as the SDK reads them
    except SettingsError as exc:
        print(f"consumer: bad setting: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging(settings.log_format, settings.log_level)
    try:
        return serve(settings, tracing, publisher_type=publisher_type)
    except SettingsError as exc:  # found only when used, e.g. METRICS_PORT already taken
        print(f"consumer: bad setting: {exc}", file=sys.stderr)
        return EXIT_SETTINGS


def serve(
    settings: Settings,
    tracing: BatchTracing | None = None,
    *,
    publisher_type: type[Publisher] = Publisher,
) -> int:
    """Score until SIGTERM/SIGINT; returns the exit status.

    `publisher_type` produces each batch's records. It is a seam: the loop calls its `publish`
    once a batch is scored and commits the batch's offsets only after it returned, so a subclass
    can act between the two (the fault tests' crash-before-commit entry point does).
    """
    registry = CollectorRegistry()
    metrics = ScorerMetrics.create(registry)
    # One loop turn may legitimately take a consume wait, a publish wait bounded by
    # PUBLISH_TIMEOUT_S and a retry backoff; only a turn longer than all that is a wedged loop.
    liveness_timeout = max(
        30.0,
        3 * settings.batch_max_wait_ms / 1000 + settings.publish_timeout_s + MAX_RETRY_BACKOFF_S,
    )
    health = HealthState(liveness_timeout_s=liveness_timeout)
    server = ProbeServer.bind(
        health.alive, health.ready, registry, "0.0.0.0", settings.metrics_port
    )
    server.start()
    store = Store(settings.object_store)
    try:
        scorer, artifact = load_model(settings.model_uri, settings, store)
    except GateError as exc:
        logger.error("%s; nothing will be consumed", exc)
        server.stop()
        return EXIT_GATE
    info = scorer.info
    set_primary_info(metrics.runtime, info)
    metrics.runtime.set_scoring_path(scorer.path)
    shadow = start_shadow(
        settings, info, store, metrics.runtime, lambda: shadow_output(settings, metrics.runtime)
    )
    health.set_gates_passed()
    _tune_garbage_collector()

    stop = threading.Event()
    _install_signal_handlers(stop, health, settings.shutdown_timeout_s)

    events = ClientEvents(health, metrics)
    librdkafka_log = LibrdkafkaLog()
    try:
        producer = Producer(
            producer_config(
                settings, events.on_producer_error, events.on_producer_stats, librdkafka_log
            )
        )
    except KafkaException as exc:  # e.g. KAFKA_SSL_CA_LOCATION names no readable CA file
        logger.error("stopping: the Kafka client cannot be created (check KAFKA_*): %s", exc)
        server.stop()
        return EXIT_ERROR
    publisher = publisher_type(
        producer,
        metrics,
        settings.output_topic,
        settings.dlq_topic,
        settings.dead_letter_budget_bytes,
    )
    loop: ScoringLoop | None = None
    try:
        if settings.processing_guarantee == "exactly_once":
            init_transactions(producer, stop)
            # Returned: the producer holds its producer id (the statistics will say so too).
            health.set_producer_ready(not stop.is_set())
        consumer = Consumer(
            consumer_config(settings, events.on_error, events.on_stats, librdkafka_log)
        )
        continuity = InputContinuity(
            AdminClient(admin_config(settings, librdkafka_log)),
            settings.input_topic,
            settings.on_topic_recreated,
            metrics,
        )
        continuity.start()
        drift = drift_sentinel(settings, metrics.runtime, info.threshold, artifact)
        loop = ScoringLoop(
            settings,
            scorer,
            consumer,
            producer,
            publisher,
            metrics,
            health,
            events,
            tracing,
            drift,
            shadow,
            continuity,
            librdkafka_log,
        )
        logger.info(
            "scoring input=%s output=%s dlq=%s group=%s guarantee=%s",
            settings.input_topic,
            settings.output_topic,
            settings.dlq_topic,
            settings.consumer_group,
            settings.processing_guarantee,
        )
        if not stop.is_set():
            loop.run(stop)
    except (KafkaException, ConsumerError, ScoringError) as exc:
        logger.error("stopping: %s", exc)
        return EXIT_ERROR
    finally:
        if loop is not None:
            loop.shutdown()
        producer.flush(settings.shutdown_timeout_s / 2)
        if shadow is not None:
            shadow.close(settings.shutdown_timeout_s / 4)
        server.stop()
    return EXIT_OK


def _tune_garbage_collector() -> None:
    """Keep the collector off the hot path: the libraries and the model loaded so far live as
    long as the process, so they are moved out of the collector's sight (``gc.freeze``), and the
    youngest generation is collected every 50,000 allocations instead of 700 (each batch
    allocates a few objects per event and frees them again). About 15 % less CPU per event.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _install_signal_handlers(
    stop: threading.Event, health: HealthState, shutdown_timeout_s: float
) -> None:
    def request_stop(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            return
        logger.info("signal %s: finishing the batch in hand, then stopping", signum)
        stop.set()
        health.set_stopping()
        watchdog = threading.Timer(shutdown_timeout_s, _overran, args=(shutdown_timeout_s,))
        watchdog.daemon = True
        watchdog.start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def _overran(shutdown_timeout_s: float) -> None:
    """The bound on shutdown: uncommitted input is re-read by the next owner, never lost."""
    logger.error("shutdown overran SHUTDOWN_TIMEOUT_S=%s; exiting now", shutdown_timeout_s)
    logging.shutdown()
    os._exit(EXIT_ERROR)


if __name__ == "__main__":
    sys.exit(main())
