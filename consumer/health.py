"""The HTTP side of the consumer: ``/metrics``, ``/healthz`` and ``/readyz`` on METRICS_PORT.

``/healthz`` answers 200 while the loop has made a turn recently (a wedged loop fails the
liveness probe and Kubernetes restarts the pod). ``/readyz`` answers 200 only when the consumer
can deliver: the model gates passed, it holds a group assignment, reaches the broker, and its
producer is initialised (holds a producer id; see ``consumer.kafka.ClientEvents``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from scoring.errors import SettingsError

logger = logging.getLogger(__name__)


class HealthState:
    """Shared between the loop (writer) and the HTTP server thread (reader)."""

    def __init__(self, liveness_timeout_s: float) -> None:
        self._lock = threading.Lock()
        self._liveness_timeout_s = liveness_timeout_s
        self._last_beat = time.monotonic()
        self._gates_passed = False
        self._assigned = False
        self._broker_reachable = True
        self._producer_ready = False
        self._publishing = True
        self._stopping = False

    def beat(self) -> None:
        with self._lock:
            self._last_beat = time.monotonic()

    def set_gates_passed(self) -> None:
        with self._lock:
            self._gates_passed = True

    def set_assigned(self, assigned: bool) -> None:
        with self._lock:
            self._assigned = assigned

    def set_broker_reachable(self, reachable: bool) -> None:
        with self._lock:
            self._broker_reachable = reachable

    def set_producer_ready(self, ready: bool) -> None:
        """True while the producer can send: it holds a producer id (idempotence, transactions).

        Until then librdkafka holds every record back: on a fresh broker that is a second or
        more, which a consumer called ready would add to its first events' latency."""
        with self._lock:
            self._producer_ready = ready

    def set_publishing(self, ok: bool) -> None:
        """False while the last batch could not be published (it is being retried)."""
        with self._lock:
            self._publishing = ok

    def set_stopping(self) -> None:
        with self._lock:
            self._stopping = True

    def alive(self) -> tuple[bool, dict[str, object]]:
        with self._lock:
            since = time.monotonic() - self._last_beat
            ok = since <= self._liveness_timeout_s
        return ok, {"alive": ok, "seconds_since_last_loop": round(since, 3)}

    def ready(self) -> tuple[bool, dict[str, object]]:
        with self._lock:
            detail: dict[str, object] = {
                "gates_passed": self._gates_passed,
                "assigned": self._assigned,
                "broker_reachable": self._broker_reachable,
                "producer_ready": self._producer_ready,
                "publishing": self._publishing,
                "stopping": self._stopping,
            }
            ok = (
                self._gates_passed
                and self._assigned
                and self._broker_reachable
                and self._producer_ready
                and self._publishing
                and not self._stopping
            )
        detail["ready"] = ok
        return ok, detail


class HealthServer:
    """A small threaded HTTP server; ``port=0`` binds a free port (see ``.port``)."""

    def __init__(
        self, state: HealthState, registry: CollectorRegistry, host: str, port: int
    ) -> None:
        handler = _make_handler(state, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )

    @classmethod
    def bind(
        cls, state: HealthState, registry: CollectorRegistry, host: str, port: int
    ) -> HealthServer:
        """The server on METRICS_PORT; a port that cannot be bound is a bad setting (exit 2)."""
        try:
            return cls(state, registry, host, port)
        except OSError as exc:
            reason = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            raise SettingsError("METRICS_PORT", port, reason) from exc

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info("health server listening port=%d", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(state: HealthState, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send_json(*state.alive())
            elif path == "/readyz":
                self._send_json(*state.ready())
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send_json(self, ok: bool, detail: dict[str, object]) -> None:
            body = (json.dumps(detail) + "\n").encode()
            self._send(200 if ok else 503, body, "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("http %s", format % args)

    return Handler
