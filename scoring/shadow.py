"""Shadow scoring: a second build scores the same batches as the one in service, for comparison.

``SHADOW_MODEL_URI`` names it (a path, ``file://`` or ``s3://``); it passes the same gates as
the primary. Its probabilities never reach the primary's output, offsets or readiness: they
feed the agreement metrics and, when the front door supplies one, a ``ShadowSink`` (the
consumer's: records of the primary's format on ``SHADOW_OUTPUT_TOPIC``, through a producer of
their own, outside any transaction of the primary: ``consumer.shadow_output``).

The shadow never slows or stops the primary: ``Shadow.observe`` (on the scoring path) only hands the
batch's already-built columns and probabilities to a daemon thread of the shadow's own, through
a slot of HANDOFF_DEPTH batches; a batch that finds the slot full is dropped (not compared) and
counted, so a slow shadow compares a sample instead of holding the loop. A batch still
unfinished after SHADOW_BATCH_TIMEOUT_S switches the shadow off (``supervise``, called by the
loop every turn, notices it); its thread is left behind, never waited on.

A shadow refused by a gate, or that raises, returns a non-finite probability or overruns its
budget, is logged, counted in ``scorer_shadow_failures_total``, flagged by
``scorer_shadow_switched_off`` and switched off; the consumer carries on. ``Shadow.observe`` and
``Shadow.supervise`` never raise.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from contract.schema import SessionEvent
from contract.storage import Store
from scoring.batch import ScoredBatch
from scoring.decode import MessageLike
from scoring.errors import GateError
from scoring.fetch import load_model
from scoring.metrics import SHADOW_BATCHES, RuntimeMetrics, ShadowFailure, observe_all
from scoring.scorer import ModelInfo, Scorer
from scoring.settings import ModelSettings

logger = logging.getLogger(__name__)

HANDOFF_DEPTH: Final[int] = 1
"""Batches waiting for the shadow besides the one it scores; one more arriving is dropped."""
THREAD_NAME: Final[str] = "shadow-scorer"


class ShadowSink(Protocol):
    """Where a front door sends the shadow's probabilities besides the metrics (the consumer:
    records on SHADOW_OUTPUT_TOPIC). Called on the shadow's thread; best effort: a sink counts
    what it loses in ``scorer_shadow_failures_total{stage="publish"}`` and never raises."""

    name: str
    """Where the probabilities go, for the log (a topic name)."""

    def publish(
        self,
        events: Sequence[SessionEvent],
        messages: Sequence[MessageLike],
        probabilities: npt.NDArray[np.float64],
        info: ModelInfo,
    ) -> None:
        """The shadow's probabilities of one batch (index-aligned with events and messages)."""

    def close(self, timeout_s: float) -> None:
        """Deliver what is still queued, within ``timeout_s``."""


@dataclass(frozen=True, slots=True)
class _Job:
    """What the shadow needs of a batch: references to what the loop already built, no copy."""

    columns: Mapping[str, Any]
    primary: npt.NDArray[np.float64]
    events: Sequence[SessionEvent]
    messages: Sequence[MessageLike]


_STOP: Final = object()
"""Put in the slot by ``close``: the worker ends after the batch in hand."""


class Shadow:
    """The shadow build on a thread of its own, the primary's threshold to compare labels with,
    and an optional sink."""

    def __init__(
        self,
        scorer: Scorer,
        primary: ModelInfo,
        metrics: RuntimeMetrics,
        sink: ShadowSink | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        """``sink`` receives the shadow's probabilities (None: the metrics only); ``timeout_s``
        is SHADOW_BATCH_TIMEOUT_S. The worker thread starts here."""
        self._scorer = scorer
        self._primary = primary
        self._metrics = metrics
        self._sink = sink
        self._timeout_s = timeout_s
        self.active = True
        self._lock = threading.Lock()  # guards the switch-off and each batch's figures
        self._slot: queue.Queue[_Job | object] = queue.Queue(maxsize=HANDOFF_DEPTH)
        self._busy_since: float | None = None  # monotonic start of the batch in hand
        self._shadowed = metrics.shadow_batches.labels(result="shadowed")
        self._dropped = metrics.shadow_batches.labels(result="dropped")
        self._failed = metrics.shadow_batches.labels(result="failed")
        self._info_labels = _info_labels("shadow", scorer.info)
        metrics.model_info.labels(**self._info_labels).set(1)
        metrics.shadow_switched_off.set(0)
        self._thread = threading.Thread(target=self._work, name=THREAD_NAME, daemon=True)
        self._thread.start()

    # --- the loop's side: never blocks, never raises ----------------------------------------

    def observe(self, result: ScoredBatch) -> None:
        """Hand the batch's events (the raw columns the batch already built) and the primary's
        probabilities to the shadow's thread; drop the batch if the shadow is still busy."""
        try:
            if not self.active or not result.events or self._overdue():
                return
            output = self._sink is not None  # events and messages: for the sink only
            self._slot.put_nowait(
                _Job(
                    result.columns,
                    result.probabilities,
                    result.events if output else (),
                    result.scored if output else (),
                )
            )
        except queue.Full:
            self._dropped.inc()
        except Exception:  # the primary serves whatever happens to the shadow
            with contextlib.suppress(Exception):
                logger.exception("shadow hand-off failed; the shadow is switched off")
                self._switch_off("scoring")

    def supervise(self) -> None:
        """Switch the shadow off if the batch in hand overran SHADOW_BATCH_TIMEOUT_S."""
        try:
            self._overdue()
        except Exception:
            logger.exception("shadow supervision failed")

    def _overdue(self) -> bool:
        started = self._busy_since
        if started is None or not self.active:
            return False
        elapsed = time.monotonic() - started
        if elapsed <= self._timeout_s:
            return False
        if self._switch_off("timeout"):
            self._failed.inc()
            logger.error(
                "shadow batch unfinished after %.1fs (SHADOW_BATCH_TIMEOUT_S=%s); the shadow is "
                "switched off, its thread left behind build_id=%s",
                elapsed,
                self._timeout_s,
                self._scorer.info.build_id,
            )
        return True

    # --- the shadow's thread --------------------------------------------------------------

    def _work(self) -> None:
        while self.active:  # a switched-off shadow's thread ends after the batch in hand
            job = self._slot.get()
            if not isinstance(job, _Job) or not self.active:
                return
            self._busy_since = time.monotonic()
            try:
                self._score(job)
            except Exception:  # not to leave a thread dead and the shadow counted as active
                if self._switch_off("scoring"):
                    self._failed.inc()
                    logger.exception("shadow failed; the shadow is switched off")
            finally:
                self._busy_since = None
            del job  # not kept alive while waiting for the next batch

    def _score(self, job: _Job) -> None:
        """Score with the shadow and compare with the primary's probabilities."""
        started = time.perf_counter()
        try:
            shadow = self._scorer.score_columns(job.columns)
            if shadow.shape != job.primary.shape or not np.all(np.isfinite(shadow)):
                raise ValueError("the shadow returned non-finite or missing probabilities")
        except Exception:
            if self._switch_off("scoring"):
                self._failed.inc()
                logger.exception("shadow scoring failed; the shadow is switched off")
            return
        with self._lock:
            if not self.active:  # switched off (overdue) while it scored: not counted
                return
            metrics = self._metrics
            observe_all(metrics.shadow_difference, np.abs(shadow - job.primary))
            shadow_labels = shadow >= self._scorer.info.threshold
            primary_labels = job.primary >= self._primary.threshold
            disagreements = int(np.count_nonzero(shadow_labels != primary_labels))
            if disagreements:
                metrics.shadow_disagreements.inc(disagreements)
            self._shadowed.inc()
        if self._sink is not None:
            self._sink.publish(job.events, job.messages, shadow, self._scorer.info)
        self._metrics.shadow_duration.observe(time.perf_counter() - started)

    def _switch_off(self, stage: ShadowFailure) -> bool:
        """False if it was off already (the thread and the loop may both get here)."""
        with self._lock:
            if not self.active:
                return False
            self.active = False
        self._metrics.shadow_failures.labels(stage=stage).inc()
        self._metrics.shadow_switched_off.set(1)
        self._metrics.model_info.remove(*self._info_labels.values())
        self._discard_waiting()
        return True

    def _discard_waiting(self) -> None:
        """Batches still in the slot are never scored now: counted as dropped."""
        while True:
            try:
                job = self._slot.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, _Job):
                self._dropped.inc()

    def close(self, timeout_s: float) -> None:
        """Let the batch in hand finish (at most ``timeout_s``; a switched-off shadow is not
        waited for: its thread may hang), then close the sink (what time is left)."""
        deadline = time.monotonic() + timeout_s
        if self.active:
            while True:  # the slot is emptied, then holds the stop; the loop hands off no more
                self._discard_waiting()
                try:
                    self._slot.put_nowait(_STOP)
                    break
                except queue.Full:
                    continue
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("shadow still scoring after %.1fs; not waiting for it", timeout_s)
        counts = {
            result: self._metrics.registry.get_sample_value(
                "scorer_shadow_batches_total", {"result": result}
            )
            or 0
            for result in SHADOW_BATCHES
        }
        logger.info(
            "shadow closed batches shadowed=%d dropped=%d failed=%d",
            counts["shadowed"],
            counts["dropped"],
            counts["failed"],
        )
        if self._sink is not None:
            self._sink.close(max(0.0, deadline - time.monotonic()))


def _info_labels(role: str, info: ModelInfo) -> dict[str, str]:
    return {
        "role": role,
        "build_id": info.build_id,
        "variant": info.variant,
        "git_sha": info.git_sha,
    }


def set_primary_info(metrics: RuntimeMetrics, info: ModelInfo) -> None:
    """``scorer_model_info{role="primary",...} 1`` for the build in service."""
    metrics.model_info.labels(**_info_labels("primary", info)).set(1)


def start_shadow(
    settings: ModelSettings,
    primary: ModelInfo,
    store: Store,
    metrics: RuntimeMetrics,
    sink: Callable[[], ShadowSink | None] | None = None,
) -> Shadow | None:
    """The shadow of ``SHADOW_MODEL_URI`` once it passed the gates; None when unset or refused.

    ``sink`` makes the front door's sink, once the shadow passed its gates (None: no sink)."""
    if settings.shadow_model_uri is None:
        return None
    try:
        scorer, _ = load_model(settings.shadow_model_uri, settings, store)
    except GateError as exc:
        metrics.shadow_failures.labels(stage="gates").inc()
        metrics.shadow_switched_off.set(1)
        logger.error("shadow model refused, no shadow scoring: %s", exc)
        return None
    except Exception:  # the primary serves whatever happens to the shadow
        metrics.shadow_failures.labels(stage="gates").inc()
        metrics.shadow_switched_off.set(1)
        logger.exception("shadow model could not be loaded, no shadow scoring")
        return None
    made = None if sink is None else sink()
    shadow = Shadow(scorer, primary, metrics, made, settings.shadow_batch_timeout_s)
    logger.info(
        "shadow scoring build_id=%s variant=%s output=%s",
        scorer.info.build_id,
        scorer.info.variant,
        "-" if made is None else made.name,
    )
    return shadow
