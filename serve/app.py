"""The HTTP routes: POST /v1/score, GET /v1/model, /healthz, /readyz, /metrics.

A thin translation of HTTP around the runtime: the checks that need no body come first (model
loaded, media type, declared length, a free slot), then the body is read within its limits
(``serve.body``), then split, decoded and scored on the scoring thread together with the
other requests waiting, within the request's deadline (``serve.work``, ``serve.answers``).
Every refusal is a ``RequestRefused`` answered as ``{"error": {"type", "field", "reason"}}``;
anything unexpected is a generic 500 whose details go to the log only, never into a response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.answers import Answered, error_payload, score_bodies
from serve.body import check_declared_length, check_media_type, read_body
from serve.errors import RequestRefused, not_ready, overloaded, timed_out
from serve.metrics import ServeMetrics, path_label
from serve.model import ServedModel
from serve.settings import ServeSettings
from serve.state import ServingState
from serve.work import WorkSlots

logger = logging.getLogger(__name__)

JSON = "application/json"


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON, headers=headers)


Work = tuple[ServedModel, bytes]
"""A request's scoring work: the build that was in service when it arrived, and its body."""


def scoring_slots(settings: ServeSettings, metrics: ServeMetrics) -> WorkSlots[Work, Answered]:
    """SERVE_MAX_CONCURRENCY slots whose bodies are scored together (``serve.work``)."""

    def run_together(works: Sequence[Work]) -> list[Answered | BaseException]:
        answers: list[Answered | BaseException] = []
        for model, group in _by_model(works):
            try:
                answers += score_bodies(
                    group,
                    model,
                    metrics,
                    settings.serve_max_events,
                    settings.input_max_message_bytes,
                    settings.framing,
                )
            except Exception as exc:  # this build's requests fail; the server logs why
                logger.exception("scoring %d requests failed", len(group))
                answers += [exc] * len(group)
        return answers

    return WorkSlots(settings.serve_max_concurrency, run_together)


def _by_model(works: Sequence[Work]) -> list[tuple[ServedModel, list[bytes]]]:
    """Consecutive requests for the same build, grouped (one build serves; a reload may not)."""
    groups: list[tuple[ServedModel, list[bytes]]] = []
    for model, body in works:
        if groups and groups[-1][0] is model:
            groups[-1][1].append(body)
        else:
            groups.append((model, [body]))
    return groups


def create_app(
    settings: ServeSettings,
    state: ServingState,
    metrics: ServeMetrics,
    slots: WorkSlots[Work, Answered],
) -> Starlette:
    """The application; ``slots`` bounds and batches the scoring work (``scoring_slots``).

    Starlette, which FastAPI is built on: these five routes use nothing FastAPI adds (request
    models, dependencies, OpenAPI), and its routing cost CPU on every request
    (docs/benchmarks.md)."""
    metrics.in_flight.set_function(lambda: slots.taken)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestRefused)
        metrics.refusals.labels(type=exc.error_type).inc()
        payload = error_payload(exc.error_type, exc.field, exc.reason)
        return json_response(exc.status, payload, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error_type = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        payload = error_payload(error_type, "<request>", str(exc.detail))
        return json_response(exc.status_code, payload, dict(exc.headers or {}))

    async def unexpected(request: Request, exc: Exception) -> Response:
        # The server logs the exception with its traceback; the client learns nothing of it.
        payload = error_payload("internal_error", "<request>", "the server failed; it logged why")
        return json_response(500, payload)

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
            try:
                answer = await slot.run((model, body), deadline)
            except TimeoutError:
                raise timed_out(settings.serve_timeout_ms) from None
        except asyncio.CancelledError:
            state.count_cancelled()  # only the shutdown's bound cancels a request
            raise
        finally:
            slot.release()  # a no-op once the scoring thread has it: it gives it back when done
        if isinstance(answer, RequestRefused):
            raise answer
        return json_response(answer.status, answer.payload)

    async def model_description(request: Request) -> Response:
        model = state.model
        if model is None:
            raise not_ready()
        return json_response(200, model.description())

    async def healthz(request: Request) -> Response:
        # Alive while the event loop answers; loading is not a reason to restart the process.
        return json_response(200, {"alive": True})

    async def readyz(request: Request) -> Response:
        ok, detail = state.ready()
        return json_response(200 if ok else 503, detail)

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/v1/score", score, methods=["POST"]),
            Route("/v1/model", model_description, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
        ],
        middleware=[Middleware(RequestMetrics, metrics=metrics)],
        exception_handlers={
            RequestRefused: refused,
            HTTPException: http_error,
            Exception: unexpected,
        },
    )


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
