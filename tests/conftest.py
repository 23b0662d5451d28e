"""The whole suite's hooks: servers shared by pytest-xdist workers, and how tests are grouped.

`make test` runs the suite in several xdist workers (``--dist loadgroup``). Each test module is
one group, sent whole to one worker, so that a module's fixtures are built once; modules that
share a server a test may break (the fault suite's private broker) declare one group between
them with ``pytest.mark.xdist_group``. The servers every module shares (the broker, the S3
server, Prometheus, the trained build) are started once for the run (``tests.session_servers``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.session_servers import CONTROLLER_PID, RECORDS_DIRECTORY, stop_recorded

_RECORDS = pytest.StashKey[Path]()


def pytest_configure_node(node: Any) -> None:
    """Controller side of xdist: one records directory for the run, handed to every worker."""
    config: pytest.Config = node.config
    if _RECORDS not in config.stash:
        config.stash[_RECORDS] = Path(tempfile.mkdtemp(prefix="pytest-session-servers-"))
    node.workerinput[RECORDS_DIRECTORY] = str(config.stash[_RECORDS])
    node.workerinput[CONTROLLER_PID] = os.getpid()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Controller side of xdist: the workers are gone; stop the servers they started."""
    records = config.stash.get(_RECORDS, None)
    if records is not None:
        stop_recorded(records)
        shutil.rmtree(records, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test without an ``xdist_group`` is grouped with its module."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
