"""The quality monitor as a real process (``python -m quality``), started the way the consumer's
integration tests start the consumer, and read through its /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.integration.consumer.process import ConsumerProcess

from .stream import ScoredStream

Start = Callable[..., ConsumerProcess]


def start_monitor_fixture(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Start]:
    started: list[ConsumerProcess] = []

    def start(env: dict[str, str]) -> ConsumerProcess:
        log = tmp_path / f"quality-{len(started)}.log"
        process = ConsumerProcess(
            {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "QUALITY_GRACE": "1s",
                "QUALITY_REFRESH": "0.2s",
                "LOG_LEVEL": "INFO",
                # A SIGKILLed member leaves the group after 6 s (the broker's least), not 45 s.
                "KAFKA_SESSION_TIMEOUT_MS": "6000",
                "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
                **env,
            },
            log,
            module="quality",
        )
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.ensure_stopped()


def figure(process: ConsumerProcess, stream: ScoredStream, metric: str) -> float:
    labels = f'build_id="{stream.build_id}",metric="{metric}",role="primary",variant="full"'
    return process.metric("quality_live", labels)


def labelled(process: ConsumerProcess, stream: ScoredStream) -> float:
    labels = f'build_id="{stream.build_id}",role="primary",variant="full"'
    return process.metric("quality_window_labels", labels)


def wait_for(what: str, condition: Callable[[], bool], *processes: ConsumerProcess) -> None:
    started = time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if condition():
                print(f"[quality] {what}: {time.monotonic() - started:.1f} s")
                return
        except OSError:  # the probe server is not listening yet
            pass
        for process in processes:
            if process.exit_code() is not None:
                raise AssertionError(f"monitor exited {process.exit_code()}:\n{process.log_tail()}")
        time.sleep(0.1)
    tails = "\n---\n".join(p.log_tail() for p in processes)
    raise AssertionError(f"not within 60 s: {what}\n{tails}")
