"""The demos' input: the dataset's rows as real producers send them, malformed messages mixed
in, drifted segments, and sessions whose purchase behaviour changed. Kafka-free; `demo.py` and
`demo_cycle.py` produce them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Hashable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from benchmarks.replay import KeyValue
from contract.__main__ import schema_text
from contract.frame import dataset_row_to_event_dict
from contract.schema import LABEL_COLUMN
from training.synthetic import generate_sessions

CHANGED_PAGE_VALUE_EFFECT = -1.5
"""The logit's weight of log1p(PageValues) after the change (+1.5 in the usual world)."""


def malformed_messages(count: int, good: dict[str, object]) -> list[KeyValue]:
    kinds: list[bytes] = [
        b"{not json at all",
        json.dumps({**good, "Revenue": True}).encode(),
        json.dumps({**good, "BounceRates": 7.0}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "Month"}).encode(),
        json.dumps({**good, "ProductRelated": "lots"}).encode(),
        b"\xff\xfe binary",
        json.dumps({**good, "Month": "Smarch"}).encode(),
        json.dumps({**good, "session_id": ""}).encode(),
    ]
    return [(f"malformed-{i}".encode(), kinds[i % len(kinds)]) for i in range(count)]


def dataset_messages(
    data: str,
    malformed: int,
    framed_every: int = 10,
    purchases: dict[str, bool] | None = None,
) -> list[KeyValue]:
    """The dataset's rows as a pandas producer sends them, every `framed_every`-th one framed;
    each session's real outcome (`Revenue`) is put in `purchases` when given, for the order
    system of the demo to send later.

    `frame.to_json` writes the count columns as floats (`3.0`: pandas reads them as float64
    because 14 rows are empty) and empty cells as null. Every `framed_every`-th row goes
    through confluent-kafka's `JSONSerializer` (a `mock://` registry: no registry server here),
    which validates it against the published schema and adds the Schema Registry header.
    """
    frame = pd.read_csv(data)
    revenue = frame.pop(LABEL_COLUMN).astype(bool).tolist()
    frame.insert(0, "session_id", [f"demo-{uuid.uuid4().hex[:12]}" for _ in range(len(frame))])
    if purchases is not None:
        purchases.update(zip(frame["session_id"], revenue, strict=True))
    frame["event_time"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    rows = [json.loads(line) for line in frame.to_json(orient="records", lines=True).splitlines()]
    registry = SchemaRegistryClient.new_client({"url": "mock://demo"})
    serializer = JSONSerializer(schema_text(), registry)
    context = SerializationContext("sessions", MessageField.VALUE)
    messages: list[KeyValue] = [
        (
            str(row["session_id"]).encode(),
            serializer(row, context) if i % framed_every == 0 else json.dumps(row).encode(),
        )
        for i, row in enumerate(rows)
    ]
    step = max(1, len(messages) // max(1, malformed))
    for i, bad in enumerate(malformed_messages(malformed, rows[0])):
        messages.insert(min(len(messages), (i + 1) * step), bad)
    return messages


def paced(messages: list[KeyValue], rate: float) -> Iterator[KeyValue]:
    start = time.monotonic()
    for index, message in enumerate(messages):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield message


def drifted_messages(
    data: str, count: int, purchases: dict[str, bool] | None = None
) -> list[KeyValue]:
    """`count` random rows of the dataset (the file is in month order) with PageValues zeroed, as
    a tracking bug would send them: nothing else moves. Their real outcomes go to `purchases`."""
    rows = _sample(data, count, seed=0).assign(PageValues=0.0).to_dict(orient="records")
    return _keyed(rows, "drift", purchases)


def concept_drift_messages(data: str, count: int, purchases: dict[str, bool]) -> list[KeyValue]:
    """`count` random rows of the dataset, unchanged, whose outcomes no longer follow them: the
    segment's purchases are its real ones shuffled among its sessions (the same purchase rate,
    the same inputs; what makes people buy has changed). The drift sentinel cannot see it."""
    rows = _sample(data, count, seed=1).to_dict(orient="records")
    outcomes = [bool(row[LABEL_COLUMN]) for row in rows]
    shuffled = [outcomes[i] for i in np.random.default_rng(2).permutation(len(outcomes))]
    return _keyed(rows, "concept", purchases, shuffled)


def sampled_messages(data: str, count: int, purchases: dict[str, bool]) -> list[KeyValue]:
    """`count` random rows of the dataset, unchanged, with their real outcomes in `purchases`:
    sessions that behave as the build learned."""
    rows = _sample(data, count, seed=3).to_dict(orient="records")
    return _keyed(rows, "sample", purchases)


def changed_messages(count: int, seed: int, purchases: dict[str, bool]) -> list[KeyValue]:
    """`count` generated sessions whose purchase behaviour has changed: page values now put
    people off buying (`generate_sessions(page_value_effect=CHANGED_PAGE_VALUE_EFFECT)`: the
    dataset's columns and ranges, the relation reversed). Their outcomes go to `purchases`."""
    frame = generate_sessions(count, seed, page_value_effect=CHANGED_PAGE_VALUE_EFFECT)
    rows = frame.to_dict(orient="records")
    return _keyed(rows, "changed", purchases)


def _sample(data: str, count: int, seed: int) -> pd.DataFrame:
    """`count` random rows of the dataset (the file is in month order: its head is one season)."""
    frame = pd.read_csv(data)
    return frame.sample(n=min(count, len(frame)), random_state=seed)


def _keyed(
    rows: list[dict[Hashable, Any]],
    prefix: str,
    purchases: dict[str, bool] | None,
    outcomes: list[bool] | None = None,
) -> list[KeyValue]:
    """The rows as events keyed by `<prefix>-<i>`; their outcomes (default: the rows' own
    `Revenue`) go to `purchases`."""
    if outcomes is None:
        outcomes = [bool(row[LABEL_COLUMN]) for row in rows]
    events = [
        dataset_row_to_event_dict(row, session_id=f"{prefix}-{i}") for i, row in enumerate(rows)
    ]
    if purchases is not None:
        purchases.update(
            (str(e["session_id"]), outcome) for e, outcome in zip(events, outcomes, strict=True)
        )
    return [(str(e["session_id"]).encode(), json.dumps(e).encode()) for e in events]
