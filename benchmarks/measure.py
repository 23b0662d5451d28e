"""Processes under test: start them, find when they start consuming, read their CPU and memory."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
from confluent_kafka import Consumer, TopicPartition

from benchmarks._client import READY_LINE
from benchmarks.replay import free_port

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]


class BenchmarkError(RuntimeError):
    """A process under test failed or never got where the benchmark needed it."""


class Watermarks:
    """Sum of a topic's high watermarks: how many records the broker has acknowledged."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "bench-watermarks",
                "enable.auto.commit": False,
            }
        )
        self._partitions = [TopicPartition(topic, p) for p in range(partitions)]

    def total(self) -> int:
        return sum(
            self._consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
            for tp in self._partitions
        )

    def close(self) -> None:
        self._consumer.close()


@dataclass
class Sample:
    """CPU seconds (user + system) and resident memory of a process at one moment."""

    at: float
    cpu_s: float
    rss_bytes: int


def sample(process: psutil.Process) -> Sample:
    times = process.cpu_times()
    return Sample(time.monotonic(), times.user + times.system, process.memory_info().rss)


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class ServiceProcess:
    """One process under test (`python -m <module>`), its log in a file."""

    def __init__(self, module: str, env: Mapping[str, str], log_path: Path) -> None:
        self.module = module
        self.metrics_port = int(env.get("METRICS_PORT") or free_port())
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")},
            "METRICS_PORT": str(self.metrics_port),
            "LOG_FORMAT": "json",
            **env,
        }
        self.log_path = log_path
        self._popen: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None

    def start(self) -> ServiceProcess:
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self.ps = psutil.Process(self._popen.pid)
        return self

    @property
    def pid(self) -> int:
        assert self._popen is not None
        return self._popen.pid

    def exited(self) -> int | None:
        assert self._popen is not None
        return self._popen.poll()

    def wait_consuming(self, timeout_s: float = 180) -> Sample:
        """Block until it holds its partitions: /readyz for the consumer, a stdout line else."""
        deadline = time.monotonic() + timeout_s
        if self.module == "consumer":
            while time.monotonic() < deadline:
                self._check_alive()
                if self._ready():
                    return self.sample()
                time.sleep(0.01)
        else:
            assert self._popen is not None
            assert self._popen.stdout is not None
            line = self._popen.stdout.readline().decode().strip()
            if line == READY_LINE:
                return self.sample()
            self._check_alive()
        raise BenchmarkError(f"{self.module} did not start consuming:\n{self.log_tail()}")

    def _ready(self) -> bool:
        url = f"http://127.0.0.1:{self.metrics_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(json.loads(response.read()).get("ready"))
        except (OSError, ValueError, urllib.error.HTTPError):
            return False

    def _check_alive(self) -> None:
        code = self.exited()
        if code is not None:
            raise BenchmarkError(f"{self.module} exited {code}:\n{self.log_tail()}")

    def sample(self) -> Sample:
        assert self.ps is not None
        return sample(self.ps)

    def wait_outputs(
        self, watermarks: Watermarks, target: int, timeout_s: float, poll_s: float = 0.02
    ) -> Sample:
        """Block until `target` outputs are acknowledged; the sample is taken at that moment."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if watermarks.total() >= target:
                return self.sample()
            self._check_alive()
            time.sleep(poll_s)
        raise BenchmarkError(
            f"{self.module}: {watermarks.total()} of {target} outputs after {timeout_s}s:\n"
            + self.log_tail()
        )

    def stop(self, timeout_s: float = 60) -> int:
        assert self._popen is not None
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait(30)
        return int(self._popen.returncode)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
