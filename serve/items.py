"""A request body as the exact bytes of its events: one event, or the items of a JSON array.

Each event is decided by the runtime's ``scoring.decode`` on its own bytes, the very bytes a
Kafka value would hold, so an event gets the same decision here as on the input topic (a
duplicate key, a NaN, invalid UTF-8 inside a string: the same ``error.type``). Parsing the array
into objects and serialising them again would lose exactly what the contract looks at.

So the array is only *split*: the standard library's JSON scanner (C) finds where each item
ends, on the body decoded with ``surrogateescape`` (which gives back every byte, UTF-8 or not),
and each item's bytes are sliced out untouched. An item the scanner can read but the contract
cannot (``NaN``, a duplicate key, a wrong type) is that item's rejection; an array whose
structure cannot be split (an unterminated string, a missing comma) is refused whole.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from serve.errors import RequestRefused

_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's insignificant whitespace (RFC 8259)
_SCANNER = json.JSONDecoder(strict=False)  # control characters: the item's decision, not ours


@dataclass(frozen=True, slots=True)
class Items:
    """The events of one body: ``values`` in order; ``is_list`` when the body was an array."""

    values: list[bytes]
    is_list: bool


def is_list(body: bytes) -> bool:
    """Whether the body is a JSON array (its first non-whitespace byte is ``[``)."""
    return body.lstrip(b" \t\n\r")[:1] == b"["


def split_items(body: bytes, max_events: int) -> Items:
    """One event (the body itself: even empty or not JSON, decode decides), or the items of a
    JSON array; a RequestRefused for an array that cannot be split or is over ``max_events``."""
    if not is_list(body):
        return Items([body], is_list=False)
    ascii_only = body.isascii()
    text = body.decode("ascii" if ascii_only else "utf-8", "surrogateescape")
    spans = _item_spans(text, max_events)
    if ascii_only:  # one character per byte: slice the bytes themselves
        return Items([body[start:end] for start, end in spans], is_list=True)
    return Items(
        [text[start:end].encode("utf-8", "surrogateescape") for start, end in spans],
        is_list=True,
    )


def _item_spans(text: str, max_events: int) -> list[tuple[int, int]]:
    position = _WHITESPACE.match(text, 0).end() + 1  # type: ignore[union-attr]  # after '['
    position = _skip(text, position)
    spans: list[tuple[int, int]] = []
    if text.startswith("]", position):
        return _check_end(text, position + 1, spans)
    while True:
        try:
            _, end = _SCANNER.raw_decode(text, position)
        except (ValueError, RecursionError):
            raise _malformed(f"item {len(spans)} cannot be delimited") from None
        spans.append((position, end))
        if len(spans) > max_events:
            raise RequestRefused(
                413,
                "too_many_events",
                f"more than SERVE_MAX_EVENTS={max_events} events in one request",
            )
        position = _skip(text, end)
        separator = text[position : position + 1]
        if separator == "]":
            return _check_end(text, position + 1, spans)
        if separator != ",":
            raise _malformed(f"expected ',' or ']' after item {len(spans) - 1}")
        position = _skip(text, position + 1)


def _skip(text: str, position: int) -> int:
    return _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]  # always matches


def _check_end(text: str, position: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if _skip(text, position) != len(text):
        raise _malformed("text after the closing ']'")
    return spans


def _malformed(reason: str) -> RequestRefused:
    return RequestRefused(422, "invalid_json", f"the body is not a JSON array of events: {reason}")
