"""Fixtures for tests against a real Kafka broker.

Where the broker comes from, in order (never a silent skip):
1. `KAFKA_BOOTSTRAP_SERVERS` is set: that cluster.
2. A Docker engine answers: testcontainers' Kafka module.
3. Java and Maven are installed: a local broker from `deploy/local/kafka.sh`, stopped at the end.
4. Otherwise the tests fail with what to install.
`KAFKA_TEST_BROKER=local|docker` forces step 2 or 3. The SASL fixture uses
`KAFKA_SASL_BOOTSTRAP_SERVERS` (+ `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`,
`KAFKA_SASL_MECHANISM`) when set, else its own local broker started with `--sasl`. The TLS/ACL
fixture (`kafka_secure`) always starts its own local broker with `--tls --acl`: its tests grant
ACLs through kafka.sh.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.builds import train_tiny_build
from tests.integration.prometheus import PrometheusServer
from tests.session_servers import SessionServers, Started

from .broker import (
    INSTALL_HINT,
    SASL_PASSWORD,
    SASL_USERNAME,
    BrokerError,
    BrokerPrerequisiteError,
    GroupFactory,
    LocalBroker,
    SaslCluster,
    SecureCluster,
    TopicFactory,
    unique_broker_name,
    wait_for_topic,
)
from .s3 import LocalS3, unique_bucket

logger = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
TESTCONTAINERS_IMAGE = os.environ.get("KAFKA_TESTCONTAINERS_IMAGE", "confluentinc/cp-kafka:7.6.0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/integration needs a broker: mark it `integration`."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


def _docker_engine_answers(timeout_s: float = 5.0) -> bool:
    try:
        import docker  # type: ignore[import-untyped]  # installed with testcontainers

        client = docker.from_env(timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception as exc:  # any failure means: no usable engine here
        logger.debug("no Docker engine: %s", exc)
        return False


def _wait_for_metadata(bootstrap: str, what: str, timeout_s: float = 30.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.list_topics(timeout=timeout_s)
    except Exception as exc:
        problem = f"{what} {bootstrap} did not answer a metadata request: {exc}"
    else:
        return
    pytest.fail(problem, pytrace=False)


def _start_local(
    name: str, owner_pid: int, *, sasl: bool = False, tls_acl: bool = False
) -> LocalBroker:
    broker = LocalBroker(unique_broker_name(name), sasl=sasl, tls_acl=tls_acl, owner_pid=owner_pid)
    try:
        broker.start()
    except BrokerPrerequisiteError as exc:
        problem = f"No Kafka broker for the integration tests: {exc}\n{INSTALL_HINT}"
    except BrokerError as exc:
        problem = f"The local Kafka broker did not start: {exc}"
    else:
        return broker
    pytest.fail(problem, pytrace=False)


def _started_broker(broker: LocalBroker, **value: Any) -> Started:
    return Started(value, stop_command=broker.stop_command(grace_s=10))


@pytest.fixture(scope="session")
def session_servers(request: pytest.FixtureRequest) -> SessionServers:
    """Where the run's shared servers are recorded (see ``tests.session_servers``)."""
    return SessionServers.of(request.config)


@pytest.fixture(scope="session")
def kafka_bootstrap(session_servers: SessionServers) -> Iterator[str]:
    """Bootstrap address of the session's Kafka cluster (see the module docstring)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        _wait_for_metadata(external, "KAFKA_BOOTSTRAP_SERVERS")
        yield external
        return
    choice = os.environ.get("KAFKA_TEST_BROKER", "auto")
    if choice not in ("auto", "local", "docker"):
        pytest.fail(
            f"KAFKA_TEST_BROKER must be auto, local or docker, got {choice!r}", pytrace=False
        )
    if choice == "docker" or (choice == "auto" and _docker_engine_answers()):
        yield from _testcontainers_kafka(session_servers)
        return

    def start(owner_pid: int) -> Started:
        broker = _start_local("pytest", owner_pid)
        return _started_broker(broker, bootstrap=broker.bootstrap)

    with session_servers.once("kafka", start) as value:
        yield value["bootstrap"]


def _testcontainers_kafka(session_servers: SessionServers) -> Iterator[str]:
    from testcontainers.community.kafka import KafkaContainer

    def start(owner_pid: int) -> Started:
        container = (
            KafkaContainer(TESTCONTAINERS_IMAGE)
            .with_kraft()
            .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        )
        container.start()
        docker_id = container.get_wrapped_container().id
        return Started(
            {"bootstrap": container.get_bootstrap_server()},
            stop_command=["docker", "rm", "--force", docker_id],
        )

    with session_servers.once("kafka", start) as value:
        yield value["bootstrap"]


@pytest.fixture(scope="session")
def kafka_sasl(session_servers: SessionServers) -> Iterator[SaslCluster]:
    """A SASL_PLAINTEXT listener with a known user, for the consumer's security settings."""
    external = os.environ.get("KAFKA_SASL_BOOTSTRAP_SERVERS", "").strip()
    if external:
        missing = [v for v in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD") if v not in os.environ]
        if missing:
            pytest.fail(f"KAFKA_SASL_BOOTSTRAP_SERVERS is set but {missing} are not", pytrace=False)
        yield SaslCluster(
            external,
            os.environ["KAFKA_SASL_USERNAME"],
            os.environ["KAFKA_SASL_PASSWORD"],
            mechanism=os.environ.get("KAFKA_SASL_MECHANISM", "PLAIN"),
        )
        return

    def start(owner_pid: int) -> Started:
        broker = _start_local("pytest-sasl", owner_pid, sasl=True)
        return _started_broker(broker, bootstrap=broker.sasl_cluster().bootstrap)

    with session_servers.once("kafka-sasl", start) as value:
        yield SaslCluster(value["bootstrap"], SASL_USERNAME, SASL_PASSWORD)


@pytest.fixture(scope="session")
def kafka_secure(session_servers: SessionServers) -> Iterator[SecureCluster]:
    """One SASL_SSL + SCRAM-SHA-512 listener with ACLs for the session (`kafka.sh --tls --acl`)."""

    def start(owner_pid: int) -> Started:
        broker = _start_local("pytest-tls", owner_pid, tls_acl=True)
        cluster = broker.secure_cluster()
        return _started_broker(
            broker, name=broker.name, bootstrap=cluster.bootstrap, ca_file=str(cluster.ca_file)
        )

    with session_servers.once("kafka-secure", start) as value:
        broker = LocalBroker(value["name"], tls_acl=True)
        yield SecureCluster(broker, value["bootstrap"], Path(value["ca_file"]))


@pytest.fixture(scope="session")
def admin(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


def unique_name(request: pytest.FixtureRequest, prefix: str) -> str:
    """`prefix-<test name>-<random>`: readable in broker logs, never reused."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]
    return f"{prefix}-{slug}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic_factory(admin: AdminClient, request: pytest.FixtureRequest) -> Iterator[TopicFactory]:
    """`topic_factory(partitions=1, config=None)` creates a fresh topic and returns its name."""
    created: list[str] = []

    def create(partitions: int = 1, config: Mapping[str, str] | None = None) -> str:
        name = unique_name(request, "it")
        topic = NewTopic(name, num_partitions=partitions, config=dict(config or {}))
        admin.create_topics([topic], operation_timeout=30, request_timeout=30)[name].result(30)
        created.append(name)
        wait_for_topic(admin, name, partitions)
        return name

    yield create
    if created:
        for name, future in admin.delete_topics(created, operation_timeout=30).items():
            try:
                future.result(30)
            except Exception as exc:  # best effort: the broker is thrown away anyway
                logger.warning("could not delete topic=%s: %s", name, exc)


@pytest.fixture
def group_factory(request: pytest.FixtureRequest) -> GroupFactory:
    """`group_factory()` returns a consumer group id no other test uses."""

    def make() -> str:
        return unique_name(request, "itg")

    return make


@pytest.fixture(scope="session")
def model_build(
    session_servers: SessionServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """One real build (both variants) trained on generated sessions, shared by the run.

    It lives here, not in one subfolder's conftest, so that every integration suite (consumer,
    faults) shares one training run: a fixture re-exported by another conftest would train twice.
    """

    def start(owner_pid: int) -> Started:
        build = train_tiny_build(tmp_path_factory.mktemp("registry") / "builds")
        return Started({"build": str(build)})

    with session_servers.once("model-build", start) as value:
        yield Path(value["build"])


@pytest.fixture(scope="session")
def prometheus(
    session_servers: SessionServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    """One real Prometheus server for the run (Debian's package: `make prometheus`).

    Each test points it at its consumers with ``prometheus.scrape(targets, namespace=...)``
    and selects its own series by that unique namespace label.
    """

    def start(owner_pid: int) -> Started:
        server = PrometheusServer(tmp_path_factory.mktemp("prometheus"))
        try:
            server.start()
        except (AssertionError, RuntimeError) as exc:
            pytest.fail(f"No Prometheus server for the observability tests: {exc}", pytrace=False)
        assert server.process is not None
        value = {"workdir": str(server.workdir), "port": server.port}
        return Started(value, stop_pid=server.process.pid)

    with session_servers.once("prometheus", start) as value:
        yield PrometheusServer.attach(Path(value["workdir"]), int(value["port"]))


@pytest.fixture(scope="session")
def s3_server(session_servers: SessionServers) -> Iterator[LocalS3]:
    """One real S3 API server (S3Proxy from `deploy/local/s3.sh`) for the whole run."""

    def start(owner_pid: int) -> Started:
        server = LocalS3(f"pytest-s3-{uuid.uuid4().hex[:8]}", owner_pid=owner_pid)
        try:
            server.start()
        except RuntimeError as exc:
            pytest.fail(f"The local S3 server did not start: {exc}\n{INSTALL_HINT}", pytrace=False)
        value = {"name": server.name, "settings": server.settings}
        return Started(value, stop_command=server.stop_command())

    with session_servers.once("s3", start) as value:
        yield LocalS3(value["name"], settings=dict(value["settings"]))


@pytest.fixture
def s3_bucket(s3_server: LocalS3) -> str:
    """A fresh, empty bucket on the session's S3 server."""
    name = unique_bucket()
    s3_server.client().create_bucket(Bucket=name)
    return name
