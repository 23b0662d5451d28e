"""Trace context: the W3C ``traceparent`` and ``tracestate`` headers an output inherits.

The consumer carries the caller's trace context, it does not interpret or invent one: the headers
are copied byte for byte onto the scored record and onto the dead letter, and a message without
them yields none (https://www.w3.org/TR/trace-context/, and its Kafka usage in OpenTelemetry's
messaging conventions).
"""

from __future__ import annotations

from collections.abc import Mapping

# Header names in the order they are carried. Kafka header names are case-sensitive, but the W3C
# names are case-insensitive (they come from HTTP): a producer's "TraceParent" is recognised and
# written back in the canonical lower case.
TRACE_HEADERS = ("traceparent", "tracestate")

# What ``confluent_kafka.Message.headers()`` returns (a consumed message gives the list form).
RawHeaders = dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None


def trace_headers(headers: RawHeaders) -> list[tuple[str, bytes]]:
    """The trace-context headers among a message's ``headers``.

    The first occurrence of each name wins; a header without a value is not carried.
    """
    if not headers:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, bytes] = {}
    for name, value in pairs:
        key = name.lower()
        if key in TRACE_HEADERS and key not in found and value:
            found[key] = value.encode() if isinstance(value, str) else value
    return [(name, found[name]) for name in TRACE_HEADERS if name in found]
