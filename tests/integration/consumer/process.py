"""The consumer as a real OS process: started, probed over HTTP, signalled and killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.replay import free_port

REPO = Path(__file__).resolve().parents[3]


class ConsumerProcess:
    """``python -m consumer`` with the given environment; its log goes to a file.

    ``module`` and ``args`` run another entry point that wraps the consumer's (e.g. the fault
    tests' ``tests.integration.faults.crash_before_commit``)."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        module: str = "consumer",
        args: Sequence[str] = (),
    ) -> None:
        self.command = [sys.executable, "-m", module, *args]
        self.metrics_port = int(env.get("METRICS_PORT") or free_port())
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")},
            "METRICS_PORT": str(self.metrics_port),
            "LOG_FORMAT": "json",
            "BATCH_MAX_WAIT_MS": "50",
            **env,
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ConsumerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=REPO, stdout=log, stderr=log
        )
        log.close()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=2) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def readiness(self) -> dict[str, object] | None:
        try:
            return dict(json.loads(self.http("/readyz")[1]))
        except (OSError, ValueError):
            return None

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.exit_code() is not None:
                raise AssertionError(f"consumer exited {self.exit_code()}:\n{self.log_tail()}")
            state = self.readiness()
            if state is not None and state.get("ready"):
                return
            time.sleep(0.2)
        raise AssertionError(f"consumer not ready after {timeout_s}s:\n{self.log_tail()}")

    def exit_code(self) -> int | None:
        assert self.process is not None
        return self.process.poll()

    def wait_exit(self, timeout_s: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait_exit(30)

    def terminate(self, timeout_s: float = 60) -> int:
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout_s)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def metric(self, name: str, labels: str = "") -> float:
        """The value of one sample from /metrics (0 when absent)."""
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in self.http("/metrics")[1].splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
