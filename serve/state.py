"""What the probes report: loading, serving, refused by a gate, stopping.

Written by the loader thread and the signal handler, read by the event loop; a lock keeps each
answer consistent.
"""

from __future__ import annotations

import threading

from serve.metrics import ServeMetrics
from serve.model import ServedModel


class ServingState:
    """The model once it passed its gates (None while loading), and why the server stops."""

    def __init__(self, metrics: ServeMetrics) -> None:
        self._lock = threading.Lock()
        self._metrics = metrics
        self._model: ServedModel | None = None
        self._refusal: str | None = None
        self._stopping = False
        self._cancelled = 0
        metrics.ready.set(0)

    @property
    def model(self) -> ServedModel | None:
        """The model to score with; None while loading, after a refusal, and never again after
        it was set (a build is served until the process ends)."""
        return self._model

    def set_ready(self, model: ServedModel) -> None:
        with self._lock:
            self._model = model
            self._metrics.ready.set(0 if self._stopping else 1)

    def set_refused(self, reason: str) -> None:
        with self._lock:
            self._refusal = reason

    def set_stopping(self) -> None:
        with self._lock:
            self._stopping = True
            self._metrics.ready.set(0)

    def count_cancelled(self) -> None:
        """A request cancelled by the shutdown's bound (SERVE_SHUTDOWN_TIMEOUT_S)."""
        with self._lock:
            self._cancelled += 1

    @property
    def refusal(self) -> str | None:
        return self._refusal

    @property
    def cancelled(self) -> int:
        return self._cancelled

    def ready(self) -> tuple[bool, dict[str, object]]:
        with self._lock:
            gates_passed = self._model is not None
            ok = gates_passed and not self._stopping
            detail: dict[str, object] = {
                "ready": ok,
                "gates_passed": gates_passed,
                "loading": not gates_passed and self._refusal is None,
                "stopping": self._stopping,
            }
            if self._refusal is not None:
                detail["refused"] = self._refusal
        return ok, detail
