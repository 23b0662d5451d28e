"""Prometheus metrics of the HTTP front door, on a registry passed in (never the global one).

The runtime's own (``scoring.metrics.RuntimeMetrics``: events by outcome, decode/score stage
durations, model info, scoring path, drift, shadow) keep the consumer's names, as do
``scorer_batch_size`` (events per scored batch: those of the requests scored together) and
``scorer_ready``. The requests themselves are ``serve_*``: counts by path and status, durations
in seconds, the work in flight, and every refusal by its ``error.type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scoring.metrics import RuntimeMetrics

PATHS: Final[tuple[str, ...]] = ("/v1/score", "/v1/model", "/healthz", "/readyz", "/metrics")
"""The ``path`` label's values, besides ``other`` (any unknown path: a bounded label)."""
SERVE_METRIC_NAMES: Final[tuple[str, ...]] = (
    "serve_requests_total",
    "serve_request_duration_seconds",
    "serve_requests_in_flight",
    "serve_refusals_total",
    "scorer_batch_size",
    "scorer_ready",
)
"""The front door's own metrics (the runtime's: ``scoring.metrics.RUNTIME_METRIC_NAMES``)."""

_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)  # the consumer's


def path_label(path: str) -> str:
    return path if path in PATHS else "other"


@dataclass(frozen=True)
class ServeMetrics:
    """The runtime's metrics plus the HTTP ones, on one registry."""

    registry: CollectorRegistry
    runtime: RuntimeMetrics
    requests: Counter
    request_duration: Histogram
    in_flight: Gauge
    refusals: Counter
    batch_size: Histogram
    ready: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ServeMetrics:
        return cls(
            registry=registry,
            runtime=RuntimeMetrics.create(registry),
            requests=Counter(
                "serve_requests",
                "HTTP requests answered, by path (`other`: any unknown path) and status code.",
                ["path", "status"],
                registry=registry,
            ),
            request_duration=Histogram(
                "serve_request_duration_seconds",
                "From a request's arrival to its answer's last byte, by path.",
                ["path"],
                buckets=_REQUEST_BUCKETS,
                registry=registry,
            ),
            in_flight=Gauge(
                "serve_requests_in_flight",
                "POST /v1/score requests holding a SERVE_MAX_CONCURRENCY slot (reading, scoring, "
                "or timed out with their scoring still running).",
                registry=registry,
            ),
            refusals=Counter(
                "serve_refusals",
                "Requests refused as a whole, by error.type: body_too_large, too_many_events, "
                "unsupported_media_type, invalid_json, body_timeout, overloaded, timeout, "
                "not_ready, ...",
                ["type"],
                registry=registry,
            ),
            batch_size=Histogram(
                "scorer_batch_size",
                "Events per scored batch (the POST /v1/score requests scored together).",
                buckets=_BATCH_SIZE_BUCKETS,
                registry=registry,
            ),
            ready=Gauge(
                "scorer_ready",
                "1 when the model passed its gates and the server takes requests.",
                registry=registry,
            ),
        )
