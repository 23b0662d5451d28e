"""What the training commands' options share (argparse types)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1; an argparse error naming the value otherwise."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
