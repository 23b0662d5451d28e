"""The demo's picture: throughput, p50/p99 end-to-end latency and dead letters over the replay.

Drawn from what the demo scraped from the consumer's own ``/metrics`` while it replayed (a
``MetricsRecorder`` polls it a few times a second), with Prometheus' arithmetic: rates are counter
increases over a short window, quantiles interpolate linearly inside histogram buckets. One
consumer process is recorded, so its counters never reset. The scrapes are saved beside the PNG
(``scrapes.jsonl``) so that the picture can be redrawn: ``python deploy/local/report.py DIR``.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt
from prometheus_client.parser import text_string_to_metric_families

SCORED = ("scorer_messages_total", (("outcome", "scored"),))
REJECTED = ("scorer_messages_total", (("outcome", "rejected"),))
LATENCY_BUCKET = "scorer_end_to_end_latency_seconds_bucket"


@dataclass(frozen=True)
class Scrape:
    """One read of /metrics: counters and the latency histogram's cumulative buckets."""

    at: float  # seconds since the recording started
    scored: float
    rejected: float
    latency_buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), +Inf last


def parse_scrape(at: float, text: str) -> Scrape:
    """The values the report needs from one Prometheus text exposition."""
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == LATENCY_BUCKET:
                buckets.append((float(sample.labels["le"]), sample.value))
            else:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return Scrape(at, values.get(SCORED, 0.0), values.get(REJECTED, 0.0), tuple(sorted(buckets)))


class MetricsRecorder:
    """Scrapes ``<url>/metrics`` every ``interval_s`` on a thread, from start() to stop()."""

    def __init__(self, url: str, interval_s: float = 0.25) -> None:
        self._url = url.rstrip("/") + "/metrics"
        self._interval_s = interval_s
        self._scrapes: list[Scrape] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-recorder", daemon=True)
        self._started = 0.0

    def start(self) -> MetricsRecorder:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> list[Scrape]:
        """Stop, take a last scrape, and return them all in time order."""
        self._stop.set()
        self._thread.join()
        self._scrape()
        return list(self._scrapes)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._scrape()

    def _scrape(self) -> None:
        at = time.monotonic() - self._started
        try:
            with urllib.request.urlopen(self._url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return  # a missed scrape is a gap in the picture, never a failed demo
        self._scrapes.append(parse_scrape(at, text))


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile`` over cumulative (upper bound, count) buckets.

    Linear interpolation inside the bucket holding the rank; the lowest bucket starts at 0; a
    rank in the +Inf bucket answers the highest finite bound; no observations give NaN.
    """
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


@dataclass(frozen=True)
class ReportSeries:
    """The plotted series, one point per scrape that has a scrape ``window_s`` before it."""

    at: list[float]
    throughput: list[float]  # scored events per second
    p50_ms: list[float]
    p99_ms: list[float]
    dead_letters: list[float]  # cumulative


def report_series(scrapes: Sequence[Scrape], window_s: float = 1.0) -> ReportSeries:
    series = ReportSeries([], [], [], [], [])
    start = 0
    for end, now in enumerate(scrapes):
        while start + 1 < end and now.at - scrapes[start + 1].at >= window_s:
            start += 1
        then = scrapes[start]
        if now.at - then.at < window_s or len(now.latency_buckets) != len(then.latency_buckets):
            continue
        delta = [
            (upper, count - old)
            for (upper, count), (_, old) in zip(
                now.latency_buckets, then.latency_buckets, strict=True
            )
        ]
        series.at.append(now.at)
        series.throughput.append((now.scored - then.scored) / (now.at - then.at))
        series.p50_ms.append(1000 * histogram_quantile(0.5, delta))
        series.p99_ms.append(1000 * histogram_quantile(0.99, delta))
        series.dead_letters.append(now.rejected)
    return series


def draw_report(scrapes: Sequence[Scrape], path: Path, window_s: float = 1.0) -> Path:
    """Write the three-panel PNG to ``path`` (and the scrapes beside it); return ``path``."""
    series = report_series(scrapes, window_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_scrapes(scrapes, path.with_name("scrapes.jsonl"))
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    total = scrapes[-1].scored if scrapes else 0
    figure.suptitle(f"shopper-intent demo replay: {total:,.0f} events scored")
    top.plot(series.at, series.throughput, color="tab:blue")
    top.set_ylabel("scored events/s")
    top.set_title(f"throughput ({window_s:g} s window)", fontsize=10)
    middle.plot(series.at, series.p50_ms, label="p50", color="tab:green")
    middle.plot(series.at, series.p99_ms, label="p99", color="tab:red")
    middle.set_ylabel("ms")
    middle.set_title("end-to-end latency: input record time → output acknowledged", fontsize=10)
    middle.legend(loc="upper right")
    bottom.step(series.at, series.dead_letters, where="post", color="tab:orange")
    bottom.set_ylabel("dead letters (total)")
    bottom.set_xlabel("seconds since the replay started")
    for axes in (top, middle, bottom):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def save_scrapes(scrapes: Sequence[Scrape], path: Path) -> None:
    path.write_text("".join(json.dumps(asdict(s)) + "\n" for s in scrapes), encoding="utf-8")


def load_scrapes(path: Path) -> list[Scrape]:
    scrapes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        buckets = tuple((float(upper), float(count)) for upper, count in raw["latency_buckets"])
        scrapes.append(Scrape(raw["at"], raw["scored"], raw["rejected"], buckets))
    return scrapes


if __name__ == "__main__":  # redraw: python deploy/local/report.py build/demo
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "build/demo")
    print(draw_report(load_scrapes(directory / "scrapes.jsonl"), directory / "report.png"))
