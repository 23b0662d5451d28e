"""One micro-batch without Kafka: messages in; output records and dead letters out.

`process_batch` is the whole data plane of the consumer (decode -> score -> output records), a
pure function of the messages, the scorer and the clock; the loop only moves messages, offsets
and transactions around it. An event that validates but cannot be scored becomes a dead letter
(`scoring_failed`) instead of taking its batch down.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from consumer.decode import AUTO_FRAMING, MessageLike, Rejection, decode_batch
from consumer.framing import Framing
from consumer.publish import output_records
from consumer.scoring import Scorer, score_isolating_failures
from contract.frame import event_columns, select_rows
from contract.schema import SessionEvent


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch produces: a record per scored message (index-aligned), the dead letters,
    and the CPU-side time of each stage."""

    records: list[bytes]
    events: list[SessionEvent]
    """The scored events, index-aligned with `records`, `scored` and `probabilities`."""
    scored: list[MessageLike]
    rejections: list[Rejection]
    columns: dict[str, Any]
    """The raw columns of the scored events (`contract.frame.event_columns`), for observers."""
    probabilities: npt.NDArray[np.float64]
    decode_seconds: float
    score_seconds: float


def process_batch(
    messages: Sequence[MessageLike],
    scorer: Scorer,
    max_message_bytes: int,
    scored_at: str,
    framing: Framing = AUTO_FRAMING,
) -> BatchResult:
    """Decode and validate every message, score the valid ones, build their output records."""
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
    records = output_records(events, scored, probabilities, scorer.info, scored_at)
    return BatchResult(
        records,
        events,
        scored,
        rejections,
        columns,
        probabilities,
        decoded_at - started,
        time.perf_counter() - decoded_at,
    )
