"""Stand-ins for the runtime's inputs in pure unit tests: a message as ``scoring.decode`` reads
it (``MessageLike``: what confluent_kafka's Message offers), and a valid event."""

from __future__ import annotations

from dataclasses import dataclass

from contract.samples import EXAMPLE_EVENT
from scoring.tracing import RawHeaders


def valid_event(session_id: str = "s-1") -> dict[str, object]:
    return {**EXAMPLE_EVENT, "session_id": session_id}


@dataclass
class FakeMessage:
    _value: bytes | None
    _key: bytes | None = b"k"
    _topic: str = "sessions"
    _partition: int = 0
    offset_: int = 0
    _timestamp: tuple[int, int] = (1, 1_700_000_000_000)
    _headers: RawHeaders = None

    def __init__(
        self,
        value: bytes | None,
        offset: int = 0,
        key: bytes | None = b"k",
        headers: RawHeaders = None,
        partition: int = 0,
    ) -> None:
        self._value = value
        self._key = key
        self._headers = headers
        self._topic = "sessions"
        self._partition = partition
        self.offset_ = offset
        self._timestamp = (1, 1_700_000_000_000)

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self.offset_

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def headers(self) -> RawHeaders:
        return self._headers

    def error(self) -> None:
        return None
