"""The shadow's records on SHADOW_OUTPUT_TOPIC: the consumer's sink for ``scoring.shadow``.

Records of the primary's format (``consumer.publish.output_records``), produced through a
producer of their own, outside any transaction of the primary. Best effort: a record that cannot
be queued or is not delivered is counted in ``scorer_shadow_failures_total{stage="publish"}``,
never retried.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from confluent_kafka import KafkaError, Message, Producer

from consumer.continuity import LibrdkafkaLog
from consumer.kafka import producer_config
from consumer.publish import output_records, rfc3339_now
from consumer.settings import Settings
from contract.schema import SessionEvent
from scoring.decode import MessageLike
from scoring.metrics import RuntimeMetrics
from scoring.scorer import ModelInfo

logger = logging.getLogger(__name__)


class ShadowOutput:
    """A ``scoring.shadow.ShadowSink``: the shadow's records on ``topic``, through a producer
    of its own."""

    def __init__(self, settings: Settings, topic: str, metrics: RuntimeMetrics) -> None:
        self.name = topic
        self._metrics = metrics
        config = {**producer_config(settings, log=LibrdkafkaLog()), "on_delivery": self.on_delivery}
        config.pop("transactional.id", None)  # outside the primary's transactions
        self._producer = Producer(config)

    def publish(
        self,
        events: Sequence[SessionEvent],
        messages: Sequence[MessageLike],
        probabilities: npt.NDArray[np.float64],
        info: ModelInfo,
    ) -> None:
        """Best effort: a shadow record that cannot be queued is counted, never retried."""
        records = output_records(events, messages, probabilities, info, rfc3339_now())
        dropped = 0
        for record, message in zip(records, messages, strict=True):
            try:
                self._producer.produce(self.name, record, key=message.key())
            except BufferError:
                dropped += 1
            except Exception:
                logger.exception("shadow output failed topic=%s", self.name)
                dropped += 1
        self._producer.poll(0)
        if dropped:
            self._metrics.shadow_failures.labels(stage="publish").inc(dropped)
            logger.warning("shadow records dropped topic=%s count=%d", self.name, dropped)

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._metrics.shadow_failures.labels(stage="publish").inc()
            logger.warning("shadow record not delivered: %s", error.str())

    def close(self, timeout_s: float) -> None:
        self._producer.flush(timeout_s)


def shadow_output(settings: Settings, metrics: RuntimeMetrics) -> ShadowOutput | None:
    """The sink of SHADOW_OUTPUT_TOPIC; None when it is unset."""
    if settings.shadow_output_topic is None:
        return None
    return ShadowOutput(settings, settings.shadow_output_topic, metrics)
