"""Fixtures of the fault-injection suite: the consumer fixtures, a private broker, the ledger,
the scenario."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import pytest
from confluent_kafka.admin import AdminClient

from tests.integration.broker import LocalBroker, unique_broker_name
from tests.integration.conftest import unique_name
from tests.integration.consumer.conftest import (  # noqa: F401 (fixtures, found by name)
    ConsumerFactory,
    model_uri,
    start_consumer,
    topics,
    topics_factory,
)
from tests.integration.faults.support import (
    Ledger,
    Scenario,
    ScenarioFactory,
    Topics,
    create_topics,
)


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    """Prints each test's figures and appends them to build/reliability/results.jsonl."""
    return Ledger.for_session()


@pytest.fixture(scope="session")
def private_broker_session() -> Iterator[LocalBroker]:
    """A broker of the fault suite's own, to bounce and to break (auto topic creation off)."""
    broker = LocalBroker(unique_broker_name("faults"), owner_pid=os.getpid())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop(grace_s=10)


@pytest.fixture
def private_broker(private_broker_session: LocalBroker) -> LocalBroker:
    """The private broker, running (a test that failed mid-bounce may have left it down)."""
    if not private_broker_session.is_running():
        private_broker_session.start()
    return private_broker_session


@pytest.fixture
def private_topics(
    private_broker: LocalBroker, request: pytest.FixtureRequest
) -> Callable[..., Topics]:
    """`private_topics(partitions=3)`: fresh input, output and dead-letter topics there."""

    def make(partitions: int = 3) -> Topics:
        assert private_broker.bootstrap is not None
        admin = AdminClient({"bootstrap.servers": private_broker.bootstrap})
        names = Topics(
            input=unique_name(request, "in"),
            output=unique_name(request, "out"),
            dlq=unique_name(request, "dlq"),
        )
        create_topics(admin, {names.input: partitions, names.output: partitions, names.dlq: 1})
        return names

    return make


@pytest.fixture
def scenario(
    kafka_bootstrap: str,
    start_consumer: ConsumerFactory,  # noqa: F811 (the fixture imported above)
    ledger: Ledger,
    request: pytest.FixtureRequest,
) -> ScenarioFactory:
    """`scenario(fault, names, events, bootstrap=None, **env)`: a `Scenario` in a fresh group
    (on the session broker unless `bootstrap` names another; `env` for every consumer)."""

    def make(
        fault: str,
        names: Topics,
        events: Sequence[dict[str, object]],
        bootstrap: str | None = None,
        **env: str,
    ) -> Scenario:
        return Scenario(
            fault,
            bootstrap or kafka_bootstrap,
            names,
            events,
            unique_name(request, "faults"),
            start_consumer,
            ledger,
            env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap, **env} if bootstrap else env,
        )

    return make
