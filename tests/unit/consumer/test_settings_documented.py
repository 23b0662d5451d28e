"""The README's "Consumer configuration" table and the code read the same variables.

Both directions are derived from the code, so neither side can drift: a new setting without a
row fails, and so does a row for a setting that no longer exists. The names come from the one
mechanism every front door reads its settings with (``scoring.settings.environment_names`` of
its settings class), so the runtime's shared settings are checked here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from consumer.settings import Settings
from consumer.spans import exporter_choice
from contract.storage import S3Options
from scoring.settings import DEPRECATED_NAMES, ModelSettings, environment_names

README = Path(__file__).resolve().parents[3] / "README.md"
CONVENTIONS = frozenset({"KAFKA_<PROPERTY>", "<NAME>_FILE"})
"""Rows that stand for families of variables (consumer/settings.py's module docstring)."""


class RecordingEnviron(Mapping[str, str]):
    """An empty environment that remembers every name asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(name)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def documented_variables() -> set[str]:
    """The names in the first column of the table under "## Consumer configuration"."""
    section = README.read_text(encoding="utf-8").split("## Consumer configuration", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "no table under ## Consumer configuration"
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def read_by_the_tracing() -> set[str]:
    environ = RecordingEnviron()
    assert exporter_choice(environ) is None
    return environ.asked


def test_every_variable_the_settings_read_is_documented() -> None:
    missing = (environment_names(Settings) | CONVENTIONS) - documented_variables()
    assert not missing, f"README.md, Consumer configuration: no row for {sorted(missing)}"


def test_every_documented_variable_is_read() -> None:
    known = environment_names(Settings) | CONVENTIONS | read_by_the_tracing()
    # KAFKA_<PROPERTY> rows that single out one property (KAFKA_MESSAGE_MAX_BYTES) are read by
    # the convention; the rest must be read by name.
    stale = {name for name in documented_variables() - known if not name.startswith("KAFKA_")}
    assert not stale, f"README.md documents variables nothing reads: {sorted(stale)}"


def test_the_object_store_and_deprecated_names_are_among_them() -> None:
    """What S3Options asks the environment for, asked of it directly, is in the list."""
    environ = RecordingEnviron()
    S3Options.from_environ(environ)
    read = {name.removesuffix("_FILE") for name in environ.asked}
    assert read
    assert read <= environment_names(Settings)
    assert set(DEPRECATED_NAMES) <= environment_names(Settings)
    assert set(DEPRECATED_NAMES.values()) <= environment_names(Settings)


def test_the_runtime_settings_are_among_them() -> None:
    """The consumer reads every variable of the runtime's shared settings, by the same name."""
    shared = environment_names(ModelSettings)
    assert {"MODEL_URI", "INPUT_MAX_MESSAGE_BYTES", "DRIFT_ENABLED", "LOG_LEVEL"} <= shared
    assert shared <= environment_names(Settings)
