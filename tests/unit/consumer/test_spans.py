"""Batch spans: one CONSUMER span per batch with a link to each traced input (SDK in-memory
exporter), and the OTEL_* variables that switch them on."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from consumer.spans import BatchTracing, configure_tracing, exporter_choice
from scoring.errors import SettingsError
from tests.unit.scoring.fakes import FakeMessage

TRACE_A = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_B = "0af7651916cd43dd8448eb211c80319c"


def traceparent(trace_id: str, span_id: str) -> list[tuple[str, bytes]]:
    return [("traceparent", f"00-{trace_id}-{span_id}-01".encode())]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> BatchTracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return BatchTracing(provider.get_tracer("test"))


def test_a_batch_is_one_consumer_span_linked_to_each_traced_message(
    tracing: BatchTracing, exporter: InMemorySpanExporter
) -> None:
    messages = [
        FakeMessage(b"{}", offset=1, headers=traceparent(TRACE_A, "00f067aa0ba902b7")),
        FakeMessage(b"{}", offset=2),  # no trace context: no link
        FakeMessage(b"{}", offset=3, headers=traceparent(TRACE_B, "b7ad6b7169203331")),
        FakeMessage(b"{}", offset=4, headers=[("traceparent", b"not-a-traceparent")]),
    ]
    with tracing.span(messages):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.CONSUMER
    assert span.name == "process sessions"
    assert span.attributes is not None
    assert span.attributes["messaging.batch.message_count"] == 4
    assert span.parent is None  # a batch of many traces is a root of its own
    linked = [
        (f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") for link in span.links
    ]
    assert linked == [(TRACE_A, "00f067aa0ba902b7"), (TRACE_B, "b7ad6b7169203331")]
    assert [link.attributes["messaging.kafka.offset"] for link in span.links] == [1, 3]  # type: ignore[index]


def test_an_exception_in_the_batch_is_recorded_and_raised(
    tracing: BatchTracing, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(RuntimeError), tracing.span([FakeMessage(b"{}")]):
        raise RuntimeError("boom")
    (span,) = exporter.get_finished_spans()
    assert not span.status.is_ok


def test_without_a_tracer_nothing_is_read() -> None:
    class Untouchable(FakeMessage):
        def headers(self) -> None:
            raise AssertionError("headers read while tracing is off")

    tracing = BatchTracing()
    assert not tracing.enabled
    with tracing.span([Untouchable(b"{}")]):
        current = trace.get_current_span().get_span_context()
    assert not current.is_valid  # no span was started around the batch


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"OTEL_SERVICE_NAME": "x"}, None),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318"}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, None),
    ],
)
def test_the_otel_variables_choose_the_exporter(
    environ: dict[str, str], expected: str | None
) -> None:
    assert exporter_choice(environ) == expected
    assert configure_tracing(environ).enabled is (expected is not None)


def test_an_unsupported_exporter_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="OTEL_TRACES_EXPORTER"):
        exporter_choice({"OTEL_TRACES_EXPORTER": "zipkin"})
