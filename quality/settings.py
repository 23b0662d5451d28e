"""The quality monitor's configuration: environment variables, read once in ``__main__``.

The conventions are every service's (``scoring.settings.load``: ``<NAME>_FILE`` secrets,
errors that name the variable and never show a secret, exit 2); the brokers are reached as the
consumer reaches them (``contract.brokers``: ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_<PROPERTY>``).
Durations are written ``90s``, ``15m``, ``24h``, ``7d`` or as plain seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Final

from pydantic import BeforeValidator, Field, field_validator, model_validator

from contract.brokers import READER_PROPERTIES
from contract.durations import parse_duration
from contract.join import MissingOutcome
from contract.outcome import OUTCOME_TOPIC
from scoring.errors import NOT_SHOWN, SettingsError
from scoring.settings import BrokerSettings, checked_location, load

RESERVED_PROPERTIES: Final = READER_PROPERTIES | frozenset(
    {
        "statistics.interval.ms",
        # `range` co-assigns partition i of the scores and outcome topics: not the user's choice.
        "partition.assignment.strategy",
    }
)
"""The librdkafka properties the monitor sets itself (``quality.monitor.consumer_config``)."""

Duration = Annotated[float, BeforeValidator(parse_duration)]


class QualitySettings(BrokerSettings):
    """Every knob of the quality monitor. Field names are the environment variables."""

    reserved_properties: ClassVar[frozenset[str]] = RESERVED_PROPERTIES

    scores_topic: str = Field(
        default="session-scores", description="The scorer's OUTPUT_TOPIC (scored records)."
    )
    shadow_scores_topic: str | None = Field(
        default=None, description="The scorer's SHADOW_OUTPUT_TOPIC; unset: no shadow."
    )
    outcome_topic: str = Field(default=OUTCOME_TOPIC, description="Topic of outcome events.")
    quality_consumer_group: str = Field(
        default="shopper-intent-quality",
        description="The monitor's consumer group (used for partition assignment only).",
    )
    outcome_window: Duration = Field(
        default=86_400.0,
        gt=0,
        le=30 * 86_400,
        description="How long after its first score a session waits for its outcome.",
    )
    missing_outcome: MissingOutcome = Field(
        default="unknown",
        description="A session without an outcome when its window closes: negative (a "
        "non-purchase) or unknown (left out of the figures).",
    )
    quality_window_labels: int = Field(
        default=5_000, ge=10, le=1_000_000, description="Labelled sessions per live figure."
    )
    quality_sample_rate: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Share of sessions joined, chosen by a hash of session_id (both sides).",
    )
    quality_max_sessions: int = Field(
        default=2_000_000, ge=100, description="Most scored sessions held at once, waiting."
    )
    quality_max_pending_outcomes: int = Field(
        default=500_000, ge=100, description="Most outcomes held at once before their score."
    )
    quality_history: Duration = Field(
        default=86_400.0,
        ge=0,
        le=30 * 86_400,
        description="Read back OUTCOME_WINDOW plus this at start and after a rebalance, so "
        "the labelled window is rebuilt from the topics.",
    )
    quality_grace: Duration = Field(
        default=5.0,
        ge=0,
        le=3_600,
        description="A partition read to its end is trusted up to this long before now.",
    )
    quality_refresh: Duration = Field(
        default=10.0, gt=0, le=3_600, description="The figures are recomputed this often."
    )
    quality_model_registry: str | None = Field(
        default=None,
        description="Registry (path or s3:// prefix) holding <build_id>/manifest.json: the "
        "promised test figures; unset: none shown.",
    )
    metrics_port: int = Field(default=9401, ge=0, le=65_535, description="0 picks a free port.")

    @field_validator(
        "scores_topic", "outcome_topic", "quality_consumer_group", "shadow_scores_topic"
    )
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("quality_model_registry")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        return checked_location(value)

    @model_validator(mode="after")
    def _distinct_topics(self) -> QualitySettings:
        topics = self.topics
        if len(set(topics)) != len(topics):
            raise SettingsError(
                ("SCORES_TOPIC", "SHADOW_SCORES_TOPIC", "OUTCOME_TOPIC"),
                NOT_SHOWN,
                "must be different topics",
            )
        return self

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic read: scores, outcomes, then the shadow's when set."""
        shadow = () if self.shadow_scores_topic is None else (self.shadow_scores_topic,)
        return (self.scores_topic, self.outcome_topic, *shadow)


def load_settings(environ: Mapping[str, str] | None = None) -> QualitySettings:
    """Read the settings once; raise SettingsError naming the first bad variable."""
    return load(QualitySettings, environ)
