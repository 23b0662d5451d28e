"""The time range of a collect: ``--since 7d``, or ``--from``/``--to`` instants.

Instants are ISO 8601 / RFC 3339 (``2026-12-01T00:00:00Z``, ``2026-12-01T01:00:00+01:00``, a
bare date ``2026-12-01`` for its midnight); one without an offset is read as UTC. Both ends are
included; times are Kafka record timestamps, milliseconds since the epoch, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from contract.durations import duration_seconds

__all__ = ["TimeRange", "iso_ms", "parse_instant", "resolve_range"]


@dataclass(frozen=True)
class TimeRange:
    from_ms: int
    to_ms: int
    """Included."""

    def __post_init__(self) -> None:
        if self.to_ms < self.from_ms:
            raise ValueError(
                f"the range ends ({iso_ms(self.to_ms)}) before it starts ({iso_ms(self.from_ms)})"
            )

    def __str__(self) -> str:
        return f"{iso_ms(self.from_ms)}..{iso_ms(self.to_ms)}"


def iso_ms(time_ms: int) -> str:
    """A record timestamp as UTC ISO 8601 with milliseconds (``2026-12-01T00:00:00.000Z``)."""
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(text: str) -> int:
    """``text`` as milliseconds since the epoch; ValueError saying what is expected."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: write 2026-12-01T00:00:00Z (ISO 8601, UTC when no offset "
            "is given) or a date 2026-12-01"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def resolve_range(
    since: str | None, from_text: str | None, to_text: str | None, now_ms: int
) -> TimeRange:
    """``--since D`` is ``now - D .. now``; ``--from``/``--to`` name the ends (``--to``
    defaults to now). ValueError for a bad combination or value."""
    if since is not None and from_text is not None:
        raise ValueError("give --since or --from, not both")
    if since is None and from_text is None:
        raise ValueError("give the range: --since 7d, or --from TIME [--to TIME]")
    to_ms = now_ms if to_text is None else parse_instant(to_text)
    if since is not None:
        if to_text is not None:
            raise ValueError("--since counts back from now: give --from with --to")
        seconds = duration_seconds(since)
        if seconds <= 0:
            raise ValueError("--since must be longer than 0")
        return TimeRange(now_ms - round(seconds * 1000), now_ms)
    assert from_text is not None
    return TimeRange(parse_instant(from_text), to_ms)
