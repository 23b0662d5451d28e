"""The trace-context headers an output record and a dead letter inherit from their input."""

from __future__ import annotations

from scoring.tracing import trace_headers

PARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
STATE = b"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


def test_both_headers_are_copied_byte_for_byte_and_nothing_else() -> None:
    headers = [("tracestate", STATE), ("other", b"x"), ("traceparent", PARENT), ("baggage", b"k=v")]
    assert trace_headers(headers) == [("traceparent", PARENT), ("tracestate", STATE)]


def test_no_trace_context_gets_none_invented() -> None:
    assert trace_headers(None) == []
    assert trace_headers([]) == []
    assert trace_headers([("error.type", b"x")]) == []


def test_only_the_headers_present_are_carried() -> None:
    assert trace_headers([("traceparent", PARENT)]) == [("traceparent", PARENT)]
    assert trace_headers([("tracestate", STATE)]) == [("tracestate", STATE)]


def test_names_are_case_insensitive_and_written_in_lower_case() -> None:
    assert trace_headers([("TraceParent", PARENT)]) == [("traceparent", PARENT)]


def test_the_first_occurrence_wins_and_empty_values_are_not_carried() -> None:
    second = b"00-00000000000000000000000000000001-0000000000000001-00"
    assert trace_headers([("traceparent", PARENT), ("traceparent", second)]) == [
        ("traceparent", PARENT)
    ]
    assert trace_headers([("traceparent", None), ("tracestate", b"")]) == []
    assert trace_headers([("traceparent", PARENT.decode())]) == [("traceparent", PARENT)]


def test_the_dict_form_of_headers_is_read_too() -> None:
    assert trace_headers({"traceparent": PARENT, "x": b"y"}) == [("traceparent", PARENT)]
