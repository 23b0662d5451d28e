"""The demo's report picture, from a recorded scrape series of the consumer's real metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from consumer.metrics import ScorerMetrics
from deploy.local.report import (
    draw_report,
    histogram_quantile,
    load_scrapes,
    parse_scrape,
    report_series,
)

INF = math.inf


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.01, 0.0), (0.025, 100.0), (0.05, 100.0), (INF, 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.0175)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.02485)
    # Lowest bucket starts at 0; a rank in +Inf answers the highest finite bound.
    assert histogram_quantile(0.5, [(1.0, 10.0), (INF, 10.0)]) == pytest.approx(0.5)
    assert histogram_quantile(0.99, [(1.0, 0.0), (2.0, 5.0), (INF, 10.0)]) == 2.0
    assert math.isnan(histogram_quantile(0.5, [(1.0, 0.0), (INF, 0.0)]))


def recorded_replay() -> list:  # type: ignore[type-arg]
    """Scrapes of a real ScorerMetrics exposition: 50 events scored per 0.5 s, each 20 ms end to
    end, one dead letter at 3 s."""
    metrics = ScorerMetrics.create(CollectorRegistry())
    scrapes = [parse_scrape(0.0, generate_latest(metrics.registry).decode())]
    for step in range(1, 21):
        metrics.count("scored", 50)
        for _ in range(50):
            metrics.end_to_end_latency.observe(0.02)
        if step == 6:
            metrics.count("rejected")
        scrapes.append(parse_scrape(step * 0.5, generate_latest(metrics.registry).decode()))
    return scrapes


def test_series_are_the_rates_and_quantiles_of_the_recorded_counters() -> None:
    series = report_series(recorded_replay(), window_s=1.0)
    assert series.at == pytest.approx([i * 0.5 for i in range(2, 21)])
    assert series.throughput == pytest.approx([100.0] * 19)
    # 20 ms falls in the (10 ms, 25 ms] bucket of the consumer's latency histogram.
    assert series.p50_ms == pytest.approx([17.5] * 19)
    assert series.p99_ms == pytest.approx([24.85] * 19)
    assert series.dead_letters == [0.0] * 4 + [1.0] * 15


def test_report_png_is_drawn_and_its_scrapes_saved(tmp_path: Path) -> None:
    scrapes = recorded_replay()
    path = draw_report(scrapes, tmp_path / "demo" / "report.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    assert load_scrapes(path.with_name("scrapes.jsonl")) == scrapes
