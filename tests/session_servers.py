"""One server per test run, also when pytest-xdist spreads the run over several workers.

Without xdist a session fixture starts its server and stops it when the session ends, as usual.
With xdist every worker is a process with session fixtures of its own; a broker per worker
would cost a JVM and ~15 s each. So the first worker that needs a server starts it, under a file
lock in the run's shared temporary directory, and records how to reach it and how to stop it;
the other workers read that record. The server belongs to the run, not to the worker that
happened to start it (a worker can finish while others still use it): the controller, which
outlives every worker, makes the directory, hands it and its own process id to each worker
(``workerinput``), and stops each recorded server when the run ends (``tests/conftest.py``);
the servers that take an owner process watch the controller's, so a killed run leaves nothing
behind either.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CONTROLLER_PID = "session_servers_owner_pid"
RECORDS_DIRECTORY = "session_servers_directory"
"""The keys under which the controller hands its process id and the records' directory to each
worker (``workerinput``)."""


@dataclass(frozen=True)
class Started:
    """What a start function returns: the value the fixtures need (JSON), and how the server
    is stopped: a command to run, or a process to terminate."""

    value: dict[str, Any]
    stop_command: list[str] | None = None
    stop_pid: int | None = None


@dataclass(frozen=True)
class SessionServers:
    """Where this run's shared servers are recorded (None: a run without xdist workers)."""

    shared: Path | None
    owner_pid: int

    @classmethod
    def of(cls, config: pytest.Config) -> SessionServers:
        workerinput = getattr(config, "workerinput", None)
        if workerinput is None or RECORDS_DIRECTORY not in workerinput:
            return cls(None, os.getpid())
        return cls(Path(workerinput[RECORDS_DIRECTORY]), int(workerinput[CONTROLLER_PID]))

    @contextmanager
    def once(self, name: str, start: Callable[[int], Started]) -> Iterator[dict[str, Any]]:
        """The value of server ``name``: started here by ``start(owner_pid)``, or by another
        worker of the run before. Stopped at the end of the session (no xdist) or of the run."""
        if self.shared is None:
            started = start(self.owner_pid)
            try:
                yield started.value
            finally:
                stop(started)
            return
        record = self.shared / f"{name}.json"
        with _locked(self.shared / f"{name}.lock"):
            if not record.exists():
                started = start(self.owner_pid)
                partial = record.with_suffix(".tmp")
                partial.write_text(json.dumps(started.__dict__), encoding="utf-8")
                partial.replace(record)
        yield json.loads(record.read_text(encoding="utf-8"))["value"]


def stop(started: Started) -> None:
    """Stop one server (best effort: the run is over, a failure here only leaves a log line)."""
    if started.stop_command is not None:
        subprocess.run(started.stop_command, capture_output=True, timeout=120, check=False)
    if started.stop_pid is not None:
        with suppress(ProcessLookupError):
            os.kill(started.stop_pid, signal.SIGTERM)


def stop_recorded(shared: Path) -> None:
    """The controller's part: stop every server a worker recorded for this run."""
    for record in sorted(shared.glob("*.json")):
        stop(Started(**json.loads(record.read_text(encoding="utf-8"))))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
