"""The join rule of scores (or session events) with their outcomes: one implementation for the
live quality monitor (``quality``) and ``python -m training collect``.

Everything is decided in *record time* (the Kafka record timestamps, milliseconds), never in the
order records happen to be read, so a replay of the same records gives the same judgements
(docs/quality.md, "The join rule"):

1. A session opens at the timestamp ``t0`` of its first held record (a score) and its window
   closes at ``t0 + OUTCOME_WINDOW``.
2. Its outcome is the outcome record with the earliest timestamp ``u <= t0 + window`` (ties:
   a purchase first); later ones are duplicates. An outcome read before any score is kept (at
   most ``window`` after ``u``) and matched when the score comes; one that finds no score in
   that time is an unknown session.
3. The session is decided at ``d = max(u, t0)`` with an outcome, else at ``t0 + window``, once
   the caller's watermark (every record up to it has been read) reaches ``d``. Per stream (a
   primary and a shadow scores topic), the latest record with a timestamp ``<= d`` is judged:
   a session scored twice is judged on its latest score before the outcome.
4. No outcome when the window closes: ``MISSING_OUTCOME=negative`` judges it a non-purchase,
   ``unknown`` leaves it out of the figures (it is still reported, with ``label=None``).
5. A decided session is judged once: records for it until its window closes are counted and
   ignored (a score after the outcome, a duplicate outcome).

``in_sample`` is the deterministic sample by a hash of ``session_id`` that both sides apply.
Memory is bounded by ``max_sessions`` and ``max_pending_outcomes``: what would pass a cap is
dropped and counted, never evicting what is held.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeVar

MissingOutcome = Literal["negative", "unknown"]
T = TypeVar("T")

_HASH_SPACE: Final = 2**64


def in_sample(session_id: str, rate: float) -> bool:
    """Whether a session is in the deterministic sample of share ``rate`` (blake2b of its id)."""
    if rate >= 1.0:
        return True
    digest = hashlib.blake2b(session_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * _HASH_SPACE


@dataclass(frozen=True, slots=True)
class Outcome:
    time_ms: int
    """The outcome record's timestamp: the rule's clock."""
    purchased: bool
    outcome_time_ms: int
    """The order system's ``outcome_time``: for the outcome-delay figure only."""


@dataclass(frozen=True, slots=True)
class Judgement(Generic[T]):
    """One decided session: the judged record of each stream, and the label."""

    session_id: str
    held: dict[str, T]
    """Stream name -> the payload judged (the latest record at or before the decision)."""
    held_time_ms: dict[str, int]
    label: bool | None
    """True / False, or None: no outcome under ``MISSING_OUTCOME=unknown``."""
    decided_ms: int
    outcome: Outcome | None


@dataclass(slots=True)
class _Session(Generic[T]):
    opened_ms: int
    records: dict[str, list[tuple[int, T]]] = field(default_factory=dict)
    outcome: Outcome | None = None

    def decide_at(self, window_ms: int) -> int:
        if self.outcome is None:
            return self.opened_ms + window_ms
        return max(self.outcome.time_ms, self.opened_ms)


def _earlier(a: Outcome | None, b: Outcome) -> bool:
    """Whether ``b`` comes before ``a`` under the rule (time, then a purchase first)."""
    return a is None or (b.time_ms, not b.purchased) < (a.time_ms, not a.purchased)


class OutcomeJoin(Generic[T]):
    """The join state of one partition (one partition number of every topic read)."""

    def __init__(
        self,
        window_ms: int,
        missing: MissingOutcome,
        max_sessions: int,
        max_pending_outcomes: int,
        max_records_per_session: int = 4,
    ) -> None:
        self.window_ms = window_ms
        self.missing = missing
        self.max_sessions = max_sessions
        self.max_pending_outcomes = max_pending_outcomes
        self.max_records_per_session = max_records_per_session
        self._open: dict[str, _Session[T]] = {}
        self._pending: dict[str, Outcome] = {}
        self._decided: dict[str, int] = {}
        """Session -> when its window closes: later records for it are ignored until then."""
        self._due: list[tuple[int, str]] = []
        """(decision time, session) heap; stale entries are skipped when popped."""
        self._pending_due: list[tuple[int, str]] = []
        self._decided_due: list[tuple[int, str]] = []
        self.ignored: Counter[str] = Counter()
        """Records counted and left out, by reason."""

    @property
    def held_sessions(self) -> int:
        return len(self._open)

    @property
    def held_outcomes(self) -> int:
        return len(self._pending)

    def add_record(self, session_id: str, stream: str, time_ms: int, payload: T) -> None:
        """A score (or session event) of ``stream`` with its record timestamp."""
        if session_id in self._decided:
            self.ignored["after_decision"] += 1
            return
        session = self._open.get(session_id)
        if session is None:
            if len(self._open) >= self.max_sessions:
                self.ignored["session_cap"] += 1
                return
            session = _Session(time_ms)
            self._open[session_id] = session
            pending = self._pending.pop(session_id, None)
            if pending is not None:
                self._attach(session_id, session, pending)
            heapq.heappush(self._due, (session.decide_at(self.window_ms), session_id))
        elif time_ms < session.opened_ms:
            # An earlier record read later: the window opens at the earliest one.
            session.opened_ms = time_ms
            heapq.heappush(self._due, (session.decide_at(self.window_ms), session_id))
        records = session.records.setdefault(stream, [])
        records.append((time_ms, payload))
        if len(records) > self.max_records_per_session:
            records.sort(key=lambda item: item[0])
            del records[0]
            self.ignored["records_per_session_cap"] += 1

    def add_outcome(self, session_id: str, outcome: Outcome) -> None:
        if session_id in self._decided:
            self.ignored["duplicate_outcome"] += 1
            return
        session = self._open.get(session_id)
        if session is not None:
            self._attach(session_id, session, outcome)
            return
        held = self._pending.get(session_id)
        if held is not None:
            self.ignored["duplicate_outcome"] += 1
            if _earlier(held, outcome):
                self._pending[session_id] = outcome
            return
        if len(self._pending) >= self.max_pending_outcomes:
            self.ignored["outcome_cap"] += 1
            return
        self._pending[session_id] = outcome
        heapq.heappush(self._pending_due, (outcome.time_ms + self.window_ms, session_id))

    def _attach(self, session_id: str, session: _Session[T], outcome: Outcome) -> None:
        if outcome.time_ms > session.opened_ms + self.window_ms:
            self.ignored["outcome_after_window"] += 1
            return
        if session.outcome is not None:
            self.ignored["duplicate_outcome"] += 1
            if not _earlier(session.outcome, outcome):
                return
        session.outcome = outcome
        heapq.heappush(self._due, (session.decide_at(self.window_ms), session_id))

    def advance(self, watermark_ms: int) -> list[Judgement[T]]:
        """Decide every session whose decision time the watermark has reached (every record
        with a timestamp up to ``watermark_ms`` has been read, on every topic of the
        partition); forget what no longer matters."""
        judged: list[Judgement[T]] = []
        while self._due and self._due[0][0] <= watermark_ms:
            due_ms, session_id = heapq.heappop(self._due)
            session = self._open.get(session_id)
            if session is None or session.decide_at(self.window_ms) != due_ms:
                continue  # decided already, or its decision time moved
            del self._open[session_id]
            close_ms = session.opened_ms + self.window_ms
            self._decided[session_id] = close_ms
            heapq.heappush(self._decided_due, (close_ms, session_id))
            judged.append(self._judge(session_id, session, due_ms))
        while self._decided_due and self._decided_due[0][0] < watermark_ms:
            _, session_id = heapq.heappop(self._decided_due)
            self._decided.pop(session_id, None)
        while self._pending_due and self._pending_due[0][0] < watermark_ms:
            _, session_id = heapq.heappop(self._pending_due)
            outcome = self._pending.get(session_id)
            if outcome is not None and outcome.time_ms + self.window_ms < watermark_ms:
                del self._pending[session_id]
                self.ignored["unknown_session"] += 1
        return judged

    def _judge(self, session_id: str, session: _Session[T], decided_ms: int) -> Judgement[T]:
        held: dict[str, T] = {}
        held_time: dict[str, int] = {}
        for stream, records in session.records.items():
            # The latest record at or before the decision; a tie keeps the one read last.
            candidates = [(t, i) for i, (t, _) in enumerate(records) if t <= decided_ms]
            if not candidates:
                self.ignored["after_decision"] += len(records)
                continue
            time_ms, index = max(candidates)
            held[stream] = records[index][1]
            held_time[stream] = time_ms
            self.ignored["superseded_score"] += len(records) - 1
        if session.outcome is not None:
            label: bool | None = session.outcome.purchased
        else:
            label = False if self.missing == "negative" else None
        return Judgement(session_id, held, held_time, label, decided_ms, session.outcome)
