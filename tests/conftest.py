"""The whole suite's hooks: servers shared by pytest-xdist workers, and the order of the tests.

`make test` runs the suite in several xdist workers (``--dist loadscope``): each test module is
sent whole to one worker, so that a module's fixtures are built once. The servers every module
shares (the broker, the S3 server, Prometheus, the trained build) are started once for the run
(``tests.session_servers``). (``--dist loadgroup`` would let modules share a worker, but
pytest-xdist 3.8 marks the groups in an attribute pytest 9 no longer reads.)
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
    """``slow`` tests first (a stable sort): workers take modules in the order of the items, and
    the slow ones (training runs, benchmark smoke runs, broker faults) started last would leave
    one worker busy long after the others ran out of work."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
