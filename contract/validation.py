"""Reading one event: `parse_event` decodes and validates a JSON event against the contract.

pydantic validates the fields (`contract.schema.SessionEvent`); its errors become
`ContractViolation`s (`contract.errors`). A repeated key, which pydantic's JSON parser would
silently resolve to its last value, is the rule `duplicate_key`.
"""

from __future__ import annotations

import json
from typing import Final, cast

from pydantic import ValidationError

from contract.errors import ContractViolation, violations_from_validation_error
from contract.schema import SessionEvent


def _may_hide_duplicate(raw: bytes | str, event: SessionEvent, quotes: int | None) -> bool:
    """False when the text provably has no duplicate key; one C-speed count, no parsing.

    Every JSON string (key or value) contributes exactly two unescaped quote characters and an
    escaped quote only adds one, so the text holds at least 2 * (keys + string values) quotes.
    A validated event has one key per set field, and one string value per set string field, so
    an exact match leaves no room for a repeated key; anything more needs the exact check.
    """
    if quotes is None:
        quotes = raw.count(b'"') if isinstance(raw, bytes) else raw.count('"')
    # String-valued fields: session_id, Month, VisitorType (required), event_time (optional).
    strings = 3 if event.event_time is None else 4
    return quotes != 2 * (len(event.__pydantic_fields_set__) + strings)  # model_fields_set


def _find_duplicate_key(raw: bytes | str) -> str | None:
    """The first key that occurs twice in one JSON object, or None (also None for invalid JSON)."""
    duplicate: list[str] = []

    def pairs_hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen and not duplicate:
                duplicate.append(key)
            seen.add(key)
        return dict(pairs)

    try:
        json.loads(raw, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):  # json.loads recurses: deep nesting is not a duplicate
        return None
    return duplicate[0] if duplicate else None


def _duplicate_violation(key: str) -> ContractViolation:
    return ContractViolation(
        key, None, "duplicate_key", f"key {key!r} occurs more than once in the JSON object"
    )


def _validate_json(raw: bytes | str) -> SessionEvent:
    """`SessionEvent.model_validate_json(raw)`: the model's own validator, called without the
    classmethod's keyword arguments (all at their defaults), which cost ~0.3 µs per event."""
    return cast(SessionEvent, _VALIDATOR.validate_json(raw))


_VALIDATOR: Final = SessionEvent.__pydantic_validator__


def parse_event(raw: bytes | str, quotes: int | None = None) -> SessionEvent:
    """Decode and validate one JSON event; raise `ContractViolation` (first one, all attached).

    pydantic's JSON parser keeps the last of repeated keys silently, so duplicates are detected
    here: on the hot path with one count of quote characters (`quotes`, when the caller counted
    them already); the exact check (a `json.loads` pass) only runs when that count leaves room
    for a repeated key.
    """
    try:
        event = _validate_json(raw)
    except ValidationError as exc:
        violations = violations_from_validation_error(exc)
        duplicate = _find_duplicate_key(raw)
        if duplicate is not None:
            violations.insert(0, _duplicate_violation(duplicate))
        first = violations[0]
        raise ContractViolation(
            first.field, first.value, first.rule, first.detail, violations
        ) from exc
    if _may_hide_duplicate(raw, event, quotes):
        duplicate = _find_duplicate_key(raw)
        if duplicate is not None:
            raise _duplicate_violation(duplicate)
    return event
