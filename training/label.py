"""Label session events with their outcomes: the quality monitor's join rule, on the events.

``python -m training collect`` feeds every session event and outcome record of its range here,
in timestamp order (``training.merge``), and gets back one labelled row per decided session.
The rule is ``contract.join.OutcomeJoin``, the quality monitor's own (docs/quality.md, "The join
rule"), with the session event in the place of the score: a session opens at its first event,
its outcome is the earliest one within ``OUTCOME_WINDOW``, and the row holds the features of its
latest event at or before the decision. No outcome when the window closes: a non-purchase under
``MISSING_OUTCOME=negative``, left out under ``unknown``.

Events are decoded by the consumer's own decision (``contract.decoding.decode_value``: the key's
and the value's size, the framing, the limits on the raw bytes, the contract's validation): an
event the consumer dead-letters is counted under the code it would carry and never written.
Pure: no transport, no clock.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from pydantic import ValidationError

from contract.decoding import DEFAULT_MAX_MESSAGE_BYTES, Refusal, decode_value
from contract.frame import feature_values
from contract.framing import AUTO_FRAMING, Framing
from contract.join import MissingOutcome, Outcome, OutcomeJoin
from contract.outcome import parse_outcome
from contract.schema import FEATURE_COLUMNS

__all__ = ["EVENT_STREAM", "Labeller", "Row", "Tally"]

EVENT_STREAM: Final = "event"
"""The join's stream name for the session events (the monitor's are ``primary``/``shadow``)."""
_INTERNED: Final = tuple(
    i for i, name in enumerate(FEATURE_COLUMNS) if name in ("Month", "VisitorType")
)


class Row(NamedTuple):
    """One labelled session: what the dataset holds of it."""

    session_id: str
    time_ms: int
    """The record timestamp of the event judged (the session's latest before its outcome)."""
    features: tuple[Any, ...]
    """``contract.frame.feature_values`` of that event."""
    revenue: bool


@dataclass
class Tally:
    """What a collect read, wrote and left out, by reason (docs/training.md, "Collect")."""

    events_read: int = 0
    outcomes_read: int = 0
    rows: int = 0
    """Labelled sessions written (``joined``)."""
    positives: int = 0
    missing_as_negative: int = 0
    """Rows written as non-purchases because no outcome came (``MISSING_OUTCOME=negative``)."""
    invalid_events: Counter[str] = field(default_factory=Counter)
    """By the contract rule broken: the consumer's dead-letter code (``invalid_json``, ...)."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Records and sessions left out, by reason: ``invalid_outcome``, ``missing_outcome``,
    ``window_open``, ``out_of_range``, ``no_timestamp`` and the join's own reasons
    (``after_decision``, ``duplicate_outcome``, ``superseded_score``, ...)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_read": self.events_read,
            "outcomes_read": self.outcomes_read,
            "rows": self.rows,
            "positives": self.positives,
            "missing_as_negative": self.missing_as_negative,
            "invalid_events": dict(sorted(self.invalid_events.items())),
            "skipped": dict(sorted(self.skipped.items())),
        }

    def line(self) -> str:
        """The report as one log line of key=value pairs."""
        invalid = sum(self.invalid_events.values())
        parts = [
            f"events_read={self.events_read}",
            f"outcomes_read={self.outcomes_read}",
            f"joined={self.rows}",
            f"positives={self.positives}",
            f"missing_as_negative={self.missing_as_negative}",
            f"invalid_events={invalid}",
            *(f"invalid_event.{rule}={n}" for rule, n in sorted(self.invalid_events.items())),
            *(f"skipped.{reason}={n}" for reason, n in sorted(self.skipped.items())),
        ]
        return " ".join(parts)


class Labeller:
    """The join state of a collect: feed events and outcomes in timestamp order, advance the
    watermark, take the labelled rows."""

    def __init__(
        self,
        window_ms: int,
        missing: MissingOutcome,
        max_sessions: int,
        max_pending_outcomes: int,
        framing: Framing = AUTO_FRAMING,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.framing = framing
        self.max_message_bytes = max_message_bytes
        self.tally = Tally()
        self._join: OutcomeJoin[tuple[Any, ...]] = OutcomeJoin(
            window_ms, missing, max_sessions, max_pending_outcomes
        )

    @property
    def held_sessions(self) -> int:
        return self._join.held_sessions

    def event(self, time_ms: int, value: bytes | None, key: bytes | None = None) -> None:
        """One record of the input topic; an invalid one is counted by its rule, never held."""
        self.tally.events_read += 1
        event = decode_value(value, key, self.max_message_bytes, self.framing)
        if isinstance(event, Refusal):
            self.tally.invalid_events[event.error_type] += 1
            return
        values = feature_values(event)
        if _INTERNED:  # one string object per month and visitor type, not one per session
            row = list(values)
            for i in _INTERNED:
                row[i] = sys.intern(row[i])
            values = tuple(row)
        self._join.add_record(event.session_id, EVENT_STREAM, time_ms, values)

    def outcome(self, time_ms: int, value: bytes | None) -> None:
        """One record of the outcome topic; an invalid one is counted and skipped."""
        self.tally.outcomes_read += 1
        try:
            outcome = parse_outcome(value or b"")
        except ValidationError:
            self.tally.skipped["invalid_outcome"] += 1
            return
        outcome_ms = int(outcome.outcome_datetime.timestamp() * 1000)
        self._join.add_outcome(outcome.session_id, Outcome(time_ms, outcome.purchased, outcome_ms))

    def advance(self, watermark_ms: int) -> list[Row]:
        """The sessions the watermark decides (every record up to it has been fed)."""
        rows: list[Row] = []
        for judged in self._join.advance(watermark_ms):
            features = judged.held.get(EVENT_STREAM)
            if features is None:  # every event of it came after the decision: nothing to write
                continue
            if judged.label is None:
                self.tally.skipped["missing_outcome"] += 1
                continue
            if judged.outcome is None:
                self.tally.missing_as_negative += 1
            rows.append(
                Row(judged.session_id, judged.held_time_ms[EVENT_STREAM], features, judged.label)
            )
        self.tally.rows += len(rows)
        self.tally.positives += sum(row.revenue for row in rows)
        self.tally.skipped.update(self._join.ignored)
        self._join.ignored.clear()
        return rows

    def close(self) -> None:
        """The end of the range: the sessions still waiting for their window to close are
        counted (``window_open``), never written."""
        self.tally.skipped["window_open"] += self._join.held_sessions
