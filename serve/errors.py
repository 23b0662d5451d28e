"""One root exception for the HTTP front door; a refusal carries its status, code and reason."""

from __future__ import annotations

from collections.abc import Mapping

from scoring.errors import ScoringError

RETRY_AFTER_S = 1
"""What ``Retry-After`` says on a 503: the overload or the model load is seconds long at most."""


class ServeError(ScoringError):
    """Root of the HTTP front door's errors."""


class RequestRefused(ServeError):  # noqa: N818 (reads as what happened to the request)
    """A request refused as a whole, before or instead of scoring its events.

    ``error_type`` is the answer's ``error.type`` (``body_too_large``, ``overloaded``, ...),
    ``field`` what it is about (``<body>`` for the request's body), ``reason`` the sentence a
    client reads; none of them ever holds a stack trace or a setting's secret.
    """

    def __init__(
        self,
        status: int,
        error_type: str,
        reason: str,
        field: str = "<body>",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.error_type = error_type
        self.field = field
        self.reason = reason
        self.headers = dict(headers or {})
        super().__init__(f"{status} {error_type}: {reason}")


def overloaded(max_concurrency: int) -> RequestRefused:
    return RequestRefused(
        503,
        "overloaded",
        f"SERVE_MAX_CONCURRENCY={max_concurrency} requests are being worked on; retry later",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def timed_out(timeout_ms: int) -> RequestRefused:
    return RequestRefused(
        503,
        "timeout",
        f"no answer within SERVE_TIMEOUT_MS={timeout_ms}",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def not_ready() -> RequestRefused:
    return RequestRefused(
        503,
        "not_ready",
        "the model is still loading (see /readyz)",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
