"""What the quality monitor's probes say (served by ``scoring.probes.ProbeServer`` on
METRICS_PORT).

``/healthz`` answers 200 while the loop turns; ``/readyz`` answers 200 once the monitor holds an
assignment, has read every assigned partition to its end since (the state is rebuilt: the
figures it exports are whole) and reaches the brokers.
"""

from __future__ import annotations

from scoring.probes import Heartbeat


class MonitorHealth(Heartbeat):
    """Written by the loop, read by the probe server's thread."""

    def __init__(self, liveness_timeout_s: float) -> None:
        super().__init__(liveness_timeout_s)
        self.assigned = False
        self.caught_up = False
        self.broker_reachable = True
        self.stopping = False

    def ready(self) -> tuple[bool, dict[str, object]]:
        detail: dict[str, object] = {
            "assigned": self.assigned,
            "caught_up": self.caught_up,
            "broker_reachable": self.broker_reachable,
            "stopping": self.stopping,
        }
        ok = self.assigned and self.caught_up and self.broker_reachable and not self.stopping
        detail["ready"] = ok
        return ok, detail
