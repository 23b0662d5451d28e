"""Output records follow their JSON Schema; dead-letter headers carry the reason and the source."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest

from consumer.publish import (
    DEAD_LETTER_BUDGET_BYTES,
    DEAD_LETTER_MARGIN_BYTES,
    DEAD_LETTER_MIN_BUDGET_BYTES,
    DLQ_MAX_PAYLOAD_BYTES,
    LIBRDKAFKA_MESSAGE_MAX_BYTES,
    DeadLetter,
    dead_letter_budget,
    dead_letter_headers,
    fit_dead_letter,
    headers_size,
    output_records,
)
from contract.limits import MAX_KEY_BYTES
from contract.schema import CONTRACT_VERSION, SessionEvent
from scoring.decode import Rejection
from scoring.scorer import ModelInfo
from tests.unit.scoring.fakes import FakeMessage, valid_event

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
    headers = dict(dead_letter_headers(rejection))
    assert headers["error.type"] == b"int_type"
    assert headers["error.field"] == b"Browser"
    assert headers["error.message"] == b"bad type"
    assert headers["source.topic"] == b"sessions"
    assert headers["source.partition"] == b"0"
    assert headers["source.offset"] == b"42"
    assert headers["contract.version"] == CONTRACT_VERSION.encode()
    assert "payload.truncated_from_bytes" not in headers


def test_huge_dead_letter_says_it_was_cut() -> None:
    value = b"v" * (DLQ_MAX_PAYLOAD_BYTES + 1)
    rejection = Rejection(FakeMessage(value), "message_too_large", "<message>", "big")
    letter = fit_dead_letter(rejection)
    assert letter.value == value[:DLQ_MAX_PAYLOAD_BYTES]
    assert letter.key == b"k"
    headers = dict(letter.headers)
    assert headers["payload.truncated_from_bytes"] == str(DLQ_MAX_PAYLOAD_BYTES + 1).encode()
    assert "key.truncated_from_bytes" not in headers


def record_size(letter: DeadLetter) -> int:
    """What librdkafka compares with message.max.bytes: key + value + serialised headers."""
    return len(letter.key or b"") + len(letter.value) + headers_size(letter.headers)


def test_an_oversized_key_is_cut_so_that_the_dead_letter_fits() -> None:
    """The issue's case: a 999,900-byte key with a small value, over message.max.bytes."""
    key = b"K" * 999_900
    rejection = Rejection(FakeMessage(b"not json", key=key), "key_too_large", "<key>", "big key")
    letter = fit_dead_letter(rejection)
    assert record_size(letter) <= DEAD_LETTER_BUDGET_BYTES < LIBRDKAFKA_MESSAGE_MAX_BYTES
    assert letter.value == b"not json"  # the value is kept whole when the key can give way
    assert letter.key is not None
    assert key.startswith(letter.key)
    assert len(letter.key) > 900_000  # the key keeps whatever room is left
    headers = dict(letter.headers)
    assert headers["key.truncated_from_bytes"] == b"999900"
    assert "payload.truncated_from_bytes" not in headers
    assert headers["error.type"] == b"key_too_large"


@pytest.mark.parametrize(
    "budget", [DEAD_LETTER_MIN_BUDGET_BYTES, 100_000, DEAD_LETTER_BUDGET_BYTES]
)
@pytest.mark.parametrize("key_size", [0, 10, MAX_KEY_BYTES, 600_000, 999_999])
@pytest.mark.parametrize("value_size", [0, 1, 400_000, DLQ_MAX_PAYLOAD_BYTES + 1, 999_999])
def test_every_dead_letter_fits_its_budget(budget: int, key_size: int, value_size: int) -> None:
    key = b"K" * key_size if key_size else None
    long_text = "r" * 50_000  # a reason and a field longer than any header keeps
    rejection = Rejection(FakeMessage(b"V" * value_size, key=key), "x" * 1000, long_text, long_text)
    letter = fit_dead_letter(rejection, budget)
    assert record_size(letter) <= budget
    headers = dict(letter.headers)
    if len(letter.value) < value_size:
        assert headers["payload.truncated_from_bytes"] == str(value_size).encode()
    else:
        assert "payload.truncated_from_bytes" not in headers
    if len(letter.key or b"") < key_size:
        assert headers["key.truncated_from_bytes"] == str(key_size).encode()
    else:
        assert "key.truncated_from_bytes" not in headers
    # what is kept is a prefix, and a small key or value is never cut
    assert (key or b"").startswith(letter.key or b"")
    if key_size <= MAX_KEY_BYTES:
        assert letter.key == key
    if value_size <= min(DLQ_MAX_PAYLOAD_BYTES, budget // 2):
        assert len(letter.value) == value_size


def test_the_budget_follows_message_max_bytes_and_refuses_one_too_small() -> None:
    assert dead_letter_budget(2_000_000) == 2_000_000 - DEAD_LETTER_MARGIN_BYTES
    with pytest.raises(ValueError, match=r"message.max.bytes=10000"):
        dead_letter_budget(10_000)
