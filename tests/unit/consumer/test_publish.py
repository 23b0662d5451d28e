"""Output records follow their JSON Schema; dead-letter headers carry the reason and the source."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import orjson

from consumer.decode import Rejection
from consumer.publish import DLQ_MAX_PAYLOAD_BYTES, dead_letter_headers, output_records
from consumer.scoring import ModelInfo
from contract.schema import CONTRACT_VERSION, SessionEvent
from tests.unit.consumer.fakes import FakeMessage, valid_event

SCHEMA = json.loads(
    (Path(__file__).parents[3] / "consumer" / "output_record.schema.json").read_text()
)
INFO = ModelInfo(build_id="b-1", variant="full", git_sha="abc", threshold=0.4)


def test_output_records_match_the_schema_and_the_inputs() -> None:
    with_time = SessionEvent.model_validate(valid_event("a"))
    without_time = SessionEvent.model_validate({**valid_event("b"), "event_time": None})
    messages = [FakeMessage(b"{}", offset=7), FakeMessage(b"{}", offset=8)]
    records = output_records(
        [with_time, without_time],
        messages,
        np.array([0.4, 0.39999]),
        INFO,
        "2026-11-26T10:00:00.000Z",
    )
    parsed = [orjson.loads(r) for r in records]
    for record in parsed:
        jsonschema.validate(record, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert parsed[0]["label"] is True  # probability >= threshold
    assert parsed[1]["label"] is False
    assert parsed[0]["event_time"] == "2026-11-26T10:00:00Z"
    assert "event_time" not in parsed[1]
    assert parsed[1]["source"] == {"topic": "sessions", "partition": 0, "offset": 8}
    assert parsed[0]["contract_version"] == CONTRACT_VERSION


def test_dead_letter_headers_name_the_reason_and_source() -> None:
    rejection = Rejection(FakeMessage(b"x", offset=42), "int_type", "Browser", "bad type")
    headers = dict(dead_letter_headers(rejection, 1))
    assert headers["error.type"] == b"int_type"
    assert headers["error.field"] == b"Browser"
    assert headers["error.message"] == b"bad type"
    assert headers["source.topic"] == b"sessions"
    assert headers["source.partition"] == b"0"
    assert headers["source.offset"] == b"42"
    assert headers["contract.version"] == CONTRACT_VERSION.encode()
    assert "payload.truncated_from_bytes" not in headers


def test_huge_dead_letter_says_it_was_cut() -> None:
    rejection = Rejection(FakeMessage(b"x"), "message_too_large", "<message>", "big")
    headers = dict(dead_letter_headers(rejection, DLQ_MAX_PAYLOAD_BYTES + 1))
    assert headers["payload.truncated_from_bytes"] == str(DLQ_MAX_PAYLOAD_BYTES + 1).encode()
