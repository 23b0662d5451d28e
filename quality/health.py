"""``/metrics``, ``/healthz`` and ``/readyz`` of the quality monitor on METRICS_PORT.

``/healthz`` answers 200 while the loop turns; ``/readyz`` answers 200 once the monitor holds an
assignment, has read every assigned partition to its end since (the state is rebuilt: the
figures it exports are whole) and reaches the brokers. A small WSGI app: prometheus_client's
own exposition for ``/metrics``, JSON for the probes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from scoring.errors import SettingsError

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class MonitorHealth:
    """Written by the loop, read by the HTTP thread."""

    def __init__(self, liveness_timeout_s: float) -> None:
        self._lock = threading.Lock()
        self._liveness_timeout_s = liveness_timeout_s
        self._last_beat = time.monotonic()
        self.assigned = False
        self.caught_up = False
        self.broker_reachable = True
        self.stopping = False

    def beat(self) -> None:
        with self._lock:
            self._last_beat = time.monotonic()

    def alive(self) -> tuple[bool, dict[str, object]]:
        with self._lock:
            since = time.monotonic() - self._last_beat
        ok = since <= self._liveness_timeout_s
        return ok, {"alive": ok, "seconds_since_last_loop": round(since, 3)}

    def ready(self) -> tuple[bool, dict[str, object]]:
        detail: dict[str, object] = {
            "assigned": self.assigned,
            "caught_up": self.caught_up,
            "broker_reachable": self.broker_reachable,
            "stopping": self.stopping,
        }
        ok = self.assigned and self.caught_up and self.broker_reachable and not self.stopping
        detail["ready"] = ok
        return ok, detail


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http %s", format % args)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class ProbeServer:
    """The HTTP server on its own thread; ``port=0`` binds a free port (see ``.port``)."""

    def __init__(self, health: MonitorHealth, registry: CollectorRegistry, port: int) -> None:
        metrics_app = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                answer: Iterable[bytes] = metrics_app(environ, start_response)
                return answer
            probe = {"/healthz": health.alive, "/readyz": health.ready}.get(path)
            if probe is None:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found\n"]
            ok, detail = probe()
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [("Content-Type", "application/json")],
            )
            return [(json.dumps(detail) + "\n").encode()]

        try:
            self._server = make_server(
                "0.0.0.0", port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
            )
        except OSError as exc:
            reason = f"cannot listen on port {port}: {exc.strerror or exc}"
            raise SettingsError("METRICS_PORT", port, reason) from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="probes-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info("probe server listening port=%d", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
