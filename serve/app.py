"""The HTTP routes: POST /v1/score, GET /v1/model, /healthz, /readyz, /metrics.

A thin translation of HTTP around the runtime: the checks that need no body come first (model
loaded, media type, declared length, a free slot), then the body is read within its limits
(``serve.body``), then split, decoded and scored on a worker thread within the request's
deadline (``serve.work``, ``serve.answers``). Every refusal is a ``RequestRefused`` answered as
``{"error": {"type", "field", "reason"}}``; anything unexpected is a generic 500 whose details
go to the log only, never into a response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.answers import error_payload, score_body
from serve.body import check_declared_length, check_media_type, read_body
from serve.errors import RequestRefused, not_ready, overloaded, timed_out
from serve.metrics import ServeMetrics, path_label
from serve.settings import ServeSettings
from serve.state import ServingState
from serve.work import WorkSlots

logger = logging.getLogger(__name__)

JSON = "application/json"


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON, headers=headers)


def create_app(
    settings: ServeSettings, state: ServingState, metrics: ServeMetrics, slots: WorkSlots
) -> FastAPI:
    """The application; ``slots`` bounds the scoring work (SERVE_MAX_CONCURRENCY)."""
    app = FastAPI(
        title="shopper-intent serve",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    metrics.in_flight.set_function(lambda: slots.taken)
    app.add_middleware(RequestMetrics, metrics=metrics)

    @app.exception_handler(RequestRefused)
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestRefused)
        metrics.refusals.labels(type=exc.error_type).inc()
        payload = error_payload(exc.error_type, exc.field, exc.reason)
        return json_response(exc.status, payload, exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error_type = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        payload = error_payload(error_type, "<request>", str(exc.detail))
        return json_response(exc.status_code, payload, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The server logs the exception with its traceback; the client learns nothing of it.
        payload = error_payload("internal_error", "<request>", "the server failed; it logged why")
        return json_response(500, payload)

    @app.post("/v1/score")
    async def score(request: Request) -> Response:
        deadline = asyncio.get_running_loop().time() + settings.timeout_s
        model = state.model
        if model is None:
            raise not_ready()
        check_media_type(request.headers.get("content-type"))
        check_declared_length(request.headers.get("content-length"), settings.serve_max_body_bytes)
        slot = slots.try_take()
        if slot is None:
            raise overloaded(settings.serve_max_concurrency)
        try:
            body = await read_body(request, settings.serve_max_body_bytes, deadline)

            def work() -> Any:
                return score_body(
                    body,
                    model,
                    metrics,
                    settings.serve_max_events,
                    settings.input_max_message_bytes,
                    settings.framing,
                )

            try:
                answer = await slot.run(work, deadline)
            except TimeoutError:
                raise timed_out(settings.serve_timeout_ms) from None
        except asyncio.CancelledError:
            state.count_cancelled()  # only the shutdown's bound cancels a request
            raise
        finally:
            slot.release()  # a no-op once a thread has the slot: it gives it back when done
        return json_response(answer.status, answer.payload)

    @app.get("/v1/model")
    async def model_description() -> Response:
        model = state.model
        if model is None:
            raise not_ready()
        return json_response(200, model.description())

    @app.get("/healthz")
    async def healthz() -> Response:
        # Alive while the event loop answers; loading is not a reason to restart the process.
        return json_response(200, {"alive": True})

    @app.get("/readyz")
    async def readyz() -> Response:
        ok, detail = state.ready()
        return json_response(200 if ok else 503, detail)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class RequestMetrics:
    """Counts every answer by path and status and times it (pure ASGI: the body streams
    through untouched)."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = path_label(scope["path"])
        started = time.perf_counter()
        status = 500  # unless an answer starts: the server then sends a generic 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            self.metrics.requests.labels(path=path, status=str(status)).inc()
            self.metrics.request_duration.labels(path=path).observe(time.perf_counter() - started)
