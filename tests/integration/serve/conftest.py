"""Fixtures for serve's integration tests: real ``python -m serve`` processes on real sockets.

``model_build`` (one real build for the session) lives in tests/integration/conftest.py; the
consumer's fixtures are re-exported for the one test that compares the two front doors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.consumer.conftest import (  # noqa: F401 (fixtures, used by name)
    model_uri,
    start_consumer,
    topics,
    topics_factory,
)
from tests.integration.serve.process import ServeProcess

ServeFactory = Callable[..., ServeProcess]


@pytest.fixture
def start_serve(model_uri: str, tmp_path: Path) -> Iterator[ServeFactory]:  # noqa: F811
    """``start_serve(**env)`` starts ``python -m serve`` (MODEL_URI: the session's build unless
    given); each process is killed at teardown if still running."""
    started: list[ServeProcess] = []

    def start(**env: str) -> ServeProcess:
        settings = {"MODEL_URI": model_uri, "LOG_FORMAT": "json", **env}
        process = ServeProcess(settings, tmp_path / f"serve-{len(started)}.log")
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.ensure_stopped()
