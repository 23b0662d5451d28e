"""Readiness waits for the producer: its statistics say when it holds a producer id."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from prometheus_client import CollectorRegistry

from consumer.health import HealthState
from consumer.kafka import (
    PRODUCER_STATS_INTERVAL_MS,
    ClientEvents,
    assigned_producer_id,
    producer_config,
)
from consumer.metrics import ScorerMetrics
from consumer.settings import load_settings

BASE = {"MODEL_URI": "/models/b1/best_model_full.joblib", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}


def brokers(state: str) -> dict[str, Any]:
    """The `brokers` object of librdkafka's statistics: the bootstrap entry and one broker."""
    return {
        "127.0.0.1:9092/bootstrap": {"nodeid": -1, "state": "INIT"},
        "127.0.0.1:9092/1": {"nodeid": 1, "state": state},
    }


def eos_stats(idemp_state: str, producer_id: int, broker_state: str = "UP") -> dict[str, Any]:
    """The top-level `eos` object of librdkafka's statistics, as a real producer reports it."""
    return {
        "type": "producer",
        "brokers": brokers(broker_state),
        "eos": {
            "idemp_state": idemp_state,
            "idemp_stateage": 73,
            "txn_state": "Init",
            "txn_stateage": 283277,
            "txn_may_enq": False,
            "producer_id": producer_id,
            "producer_epoch": 0 if producer_id >= 0 else -1,
            "epoch_cnt": 1 if producer_id >= 0 else 0,
        },
    }


def test_only_an_assigned_producer_id_counts() -> None:
    assert assigned_producer_id(eos_stats("Assigned", 0)) == 0
    assert assigned_producer_id(eos_stats("Assigned", 4711)) == 4711
    # Waiting for the broker ("Coordinator load in progress" on a fresh one), or replacing it.
    for state in ("Init", "WaitTransport", "RequestPID", "WaitPID", "DrainBump", "FatalError"):
        assert assigned_producer_id(eos_stats(state, -1)) is None, state
    assert assigned_producer_id(eos_stats("DrainReset", 7)) is None
    assert assigned_producer_id({"type": "producer"}) is None  # no eos object: not idempotent


def _a_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_real_producer_without_a_broker_is_not_initialised() -> None:
    """librdkafka's own statistics (not a hand-written sample): no broker, no producer id."""
    reports: list[str] = []
    producer = Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{_a_closed_port()}",
            "enable.idempotence": True,
            "statistics.interval.ms": 100,
            "stats_cb": reports.append,
            "log_level": 0,
        }
    )
    deadline = time.monotonic() + 10
    while not reports and time.monotonic() < deadline:
        producer.poll(0.05)
    assert reports, "librdkafka reported no statistics"
    stats = json.loads(reports[-1])
    assert stats["eos"]["idemp_state"] != "Assigned"
    assert stats["eos"]["producer_id"] == -1
    assert assigned_producer_id(stats) is None


def test_readiness_follows_the_producer_id(caplog: pytest.LogCaptureFixture) -> None:
    health = HealthState(liveness_timeout_s=30)
    health.set_gates_passed()
    health.set_assigned(True)
    events = ClientEvents(health, ScorerMetrics.create(CollectorRegistry()))
    assert health.ready()[0] is False  # nothing reported yet
    events.on_producer_stats(json.dumps(eos_stats("RequestPID", -1)))
    ok, detail = health.ready()
    assert (ok, detail["producer_ready"]) == (False, False)
    with caplog.at_level(logging.INFO, logger="consumer.kafka"):
        events.on_producer_stats(json.dumps(eos_stats("Assigned", 3)))
        events.on_producer_stats(json.dumps(eos_stats("Assigned", 3)))
    assert health.ready()[0] is True
    assert [r.getMessage() for r in caplog.records] == ["producer initialised producer_id=3"]
    events.on_producer_stats(json.dumps(eos_stats("DrainBump", -1)))
    assert health.ready()[1]["producer_ready"] is False


def test_the_producer_reports_statistics_only_when_asked() -> None:
    settings = load_settings(BASE)
    assert "stats_cb" not in producer_config(settings)  # the shadow's and the benchmark's

    def on_stats(stats: str) -> None:
        pass

    config = producer_config(settings, None, on_stats)
    assert config["stats_cb"] is on_stats
    assert config["statistics.interval.ms"] == PRODUCER_STATS_INTERVAL_MS


def test_a_client_that_lost_every_broker_is_unreachable_until_its_own_stats_show_one_up() -> None:
    """The producer saw the broker go; the consumer's statistics, taken before it noticed, still
    show its connection up: they must not make the broker reachable again."""
    health = HealthState(liveness_timeout_s=30)
    health.set_gates_passed()
    health.set_assigned(True)
    events = ClientEvents(health, ScorerMetrics.create(CollectorRegistry()))
    events.on_producer_stats(json.dumps(eos_stats("Assigned", 3)))
    events.on_stats(json.dumps({"type": "consumer", "brokers": brokers("UP")}))
    assert health.ready()[0] is True
    events.on_producer_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert health.ready()[1]["broker_reachable"] is False
    events.on_stats(json.dumps({"type": "consumer", "brokers": brokers("UP")}))
    assert health.ready()[1]["broker_reachable"] is False
    events.on_producer_stats(json.dumps(eos_stats("Assigned", 3, broker_state="TRY_CONNECT")))
    assert health.ready()[1]["broker_reachable"] is False
    events.on_producer_stats(json.dumps(eos_stats("Assigned", 3)))
    assert health.ready()[0] is True
    # The consumer's own loss counts as well, and its own statistics restore it.
    events.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert health.ready()[1]["broker_reachable"] is False
    events.on_producer_stats(json.dumps(eos_stats("Assigned", 3)))
    assert health.ready()[1]["broker_reachable"] is False
    events.on_stats(json.dumps({"type": "consumer", "brokers": brokers("UP")}))
    assert health.ready()[0] is True
