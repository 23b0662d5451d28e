"""Fixtures for the consumer's integration tests: a real build, fresh topics, real processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.consumer.process import ConsumerProcess


@dataclass(frozen=True)
class Topics:
    input: str
    output: str
    dlq: str


# model_build (one real build for the session) lives in tests/integration/conftest.py.


@pytest.fixture
def model_uri(model_build: Path) -> str:
    return (model_build / "best_model_full.joblib").as_uri()


TopicsFactory = Callable[..., Topics]


@pytest.fixture
def topics_factory(topic_factory: Callable[..., str]) -> TopicsFactory:
    """`topics_factory(partitions=3, output_config=None)`: fresh input, output and DLQ topics."""

    def create(partitions: int = 3, output_config: dict[str, str] | None = None) -> Topics:
        return Topics(
            input=topic_factory(partitions=partitions),
            output=topic_factory(partitions=partitions, config=output_config),
            dlq=topic_factory(),
        )

    return create


@pytest.fixture
def topics(topics_factory: TopicsFactory) -> Topics:
    return topics_factory()


ConsumerFactory = Callable[..., ConsumerProcess]


@pytest.fixture
def start_consumer(
    kafka_bootstrap: str,
    group_factory: Callable[[], str],
    model_uri: str,
    tmp_path: Path,
) -> Iterator[ConsumerFactory]:
    """Start ``python -m consumer`` processes (``module``/``args``: another entry point that
    wraps it); each is killed at teardown if still running."""
    started: list[ConsumerProcess] = []

    def start(
        topics: Topics,
        group: str | None = None,
        *,
        module: str = "consumer",
        args: Sequence[str] = (),
        **env: str,
    ) -> ConsumerProcess:
        settings = {
            "MODEL_URI": model_uri,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "INPUT_TOPIC": topics.input,
            "OUTPUT_TOPIC": topics.output,
            "DLQ_TOPIC": topics.dlq,
            "CONSUMER_GROUP": group or group_factory(),
            **env,
        }
        log = tmp_path / f"consumer-{len(started)}.log"
        process = ConsumerProcess(settings, log, module, args)
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.ensure_stopped()
