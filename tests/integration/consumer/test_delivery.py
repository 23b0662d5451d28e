"""Lifecycle with a real process: readiness waits for the gates and a held assignment.

SIGKILL and SIGTERM restarts, the exactly-once crash and the refused artifacts are tested once, in
the fault suite (tests/integration/faults/test_crashes.py, test_artifacts.py)."""

from __future__ import annotations

import time

from tests.integration.consumer.conftest import ConsumerFactory, Topics


def test_not_ready_until_gates_pass_and_partitions_are_held(
    topics: Topics, start_consumer: ConsumerFactory
) -> None:
    # No broker answers at this address: the gates pass but no assignment can be held.
    consumer = start_consumer(topics, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9")
    deadline = time.monotonic() + 60
    states = []
    while time.monotonic() < deadline:
        state = consumer.readiness()
        if state is not None:
            states.append(state)
            if state["gates_passed"]:
                break
        time.sleep(0.1)
    assert states, consumer.log_tail()
    assert all(not s["ready"] for s in states)
    assert states[-1]["gates_passed"] is True
    time.sleep(1)
    assert consumer.http("/readyz")[0] == 503
    assert consumer.http("/healthz")[0] == 200
    assert consumer.terminate() == 0
