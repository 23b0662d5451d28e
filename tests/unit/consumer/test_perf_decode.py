"""Batch decoding gives exactly what decoding one message at a time gives, message by message.

Any faster batch decoder must keep this: the same events (equal, same fields set) and, for every
rejected message, the same (error_type, field, reason) as `decode_message` / `parse_event`. The
inputs are the contract's poison catalogue, the consumer's classes of bad bytes (as in
tests/integration/consumer/test_scoring.py::bad_inputs) and random mutations of valid events.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from consumer.decode import Rejection, decode_batch, decode_message
from contract.errors import ContractViolation, parse_event
from contract.schema import SessionEvent
from tests.unit.consumer.fakes import FakeMessage, valid_event
from tests.unit.contract.test_schema import CATALOGUE, bad_payload

LIMIT = 4096

_VALUES: list[object] = [
    None, True, False, 0, -1, 1, 2**63, 0.5, -1.0, 1.5, 1e400, "", " ", "x", "Nov", "3", [], {},
]  # fmt: skip


def _poison() -> list[bytes | None]:
    good = valid_event("poison")
    text = json.dumps(good)
    return [
        *(bad_payload(bad, good).encode() for bad in CATALOGUE),
        json.dumps({**good, "session_id": "x" * 128, "padding": "y" * LIMIT}).encode(),
        b'{"session_id": "\xff\xfe"}',
        text.encode()[:-1] + b', "Browser": "\xc3\x28"}',
        b"{this is not json",
        b"[1,2,3]",
        b"",
        None,
        text.replace('"SpecialDay": 0.0', '"SpecialDay": NaN').encode(),
        text.replace('"ExitRates": 0.02', '"ExitRates": Infinity').encode(),
        json.dumps({**good, "Revenue": True}).encode(),
        json.dumps({**good, "Month": "Smarch"}).encode(),
        text.replace("{", '{"Weekend": true, ', 1).encode(),  # a duplicate, first
        text.replace('"Region": 1', '"Region": 1, "Region": 1').encode(),  # same value twice
        text.replace('"Month": "Nov"', '"Month": "N\\u006fv"').encode(),  # escaped but valid
        b"  " + text.encode() + b"\n",  # whitespace around a valid event
        b"null",
        b"{}",
    ]


def _mutant(rng: np.random.Generator, index: int) -> bytes:
    event: dict[str, object] = valid_event(f"fuzz-{index}")
    kind = int(rng.integers(0, 6))
    keys = list(event)
    if kind == 0:  # valid as is, sometimes without event_time or with it null
        choice = int(rng.integers(0, 3))
        if choice == 1:
            del event["event_time"]
        elif choice == 2:
            event["event_time"] = None
    elif kind == 1:  # one field set to anything
        event[keys[int(rng.integers(0, len(keys)))]] = _VALUES[int(rng.integers(0, len(_VALUES)))]
    elif kind == 2:  # one field dropped, or an unknown one added
        if rng.random() < 0.5:
            del event[keys[int(rng.integers(0, len(keys)))]]
        else:
            event[f"extra_{index % 3}"] = 1
    elif kind == 3:  # several fields broken at once: the first violation must match
        for _ in range(3):
            key = keys[int(rng.integers(0, len(keys)))]
            event[key] = _VALUES[int(rng.integers(0, len(_VALUES)))]
    raw = json.dumps(event, allow_nan=True).encode()
    if kind == 4:  # a byte flipped anywhere
        position = int(rng.integers(0, len(raw)))
        raw = raw[:position] + bytes([int(rng.integers(0, 256))]) + raw[position + 1 :]
    elif kind == 5:  # cut short, or a key repeated
        if rng.random() < 0.5:
            raw = raw[: int(rng.integers(0, len(raw)))]
        else:
            key = keys[int(rng.integers(0, len(keys)))]
            raw = raw[:-1] + b", " + json.dumps({key: event.get(key, 1)}).encode()[1:]
    return raw


def _outcome(decoded: SessionEvent | Rejection) -> tuple[object, ...]:
    if isinstance(decoded, Rejection):
        return ("rejected", decoded.error_type, decoded.field, decoded.reason)
    return ("event", decoded, frozenset(decoded.model_fields_set), tuple(decoded.__dict__))


def _parsed(value: bytes) -> tuple[object, ...]:
    """`parse_event`'s verdict in the shape of `_outcome` (reason left out: it is str(exc))."""
    try:
        event = parse_event(value)
    except ContractViolation as violation:
        return ("rejected", violation.rule, violation.field)
    return _outcome(event)


def _check_batch(values: list[bytes | None]) -> tuple[int, int]:
    messages = [FakeMessage(value, offset=i) for i, value in enumerate(values)]
    batch = decode_batch(messages, LIMIT)
    one_by_one = [decode_message(message, LIMIT) for message in messages]
    expected_events = [d for d in one_by_one if not isinstance(d, Rejection)]
    expected_rejections = [d for d in one_by_one if isinstance(d, Rejection)]
    assert [_outcome(e) for e in batch.events] == [_outcome(e) for e in expected_events]
    assert [m.offset() for m in batch.messages] == [
        m.offset() for m, d in zip(messages, one_by_one, strict=True) if d in expected_events
    ]
    assert [(r.message.offset(), *_outcome(r)) for r in batch.rejections] == [
        (r.message.offset(), *_outcome(r)) for r in expected_rejections
    ]
    # And per message, what parse_event itself says (size and UTF-8 checks come first).
    for message, decoded in zip(messages, one_by_one, strict=True):
        value = message.value()
        if isinstance(decoded, Rejection) and decoded.field == "<message>":
            continue
        assert value is not None
        assert _outcome(decoded)[:3] == _parsed(value)[:3]
    return len(batch.events), len(batch.rejections)


def test_poison_catalogue_decodes_the_same_in_a_batch() -> None:
    good = json.dumps(valid_event("good")).encode()
    poison = _poison()
    values: list[bytes | None] = [good]
    for value in poison:
        values += [value, good]
    events, rejections = _check_batch(values)
    assert events >= len(poison) + 1  # every good one, plus the valid edge cases
    assert rejections >= len(CATALOGUE) + 10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_mix_decodes_the_same_in_a_batch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values: list[bytes | None] = [_mutant(rng, i) for i in range(700)]
    poison = _poison()
    for i in rng.integers(0, len(values), size=40).tolist():
        values.insert(i, poison[int(rng.integers(0, len(poison)))])
    events, rejections = _check_batch(values)
    assert events > 50  # both outcomes are well represented
    assert rejections > 200
