"""One root exception for the Kafka consumer; every error says what failed and why.

The runtime's errors (a bad setting, a refused model) are ``scoring.errors``'."""

from __future__ import annotations


class ConsumerError(Exception):
    """Root of the consumer's errors."""


class PublishError(ConsumerError):
    """An output or dead-letter record was not acknowledged; its input offset is not committed."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"publishing to {topic} failed: {reason}")
