"""One micro-batch of the consumer without Kafka: messages in; output records and dead letters
out.

`process_batch` is the runtime's `scoring.batch.score_batch` (decode -> score) plus the output
records (`consumer.publish.output_records`): a pure function of the messages, the scorer and the
clock; the loop only moves messages, offsets and transactions around it. A refused message
(`scoring_failed` included) becomes a dead letter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from consumer.publish import output_records
from contract.framing import AUTO_FRAMING, Framing
from scoring.batch import ScoredBatch, score_batch
from scoring.decode import MessageLike
from scoring.scorer import Scorer


@dataclass(frozen=True, slots=True)
class BatchResult(ScoredBatch):
    """A scored batch and a record per scored message (index-aligned with `events`, `scored`
    and `probabilities`); `score_seconds` includes building the records."""

    records: list[bytes]


def process_batch(
    messages: Sequence[MessageLike],
    scorer: Scorer,
    max_message_bytes: int,
    scored_at: str,
    framing: Framing = AUTO_FRAMING,
) -> BatchResult:
    """Decode and validate every message, score the valid ones, build their output records."""
    batch = score_batch(messages, scorer, max_message_bytes, framing)
    started = time.perf_counter()
    records = output_records(
        batch.events, batch.scored, batch.probabilities, scorer.info, scored_at
    )
    return BatchResult(
        events=batch.events,
        scored=batch.scored,
        rejections=batch.rejections,
        columns=batch.columns,
        probabilities=batch.probabilities,
        decode_seconds=batch.decode_seconds,
        score_seconds=batch.score_seconds + (time.perf_counter() - started),
        records=records,
    )
