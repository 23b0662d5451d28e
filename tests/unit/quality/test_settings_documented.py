"""The README's "Quality monitor configuration" table lists exactly what the monitor reads:
derived from the code (``scoring.settings.environment_names``) both ways."""

from __future__ import annotations

import re
from pathlib import Path

from quality.settings import QualitySettings
from scoring.settings import environment_names

README = Path(__file__).resolve().parents[3] / "README.md"
CONVENTIONS = frozenset({"KAFKA_<PROPERTY>", "<NAME>_FILE"})


def documented_variables() -> set[str]:
    section = README.read_text(encoding="utf-8").split("### Quality monitor configuration", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "no table under ### Quality monitor configuration"
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def test_every_variable_of_the_monitor_and_only_those_is_documented() -> None:
    assert documented_variables() == environment_names(QualitySettings) | CONVENTIONS
