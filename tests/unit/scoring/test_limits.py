"""Cheap structural checks: what no event can be is refused before validation; events never are."""

from __future__ import annotations

import json

import pytest

import contract.decoding as decoding_module
from contract.decoding import MAX_FIELD_CHARS
from contract.limits import MAX_COMMAS, MAX_KEY_BYTES, MAX_QUOTES, structure_error
from contract.samples import edge_event_dicts
from scoring.decode import Rejection, decode_message
from tests.integration.faults.test_poison import INPUT_MAX_MESSAGE_BYTES, poison_catalogue
from tests.unit.scoring.fakes import FakeMessage, valid_event


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Records every call of the full validation (`parse_event`) that decoding makes."""
    calls: list[bytes] = []
    real_parse = decoding_module.parse_event

    def spy(raw: bytes, quotes: int | None = None) -> object:
        calls.append(raw)
        return real_parse(raw, quotes)

    monkeypatch.setattr(decoding_module, "parse_event", spy)
    return calls


def rejected(value: bytes, key: bytes | None = b"k", max_bytes: int = 65_536) -> Rejection:
    decoded = decode_message(FakeMessage(value, key=key), max_bytes)
    assert isinstance(decoded, Rejection), value[:80]
    return decoded


def test_five_thousand_extra_fields_are_refused_without_full_validation(
    parse_calls: list[bytes],
) -> None:
    value = json.dumps({**valid_event(), **{f"x{i}": i for i in range(5000)}}).encode()
    rejection = rejected(value, max_bytes=len(value))
    assert rejection.error_type == "too_many_strings"
    assert rejection.field == "<root>"
    assert "10046 unescaped quote characters" in rejection.reason
    assert parse_calls == []


@pytest.mark.parametrize(
    ("change", "error_type"),
    [
        ({"Administrative": list(range(10_000))}, "too_many_values"),
        ({"Region": [{}] * 5000}, "too_many_values"),
        ({"Month": ["Nov"] * 3000}, "too_many_strings"),
        ({"zzz": {f"k{i}": None for i in range(3000)}}, "too_many_strings"),
    ],
)
def test_long_arrays_and_objects_are_refused_without_full_validation(
    change: dict[str, object], error_type: str, parse_calls: list[bytes]
) -> None:
    rejection = rejected(json.dumps({**valid_event(), **change}).encode())
    assert rejection.error_type == error_type
    assert parse_calls == []


def test_many_duplicate_keys_are_refused_without_full_validation(
    parse_calls: list[bytes],
) -> None:
    text = json.dumps(valid_event())
    rejection = rejected((text[:-1] + ', "Region": 3' * 5000 + "}").encode())
    assert rejection.error_type == "too_many_strings"
    assert parse_calls == []


def test_a_few_fields_off_still_get_the_contracts_own_rule(parse_calls: list[bytes]) -> None:
    """The bounds are twice what an event needs: small mistakes are not renamed."""
    text = json.dumps(valid_event())
    assert rejected((text[:-1] + ', "Region": 3}').encode()).error_type == "duplicate_key"
    extra = {f"x{i}": i for i in range(10)}
    assert rejected(json.dumps({**valid_event(), **extra}).encode()).error_type == (
        "extra_forbidden"
    )
    assert len(parse_calls) == 2


def test_the_largest_valid_events_pass_the_prechecks() -> None:
    """A session_id of 128 quotes, commas or brackets is valid; the checks must let it through."""
    for filler in ('"', ",", "[", "{", "\\"):
        event = valid_event(filler * 128)
        value = json.dumps(event).encode()
        assert structure_error(value, value.count(b'"'), value.count(b",")) is None, filler
        decoded = decode_message(FakeMessage(value, key=b"k" * MAX_KEY_BYTES), 65_536)
        assert not isinstance(decoded, Rejection), (filler, decoded)
    for event in edge_event_dicts(200, seed=5):
        value = json.dumps(event).encode()
        assert structure_error(value, value.count(b'"'), value.count(b",")) is None
        assert value.count(b'"') <= MAX_QUOTES // 2
        assert value.count(b",") <= MAX_COMMAS // 2


def test_an_oversized_record_key_is_its_own_error_and_a_null_key_is_fine() -> None:
    value = json.dumps(valid_event()).encode()
    rejection = rejected(value, key=b"K" * (MAX_KEY_BYTES + 1))
    assert (rejection.error_type, rejection.field) == ("key_too_large", "<key>")
    assert f"{MAX_KEY_BYTES + 1} bytes" in rejection.reason
    # checked before the value: a huge key with a value that is not JSON is still key_too_large
    assert rejected(b"not json", key=b"K" * 999_900).error_type == "key_too_large"
    assert not isinstance(decode_message(FakeMessage(value, key=None), 65_536), Rejection)


def test_a_long_unknown_field_name_is_cut_in_the_rejection() -> None:
    rejection = rejected(json.dumps({**valid_event(), "k" * 60_000: 1}).encode())
    assert rejection.error_type == "extra_forbidden"
    assert rejection.field.startswith("k" * MAX_FIELD_CHARS + "... (60000 characters)")
    assert len(rejection.field) < MAX_FIELD_CHARS + 40


def test_the_poison_catalogue_keeps_its_error_types() -> None:
    """The fault suite's catalogue: the prechecks rename none of its kinds."""
    for kind, value, expected in poison_catalogue():
        decoded = decode_message(FakeMessage(value), INPUT_MAX_MESSAGE_BYTES)
        if expected == "scoring_failed":  # valid for the contract; the scorer refuses it
            assert not isinstance(decoded, Rejection), kind
            continue
        assert isinstance(decoded, Rejection), kind
        assert decoded.error_type == expected, (kind, decoded.reason)
