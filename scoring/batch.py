"""One micro-batch, whatever brought it: messages in; scored events and refusals out.

`score_batch` is the runtime's data plane (decode -> score), a pure function of the messages and
the scorer: no transport, no output format. An event that validates but cannot be scored is
refused (`scoring_failed`) instead of taking its batch down. A front door adds its own output
around it (the consumer: `consumer.batch.process_batch`, output records and dead letters).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.frame import event_columns, select_rows
from contract.framing import AUTO_FRAMING, Framing
from contract.schema import SessionEvent
from scoring.decode import MessageLike, Rejection, decode_batch
from scoring.scorer import Scorer, score_isolating_failures


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """What scoring one batch gives: the scored events with their messages and probabilities
    (index-aligned), the refused messages, and the CPU-side time of each stage."""

    events: list[SessionEvent]
    """The scored events, index-aligned with `scored`, `probabilities` and the rows of
    `columns`."""
    scored: list[MessageLike]
    rejections: list[Rejection]
    columns: dict[str, Any]
    """The raw columns of the scored events (`contract.frame.event_columns`), for observers."""
    probabilities: npt.NDArray[np.float64]
    decode_seconds: float
    score_seconds: float


def score_batch(
    messages: Sequence[MessageLike],
    scorer: Scorer,
    max_message_bytes: int,
    framing: Framing = AUTO_FRAMING,
) -> ScoredBatch:
    """Decode and validate every message, score the valid ones (isolating failures)."""
    started = time.perf_counter()
    decoded = decode_batch(messages, max_message_bytes, framing)
    decoded_at = time.perf_counter()
    columns = event_columns(decoded.events)
    probabilities, failures = score_isolating_failures(scorer, decoded.events, columns)
    events, scored, rejections = decoded.events, decoded.messages, list(decoded.rejections)
    if failures:
        failed = dict(failures)
        rejections += [
            Rejection(scored[i], "scoring_failed", "<event>", reason) for i, reason in failures
        ]
        kept = [i for i in range(len(events)) if i not in failed]
        events = [events[i] for i in kept]
        scored = [scored[i] for i in kept]
        probabilities = probabilities[np.asarray(kept, dtype=np.intp)]
        columns = select_rows(columns, kept)
    return ScoredBatch(
        events,
        scored,
        rejections,
        columns,
        probabilities,
        decoded_at - started,
        time.perf_counter() - decoded_at,
    )
