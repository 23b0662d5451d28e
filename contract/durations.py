"""Durations as settings and options write them: ``90s``, ``15m``, ``24h``, ``7d``, ``250ms`` or
plain seconds. One reader for the quality monitor's settings (``OUTCOME_WINDOW``, ...) and
``python -m training collect`` (``--since``, ``OUTCOME_WINDOW``)."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["duration_seconds", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_seconds(text: str) -> float:
    """``text`` in seconds; ValueError when it is not a duration."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError("must be a duration such as 90s, 15m, 24h or 7d")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


def parse_duration(value: object) -> object:
    """A pydantic ``BeforeValidator``: a string is read as a duration, anything else is left to
    the field's own type."""
    if isinstance(value, str):
        return duration_seconds(value)
    return value
