"""Fixtures of the quality monitor's integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import Start, start_monitor_fixture


@pytest.fixture
def start_monitor(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Start]:
    """``start_monitor(env)``: a ``python -m quality`` process, stopped at the end of the test."""
    yield from start_monitor_fixture(tmp_path, kafka_bootstrap)
