"""Decode one value: raw bytes in, a validated event or the reason it is refused out. Pure.

`decode_value` is the one implementation of the decision every front door makes on a value (the
Kafka consumer's records, the HTTP front door's bodies, ``python -m training collect``'s reading
of the input topic): the cheap checks on the raw bytes (``contract.limits``), the Schema Registry
framing (``contract.framing``), then the contract's validation (``contract.validation``). Its
`Refusal` carries what a dead letter's ``error.*`` headers carry.
"""

from __future__ import annotations

import logging
from typing import Final, NamedTuple

from contract.errors import ContractViolation
from contract.framing import AUTO_FRAMING, FrameRejection, Framing, unframe
from contract.limits import MAX_COMMAS, MAX_KEY_BYTES, MAX_QUOTES, key_error, structure_error
from contract.schema import SessionEvent
from contract.validation import parse_event

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_FIELD_CHARS",
    "MIN_MESSAGE_BYTES",
    "Refusal",
    "decode_value",
]

logger = logging.getLogger(__name__)

_OPEN_BRACKET = ord("[")
MAX_FIELD_CHARS: Final[int] = 128
"""`error.field` is cut to this length (an unknown key can be as long as the message)."""
DEFAULT_MAX_MESSAGE_BYTES: Final[int] = 65_536
"""``INPUT_MAX_MESSAGE_BYTES``'s default: larger values are refused unread."""
MIN_MESSAGE_BYTES: Final[int] = 256
"""The smallest ``INPUT_MAX_MESSAGE_BYTES`` allowed (an event needs about 450 bytes)."""


class Refusal(NamedTuple):
    """Why a value cannot be scored: `error_type` (a dead letter's `error.type`), `field`
    (`error.field`) and `reason` (`error.message`)."""

    error_type: str
    field: str
    reason: str


def decode_value(
    value: bytes | None,
    key: bytes | None,
    max_message_bytes: int,
    framing: Framing = AUTO_FRAMING,
    max_key_bytes: int = MAX_KEY_BYTES,
) -> SessionEvent | Refusal:
    """Decode and validate one value (and the size of its key); every failure is a Refusal,
    never an exception.

    The cheap checks (sizes, then `contract.limits` on the raw bytes) come first, so that no
    value costs much more to refuse than an event costs to accept. `framing` says whether
    values may carry a Schema Registry header (contract.framing).
    """
    if key is not None and len(key) > max_key_bytes:
        return Refusal(*key_error(len(key), max_key_bytes))
    if value is None or len(value) == 0:
        return Refusal("empty_value", "<message>", "the message has no value")
    if len(value) > max_message_bytes:
        return Refusal(
            "message_too_large",
            "<message>",
            f"{len(value)} bytes is over INPUT_MAX_MESSAGE_BYTES={max_message_bytes}",
        )
    text = unframe(value, framing)
    if isinstance(text, FrameRejection):
        return Refusal(text.error_type, text.field, text.reason)
    if not text.isascii():  # isascii is a word-at-a-time scan; most events are ASCII
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Refusal("invalid_utf8", "<message>", f"not UTF-8 at byte {exc.start}")
    quotes = text.count(b'"')  # also needed by parse_event's duplicate-key check
    # Many commas and few quotes can only be an array: count commas only when a '[' is there
    # (`int in bytes` is one memchr; a valid event has a '[' only inside its session_id).
    commas = text.count(b",") if _OPEN_BRACKET in text else 0
    if quotes > MAX_QUOTES or commas > MAX_COMMAS:
        refused = structure_error(text, quotes, commas)
        if refused is not None:
            return Refusal(*refused)
    try:
        return parse_event(text, quotes)
    except ContractViolation as violation:
        field = violation.field
        if len(field) > MAX_FIELD_CHARS:
            field = field[:MAX_FIELD_CHARS] + f"... ({len(violation.field)} characters)"
        return Refusal(violation.rule, field, str(violation))
    except Exception as exc:
        # Decoding is meant never to raise; if a value makes it raise anyway, that value is
        # refused (dead-lettered). Letting it escape would stop the process, and the restarted
        # process would meet the same message again: a crash loop on one poison pill.
        logger.exception("decoding raised; refusing the value (dead-lettering the message)")
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        return Refusal("decode_failed", "<message>", reason)
