"""What the consumer's probes say (served by ``scoring.probes.ProbeServer`` on METRICS_PORT).

``/healthz`` answers 200 while the loop has made a turn recently (a wedged loop fails the
liveness probe and Kubernetes restarts the pod). ``/readyz`` answers 200 only when the consumer
can deliver: the model gates passed, it holds a group assignment, reaches the broker, and its
producer is initialised (holds a producer id; see ``consumer.kafka.ClientEvents``).
"""

from __future__ import annotations

import threading

from scoring.probes import Heartbeat


class HealthState(Heartbeat):
    """Shared between the loop (writer) and the probe server's thread (reader)."""

    def __init__(self, liveness_timeout_s: float) -> None:
        super().__init__(liveness_timeout_s)
        self._state_lock = threading.Lock()
        self._gates_passed = False
        self._assigned = False
        self._broker_reachable = True
        self._producer_ready = False
        self._publishing = True
        self._stopping = False

    def set_gates_passed(self) -> None:
        with self._state_lock:
            self._gates_passed = True

    def set_assigned(self, assigned: bool) -> None:
        with self._state_lock:
            self._assigned = assigned

    def set_broker_reachable(self, reachable: bool) -> None:
        with self._state_lock:
            self._broker_reachable = reachable

    def set_producer_ready(self, ready: bool) -> None:
        """True while the producer can send: it holds a producer id (idempotence, transactions).

        Until then librdkafka holds every record back: on a fresh broker that is a second or
        more, which a consumer called ready would add to its first events' latency."""
        with self._state_lock:
            self._producer_ready = ready

    def set_publishing(self, ok: bool) -> None:
        """False while the last batch could not be published (it is being retried)."""
        with self._state_lock:
            self._publishing = ok

    def set_stopping(self) -> None:
        with self._state_lock:
            self._stopping = True

    def ready(self) -> tuple[bool, dict[str, object]]:
        with self._state_lock:
            detail: dict[str, object] = {
                "gates_passed": self._gates_passed,
                "assigned": self._assigned,
                "broker_reachable": self._broker_reachable,
                "producer_ready": self._producer_ready,
                "publishing": self._publishing,
                "stopping": self._stopping,
            }
            ok = (
                self._gates_passed
                and self._assigned
                and self._broker_reachable
                and self._producer_ready
                and self._publishing
                and not self._stopping
            )
        detail["ready"] = ok
        return ok, detail
