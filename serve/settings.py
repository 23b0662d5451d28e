"""The HTTP front door's configuration: the runtime's ``ModelSettings`` plus the ``SERVE_*`` ones.

Read once in ``serve.__main__`` with the runtime's loader (``scoring.settings.load``), so every
convention is the consumer's: environment variables named after the fields, ``<NAME>_FILE`` for
secrets, a bad setting is a ``SettingsError`` naming the variable (exit 2), no secret shown.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, model_validator

from scoring.errors import SettingsError
from scoring.settings import ModelSettings, load


class ServeSettings(ModelSettings):
    """Every knob of the HTTP front door: the runtime's (ModelSettings) and its own."""

    serve_host: str = Field(default="0.0.0.0", description="Address the server listens on.")
    serve_port: int = Field(
        default=8080, ge=0, le=65_535, description="Port of the API, /metrics and the probes."
    )
    serve_max_events: int = Field(
        default=1_000,
        ge=1,
        le=100_000,
        description="Most events in one POST /v1/score list; a longer list is refused (413).",
    )
    serve_max_body_bytes: int = Field(
        default=1_048_576,
        ge=1_024,
        le=64 * 1_048_576,
        description="Largest request body; a larger one is refused (413) before it is read whole.",
    )
    serve_timeout_ms: int = Field(
        default=1_000,
        ge=10,
        le=600_000,
        description="Bound on one request, from its first byte to its answer: a body still "
        "arriving after it is 408, scoring still running after it is 503.",
    )
    serve_max_concurrency: int = Field(
        default=8,
        ge=1,
        le=1_024,
        description="Most POST /v1/score requests worked on at once (reading, scoring); one more "
        "is refused at once with 503 and Retry-After, never queued.",
    )
    serve_keep_alive_s: int = Field(
        default=75,
        ge=1,
        le=3_600,
        description="How long an idle keep-alive connection stays open. Longer than the idle "
        "timeout of the load balancer in front (60 s for most), so that the server never closes "
        "a connection the balancer is about to reuse.",
    )
    serve_shutdown_timeout_s: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="After SIGTERM: bound on finishing the requests in flight; past it they are "
        "cancelled and the process exits 1.",
    )

    @property
    def timeout_s(self) -> float:
        return self.serve_timeout_ms / 1000

    @model_validator(mode="after")
    def _bodies_are_json_text(self) -> ServeSettings:
        # The same decoding as the consumer's, with the same INPUT_FORMAT (a value starting
        # with the Schema Registry magic byte is read as a frame under `auto`, as on the topic);
        # but framed-only input cannot come over HTTP, whose bodies are JSON text.
        if self.input_format == "schema_registry_json":
            raise SettingsError(
                "INPUT_FORMAT",
                self.input_format,
                "serve takes JSON text: set auto or json (schema_registry_json refuses every "
                "plain JSON event)",
            )
        return self


def load_serve_settings(environ: Mapping[str, str] | None = None) -> ServeSettings:
    """Read the settings once (``os.environ`` unless given); SettingsError names the variable."""
    return load(ServeSettings, environ)
