"""The templated output records are byte-for-byte the dict-and-orjson reference, on random input."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import orjson

from consumer.publish import output_records, reference_output_record
from contract.schema import SessionEvent
from scoring.scorer import ModelInfo
from tests.unit.scoring.fakes import FakeMessage, valid_event

SCHEMA = json.loads(
    (Path(__file__).parents[3] / "consumer" / "output_record.schema.json").read_text()
)
# Characters that need escaping or are multi-byte in UTF-8, plus plain ones.
ALPHABET = [
    '"',
    "\\",
    "/",
    "\n",
    "\t",
    "\x00",
    "\x1f",
    "\u2028",
    "é",
    "日",
    "😀",
    "a",
    "Z",
    "0",
    " ",
]


def _session_id(rng: np.random.Generator) -> str:
    text = "".join(rng.choice(ALPHABET, size=int(rng.integers(1, 40))).tolist())
    return text if text.strip() else text + "x"


def _messages(rng: np.random.Generator, n: int) -> list[FakeMessage]:
    messages = []
    for i in range(n):
        message = FakeMessage(b"{}", offset=int(rng.integers(0, 2**62)) if i % 7 else 0)
        message._topic = ["sessions", 'odd "topic"\\', "sessions-2"][i % 3]
        message._partition = int(rng.integers(0, 64))
        messages.append(message)
    return messages


def test_templated_records_equal_the_reference_bytes() -> None:
    rng = np.random.default_rng(7)
    n = 600
    events = [
        SessionEvent.model_validate(
            {
                **valid_event(_session_id(rng)),
                "event_time": None if i % 4 == 0 else "2026-11-26T10:00:00.123+01:00",
            }
        )
        for i in range(n)
    ]
    if_missing = SessionEvent.model_validate(
        {k: v for k, v in valid_event("no-time").items() if k != "event_time"}
    )
    events.append(if_missing)
    messages = _messages(rng, n + 1)
    probabilities = rng.random(n + 1)
    probabilities[:5] = [0.0, 1.0, 0.4, np.nextafter(0.4, 0.0), 1e-300]
    for info in (
        ModelInfo(build_id="b-1", variant="full", git_sha="abc", threshold=0.4),
        ModelInfo(build_id='b "quoted" \\ é', variant="no_page_values", git_sha="", threshold=0.0),
    ):
        scored_at = "2026-11-26T10:00:00.000Z"
        records = output_records(events, messages, probabilities, info, scored_at)
        expected = [
            reference_output_record(e, m, p, info, scored_at)
            for e, m, p in zip(events, messages, probabilities.tolist(), strict=True)
        ]
        assert records == expected
    for record in records[:50]:
        jsonschema.validate(orjson.loads(record), SCHEMA, format_checker=jsonschema.FormatChecker())
    parsed = orjson.loads(records[3])
    assert parsed["session_id"] == events[3].session_id
    assert parsed["label"] is True  # threshold 0.0


def test_empty_batch_gives_no_records() -> None:
    info = ModelInfo(build_id="b-1", variant="full", git_sha="abc", threshold=0.4)
    assert output_records([], [], np.empty(0), info, "2026-11-26T10:00:00.000Z") == []
