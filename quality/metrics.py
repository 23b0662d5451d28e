"""Prometheus metrics of the quality monitor, on a registry passed in (never the global one).

Figures are gauges labelled by ``role`` (``primary``: SCORES_TOPIC, ``shadow``:
SHADOW_SCORES_TOPIC), ``build_id``, ``variant`` and ``metric``, so that
``quality_live{metric="brier"}`` and ``quality_promised{metric="brier"}`` match one to one in a
rule or a panel ("live vs promised").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from quality.window import Build, Figures, Pair, PairFigures

_BUILD = ("role", "build_id", "variant")
_DELAY_BUCKETS: Final = (
    1,
    10,
    60,
    300,
    900,
    3600,
    4 * 3600,
    12 * 3600,
    86400,
    3 * 86400,
    7 * 86400,
)

METRIC_NAMES: Final = (
    "quality_live",
    "quality_expected",
    "quality_expected_recent",
    "quality_promised",
    "quality_window_labels",
    "quality_paired",
    "quality_agreement",
    "quality_paired_labels",
    "quality_judged_total",
    "quality_scores_total",
    "quality_outcomes_total",
    "quality_ignored_total",
    "quality_invalid_records_total",
    "quality_outcome_delay_seconds",
    "quality_held_sessions",
    "quality_held_outcomes",
    "quality_watermark_lag_seconds",
    "quality_rebalances_total",
    "quality_ready",
)
"""Every metric the monitor exports; deploy/k8s alerts and the dashboard may use only these."""


@dataclass(frozen=True)
class QualityMetrics:
    registry: CollectorRegistry
    live: Gauge
    expected: Gauge
    expected_recent: Gauge
    promised: Gauge
    window_labels: Gauge
    paired: Gauge
    agreement: Gauge
    paired_labels: Gauge
    judged: Counter
    scores: Counter
    outcomes: Counter
    ignored: Counter
    invalid: Counter
    outcome_delay: Histogram
    held_sessions: Gauge
    held_outcomes: Gauge
    watermark_lag: Gauge
    rebalances: Counter
    ready: Gauge
    _published: dict[Gauge, set[tuple[str, ...]]] = field(default_factory=dict)
    """The label sets of each figure gauge set by the last ``publish``."""

    @classmethod
    def create(cls, registry: CollectorRegistry) -> QualityMetrics:
        ProcessCollector(registry=registry)  # process_resident_memory_bytes: the caps at work
        pair = ("primary_build_id", "primary_variant", "shadow_build_id", "shadow_variant")
        return cls(
            registry=registry,
            live=Gauge(
                "quality_live",
                "Realised figure over the build's last QUALITY_WINDOW_LABELS labelled sessions",
                [*_BUILD, "metric"],
                registry=registry,
            ),
            expected=Gauge(
                "quality_expected",
                "What the probabilities promised on the same labelled sessions (calibrated)",
                [*_BUILD, "metric"],
                registry=registry,
            ),
            expected_recent=Gauge(
                "quality_expected_recent",
                "Estimate before outcomes: expected figure over the build's recent scores",
                [*_BUILD, "metric"],
                registry=registry,
            ),
            promised=Gauge(
                "quality_promised",
                "The build's test-split figure from its manifest",
                [*_BUILD, "metric"],
                registry=registry,
            ),
            window_labels=Gauge(
                "quality_window_labels",
                "Labelled sessions behind the live figures",
                list(_BUILD),
                registry=registry,
            ),
            paired=Gauge(
                "quality_paired",
                "Figure of each build on the sessions both primary and shadow scored",
                [*pair, "role", "metric"],
                registry=registry,
            ),
            agreement=Gauge(
                "quality_agreement",
                "Share of paired labelled sessions where primary and shadow labels agree",
                list(pair),
                registry=registry,
            ),
            paired_labels=Gauge(
                "quality_paired_labels",
                "Labelled sessions behind the paired figures",
                list(pair),
                registry=registry,
            ),
            judged=Counter(
                "quality_judged_total",
                "Sessions judged by result: purchase, no_purchase, missing (no outcome in time)",
                [*_BUILD, "result"],
                registry=registry,
            ),
            scores=Counter(
                "quality_scores_total",
                "Scored records read and in the sample",
                ["role"],
                registry=registry,
            ),
            outcomes=Counter(
                "quality_outcomes_total",
                "Outcome records read and in the sample",
                registry=registry,
            ),
            ignored=Counter(
                "quality_ignored_total",
                "Records left out by the join rule, by reason",
                ["reason"],
                registry=registry,
            ),
            invalid=Counter(
                "quality_invalid_records_total",
                "Records that broke their contract (skipped, logged)",
                ["topic"],
                registry=registry,
            ),
            outcome_delay=Histogram(
                "quality_outcome_delay_seconds",
                "Outcome record time minus the judged score's record time",
                buckets=_DELAY_BUCKETS,
                registry=registry,
            ),
            held_sessions=Gauge(
                "quality_held_sessions", "Scored sessions waiting for an outcome", registry=registry
            ),
            held_outcomes=Gauge(
                "quality_held_outcomes", "Outcomes waiting for their score", registry=registry
            ),
            watermark_lag=Gauge(
                "quality_watermark_lag_seconds",
                "Now minus the oldest partition watermark (how far the join is behind)",
                registry=registry,
            ),
            rebalances=Counter(
                "quality_rebalances_total",
                "Assignments and revocations",
                ["kind"],
                registry=registry,
            ),
            ready=Gauge("quality_ready", "1 while /readyz would answer 200", registry=registry),
        )

    def publish(
        self,
        figures: Mapping[Build, Figures],
        recent: Mapping[Build, Mapping[str, float]],
        pairs: Mapping[Pair, PairFigures],
        promised: Mapping[tuple[str, str], Mapping[str, float]],
    ) -> None:
        """Replace every figure by the ones just computed. Each series is set in place and only
        the ones no longer computed (a build gone, a figure now undefined) are removed, so a
        scrape during a refresh never sees a figure missing."""
        series: dict[Gauge, dict[tuple[str, ...], float]] = {
            gauge: {}
            for gauge in (
                self.live,
                self.expected,
                self.expected_recent,
                self.promised,
                self.window_labels,
                self.paired,
                self.agreement,
                self.paired_labels,
            )
        }
        for key, figure in figures.items():
            series[self.window_labels][key] = figure.labels
            _add(series[self.live], key, figure.live)
            _add(series[self.expected], key, figure.expected)
        for key, values in recent.items():
            _add(series[self.expected_recent], key, values)
            _add(series[self.promised], key, promised.get(key[1:], {}))
        for pair, paired in pairs.items():
            series[self.agreement][pair] = paired.agreement
            series[self.paired_labels][pair] = paired.labels
            _add(series[self.paired], (*pair, "primary"), paired.primary)
            _add(series[self.paired], (*pair, "shadow"), paired.shadow)
        for gauge, now in series.items():
            for labels, value in now.items():
                gauge.labels(*labels).set(value)
            for labels in self._published.get(gauge, set()) - now.keys():
                gauge.remove(*labels)
            self._published[gauge] = set(now)


def _add(
    into: dict[tuple[str, ...], float], labels: tuple[str, ...], values: Mapping[str, float]
) -> None:
    """One series per figure; a figure undefined on the window (nan) is left out."""
    for name, value in values.items():
        if not math.isnan(value):
            into[(*labels, name)] = value
