"""The README's "Collect configuration" table lists exactly what ``python -m training collect``
reads (``training.collect.ENVIRONMENT``, the conventions and the object store's variables)."""

from __future__ import annotations

import re
from pathlib import Path

from contract.storage import S3_ENVIRONMENT
from training.collect import ENVIRONMENT

README = Path(__file__).resolve().parents[3] / "README.md"
CONVENTIONS = frozenset({"KAFKA_<PROPERTY>", "<NAME>_FILE"})


def documented_variables() -> set[str]:
    section = README.read_text(encoding="utf-8").split("### Collect configuration", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "no table under ### Collect configuration"
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def test_every_variable_of_collect_and_only_those_is_documented() -> None:
    assert documented_variables() == set(ENVIRONMENT) | CONVENTIONS | set(S3_ENVIRONMENT)
