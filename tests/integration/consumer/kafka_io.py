"""Test events for the consumer's integration tests; producing and reading is benchmarks.replay."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from benchmarks.replay import KeyValue, event_messages, produce_messages, read_topic
from contract.frame import dataset_row_to_event_dict
from training.synthetic import generate_sessions

__all__ = ["produce", "produce_events", "read_topic", "synthetic_events"]


def synthetic_events(n: int, seed: int = 11, prefix: str = "s") -> list[dict[str, object]]:
    """Generated events; every other one carries an event_time (the envelope's optional field)."""
    frame = generate_sessions(n, seed=seed)
    events = []
    for i, row in enumerate(frame.to_dict(orient="records")):
        event = dataset_row_to_event_dict(row, session_id=f"{prefix}-{i}")
        if i % 2 == 0:
            event["event_time"] = f"2026-11-26T10:{i // 60 % 60:02d}:{i % 60:02d}+01:00"
        events.append(event)
    return events


def produce(bootstrap: str, topic: str, messages: Iterable[KeyValue]) -> int:
    return produce_messages(bootstrap, topic, messages)


def produce_events(bootstrap: str, topic: str, events: Sequence[dict[str, object]]) -> int:
    return produce_messages(bootstrap, topic, event_messages(events))
