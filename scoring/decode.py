"""Decode: raw bytes in, validated events or refusals out. Pure; no transport needed.

`decode_value` is the one implementation, on a value and its key alone (what any front door has:
a Kafka record's, an HTTP request's body); `decode_message` and `decode_batch` apply it to
messages (`MessageLike`: what confluent_kafka's Message offers) and keep the message with its
refusal, for the dead-letter topic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from contract.errors import ContractViolation
from contract.framing import FrameRejection, Framing, unframe
from contract.schema import SessionEvent
from contract.validation import parse_event
from scoring.limits import (
    MAX_COMMAS,
    MAX_KEY_BYTES,
    MAX_QUOTES,
    key_error,
    structure_error,
)
from scoring.tracing import RawHeaders

logger = logging.getLogger(__name__)

_OPEN_BRACKET = ord("[")
MAX_FIELD_CHARS = 128
"""`error.field` is cut to this length (an unknown key can be as long as the message)."""


class MessageLike(Protocol):
    """The part of ``confluent_kafka.Message`` that decoding reads."""

    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def headers(self) -> RawHeaders: ...


class Refusal(NamedTuple):
    """Why a value cannot be scored: `error_type` (a dead letter's `error.type`), `field`
    (`error.field`) and `reason` (`error.message`)."""

    error_type: str
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one message cannot be scored; becomes the dead-letter record's headers."""

    message: MessageLike
    error_type: str
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """The valid events (with their messages, index-aligned) and the rejections of one batch."""

    events: list[SessionEvent]
    messages: list[MessageLike]
    rejections: list[Rejection]


AUTO_FRAMING = Framing()  # INPUT_FORMAT=auto, every schema id


def decode_value(
    value: bytes | None,
    key: bytes | None,
    max_message_bytes: int,
    framing: Framing = AUTO_FRAMING,
    max_key_bytes: int = MAX_KEY_BYTES,
) -> SessionEvent | Refusal:
    """Decode and validate one value (and the size of its key); every failure is a Refusal,
    never an exception.

    The cheap checks (sizes, then `scoring.limits` on the raw bytes) come first, so that no
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


def decode_message(
    message: MessageLike,
    max_message_bytes: int,
    framing: Framing = AUTO_FRAMING,
    max_key_bytes: int = MAX_KEY_BYTES,
) -> SessionEvent | Rejection:
    """`decode_value` of one message; a refusal keeps its message (a Rejection)."""
    decoded = decode_value(
        message.value(), message.key(), max_message_bytes, framing, max_key_bytes
    )
    if isinstance(decoded, Refusal):
        return Rejection(message, *decoded)
    return decoded


def decode_batch(
    messages: Sequence[MessageLike],
    max_message_bytes: int,
    framing: Framing = AUTO_FRAMING,
    max_key_bytes: int = MAX_KEY_BYTES,
) -> DecodedBatch:
    events: list[SessionEvent] = []
    valid_messages: list[MessageLike] = []
    rejections: list[Rejection] = []
    for message in messages:
        decoded = decode_message(message, max_message_bytes, framing, max_key_bytes)
        if isinstance(decoded, Rejection):
            rejections.append(decoded)
        else:
            events.append(decoded)
            valid_messages.append(message)
    return DecodedBatch(events, valid_messages, rejections)
