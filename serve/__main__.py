"""``python -m serve``: the HTTP front door.

The server listens at once; the model is fetched and gated on a thread meanwhile, and
``/readyz`` answers 503 until the gates passed. A gate refusal is logged with its reason and
the process exits 3, as the consumer does: a build that cannot pass its gates will not pass
them later, and a pod that exits shows the refusal (CrashLoopBackOff, the log) where one that
stays up unready would hide it behind a probe; the replicas of the previous build keep serving
meanwhile (the rollout waits for readiness).

SIGTERM (or SIGINT): uvicorn stops accepting connections, lets the requests in flight finish
within SERVE_SHUTDOWN_TIMEOUT_S and the process exits 0; past the bound the requests left are
cancelled and it exits 1.

Exit status: 0 after a clean shutdown, 2 for a bad setting (SERVE_PORT taken included), 3 when
a model gate refuses the build (``fetch`` included), 1 for anything else.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from types import FrameType

import uvicorn
from prometheus_client import CollectorRegistry

from contract.storage import Store
from scoring.errors import GateError, SettingsError
from scoring.logs import configure_logging
from serve.app import create_app, scoring_slots
from serve.metrics import ServeMetrics
from serve.model import load_served_model
from serve.settings import ServeSettings, load_serve_settings
from serve.state import ServingState

logger = logging.getLogger("serve")

EXIT_OK, EXIT_ERROR, EXIT_SETTINGS, EXIT_GATE = 0, 1, 2, 3


def main() -> int:
    try:
        settings = load_serve_settings()
    except SettingsError as exc:
        print(f"serve: bad setting: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging(settings.log_format, settings.log_level)
    try:
        listener = listen(settings.serve_host, settings.serve_port)
    except SettingsError as exc:
        print(f"serve: bad setting: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    return serve(settings, listener)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else: a port that cannot be bound is a bad
    setting (exit 2), not a crash later.

    Made with ``IPPROTO_TCP`` spelled out: asyncio sets TCP_NODELAY only on connections whose
    socket says so, and without it an answer written in two parts (head, body) waits for the
    client's delayed ACK, about 40 ms per request.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        reason = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise SettingsError("SERVE_PORT", port, reason) from None
    return listener


class _Server(uvicorn.Server):
    """uvicorn's server, telling the probes it is stopping as soon as a signal arrives."""

    def __init__(self, config: uvicorn.Config, state: ServingState) -> None:
        super().__init__(config)
        self._state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            logger.info("signal %s: finishing the requests in flight, then stopping", sig)
        self._state.set_stopping()
        super().handle_exit(sig, frame)


def serve(settings: ServeSettings, listener: socket.socket) -> int:
    """Answer until SIGTERM/SIGINT (or a gate refusal); returns the exit status."""
    registry = CollectorRegistry()
    metrics = ServeMetrics.create(registry)
    state = ServingState(metrics)
    slots = scoring_slots(settings, metrics)
    app = create_app(settings, state, metrics, slots)
    config = uvicorn.Config(
        app,
        # The C parser and event loop: h11 and asyncio's pure-Python loop cost more CPU per
        # request (measured in docs/benchmarks.md, "The HTTP front door").
        http="httptools",
        loop="uvloop",
        lifespan="off",
        log_config=None,  # scoring.logs configured the root logger; uvicorn's loggers use it
        access_log=False,  # serve_requests_total counts every answer
        server_header=False,
        timeout_keep_alive=settings.serve_keep_alive_s,
        timeout_graceful_shutdown=max(1, round(settings.serve_shutdown_timeout_s)),
    )
    server = _Server(config, state)
    failed = threading.Event()

    def load() -> None:
        try:
            model = load_served_model(settings, Store(settings.object_store), metrics.runtime)
        except GateError as exc:
            logger.error("%s; no request will be scored", exc)
            state.set_refused(str(exc))
        except Exception:
            logger.exception("loading the model failed; no request will be scored")
            state.set_refused("loading the model failed")
            failed.set()
        else:
            state.set_ready(model)
            logger.info(
                "serving build_id=%s variant=%s port=%d",
                model.scorer.info.build_id,
                model.scorer.info.variant,
                listener.getsockname()[1],
            )
            return
        server.should_exit = True

    # uvicorn raises a signal again once it has shut down gracefully, with the handlers found
    # before it started; these make that a no-op, so a clean stop returns EXIT_OK.
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, _after_graceful_stop)
    threading.Thread(target=load, name="model-loader", daemon=True).start()
    logger.info("listening on %s:%d", settings.serve_host, listener.getsockname()[1])
    server.run(sockets=[listener])
    model = state.model
    if model is not None:
        model.close(settings.serve_shutdown_timeout_s / 4)
    if state.refusal is not None:
        return EXIT_ERROR if failed.is_set() else EXIT_GATE
    if state.cancelled:
        logger.error(
            "shutdown overran SERVE_SHUTDOWN_TIMEOUT_S=%s: %d requests cancelled",
            settings.serve_shutdown_timeout_s,
            state.cancelled,
        )
        return EXIT_ERROR
    logger.info("stopped")
    return EXIT_OK


def _after_graceful_stop(signum: int, frame: FrameType | None) -> None:
    logger.debug("signal %s after the graceful stop: nothing left to do", signum)


if __name__ == "__main__":
    sys.exit(main())
