"""``python -m serve`` as a real OS process on a real socket, probed and signalled like the
consumer's (``tests.integration.consumer.process``), with an httpx client for its API."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx

from benchmarks.replay import free_port
from tests.integration.consumer.process import ConsumerProcess


class ServeProcess(ConsumerProcess):
    """The consumer's process harness, on ``serve``: SERVE_PORT is the probes' port too."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        port = str(env.get("SERVE_PORT") or free_port())
        super().__init__(
            {"SERVE_HOST": "127.0.0.1", **env, "SERVE_PORT": port, "METRICS_PORT": port},
            log_path,
            module="serve",
        )

    def client(self, timeout_s: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def score(self, body: object, timeout_s: float = 30.0) -> httpx.Response:
        with self.client(timeout_s) as client:
            return client.post("/v1/score", json=body)
