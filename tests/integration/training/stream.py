"""A stream of session events and outcomes with every case of the join rule, written with
record timestamps in the past, and what the rule makes of it (``contract.join`` on the same
records, fed at once)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from confluent_kafka import Producer

from contract.frame import dataset_row_to_event_dict
from contract.join import MissingOutcome, Outcome, OutcomeJoin
from contract.outcome import parse_outcome
from contract.schema import LABEL_COLUMN
from contract.validation import parse_event
from training.label import EVENT_STREAM
from training.synthetic import generate_sessions

MINUTE = 60_000
WINDOW_MS = 10 * MINUTE
SPAN_MS = 30 * MINUTE


@dataclass(frozen=True)
class Record:
    role: Literal["event", "outcome"]
    time_ms: int
    session_id: str
    value: bytes


@dataclass(frozen=True)
class Stream:
    from_ms: int
    to_ms: int
    records: list[Record]
    events: dict[tuple[str, int], dict[str, Any]]
    """(session, time) -> the event dict produced then (valid events only)."""


def _outcome(session_id: str, purchased: bool, time_ms: int) -> bytes:
    return json.dumps(
        {
            "contract_version": "1.0.0",
            "session_id": session_id,
            "purchased": purchased,
            "outcome_time": f"{np.datetime64(time_ms, 'ms')}Z",
        }
    ).encode()


def build_stream(start_ms: int, n: int, seed: int = 11) -> Stream:
    """``n`` sessions between ``from = start + WINDOW`` and ``to = from + SPAN`` (case by
    ``i % 20``: no outcome, an outcome after the window, one before the event, a duplicate
    outcome, two events; else an outcome within minutes), sessions on both ends of the range
    and just outside it, invalid events and outcomes, and records past the end bounds."""
    rng = np.random.default_rng(seed)
    frame = generate_sessions(n + 10, seed=seed)
    rows = frame.to_dict(orient="records")
    from_ms, to_ms = start_ms + WINDOW_MS, start_ms + WINDOW_MS + SPAN_MS
    records: list[Record] = []
    events: dict[tuple[str, int], dict[str, Any]] = {}

    def event(session_id: str, time_ms: int, row: dict[str, Any], framed: bytes = b"") -> None:
        value = dataset_row_to_event_dict(row, session_id)
        records.append(Record("event", time_ms, session_id, framed + json.dumps(value).encode()))
        events[(session_id, time_ms)] = value

    def outcome(session_id: str, time_ms: int, purchased: bool) -> None:
        records.append(
            Record("outcome", time_ms, session_id, _outcome(session_id, purchased, time_ms))
        )

    for i, row in enumerate(rows[:n]):
        session, bought = f"s{seed}-{i}", bool(row[LABEL_COLUMN])
        t = from_ms + int(rng.integers(0, SPAN_MS - 2 * MINUTE))
        event(session, t, row)
        case = i % 20
        if case == 0:
            continue  # no outcome
        if case == 1:
            outcome(session, t + WINDOW_MS + 1_000, bought)
        elif case == 2:
            outcome(session, t - MINUTE, bought)
        elif case == 3:
            outcome(session, t + MINUTE, bought)
            outcome(session, t + 2 * MINUTE, not bought)
        elif case == 4:
            event(session, t + 30_000, rows[n + 1])
            outcome(session, t + 90_000, bought)
        else:
            outcome(session, t + int(rng.integers(1_000, 5 * MINUTE)), bought)
    edges = {"first": from_ms, "last": to_ms, "before": from_ms - 1, "after": to_ms + 1}
    for offset, (name, t) in enumerate(edges.items()):
        event(f"{name}-{seed}", t, rows[n + 2 + offset])
        outcome(f"{name}-{seed}", t + MINUTE, True)
    for name, t in edges.items():
        if name in ("before", "after"):
            del events[(f"{name}-{seed}", t)]  # outside the range: never collected
    framed = b"\x00" + (3).to_bytes(4, "big")
    event(f"framed-{seed}", from_ms + MINUTE, rows[n + 6], framed)
    outcome(f"framed-{seed}", from_ms + 2 * MINUTE, False)
    bad_rate = {**dataset_row_to_event_dict(rows[n + 7], f"bad-{seed}"), "BounceRates": 2.0}
    labelled = {**dataset_row_to_event_dict(rows[n + 8], f"label-{seed}"), "Revenue": True}
    for value in (
        b"{not json",
        json.dumps(bad_rate).encode(),
        json.dumps(labelled).encode(),
        b"\x00\x00\x00\x00\x00" + json.dumps(labelled).encode(),  # schema id 0
    ):
        records.append(Record("event", from_ms + 3 * MINUTE, f"bad-{seed}", value))
    records.append(Record("outcome", from_ms + 3 * MINUTE, f"bad-{seed}", b"nope"))
    records.append(Record("outcome", from_ms + 3 * MINUTE, f"bad-{seed}", b'{"session_id": "x"}'))
    # Past the outcomes' end bound: they stop the partitions they land in.
    for k in range(6):
        outcome(f"later-{seed}-{k}", to_ms + WINDOW_MS + MINUTE + k, True)
    return Stream(from_ms, to_ms, records, events)


def produce(bootstrap: str, records: Sequence[Record], events: str, outcomes: str) -> None:
    """Each record keyed by its session, with its timestamp, in time order per topic."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for record in sorted(records, key=lambda r: r.time_ms):
        topic = events if record.role == "event" else outcomes
        producer.produce(topic, record.value, record.session_id.encode(), timestamp=record.time_ms)
    assert producer.flush(30) == 0


def expected_labels(stream: Stream, missing: MissingOutcome) -> dict[str, tuple[int, bool]]:
    """Session -> (time of the event judged, label): ``contract.join`` on the valid records of
    the range (events from..to, outcomes a window either side), fed at once, decided at the
    end of time."""
    join: OutcomeJoin[int] = OutcomeJoin(WINDOW_MS, missing, 10**6, 10**6)
    for record in stream.records:
        if record.role == "event" and stream.from_ms <= record.time_ms <= stream.to_ms:
            if (record.session_id, record.time_ms) in stream.events:
                parse_event(record.value.removeprefix(b"\x00\x00\x00\x00\x03"))
                join.add_record(record.session_id, EVENT_STREAM, record.time_ms, 0)
        elif record.role == "outcome":
            low, high = stream.from_ms - WINDOW_MS, stream.to_ms + WINDOW_MS
            if low <= record.time_ms <= high:
                try:
                    parsed = parse_outcome(record.value)
                except ValueError:
                    continue
                join.add_outcome(
                    parsed.session_id, Outcome(record.time_ms, parsed.purchased, record.time_ms)
                )
    return {
        judged.session_id: (judged.held_time_ms[EVENT_STREAM], judged.label)
        for judged in join.advance(2**62)
        if judged.label is not None
    }
