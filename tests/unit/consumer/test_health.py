"""Health endpoints: liveness follows the loop's heartbeat, readiness what delivering needs."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from consumer.health import HealthState
from consumer.metrics import METRIC_NAMES, ScorerMetrics
from scoring.errors import SettingsError
from scoring.probes import ProbeServer


@pytest.fixture
def served() -> Iterator[tuple[HealthState, str, ScorerMetrics]]:
    registry = CollectorRegistry()
    metrics = ScorerMetrics.create(registry)
    state = HealthState(liveness_timeout_s=0.5)
    server = ProbeServer(state.alive, state.ready, registry, "127.0.0.1", 0)
    server.start()
    yield state, f"http://127.0.0.1:{server.port}", metrics
    server.stop()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_readiness_needs_gates_assignment_and_an_initialised_producer(
    served: tuple[HealthState, str, ScorerMetrics],
) -> None:
    state, base, _ = served
    status, body = get(base + "/readyz")
    assert status == 503
    assert json.loads(body)["gates_passed"] is False
    state.set_gates_passed()
    assert get(base + "/readyz")[0] == 503
    state.set_assigned(True)
    status, body = get(base + "/readyz")
    assert status == 503  # the producer holds no producer id yet: it could not deliver
    assert json.loads(body)["producer_ready"] is False
    state.set_producer_ready(True)
    assert get(base + "/readyz")[0] == 200
    state.set_publishing(False)
    assert get(base + "/readyz")[0] == 503
    state.set_publishing(True)
    state.set_stopping()
    assert get(base + "/readyz")[0] == 503


def test_liveness_follows_the_heartbeat(served: tuple[HealthState, str, ScorerMetrics]) -> None:
    state, base, _ = served
    state.beat()
    assert get(base + "/healthz")[0] == 200
    state._last_beat -= 10  # as if the loop had not turned for 10 s
    assert get(base + "/healthz")[0] == 503


def test_metrics_expose_every_documented_name(
    served: tuple[HealthState, str, ScorerMetrics],
) -> None:
    _, base, metrics = served
    metrics.runtime.model_info.labels(
        role="primary", build_id="b", variant="full", git_sha="x"
    ).set(1)
    metrics.consumer_lag.labels(topic="t", partition="0").set(3)
    status, body = get(base + "/metrics")
    assert status == 200
    text = body.decode()
    for name in METRIC_NAMES:
        assert name in text, name
    assert 'scorer_messages_total{outcome="scored"} 0.0' in text
    assert get(base + "/nope")[0] == 404


def test_a_metrics_port_in_use_is_a_bad_setting() -> None:
    registry = CollectorRegistry()
    state = HealthState(liveness_timeout_s=0.5)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SettingsError) as caught:
            ProbeServer.bind(state.alive, state.ready, registry, "127.0.0.1", port)
    assert caught.value.variable == "METRICS_PORT"
    assert caught.value.value == port
    assert "in use" in caught.value.reason
