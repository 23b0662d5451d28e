"""A request's body, read within its limits: media type, size, time.

The size limit holds before the body is read whole: a ``Content-Length`` over it is refused
before a byte of the body is read, and a body without one (chunked) is counted as it streams in
and refused at the first chunk that crosses the limit. Either way the connection is closed
after the answer (``Connection: close``), so the rest of an oversized body is never read.
"""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request

from serve.errors import RequestRefused

MEDIA_TYPE = "application/json"
_CLOSE = {"Connection": "close"}


def check_media_type(content_type: str | None) -> None:
    """``application/json``, with no charset or UTF-8's (JSON is UTF-8: RFC 8259); else 415."""
    media, *parameters = (content_type or "").split(";")
    if media.strip().lower() != MEDIA_TYPE:
        shown = (content_type or "none")[:100]
        raise RequestRefused(
            415, "unsupported_media_type", f"Content-Type {shown!r}: send {MEDIA_TYPE}"
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise RequestRefused(
                415, "unsupported_media_type", f"charset {value.strip()[:40]!r}: JSON is UTF-8"
            )


def too_large(max_bytes: int, what: str) -> RequestRefused:
    return RequestRefused(
        413, "body_too_large", f"{what} is over SERVE_MAX_BODY_BYTES={max_bytes}", headers=_CLOSE
    )


def check_declared_length(content_length: str | None, max_bytes: int) -> None:
    """A ``Content-Length`` over ``max_bytes`` is refused before a byte of the body is read (the
    server has already refused a malformed one: 400)."""
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise too_large(max_bytes, f"Content-Length {content_length}")


async def read_body(request: Request, max_bytes: int, deadline: float) -> bytes:
    """The whole body, at most ``max_bytes``, arrived before ``deadline`` (the event loop's
    clock); a RequestRefused otherwise (413 at the first chunk over it, or 408 for a body still
    arriving at the deadline)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(max_bytes, f"the body ({size} bytes so far)")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestRefused(
            408,
            "body_timeout",
            f"the body had not arrived whole after SERVE_TIMEOUT_MS ({size} bytes so far)",
            headers=_CLOSE,
        ) from None
    except ClientDisconnect:
        raise RequestRefused(400, "client_disconnected", "the client went away mid-body") from None
    return b"".join(chunks)
