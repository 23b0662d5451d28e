"""Decode: every kind of bad bytes becomes a Rejection with a reason; valid events pass."""

from __future__ import annotations

import json

import orjson
import pytest

from contract.decoding import Refusal, decode_value
from contract.schema import SessionEvent
from scoring.decode import Rejection, decode_batch, decode_message
from tests.unit.scoring.fakes import FakeMessage, valid_event


def test_valid_event_decodes() -> None:
    event = decode_message(FakeMessage(json.dumps(valid_event()).encode()), 65_536)
    assert not isinstance(event, Rejection)
    assert event.session_id == "s-1"


@pytest.mark.parametrize(
    ("value", "error_type", "field"),
    [
        (None, "empty_value", "<message>"),
        (b"", "empty_value", "<message>"),
        (b"\xff\xfe\x00garbage", "invalid_utf8", "<message>"),
        # five NUL bytes then JSON: a Schema Registry header with id 0, which no registry assigns
        (b"\x00" * 5 + json.dumps(valid_event()).encode(), "unknown_schema_id", "<message>"),
        (b"{not json", "invalid_json", "<root>"),
        (b"[1, 2]", "not_an_object", "<root>"),
        (json.dumps({**valid_event(), "Browser": "2"}).encode(), "int_type", "Browser"),
        (json.dumps({**valid_event(), "BounceRates": 1.5}).encode(), "less_than_equal", None),
        (json.dumps({**valid_event(), "Revenue": True}).encode(), "label_not_allowed", "Revenue"),
        (json.dumps({**valid_event(), "extra": 1}).encode(), "extra_forbidden", "extra"),
        (
            json.dumps({k: v for k, v in valid_event().items() if k != "Month"}).encode(),
            "missing",
            "Month",
        ),
        (
            json.dumps(valid_event()).replace('"ExitRates": 0.02', '"ExitRates": NaN').encode(),
            None,
            "ExitRates",
        ),
    ],
)
def test_bad_messages_are_rejected_with_a_reason(
    value: bytes | None, error_type: str | None, field: str | None
) -> None:
    decoded = decode_message(FakeMessage(value), 65_536)
    assert isinstance(decoded, Rejection)
    if error_type is not None:
        assert decoded.error_type == error_type
    if field is not None:
        assert decoded.field == field
    assert decoded.reason


def test_oversized_message_is_rejected_before_parsing() -> None:
    big = json.dumps({**valid_event(), "session_id": "x" * 5000}).encode()
    decoded = decode_message(FakeMessage(big), 1024)
    assert isinstance(decoded, Rejection)
    assert decoded.error_type == "message_too_large"
    assert "1024" in decoded.reason


def test_batch_keeps_events_aligned_with_their_messages() -> None:
    messages = [FakeMessage(json.dumps(valid_event(f"s-{i}")).encode(), offset=i) for i in range(5)]
    messages.insert(2, FakeMessage(b"nope", offset=99))
    decoded = decode_batch(messages, 65_536)
    assert [e.session_id for e in decoded.events] == [f"s-{i}" for i in range(5)]
    assert [m.offset() for m in decoded.messages] == [0, 1, 2, 3, 4]
    assert [r.message.offset() for r in decoded.rejections] == [99]


def test_deeply_nested_json_is_rejected_not_raised() -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    value = b'{"session_id": "deep", "Browser": ' + nested + b"}"
    decoded = decode_message(FakeMessage(value), 10_000_000)
    assert isinstance(decoded, Rejection)
    assert decoded.error_type in {"invalid_json", "int_type"}


def test_an_unexpected_decoding_error_dead_letters_only_that_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import contract.decoding as decoding_module

    real_parse = decoding_module.parse_event

    def flaky_parse(raw: bytes | str, quotes: int | None = None) -> object:
        if b"boom" in (raw if isinstance(raw, bytes) else raw.encode()):
            raise RecursionError("maximum recursion depth exceeded")
        return real_parse(raw, quotes)

    monkeypatch.setattr(decoding_module, "parse_event", flaky_parse)
    messages = [
        FakeMessage(json.dumps(valid_event("ok")).encode(), offset=0),
        FakeMessage(json.dumps(valid_event("boom")).encode(), offset=1),
    ]
    decoded = decode_batch(messages, 65_536)
    assert [e.session_id for e in decoded.events] == ["ok"]
    assert [(r.error_type, r.message.offset()) for r in decoded.rejections] == [
        ("decode_failed", 1)
    ]
    assert "RecursionError" in decoded.rejections[0].reason


def test_decode_value_needs_no_message_and_refuses_as_the_dead_letter_would() -> None:
    """The HTTP front door's entry: bytes in, an event or (error.type, field, reason) out."""
    good = orjson.dumps(valid_event("v-1"))
    event = decode_value(good, None, 65_536)
    assert isinstance(event, SessionEvent)
    assert event == decode_message(FakeMessage(good), 65_536)
    for value in (b"", b"{", orjson.dumps({**valid_event(), "Revenue": True}), b"x" * 70_000):
        refusal = decode_value(value, b"k", 65_536)
        rejection = decode_message(FakeMessage(value), 65_536)
        assert isinstance(refusal, Refusal)
        assert isinstance(rejection, Rejection)
        assert refusal == (rejection.error_type, rejection.field, rejection.reason)
