"""One root exception for the scoring runtime; every error says what failed and why."""

from __future__ import annotations

from typing import Final

from contract.builds import BuildGateError


class ScoringError(Exception):
    """Root of the scoring runtime's errors."""


class _NotShown:
    def __repr__(self) -> str:
        return "<not shown>"


NOT_SHOWN: Final = _NotShown()
"""The value of a SettingsError that must not be printed (a secret, a ``KAFKA_*`` property, a
``*_FILE``'s contents) or that is no one variable's (a rule across several settings)."""


class SettingsError(ScoringError):
    """A bad setting: names the environment variable(s) and the rule. Exit status 2.

    The message shows the value only when one is given: pass NOT_SHOWN for anything that may be
    a secret, since the message is printed and logged as it is.
    """

    def __init__(self, variable: str | tuple[str, ...], value: object, reason: str) -> None:
        self.variables = (variable,) if isinstance(variable, str) else variable
        self.variable = self.variables[0]
        self.value = value
        self.reason = reason
        names = ", ".join(self.variables)
        shown = "" if value is NOT_SHOWN else f"={value!r}"
        super().__init__(f"{names}{shown}: {reason}")


class GateError(ScoringError, BuildGateError):
    """A model gate refused the artifact; nothing is scored. Names the gate (``gate``) and why
    (``reason``): the runtime's name for ``contract.builds.BuildGateError``, whose gates it runs
    (``scoring.gates.gate_errors`` turns one into the other)."""
