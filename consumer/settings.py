"""The consumer's configuration: environment variables, read once in ``__main__``.

Every setting is an environment variable of the same name in upper case (``MODEL_URI``,
``INPUT_TOPIC``, ...). Any librdkafka property can be passed as ``KAFKA_<PROPERTY>`` with dots
written as underscores (``KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT`` becomes
``security.protocol``). A secret can be read from a file instead: ``<NAME>_FILE=/path`` (for
example ``KAFKA_SASL_PASSWORD_FILE=/var/run/secrets/kafka/password``), the convention of
Kubernetes Secret volumes.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from consumer.errors import SettingsError
from consumer.framing import Framing, InputFormat
from consumer.limits import LIBRDKAFKA_MESSAGE_MAX_BYTES, dead_letter_budget
from contract.storage import S3Options, StorageError, parse_location

ProcessingGuarantee = Literal["at_least_once", "exactly_once"]

# Settings of our own that start with KAFKA_ and so are not librdkafka properties.
_OWN_KAFKA_NAMES = frozenset({"KAFKA_BOOTSTRAP_SERVERS"})
# librdkafka properties the consumer sets itself; overriding them would break its guarantees.
_RESERVED_PROPERTIES = frozenset(
    {
        "bootstrap.servers",
        "group.id",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "isolation.level",
        "transactional.id",
        "enable.idempotence",
        "acks",
    }
)


class Settings(BaseSettings):
    """Every knob of the scoring consumer. Field names are the environment variables."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=False, extra="ignore")

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
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_endpoint_url_s3: str | None = None
    aws_endpoint_url: str | None = None
    aws_region: str | None = None
    aws_default_region: str | None = None
    aws_request_checksum_calculation: str | None = None
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
    max_message_bytes: int = Field(
        default=65_536, ge=256, description="Larger input values are dead-lettered unread."
    )
    metrics_port: int = Field(default=9400, ge=0, le=65_535, description="0 picks a free port.")
    shutdown_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Bound on finishing the batch and closing."
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
    fault_crash_before_commit_batch: int = Field(
        default=0,
        ge=0,
        description="Testing only: SIGKILL this process after producing the Nth batch's records "
        "and before committing them (0, the default, never does).",
    )
    input_format: InputFormat = Field(
        default="auto",
        description="auto (plain JSON and Schema Registry framed values), json, or "
        "schema_registry_json (framed values only).",
    )
    schema_registry_schema_ids: frozenset[Annotated[int, Field(ge=0, le=2**31 - 1)]] | None = Field(
        default=None,
        description="Comma-separated schema ids accepted in framed values; unset accepts any.",
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

    @model_validator(mode="after")
    def _distinct_topics(self) -> Settings:
        topics = [self.input_topic, self.output_topic, self.dlq_topic]
        if len(set(topics)) != 3:
            raise ValueError("INPUT_TOPIC, OUTPUT_TOPIC and DLQ_TOPIC must be three topics")
        if self.shadow_output_topic is not None:
            if self.shadow_output_topic in topics:
                raise ValueError(
                    "SHADOW_OUTPUT_TOPIC must differ from INPUT, OUTPUT and DLQ topics"
                )
            if self.shadow_model_uri is None:
                raise ValueError("SHADOW_OUTPUT_TOPIC is set but SHADOW_MODEL_URI is not")
        return self

    @model_validator(mode="after")
    def _signed_needs_trusted_keys(self) -> Settings:
        if self.require_signed_model and self.model_trusted_keys is None:
            raise ValueError("REQUIRE_SIGNED_MODEL=true needs MODEL_TRUSTED_KEYS")
        return self

    @property
    def model_path(self) -> Path:
        """MODEL_URI as a local path (``file://`` URIs and plain paths; s3:// is fetched first)."""
        location = parse_location(self.model_uri)
        if not isinstance(location, Path):
            raise SettingsError("MODEL_URI", self.model_uri, "not a local path")
        return location

    def s3_options(self, attempts: int = 1) -> S3Options:
        """The object store's settings (``AWS_*``, already resolved from ``*_FILE``)."""
        values = {
            name.upper(): value.get_secret_value() if isinstance(value, SecretStr) else value
            for name in type(self).model_fields
            if name.startswith("aws_") and (value := getattr(self, name)) is not None
        }
        return S3Options.from_environ(values, attempts=attempts)

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
        try:
            return dead_letter_budget(LIBRDKAFKA_MESSAGE_MAX_BYTES if raw is None else int(raw))
        except ValueError as exc:
            raise SettingsError("KAFKA_MESSAGE_MAX_BYTES", raw, str(exc)) from exc

    def librdkafka_properties(self) -> dict[str, str]:
        """The user's librdkafka properties in clear text, for the client configs only."""
        return {name: secret.get_secret_value() for name, secret in self.kafka_properties.items()}


def _read_secret_file(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(variable, path, f"cannot read the file: {exc.strerror}") from exc


def resolve_environment(environ: Mapping[str, str]) -> dict[str, object]:
    """Turn the raw environment into Settings' input: ``*_FILE`` secrets, ``KAFKA_*`` properties."""
    values: dict[str, str] = {}
    for name, value in environ.items():
        upper = name.upper()
        if upper.endswith("_FILE") and (
            upper.startswith("KAFKA_") or upper[: -len("_FILE")] in _field_env_names()
        ):
            values[upper[: -len("_FILE")]] = _read_secret_file(upper, value)
        else:
            values.setdefault(upper, value)
    kafka_properties: dict[str, str] = {}
    for upper, value in values.items():
        if not upper.startswith("KAFKA_") or upper in _OWN_KAFKA_NAMES:
            continue
        property_name = upper[len("KAFKA_") :].lower().replace("_", ".")
        if property_name in _RESERVED_PROPERTIES:
            raise SettingsError(upper, value, "the consumer sets this property itself")
        kafka_properties[property_name] = value
    resolved: dict[str, object] = {
        name.lower(): value for name, value in values.items() if name in _field_env_names()
    }
    resolved["kafka_properties"] = kafka_properties
    return resolved


def _field_env_names() -> frozenset[str]:
    return frozenset(name.upper() for name in Settings.model_fields if name != "kafka_properties")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings once; raise SettingsError naming the first bad variable."""
    raw = resolve_environment(os.environ if environ is None else environ)
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
        value = error.get("input")
        shown = "<secret>" if "kafka_properties" in location else value
        raise SettingsError(variable, shown, error["msg"]) from exc
    _ = settings.dead_letter_budget_bytes  # message.max.bytes leaves room for dead letters
    return settings
