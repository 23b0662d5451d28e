"""What POST /v1/score answers: the runtime's batch (``scoring.batch``), translated to HTTP.

The events of the bodies waiting together (``serve.work``), each body split by
``serve.items``, become one batch for the runtime's ``score_batch``: every event decoded and
validated by ``scoring.decode`` on its own bytes, the valid ones scored in one vectorised
call. Each event is answered with what the consumer would publish for it: its probability, or
the ``error.type``, ``error.field`` and reason its dead letter would carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from contract.framing import Framing
from contract.schema import CONTRACT_VERSION
from scoring.batch import score_batch
from scoring.decode import Rejection
from serve.errors import RequestRefused
from serve.items import Items, split_items
from serve.metrics import ServeMetrics
from serve.model import ServedModel

SCORING_FAILED_REASON: Final = "the model could not score this event (the server logged why)"
"""The reason sent for ``scoring_failed``: the exception's text stays in the server's log."""


class RequestEvent:
    """One event of a request, as the runtime's decoding reads a message (``MessageLike``):
    the value is the event's bytes, there is no key, topic, offset or header."""

    __slots__ = ("_value", "index", "request")

    def __init__(self, value: bytes, request: int, index: int) -> None:
        self._value = value
        self.request = request
        """The request's place among those scored together."""
        self.index = index
        """The event's place in its request."""

    def value(self) -> bytes:
        return self._value

    def key(self) -> None:
        return None

    def topic(self) -> None:
        return None

    def partition(self) -> None:
        return None

    def offset(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)  # TIMESTAMP_NOT_AVAILABLE

    def headers(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Answer:
    """The status and JSON payload of one POST /v1/score answer."""

    status: int
    payload: dict[str, Any]


Answered = Answer | RequestRefused
"""What a body gets: an answer, or refused whole (an array that cannot be split, too many
events)."""


def error_payload(error_type: str, field: str, reason: str) -> dict[str, Any]:
    return {"error": {"type": error_type, "field": field, "reason": reason}}


def score_bodies(
    bodies: Sequence[bytes],
    model: ServedModel,
    metrics: ServeMetrics,
    max_events: int,
    max_event_bytes: int,
    framing: Framing,
) -> list[Answered]:
    """The answer to each body, in order: the events of every body scored in one batch.

    A body refused whole (an array that cannot be split, too many events) is its own
    ``RequestRefused`` and takes nothing from the others. Runs on the scoring thread
    (``serve.work``), never on the event loop."""
    answers: list[Answered | None] = []
    requests: list[tuple[int, Items]] = []  # (index of the body, its items)
    for index, body in enumerate(bodies):
        try:
            requests.append((index, split_items(body, max_events)))
            answers.append(None)
        except RequestRefused as refused:
            answers.append(refused)
    results = score_items(
        [items for _, items in requests], model, metrics, max_event_bytes, framing
    )
    for (index, items), request_results in zip(requests, results, strict=True):
        answers[index] = _answer(items, request_results)
    return [answer for answer in answers if answer is not None]


def _answer(items: Items, results: list[dict[str, Any]]) -> Answer:
    if items.is_list:
        return Answer(200, {"results": results})
    (result,) = results
    error = result.get("error")
    if error is None:
        return Answer(200, result)
    return Answer(500 if error["type"] == "scoring_failed" else 422, result)


def score_items(
    requests: Sequence[Items],
    model: ServedModel,
    metrics: ServeMetrics,
    max_event_bytes: int,
    framing: Framing,
) -> list[list[dict[str, Any]]]:
    """For each request, one result per event, in order: the scored shape or
    ``{"error": {...}}``; the events of all requests are one batch for the runtime."""
    messages = [
        RequestEvent(value, request, index)
        for request, items in enumerate(requests)
        for index, value in enumerate(items.values)
    ]
    batch = score_batch(messages, model.scorer, max_event_bytes, framing)
    runtime = metrics.runtime
    runtime.observe_stage("decode", batch.decode_seconds)
    runtime.observe_stage("score", batch.score_seconds)
    runtime.count("scored", len(batch.events))
    runtime.count("rejected", len(batch.rejections))
    metrics.batch_size.observe(len(messages))
    results: list[list[dict[str, Any]]] = [[{}] * len(items.values) for items in requests]
    info = model.scorer.info
    threshold = info.threshold
    for event, message, probability in zip(
        batch.events, batch.scored, batch.probabilities.tolist(), strict=True
    ):
        result: dict[str, Any] = {
            "session_id": event.session_id,
            "probability": probability,
        }
        if threshold is not None:
            result["label"] = probability >= threshold
            result["threshold"] = threshold
        result["model_build_id"] = info.build_id
        result["model_variant"] = info.variant
        result["contract_version"] = CONTRACT_VERSION
        request, index = _position(message)
        results[request][index] = result
    for rejection in batch.rejections:
        request, index = _position(rejection.message)
        results[request][index] = _rejected(rejection)
    model.observe(batch)
    return results


def _position(message: object) -> tuple[int, int]:
    assert isinstance(message, RequestEvent)
    return message.request, message.index


def _rejected(rejection: Rejection) -> dict[str, Any]:
    if rejection.error_type == "scoring_failed":
        return error_payload("scoring_failed", rejection.field, SCORING_FAILED_REASON)
    return error_payload(rejection.error_type, rejection.field, rejection.reason)
