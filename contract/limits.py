"""Size and shape limits of a message: cheap checks before validation.

The checks run before full validation, so that rejecting costs about what accepting does.

Full validation is cheap for an event and expensive for some invalid texts: pydantic reports every
extra field, and each report becomes a `ContractViolation` (a 49 kB event with 5,000 extra fields
took 18-48 ms to reject, a valid event ~5 us to score). These checks read the raw bytes only, at
C speed (`len`, `bytes.count`), and refuse what cannot be an event before it is parsed:

- `key_too_large`: the message's key (a Kafka record's key) is over `MAX_KEY_BYTES`. The value
  limit (`INPUT_MAX_MESSAGE_BYTES`) does not cover the key, and the key is copied into the output
  record or the dead letter, which then may not fit the producer's `message.max.bytes`.
- `too_many_strings`: more unescaped quote characters than twice what an event can hold (each key
  and each string value is one pair): thousands of extra fields, or a list of strings.
- `too_many_values`: more commas than twice what an event can hold: a long array (an object with
  many members has many quotes too).

The bounds are twice what a valid event can need, so a message a few fields off (one extra field,
a repeated key) still gets the contract's own rule (`extra_forbidden`, `duplicate_key`), and no
valid event is ever refused here (tests/unit/scoring/test_limits.py builds the largest ones).
Nesting needs no check of its own: pydantic-core stops at 200 levels (`invalid_json`) at once.

What a dead letter may take under the producer's `message.max.bytes` is Kafka's business:
`consumer.publish.dead_letter_budget`.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from contract.schema import SESSION_ID_MAX_LENGTH, SessionEvent

MAX_KEY_BYTES: Final[int] = 4096
"""Largest Kafka record key decoded; larger keys are dead-lettered (cut) as `key_too_large`."""

STRING_FIELDS: Final[tuple[str, ...]] = ("session_id", "event_time", "Month", "VisitorType")
"""The fields whose JSON value is a string; every other value is a number, a bool or null."""

_FIELDS = len(SessionEvent.model_fields)
# A valid event: one quote pair per key and per string value, plus escaped quotes (\") inside
# session_id; commas between members, plus commas inside session_id. Only the session_id is free
# text (event_time, Month and VisitorType have fixed spellings without quotes or commas).
MAX_QUOTES: Final[int] = 2 * 2 * (_FIELDS + len(STRING_FIELDS))
"""Unescaped quote characters allowed: twice the 46 that 19 keys and 4 string values need."""
MAX_COMMAS: Final[int] = 2 * (_FIELDS - 1 + SESSION_ID_MAX_LENGTH)
"""Commas allowed: twice the 18 separators plus a session_id made of 128 commas."""


# --- checks before validation -----------------------------------------------------------------


class StructuralError(NamedTuple):
    """Why a message was refused before validation: `error.type`, `error.field`, the reason."""

    error_type: str
    field: str
    reason: str


def key_error(key_size: int, max_key_bytes: int) -> StructuralError:
    """The Kafka record key is over `max_key_bytes` (a null key is fine: scored keyless)."""
    return StructuralError(
        "key_too_large",
        "<key>",
        f"the record key is {key_size} bytes, over the {max_key_bytes} a key may have",
    )


def structure_error(value: bytes, quotes: int, commas: int) -> StructuralError | None:
    """Why a text with these counts cannot be an event, or None when it may be one.

    The caller counts quotes, and commas when the text holds a '[' (many commas with few quotes
    can only be an array), and calls this only when one is over its bound; the quote count is
    handed on to `parse_event`, which needs it anyway for its duplicate-key check. So a valid
    event pays for one `in` test more than before, and nothing else.
    """
    if quotes > MAX_QUOTES:
        unescaped = quotes - value.count(b'\\"')  # \\" counts as escaped: lenient, never stricter
        if unescaped > MAX_QUOTES:
            reason = (
                f"{unescaped} unescaped quote characters: more keys and string values than an "
                f"event can have (at most {MAX_QUOTES}; an event has {_FIELDS} fields)"
            )
            return StructuralError("too_many_strings", "<root>", reason)
    if commas > MAX_COMMAS:
        reason = (
            f"{commas} commas: more members and array items than an event can have "
            f"(at most {MAX_COMMAS}; an event is a flat object of {_FIELDS} fields)"
        )
        return StructuralError("too_many_values", "<root>", reason)
    return None
