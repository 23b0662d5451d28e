"""Shadow scoring: a second build scores the same batches as the one in service, for comparison.

``SHADOW_MODEL_URI`` names it (a path, ``file://`` or ``s3://``); it passes the same gates as
the primary. Its probabilities never reach the primary's output, offsets or readiness: they
feed the agreement metrics and, with ``SHADOW_OUTPUT_TOPIC``, records of the same format on a
topic of their own, through a producer of their own (outside any transaction of the primary).
A shadow refused by a gate, or that raises or returns a non-finite probability, is logged,
counted in ``scorer_shadow_failures_total`` and switched off; the consumer carries on.
``Shadow.observe`` never raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from confluent_kafka import KafkaError, Message, Producer

from consumer.batch import BatchResult
from consumer.decode import MessageLike
from consumer.errors import GateError
from consumer.fetch import load_model
from consumer.kafka import producer_config
from consumer.metrics import ScorerMetrics
from consumer.publish import output_records, rfc3339_now
from consumer.scoring import ModelInfo, Scorer
from consumer.settings import Settings
from contract.schema import SessionEvent
from contract.storage import Store

logger = logging.getLogger(__name__)


class Shadow:
    """The shadow build, the primary's threshold to compare labels with, and optional output."""

    def __init__(
        self,
        scorer: Scorer,
        primary: ModelInfo,
        metrics: ScorerMetrics,
        producer: Producer | None = None,
        topic: str | None = None,
    ) -> None:
        """``producer`` and ``topic`` (SHADOW_OUTPUT_TOPIC) are both given, or neither."""
        self._scorer = scorer
        self._primary = primary
        self._metrics = metrics
        self._producer = producer
        self._output = (producer, topic) if producer is not None and topic is not None else None
        self.active = True
        self._info_labels = _info_labels("shadow", scorer.info)
        metrics.model_info.labels(**self._info_labels).set(1)

    def observe(self, result: BatchResult) -> None:
        """Score the batch's events with the shadow (from the raw columns the batch already
        built) and compare with the primary's probabilities."""
        events, messages, primary = result.events, result.scored, result.probabilities
        if not self.active or not events:
            return
        started = time.perf_counter()
        try:
            shadow = self._scorer.score_columns(result.columns)
            if shadow.shape != primary.shape or not np.all(np.isfinite(shadow)):
                raise ValueError("the shadow returned non-finite or missing probabilities")
        except Exception:
            logger.exception("shadow scoring failed; the shadow is switched off")
            self._switch_off("scoring")
            return
        metrics = self._metrics
        for difference in np.abs(shadow - primary).tolist():
            metrics.shadow_difference.observe(difference)
        shadow_labels = shadow >= self._scorer.info.threshold
        disagreements = int(np.count_nonzero(shadow_labels != (primary >= self._primary.threshold)))
        if disagreements:
            metrics.shadow_disagreements.inc(disagreements)
        if self._output is not None:
            self._publish(*self._output, events, messages, shadow)
        metrics.shadow_duration.observe(time.perf_counter() - started)

    def _publish(
        self,
        producer: Producer,
        topic: str,
        events: Sequence[SessionEvent],
        messages: Sequence[MessageLike],
        probabilities: npt.NDArray[np.float64],
    ) -> None:
        """Best effort: a shadow record that cannot be queued is counted, never retried."""
        records = output_records(events, messages, probabilities, self._scorer.info, rfc3339_now())
        dropped = 0
        for record, message in zip(records, messages, strict=True):
            try:
                producer.produce(topic, record, key=message.key())
            except BufferError:
                dropped += 1
            except Exception:
                logger.exception("shadow output failed topic=%s", topic)
                dropped += 1
        producer.poll(0)
        if dropped:
            self._metrics.shadow_failures.labels(stage="publish").inc(dropped)
            logger.warning("shadow records dropped topic=%s count=%d", topic, dropped)

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._metrics.shadow_failures.labels(stage="publish").inc()
            logger.warning("shadow record not delivered: %s", error.str())

    def _switch_off(self, stage: str) -> None:
        self.active = False
        self._metrics.shadow_failures.labels(stage=stage).inc()
        self._metrics.model_info.remove(*self._info_labels.values())

    def close(self, timeout_s: float) -> None:
        if self._producer is not None:
            self._producer.flush(timeout_s)


def _info_labels(role: str, info: ModelInfo) -> dict[str, str]:
    return {
        "role": role,
        "build_id": info.build_id,
        "variant": info.variant,
        "git_sha": info.git_sha,
    }


def set_primary_info(metrics: ScorerMetrics, info: ModelInfo) -> None:
    """``scorer_model_info{role="primary",...} 1`` for the build in service."""
    metrics.model_info.labels(**_info_labels("primary", info)).set(1)


def start_shadow(
    settings: Settings, primary: ModelInfo, store: Store, metrics: ScorerMetrics
) -> Shadow | None:
    """The shadow of ``SHADOW_MODEL_URI`` once it passed the gates; None when unset or refused."""
    if settings.shadow_model_uri is None:
        return None
    try:
        scorer, _ = load_model(settings.shadow_model_uri, settings, store)
    except GateError as exc:
        metrics.shadow_failures.labels(stage="gates").inc()
        logger.error("shadow model refused, no shadow scoring: %s", exc)
        return None
    except Exception:  # the primary serves whatever happens to the shadow
        metrics.shadow_failures.labels(stage="gates").inc()
        logger.exception("shadow model could not be loaded, no shadow scoring")
        return None
    producer: Producer | None = None
    shadow_holder: list[Shadow] = []
    if settings.shadow_output_topic is not None:

        def on_delivery(error: Any, message: Any) -> None:
            if shadow_holder:
                shadow_holder[0].on_delivery(error, message)

        config = {**producer_config(settings), "on_delivery": on_delivery}
        config.pop("transactional.id", None)  # outside the primary's transactions
        producer = Producer(config)
    shadow = Shadow(scorer, primary, metrics, producer, settings.shadow_output_topic)
    shadow_holder.append(shadow)
    logger.info(
        "shadow scoring build_id=%s variant=%s output=%s",
        scorer.info.build_id,
        scorer.info.variant,
        settings.shadow_output_topic or "-",
    )
    return shadow
