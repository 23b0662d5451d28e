"""The README's "Serve configuration" table lists exactly serve's own variables.

The runtime's variables are the consumer's table's business (tests/unit/consumer/
test_settings_documented.py); derived from the code both ways, so neither side can drift.
"""

from __future__ import annotations

import re
from pathlib import Path

from scoring.settings import ModelSettings, environment_names
from serve.settings import ServeSettings

README = Path(__file__).resolve().parents[3] / "README.md"


def documented_variables() -> set[str]:
    section = README.read_text(encoding="utf-8").split("### Serve configuration", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "no table under ### Serve configuration"
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def test_every_variable_of_serve_and_only_those_is_documented() -> None:
    own = environment_names(ServeSettings) - environment_names(ModelSettings)
    assert own, "serve reads variables of its own"
    assert all(name.startswith("SERVE_") for name in own)
    assert documented_variables() == own
