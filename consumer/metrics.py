"""Prometheus metrics of the scoring consumer, on a registry passed in (never the global one).

The runtime's (``scoring.metrics.RuntimeMetrics``: model, scoring path, outcomes, stages, drift,
shadow) and Kafka's (lag, rebalances, producer queue, transactions, continuity, end-to-end
latency, readiness), together as ``ScorerMetrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scoring.metrics import RUNTIME_METRIC_NAMES, RuntimeMetrics

Outcome = Literal["scored", "rejected", "failed", "skipped"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
Stage = Literal["decode", "score", "publish", "commit"]
STAGES: tuple[Stage, ...] = get_args(Stage)

KAFKA_METRIC_NAMES = (
    "scorer_batch_size",
    "scorer_end_to_end_latency_seconds",
    "scorer_consumer_lag",
    "scorer_rebalances_total",
    "scorer_ready",
    "scorer_producer_queue_full_total",
    "scorer_transactions_aborted_total",
    "scorer_input_topic_recreated_total",
    "scorer_offset_resets_total",
    "scorer_offsets_skipped_total",
)
# Every metric the consumer exports; deploy/k8s alerts and the dashboard may use only these.
METRIC_NAMES = (*RUNTIME_METRIC_NAMES, *KAFKA_METRIC_NAMES)

_BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class ScorerMetrics:
    """The consumer's metrics, registered on ``registry``: the runtime's and Kafka's."""

    registry: CollectorRegistry
    runtime: RuntimeMetrics
    batch_size: Histogram
    end_to_end_latency: Histogram
    consumer_lag: Gauge
    rebalances: Counter
    ready: Gauge
    producer_queue_full: Counter
    transactions_aborted: Counter
    # Reading continuity (consumer.continuity): input passed over, always counted.
    input_topic_recreated: Counter
    offset_resets: Counter
    offsets_skipped: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ScorerMetrics:
        return cls(
            registry=registry,
            runtime=RuntimeMetrics.create(registry, OUTCOMES, STAGES),
            batch_size=Histogram(
                "scorer_batch_size",
                "Messages per consumed batch.",
                buckets=_BATCH_SIZE_BUCKETS,
                registry=registry,
            ),
            end_to_end_latency=Histogram(
                "scorer_end_to_end_latency_seconds",
                "From the input record's timestamp to the broker's acknowledgement of its output.",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            consumer_lag=Gauge(
                "scorer_consumer_lag",
                "High watermark minus the consumed position, per assigned input partition.",
                ["topic", "partition"],
                registry=registry,
            ),
            rebalances=Counter(
                "scorer_rebalances",
                "Partition assignments and revocations.",
                ["kind"],
                registry=registry,
            ),
            ready=Gauge(
                "scorer_ready",
                "1 when the model gates passed and the consumer holds its assignment.",
                registry=registry,
            ),
            producer_queue_full=Counter(
                "scorer_producer_queue_full",
                "Times the producer's local queue was full and consumption paused.",
                registry=registry,
            ),
            transactions_aborted=Counter(
                "scorer_transactions_aborted",
                "exactly_once batches aborted and re-read from the committed position.",
                registry=registry,
            ),
            input_topic_recreated=Counter(
                "scorer_input_topic_recreated",
                "Times the input topic was found deleted and created again (another topic id "
                "than the committed offsets'); ON_TOPIC_RECREATED says what followed.",
                ["topic"],
                registry=registry,
            ),
            offset_resets=Counter(
                "scorer_offset_resets",
                "Positions found out of range and reset to the earliest offset: input deleted "
                "(retention, delete_records) before it was read.",
                ["topic", "partition"],
                registry=registry,
            ),
            offsets_skipped=Counter(
                "scorer_offsets_skipped",
                "Input offsets deleted before they were read, passed over by those resets.",
                ["topic", "partition"],
                registry=registry,
            ),
        )

    def count(self, outcome: Outcome, n: int = 1) -> None:
        if n:
            self.runtime.messages.labels(outcome=outcome).inc(n)

    def observe_stage(self, stage: Stage, seconds: float) -> None:
        self.runtime.batch_duration.labels(stage=stage).observe(seconds)

    def topic_recreated(self, topic: str) -> None:
        self.input_topic_recreated.labels(topic=topic).inc()

    def offset_reset(self, topic: str, partition: int, skipped: int) -> None:
        self.offset_resets.labels(topic=topic, partition=str(partition)).inc()
        self.offsets_skipped.labels(topic=topic, partition=str(partition)).inc(skipped)
