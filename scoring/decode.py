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
from typing import Protocol

from contract.decoding import Refusal, decode_value
from contract.framing import AUTO_FRAMING, Framing
from contract.limits import MAX_KEY_BYTES
from contract.schema import SessionEvent
from scoring.tracing import RawHeaders

logger = logging.getLogger(__name__)


class MessageLike(Protocol):
    """The part of ``confluent_kafka.Message`` that decoding reads."""

    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def headers(self) -> RawHeaders: ...


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
