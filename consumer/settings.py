"""The consumer's configuration: environment variables, read once in ``__main__``.

``Settings`` is the runtime's ``scoring.settings.ModelSettings`` (the model, its gates, shadow,
drift, decoding, logs) plus the Kafka front door's own fields; ``load_settings`` reads it with
the shared conventions (``scoring.settings.load``: ``<NAME>_FILE`` secrets, deprecated names,
errors that name the variable and never show a secret).

Every setting is an environment variable of the same name in upper case (``MODEL_URI``,
``INPUT_TOPIC``, ...). Any librdkafka property can be passed as ``KAFKA_<PROPERTY>`` with dots
written as underscores (``KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT`` becomes
``security.protocol``). A secret can be read from a file instead: ``<NAME>_FILE=/path`` (for
example ``KAFKA_SASL_PASSWORD_FILE=/var/run/secrets/kafka/password``), the convention of
Kubernetes Secret volumes. The object store's ``AWS_*`` variables are read the same way, by
``S3Options`` (``contract.storage.S3_ENVIRONMENT``).

No message ever shows a secret: a bad setting is reported by name, with its value only when the
value was set in the clear on a variable of our own (never a ``KAFKA_*`` property, a ``*_FILE``'s
contents or a rule across several settings).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from consumer.continuity import TopicRecreatedRule
from consumer.kafka import RESERVED_PROPERTIES
from consumer.publish import (
    DEAD_LETTER_MARGIN_BYTES,
    DEAD_LETTER_MIN_BUDGET_BYTES,
    LIBRDKAFKA_MESSAGE_MAX_BYTES,
    dead_letter_budget,
)
from scoring.errors import NOT_SHOWN, SettingsError
from scoring.settings import BrokerSettings, ModelSettings, load

ProcessingGuarantee = Literal["at_least_once", "exactly_once"]


class Settings(ModelSettings, BrokerSettings):
    """Every knob of the scoring consumer: the runtime's (ModelSettings), the brokers'
    (``scoring.settings.BrokerSettings``) and its own. Field names are the environment
    variables."""

    reserved_properties: ClassVar[frozenset[str]] = RESERVED_PROPERTIES

    shadow_output_topic: str | None = Field(
        default=None, description="Topic for the shadow's records (same format); unset: none."
    )
    input_topic: str = Field(default="sessions", description="Topic of session events.")
    output_topic: str = Field(default="session-scores", description="Topic of scored records.")
    dlq_topic: str = Field(default="sessions-dlq", description="Dead-letter topic.")
    consumer_group: str = Field(default="shopper-intent-scorer", description="Consumer group id.")
    processing_guarantee: ProcessingGuarantee = Field(
        default="at_least_once", description="at_least_once or exactly_once (Kafka transactions)."
    )
    batch_max_messages: int = Field(default=1000, ge=1, le=100_000)
    batch_max_wait_ms: int = Field(default=100, ge=1, le=60_000)
    metrics_port: int = Field(default=9400, ge=0, le=65_535, description="0 picks a free port.")
    shutdown_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Bound on finishing the batch and closing."
    )
    publish_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="at_least_once: a batch whose records are not all acknowledged within it is "
        "given up: every batch in flight is rewound and read again.",
    )
    transactional_id: str | None = Field(
        default=None,
        description="exactly_once only; default <CONSUMER_GROUP>-<hostname>, stable per replica.",
    )
    on_topic_recreated: TopicRecreatedRule = Field(
        default="from_start",
        description="When the input topic was deleted and created again under the same name: "
        "from_start reads the new topic from its first offset; fail stops the consumer (exit 1) "
        "for an operator to decide.",
    )

    @field_validator("input_topic", "output_topic", "dlq_topic", "consumer_group")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    # A rule across settings raises SettingsError itself (pydantic lets it through): it names
    # the variables and no value, as the model's input holds every setting, secrets included.

    @model_validator(mode="after")
    def _distinct_topics(self) -> Settings:
        names = ("INPUT_TOPIC", "OUTPUT_TOPIC", "DLQ_TOPIC")
        topics = [self.input_topic, self.output_topic, self.dlq_topic]
        if len(set(topics)) != 3:
            raise SettingsError(names, NOT_SHOWN, "must be three different topics")
        if self.shadow_output_topic is not None:
            if self.shadow_output_topic in topics:
                raise SettingsError(
                    ("SHADOW_OUTPUT_TOPIC", *names), NOT_SHOWN, "must be four different topics"
                )
            if self.shadow_model_uri is None:
                raise SettingsError(
                    ("SHADOW_OUTPUT_TOPIC", "SHADOW_MODEL_URI"),
                    NOT_SHOWN,
                    "SHADOW_OUTPUT_TOPIC is set but SHADOW_MODEL_URI is not",
                )
        return self

    @model_validator(mode="after")
    def _transactional_id_needs_exactly_once(self) -> Settings:
        if self.transactional_id is not None and self.processing_guarantee != "exactly_once":
            raise SettingsError(
                ("TRANSACTIONAL_ID", "PROCESSING_GUARANTEE"),
                NOT_SHOWN,
                "TRANSACTIONAL_ID is used by exactly_once only; unset it",
            )
        return self

    @property
    def effective_transactional_id(self) -> str:
        return self.transactional_id or f"{self.consumer_group}-{socket.gethostname()}"

    @property
    def dead_letter_budget_bytes(self) -> int:
        """Bytes a dead letter may take: the producer's ``message.max.bytes`` (librdkafka's
        1,000,000 unless ``KAFKA_MESSAGE_MAX_BYTES`` says otherwise) minus a margin."""
        raw = self.librdkafka_properties().get("message.max.bytes")
        if raw is None:
            return dead_letter_budget(LIBRDKAFKA_MESSAGE_MAX_BYTES)
        least = DEAD_LETTER_MIN_BUDGET_BYTES + DEAD_LETTER_MARGIN_BYTES
        reason = f"must be an integer of at least {least} (room for a dead letter)"
        try:
            return dead_letter_budget(int(raw))
        except ValueError:  # its message shows the value: a KAFKA_* value is never shown
            raise SettingsError("KAFKA_MESSAGE_MAX_BYTES", NOT_SHOWN, reason) from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings once; raise SettingsError naming the first bad variable."""
    settings = load(Settings, environ)
    _ = settings.dead_letter_budget_bytes  # message.max.bytes leaves room for dead letters
    return settings
