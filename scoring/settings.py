"""The settings every front door shares, and the one way any front door's settings are read.

``ModelSettings`` holds what the runtime needs whatever the transport: the model and its gates,
the object store, the shadow, the drift sentinel, input decoding and logging. A front door
subclasses it with its own fields (``consumer.settings.Settings``: the Kafka ones) and reads
them once, in its ``__main__``, with ``load(SettingsClass, environ)``.

The conventions, the same for every front door:

- every setting is an environment variable of the field's name in upper case (``MODEL_URI``);
- a variable can be read from a file instead: ``<NAME>_FILE=/path``, the convention of
  Kubernetes Secret volumes; the object store's ``AWS_*`` variables are read the same way, by
  ``S3Options`` (``contract.storage.S3_ENVIRONMENT``);
- a deprecated name (``DEPRECATED_NAMES``) still works, with a warning;
- a bad setting is a ``SettingsError`` naming the variable(s), with the value only when it was
  set in the clear on a variable of our own (never a secret, a ``*_FILE``'s contents, a variable
  of a front door's convention such as ``KAFKA_*``, or a rule across several settings).

A front door says what it adds through three class-level hooks: ``composite_fields`` and
``composite_input`` (fields made from several variables), ``read_by_convention`` (variables
read by a convention of its own rather than by name) and ``variable_of`` (the variable behind a
validation error's location).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, ClassVar, Literal, TypeVar

from pydantic import Field, InstanceOf, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from contract.brokers import (
    BrokerConnection,
    BrokerSettingError,
    is_property_variable,
    properties_from_environment,
    property_variable,
)
from contract.decoding import DEFAULT_MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES
from contract.framing import Framing, InputFormat
from contract.storage import S3_ENVIRONMENT, S3Options, StorageError, parse_location
from scoring.errors import NOT_SHOWN, SettingsError

logger = logging.getLogger(__name__)

DEPRECATED_NAMES: dict[str, str] = {"MAX_MESSAGE_BYTES": "INPUT_MAX_MESSAGE_BYTES"}
"""Old name -> new name; the old one still works, with a warning, until the next version."""


def checked_location(value: str | None) -> str | None:
    """A setting that names a location (path, file:// or s3://): as it is, or ValueError."""
    if value is not None:
        try:
            parse_location(value)
        except StorageError as exc:
            raise ValueError(exc.detail) from exc
    return value


class ServiceSettings(BaseSettings):
    """What every long-running service of the project reads the same way: the object store and
    logging, and the hooks of ``load``. ``ModelSettings`` adds the model; a service that loads no
    model (the quality monitor) subclasses this one directly."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=False, extra="ignore")

    composite_fields: ClassVar[frozenset[str]] = frozenset({"object_store"})
    """Fields made from several variables (``composite_input``), not read from one of their
    name."""
    deprecated_names: ClassVar[Mapping[str, str]] = {}
    """Old name -> new name of the variables renamed (``DEPRECATED_NAMES`` for the runtime)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """What ``load`` passes in, only: it has read the environment (``*_FILE``, conventions,
        old names), and pydantic-settings would read ``os.environ`` again."""
        return (init_settings,)

    object_store: InstanceOf[S3Options] = Field(
        default_factory=lambda: S3Options(attempts=1),
        description="How s3:// builds are reached: the AWS_* variables, read by S3Options.",
    )
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- what a front door adds to reading the environment --------------------------------

    @classmethod
    def composite_input(cls, values: Mapping[str, str]) -> dict[str, object]:
        """The ``composite_fields`` from the resolved variables (upper-case names)."""
        # boto3 tries each request once: scoring.fetch retries a whole download itself
        # (MODEL_FETCH_ATTEMPTS). The *_FILE variants are resolved already: this reads no file.
        return {"object_store": S3Options.from_environ(values, attempts=1)}

    @classmethod
    def read_by_convention(cls, variable: str) -> bool:
        """A variable read by a convention of the front door's own, not by its name (the
        consumer's ``KAFKA_<PROPERTY>``): it may come from ``*_FILE``, its value is never shown."""
        return False

    @classmethod
    def variable_of(cls, location: Sequence[str]) -> str:
        """The environment variable behind a validation error's location."""
        return (location[0] if location else "settings").upper()


class BrokerSettings(ServiceSettings, BrokerConnection):
    """A service that reaches the Kafka brokers (``contract.brokers.BrokerConnection``): the
    ``KAFKA_<PROPERTY>`` convention as ``load``'s hooks. ``reserved_properties`` are the
    librdkafka properties the service sets itself; a variable naming one is a bad setting."""

    composite_fields: ClassVar[frozenset[str]] = ServiceSettings.composite_fields | {
        "kafka_properties"
    }
    reserved_properties: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def composite_input(cls, values: Mapping[str, str]) -> dict[str, object]:
        """The object store, and ``kafka_properties`` from the ``KAFKA_<PROPERTY>`` variables."""
        try:
            kafka_properties = properties_from_environment(values, cls.reserved_properties)
        except BrokerSettingError as exc:
            raise SettingsError(exc.variable, NOT_SHOWN, exc.reason) from None
        return {"kafka_properties": kafka_properties, **super().composite_input(values)}

    @classmethod
    def read_by_convention(cls, variable: str) -> bool:
        """``KAFKA_<PROPERTY>``: a librdkafka property, possibly a secret."""
        return is_property_variable(variable)

    @classmethod
    def variable_of(cls, location: Sequence[str]) -> str:
        return property_variable(location) or super().variable_of(location)


class ModelSettings(ServiceSettings):
    """The runtime's knobs, shared by every front door. Field names are the environment
    variables."""

    deprecated_names: ClassVar[Mapping[str, str]] = DEPRECATED_NAMES

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
    shadow_batch_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Time budget of one shadow batch (the shadow scores on a thread of its own); "
        "a batch still unfinished after it switches the shadow off.",
    )
    input_max_message_bytes: int = Field(
        default=DEFAULT_MAX_MESSAGE_BYTES,
        ge=MIN_MESSAGE_BYTES,
        description="Larger input values are refused unread (was MAX_MESSAGE_BYTES).",
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
    drift_enabled: bool = Field(
        default=True, description="Run the drift sentinel (needs a build with a reference profile)."
    )
    drift_window_events: int = Field(
        default=10_000, ge=100, le=10_000_000, description="Events in the drift window."
    )
    drift_refresh_events: int = Field(
        default=1_000, ge=1, description="Drift figures are recomputed every this many events."
    )

    @field_validator("model_uri", "shadow_model_uri")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        return checked_location(value)

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
    def _signed_needs_trusted_keys(self) -> ModelSettings:
        if self.require_signed_model and self.model_trusted_keys is None:
            raise SettingsError(
                ("REQUIRE_SIGNED_MODEL", "MODEL_TRUSTED_KEYS"),
                NOT_SHOWN,
                "REQUIRE_SIGNED_MODEL=true needs MODEL_TRUSTED_KEYS",
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


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def field_names(settings_cls: type[ServiceSettings]) -> frozenset[str]:
    """The variables read by the name of one field each."""
    return frozenset(
        name.upper()
        for name in settings_cls.model_fields
        if name not in settings_cls.composite_fields
    )


def environment_names(settings_cls: type[ServiceSettings]) -> frozenset[str]:
    """Every variable ``settings_cls`` reads by its own name: the fields', the object store's and
    the deprecated ones. Besides these: ``<NAME>_FILE`` for any of them, and the front door's
    conventions (``read_by_convention``)."""
    return (
        field_names(settings_cls)
        | frozenset(S3_ENVIRONMENT)
        | frozenset(settings_cls.deprecated_names)
    )


def _read_secret_file(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(variable, path, f"cannot read the file: {exc.strerror}") from None


def resolve_environment(
    settings_cls: type[ServiceSettings], environ: Mapping[str, str]
) -> dict[str, object]:
    """Turn the raw environment into ``settings_cls``' input: ``*_FILE`` secrets, deprecated
    names, and the composite fields (the object store's ``S3Options``, a front door's own)."""
    readable = environment_names(settings_cls)
    values: dict[str, str] = {}
    for name, value in environ.items():
        upper = name.upper()
        base = upper.removesuffix("_FILE")
        if upper != base and (base in readable or settings_cls.read_by_convention(base)):
            values[base] = _read_secret_file(upper, value)
        else:
            values.setdefault(upper, value)
    for old, new in settings_cls.deprecated_names.items():
        if old in values:
            if new in values and values[new].strip() != values[old].strip():
                raise SettingsError((new, old), NOT_SHOWN, f"differ; set {new} only")
            logger.warning("%s is deprecated and will be removed: set %s instead", old, new)
            values.setdefault(new, values[old])
    fields = field_names(settings_cls)
    resolved: dict[str, object] = {
        name.lower(): value for name, value in values.items() if name in fields
    }
    resolved.update(settings_cls.composite_input(values))
    return resolved


def _value_to_show(
    settings_cls: type[ServiceSettings], variable: str, environ: Mapping[str, str]
) -> object:
    """The variable's value as set, for a message; NOT_SHOWN when it may be a secret."""
    secret_fields = {
        name.upper()
        for name, field in settings_cls.model_fields.items()
        if "SecretStr" in repr(field)
    }
    hidden = settings_cls.read_by_convention(variable) or variable in secret_fields
    if hidden or f"{variable}_FILE" in environ or variable not in environ:
        return NOT_SHOWN
    return environ[variable]


def load(settings_cls: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    """Read a front door's settings once (``os.environ`` unless ``environ`` is given); raise
    SettingsError naming the first bad variable, never showing a secret."""
    source = os.environ if environ is None else environ
    raw = resolve_environment(settings_cls, source)
    try:
        # Values come from `raw` only, so tests and __main__ see one source of truth.
        return settings_cls.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = settings_cls.variable_of([str(part) for part in error["loc"]])
        upper = {name.upper(): value for name, value in source.items()}
        variable = next(
            (
                old
                for old, new in settings_cls.deprecated_names.items()
                if new == variable and old in upper
            ),
            variable,
        )
        # `from None`: the ValidationError's own text shows its input, every setting included.
        shown = _value_to_show(settings_cls, variable, upper)
        raise SettingsError(variable, shown, error["msg"]) from None
