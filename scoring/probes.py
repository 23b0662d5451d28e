"""``/metrics``, ``/healthz`` and ``/readyz`` on METRICS_PORT, for a service whose own loop is
not HTTP (the Kafka consumer, the quality monitor; ``serve`` answers its probes on its own
server).

``Heartbeat`` is the liveness half: the loop beats, and ``/healthz`` answers 200 while the last
beat is recent (a wedged loop fails the liveness probe and Kubernetes restarts the pod). The
readiness half is the service's own: ``ProbeServer`` calls whatever ``ready`` it is given.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from scoring.errors import SettingsError

logger = logging.getLogger(__name__)

Probe = Callable[[], tuple[bool, dict[str, object]]]
"""(ok, detail): 200 with the detail as JSON when ok, else 503."""


class Heartbeat:
    """Beaten by the loop, read by the probe server's thread."""

    def __init__(self, liveness_timeout_s: float) -> None:
        self._lock = threading.Lock()
        self._liveness_timeout_s = liveness_timeout_s
        self._last_beat = time.monotonic()

    def beat(self) -> None:
        with self._lock:
            self._last_beat = time.monotonic()

    def alive(self) -> tuple[bool, dict[str, object]]:
        with self._lock:
            since = time.monotonic() - self._last_beat
        ok = since <= self._liveness_timeout_s
        return ok, {"alive": ok, "seconds_since_last_loop": round(since, 3)}


class ProbeServer:
    """A small threaded HTTP server on its own thread; ``port=0`` binds a free port (see
    ``.port``)."""

    def __init__(
        self, alive: Probe, ready: Probe, registry: CollectorRegistry, host: str, port: int
    ) -> None:
        handler = _make_handler({"/healthz": alive, "/readyz": ready}, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="probes-http", daemon=True
        )

    @classmethod
    def bind(
        cls, alive: Probe, ready: Probe, registry: CollectorRegistry, host: str, port: int
    ) -> ProbeServer:
        """The server on METRICS_PORT; a port that cannot be bound is a bad setting (exit 2)."""
        try:
            return cls(alive, ready, registry, host, port)
        except OSError as exc:
            reason = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            raise SettingsError("METRICS_PORT", port, reason) from exc

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info("probe server listening port=%d", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(
    probes: dict[str, Probe], registry: CollectorRegistry
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            probe = probes.get(path)
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif probe is not None:
                ok, detail = probe()
                body = (json.dumps(detail) + "\n").encode()
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("http %s", format % args)

    return Handler
