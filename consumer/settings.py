"""The consumer's configuration: environment variables, read once in ``__main__``.

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

import logging
import os
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    InstanceOf,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from consumer.continuity import TopicRecreatedRule
from consumer.errors import NOT_SHOWN, SettingsError
from consumer.framing import Framing, InputFormat
from consumer.kafka import RESERVED_PROPERTIES
from consumer.limits import (
    DEAD_LETTER_MARGIN_BYTES,
    DEAD_LETTER_MIN_BUDGET_BYTES,
    LIBRDKAFKA_MESSAGE_MAX_BYTES,
    dead_letter_budget,
)
from contract.storage import S3_ENVIRONMENT, S3Options, StorageError, parse_location

logger = logging.getLogger(__name__)

ProcessingGuarantee = Literal["at_least_once", "exactly_once"]

# Settings of our own that start with KAFKA_ and so are not librdkafka properties.
_OWN_KAFKA_NAMES = frozenset({"KAFKA_BOOTSTRAP_SERVERS"})
# Fields made from several variables, not read from one of their name.
_COMPOSITE_FIELDS = frozenset({"kafka_properties", "object_store"})
DEPRECATED_NAMES: dict[str, str] = {"MAX_MESSAGE_BYTES": "INPUT_MAX_MESSAGE_BYTES"}
"""Old name -> new name; the old one still works, with a warning, until the next version."""


class Settings(BaseSettings):
    """Every knob of the scoring consumer. Field names are the environment variables."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=False, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """What load_settings passes in, only: it has read the environment (``*_FILE``,
        ``KAFKA_*``, old names), and pydantic-settings would read ``os.environ`` again."""
        return (init_settings,)

    model_uri: str = Field(
        description="Path, file:// or s3:// URI of a best_model_<variant>.joblib; its build's "
        "manifest.json beside it."
    )
    model_cache_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "shopper-intent-models",
        description="Where s3:// artifacts and their manifests are downloaded before the gates.",
    )
    model_fetch_attempts: int = Field(
        default=4, ge=1, le=20, description="Tries at fetching an s3:// build before exit 3."
    )
    shadow_model_uri: str | None = Field(
        default=None,
        description="A second build (any URI kind) scored beside the primary, never published "
        "as the primary output; a shadow that fails is switched off.",
    )
    shadow_output_topic: str | None = Field(
        default=None, description="Topic for the shadow's records (same format); unset: none."
    )
    shadow_batch_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Time budget of one shadow batch (the shadow scores on a thread of its own); "
        "a batch still unfinished after it switches the shadow off.",
    )
    object_store: InstanceOf[S3Options] = Field(
        default_factory=lambda: S3Options(attempts=1),
        description="How s3:// builds are reached: the AWS_* variables, read by S3Options.",
    )
    kafka_bootstrap_servers: str = Field(description="Comma-separated host:port list.")
    input_topic: str = Field(default="sessions", description="Topic of session events.")
    output_topic: str = Field(default="session-scores", description="Topic of scored records.")
    dlq_topic: str = Field(default="sessions-dlq", description="Dead-letter topic.")
    consumer_group: str = Field(default="shopper-intent-scorer", description="Consumer group id.")
    processing_guarantee: ProcessingGuarantee = Field(
        default="at_least_once", description="at_least_once or exactly_once (Kafka transactions)."
    )
    batch_max_messages: int = Field(default=1000, ge=1, le=100_000)
    batch_max_wait_ms: int = Field(default=100, ge=1, le=60_000)
    input_max_message_bytes: int = Field(
        default=65_536,
        ge=256,
        description="Larger input values are dead-lettered unread (was MAX_MESSAGE_BYTES).",
    )
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
    allow_library_mismatch: bool = Field(
        default=False, description="Serve a model built with other scikit-learn/xgboost versions."
    )
    model_trusted_keys: Path | None = Field(
        default=None,
        description="PEM file of the Ed25519 public keys whose signature a build must carry "
        "(several one after another while keys rotate); unset: signatures are not checked.",
    )
    require_signed_model: bool = Field(
        default=False,
        description="Refuse to start without MODEL_TRUSTED_KEYS (set in production).",
    )
    input_format: InputFormat = Field(
        default="auto",
        description="auto (plain JSON and Schema Registry framed values), json, or "
        "schema_registry_json (framed values only).",
    )
    schema_registry_schema_ids: frozenset[Annotated[int, Field(ge=0, le=2**31 - 1)]] | None = Field(
        default=None,
        description="Comma-separated schema ids accepted in framed values; unset accepts any "
        "but 0 (never assigned by a registry).",
    )
    on_topic_recreated: TopicRecreatedRule = Field(
        default="from_start",
        description="When the input topic was deleted and created again under the same name: "
        "from_start reads the new topic from its first offset; fail stops the consumer (exit 1) "
        "for an operator to decide.",
    )
    drift_enabled: bool = Field(
        default=True, description="Run the drift sentinel (needs a build with a reference profile)."
    )
    drift_window_events: int = Field(
        default=10_000, ge=100, le=10_000_000, description="Events in the drift window."
    )
    drift_refresh_events: int = Field(
        default=1_000, ge=1, description="Drift figures are recomputed every this many events."
    )
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    kafka_properties: dict[str, SecretStr] = Field(
        default_factory=dict, description="librdkafka properties from KAFKA_<PROPERTY> variables."
    )

    @field_validator("model_uri", "shadow_model_uri")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_location(value)
            except StorageError as exc:
                raise ValueError(exc.detail) from exc
        return value

    @field_validator("input_topic", "output_topic", "dlq_topic", "consumer_group")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("schema_registry_schema_ids", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: object) -> object:
        if isinstance(value, str):
            ids = [part.strip() for part in value.split(",") if part.strip()]
            if not ids:
                raise ValueError("must list at least one schema id, or be unset")
            return frozenset(ids)
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
    def _signed_needs_trusted_keys(self) -> Settings:
        if self.require_signed_model and self.model_trusted_keys is None:
            raise SettingsError(
                ("REQUIRE_SIGNED_MODEL", "MODEL_TRUSTED_KEYS"),
                NOT_SHOWN,
                "REQUIRE_SIGNED_MODEL=true needs MODEL_TRUSTED_KEYS",
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
    def model_path(self) -> Path:
        """MODEL_URI as a local path (``file://`` URIs and plain paths; s3:// is fetched first)."""
        location = parse_location(self.model_uri)
        if not isinstance(location, Path):
            raise SettingsError("MODEL_URI", self.model_uri, "not a local path")
        return location

    @property
    def framing(self) -> Framing:
        """INPUT_FORMAT and SCHEMA_REGISTRY_SCHEMA_IDS, as decoding takes them."""
        return Framing(self.input_format, self.schema_registry_schema_ids)

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

    def librdkafka_properties(self) -> dict[str, str]:
        """The user's librdkafka properties in clear text, for the client configs only."""
        return {name: secret.get_secret_value() for name, secret in self.kafka_properties.items()}


def _read_secret_file(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(variable, path, f"cannot read the file: {exc.strerror}") from None


def resolve_environment(environ: Mapping[str, str]) -> dict[str, object]:
    """Turn the raw environment into Settings' input: ``*_FILE`` secrets, ``KAFKA_*`` properties,
    the object store's ``S3Options`` and deprecated names."""
    readable = environment_names()
    values: dict[str, str] = {}
    for name, value in environ.items():
        upper = name.upper()
        base = upper.removesuffix("_FILE")
        if upper != base and (base.startswith("KAFKA_") or base in readable):
            values[base] = _read_secret_file(upper, value)
        else:
            values.setdefault(upper, value)
    for old, new in DEPRECATED_NAMES.items():
        if old in values:
            if new in values and values[new].strip() != values[old].strip():
                raise SettingsError((new, old), NOT_SHOWN, f"differ; set {new} only")
            logger.warning("%s is deprecated and will be removed: set %s instead", old, new)
            values.setdefault(new, values[old])
    kafka_properties: dict[str, str] = {}
    for upper, value in values.items():
        if not upper.startswith("KAFKA_") or upper in _OWN_KAFKA_NAMES:
            continue
        property_name = upper[len("KAFKA_") :].lower().replace("_", ".")
        if property_name in RESERVED_PROPERTIES:
            raise SettingsError(upper, NOT_SHOWN, "the consumer sets this property itself")
        kafka_properties[property_name] = value
    resolved: dict[str, object] = {
        name.lower(): value for name, value in values.items() if name in _field_env_names()
    }
    resolved["kafka_properties"] = kafka_properties
    # boto3 tries each request once: consumer.fetch retries a whole download itself
    # (MODEL_FETCH_ATTEMPTS). The *_FILE variants are resolved above, so this reads no file.
    resolved["object_store"] = S3Options.from_environ(values, attempts=1)
    return resolved


def _field_env_names() -> frozenset[str]:
    return frozenset(
        name.upper() for name in Settings.model_fields if name not in _COMPOSITE_FIELDS
    )


def environment_names() -> frozenset[str]:
    """Every variable read by its own name: the fields', the object store's and the deprecated
    ones. Besides these: ``KAFKA_<PROPERTY>``, and ``<NAME>_FILE`` for any of them."""
    return _field_env_names() | frozenset(S3_ENVIRONMENT) | frozenset(DEPRECATED_NAMES)


def _value_to_show(variable: str, environ: Mapping[str, str]) -> object:
    """The variable's value as set, for a message; NOT_SHOWN when it may be a secret."""
    secret_fields = {
        name.upper() for name, field in Settings.model_fields.items() if "SecretStr" in repr(field)
    }
    hidden = (
        variable.startswith("KAFKA_") and variable not in _OWN_KAFKA_NAMES
    ) or variable in secret_fields
    if hidden or f"{variable}_FILE" in environ or variable not in environ:
        return NOT_SHOWN
    return environ[variable]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings once; raise SettingsError naming the first bad variable."""
    source = os.environ if environ is None else environ
    raw = resolve_environment(source)
    try:
        # Values come from `raw` only, so tests and __main__ see one source of truth.
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = [str(part) for part in error["loc"]]
        if location and location[0] == "kafka_properties":
            variable = "KAFKA_" + "_".join(location[1:]).upper().replace(".", "_")
        else:
            variable = (location[0] if location else "settings").upper()
        upper = {name.upper(): value for name, value in source.items()}
        variable = next(
            (old for old, new in DEPRECATED_NAMES.items() if new == variable and old in upper),
            variable,
        )
        # `from None`: the ValidationError's own text shows its input, every setting included.
        raise SettingsError(variable, _value_to_show(variable, upper), error["msg"]) from None
    _ = settings.dead_letter_budget_bytes  # message.max.bytes leaves room for dead letters
    return settings
