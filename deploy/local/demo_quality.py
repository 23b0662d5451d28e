"""The demo's quality monitor and order system: ``python -m quality`` beside the consumer, each
replayed session's real outcome sent a little later, and the live figures printed next to the
build's test figures (docs/quality.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.replay import free_port
from contract.outcome import outcome_json

REPO = Path(__file__).resolve().parents[2]
SHOWN = ("brier", "log_loss", "ece", "roc_auc", "pr_auc", "precision", "recall", "f1")
WINDOW_LABELS = 5000
OUTCOME_WINDOW = "10m"


def join_settings(outcome_window: str = OUTCOME_WINDOW) -> dict[str, str]:
    """The join rule's settings (docs/quality.md), the same for the monitor and for
    ``python -m training collect``: a session's window, and a session without outcome left out."""
    return {"OUTCOME_WINDOW": outcome_window, "MISSING_OUTCOME": "unknown"}


def create_outcome_topic(bootstrap: str, name: str, partitions: int) -> str:
    """The order system's topic: as many partitions as the scores topic (co-partitioned)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def start_monitor(
    bootstrap: str,
    scores: str,
    outcomes: str,
    registry: str,
    store_env: dict[str, str],
    outcome_window: str = OUTCOME_WINDOW,
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        **store_env,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SCORES_TOPIC": scores,
        "OUTCOME_TOPIC": outcomes,
        "QUALITY_CONSUMER_GROUP": f"demo-quality-{scores}",
        "QUALITY_MODEL_REGISTRY": registry,
        "QUALITY_WINDOW_LABELS": str(WINDOW_LABELS),
        **join_settings(outcome_window),
        "QUALITY_HISTORY": "10m",
        "QUALITY_GRACE": "1s",
        "QUALITY_REFRESH": "1s",
        "METRICS_PORT": str(port),
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
    }
    print("==> starting the quality monitor (python -m quality)")
    process = subprocess.Popen([sys.executable, "-m", "quality"], env=env, cwd=REPO)
    return process, f"http://127.0.0.1:{port}"


def send_outcomes(
    bootstrap: str, topic: str, purchases: dict[str, bool], session_ids: Iterable[str]
) -> int:
    """What the shop's order system does: one outcome per decided session, keyed by its id."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    count = 0
    for session_id in session_ids:
        now = datetime.now(UTC)
        producer.produce(topic, outcome_json(session_id, purchases[session_id], now), session_id)
        count += 1
        if count % 10_000 == 0:
            producer.flush(30)
    if producer.flush(60):
        raise RuntimeError("outcomes were not acknowledged")
    return count


def figures(url: str) -> dict[str, dict[str, float]]:
    """The primary build's samples: name -> metric (``result`` for the judged counter; "" when
    neither) -> value."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("quality_") and sample.labels.get("role") == "primary":
                key = sample.labels.get("metric", sample.labels.get("result", ""))
                found.setdefault(sample.name, {})[key] = sample.value
    return found


def wait_judged(url: str, judged: int, timeout_s: float = 120) -> dict[str, dict[str, float]]:
    """Wait until the monitor judged ``judged`` sessions in all (and its figures are fresh)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = figures(url)
            if sum(found.get("quality_judged_total", {}).values()) >= judged:
                time.sleep(1.5)  # one QUALITY_REFRESH more: the figures include the last ones
                return figures(url)
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the quality monitor did not judge {judged} sessions in time")
        time.sleep(0.5)


def print_figures(title: str, found: dict[str, dict[str, float]]) -> None:
    live, promised = found.get("quality_live", {}), found.get("quality_promised", {})
    expected = found.get("quality_expected", {})
    labels = int(next(iter(found.get("quality_window_labels", {}).values()), 0))
    print(f"\n---- live quality: {title} (last {labels:,} labelled sessions) ----")
    print(f"{'':12}{'live':>9}{'promised':>10}   (promised: the build's test split)")
    nan = float("nan")
    for name in SHOWN:
        print(f"{name:12}{live.get(name, nan):>9.4f}{promised.get(name, nan):>10.4f}")
    print(
        f"mean probability {live.get('mean_probability', nan):.4f} vs observed purchase rate "
        f"{live.get('positive_rate', nan):.4f}; expected Brier {expected.get('brier', nan):.4f} "
        f"vs realised {live.get('brier', nan):.4f}"
    )
