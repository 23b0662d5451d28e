"""OpenTelemetry: one CONSUMER span per batch, linked to the trace context of each input message.

Off unless the standard variables ask for traces: ``OTEL_TRACES_EXPORTER`` (``otlp`` or
``console``), or an ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
(then ``otlp``). The SDK reads the rest itself: ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS``, ...
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keeps it off. When off, a batch
costs nothing: the messages' headers are not even read.

A batch mixes messages of many traces, so its span is a root of its own with one link per
message that carries a valid ``traceparent`` (OpenTelemetry's messaging conventions for batch
receiving); the headers themselves are carried to the outputs by ``scoring.tracing``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from scoring.decode import MessageLike
from scoring.errors import SettingsError
from scoring.tracing import trace_headers

_PROPAGATOR = TraceContextTextMapPropagator()


def message_links(messages: Sequence[MessageLike]) -> list[Link]:
    """A link to the span context of every message with a valid W3C ``traceparent``."""
    links = []
    for message in messages:
        carrier = {
            name: value.decode("latin-1") for name, value in trace_headers(message.headers())
        }
        if not carrier:
            continue
        context = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
        if context.is_valid:
            attributes: dict[str, str | int] = {
                "messaging.destination.partition.id": str(message.partition()),
                "messaging.kafka.offset": message.offset() or 0,
            }
            links.append(Link(context, attributes))
    return links


class BatchTracing:
    """``with tracing.span(messages):`` around one batch; a no-op without a tracer."""

    def __init__(self, tracer: trace.Tracer | None = None) -> None:
        self._tracer = tracer

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @contextmanager
    def span(self, messages: Sequence[MessageLike]) -> Iterator[None]:
        if self._tracer is None or not messages:
            yield
            return
        topic = messages[0].topic() or ""
        with self._tracer.start_as_current_span(
            f"process {topic}",
            kind=SpanKind.CONSUMER,
            links=message_links(messages),
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.batch.message_count": len(messages),
            },
        ):
            yield


def configure_tracing(environ: Mapping[str, str]) -> BatchTracing:
    """The batch tracing the OTEL_* variables in ``environ`` ask for (see the module docstring)."""
    exporter_name = exporter_choice(environ)
    if exporter_name is None:
        return BatchTracing()
    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "shopper-intent-scorer"}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))  # flushed at exit by the SDK
    return BatchTracing(provider.get_tracer("consumer"))


def exporter_choice(environ: Mapping[str, str]) -> str | None:
    """``otlp``, ``console`` or None (tracing off); an unsupported exporter is a SettingsError."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [n for n in names if n]
    if not names:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        return "otlp" if any(environ.get(v, "").strip() for v in endpoints) else None
    if names == ["none"]:
        return None
    if len(names) > 1 or names[0] not in ("otlp", "console"):
        raise SettingsError(
            "OTEL_TRACES_EXPORTER", environ["OTEL_TRACES_EXPORTER"], "use otlp, console or none"
        )
    return names[0]
