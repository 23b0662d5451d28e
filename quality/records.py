"""Decoding the two inputs: a scored record (consumer/output_record.schema.json) and an outcome
(``contract.outcome.SessionOutcome``). Only what the join needs is kept."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from contract.join import Outcome
from contract.outcome import parse_outcome
from quality.window import Scored


class RecordError(ValueError):
    """A record that breaks its format; says which field."""


@dataclass(frozen=True, slots=True)
class ScoredRecord:
    session_id: str
    scored: Scored


def _number(record: dict[str, object], name: str) -> float:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise RecordError(f"{name} must be a number in [0, 1]")
    return float(value)


def _text(record: dict[str, object], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise RecordError(f"{name} must be a non-empty string")
    return value


def decode_score(value: bytes | None) -> ScoredRecord:
    """A scored record's value; RecordError when it is not one."""
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise RecordError("not a JSON object")
    # Build ids and variants repeat on every record: one string object each.
    scored = Scored(
        _number(record, "probability"),
        _number(record, "threshold"),
        sys.intern(_text(record, "model_build_id")),
        sys.intern(_text(record, "model_variant")),
    )
    return ScoredRecord(_text(record, "session_id"), scored)


def decode_outcome(value: bytes | None, record_time_ms: int) -> tuple[str, Outcome]:
    """An outcome record's value and timestamp; RecordError when it breaks the contract."""
    try:
        outcome = parse_outcome(value or b"")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "<root>"
        raise RecordError(f"{where}: {first['msg']}") from None
    outcome_ms = int(outcome.outcome_datetime.timestamp() * 1000)
    return outcome.session_id, Outcome(record_time_ms, outcome.purchased, outcome_ms)
