"""Stand-ins for confluent_kafka.Message in pure unit tests (never for the broker)."""

from __future__ import annotations

from dataclasses import dataclass

from consumer.tracing import RawHeaders


def valid_event(session_id: str = "s-1") -> dict[str, object]:
    return {
        "session_id": session_id,
        "event_time": "2026-11-26T10:00:00Z",
        "Administrative": 2,
        "Administrative_Duration": 30.5,
        "Informational": 0,
        "Informational_Duration": 0.0,
        "ProductRelated": 12,
        "ProductRelated_Duration": 400.0,
        "BounceRates": 0.01,
        "ExitRates": 0.02,
        "PageValues": 5.5,
        "SpecialDay": 0.0,
        "Month": "Nov",
        "OperatingSystems": 2,
        "Browser": 2,
        "Region": 1,
        "TrafficType": 2,
        "VisitorType": "Returning_Visitor",
        "Weekend": False,
    }


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
    ) -> None:
        self._value = value
        self._key = key
        self._headers = headers
        self._topic = "sessions"
        self._partition = 0
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
