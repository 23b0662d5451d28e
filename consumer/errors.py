"""One root exception for the consumer; every error says what failed and why."""

from __future__ import annotations


class ConsumerError(Exception):
    """Root of the consumer's errors."""


class SettingsError(ConsumerError):
    """A bad setting: names the environment variable, its value and the rule. Exit status 2."""

    def __init__(self, variable: str, value: object, reason: str) -> None:
        self.variable = variable
        self.value = value
        self.reason = reason
        super().__init__(f"{variable}={value!r}: {reason}")


class GateError(ConsumerError):
    """A model gate refused the artifact; nothing is consumed. Names the gate."""

    def __init__(self, gate: str, reason: str) -> None:
        self.gate = gate
        self.reason = reason
        super().__init__(f"model gate '{gate}' failed: {reason}")


class PublishError(ConsumerError):
    """An output or dead-letter record was not acknowledged; its input offset is not committed."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"publishing to {topic} failed: {reason}")
