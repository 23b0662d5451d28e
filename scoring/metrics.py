"""Prometheus metrics of the scoring runtime, the ones that are not about a transport: the
model in service and its scoring path, messages by outcome and the decode/score stages, the drift
sentinel, the shadow. On a registry passed in (never the global one); a front door composes them
with its own (``consumer.metrics.ScorerMetrics``), under the same names in every front door.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

RuntimeOutcome = Literal["scored", "rejected"]
RUNTIME_OUTCOMES: tuple[RuntimeOutcome, ...] = get_args(RuntimeOutcome)
RuntimeStage = Literal["decode", "score"]
RUNTIME_STAGES: tuple[RuntimeStage, ...] = get_args(RuntimeStage)
ShadowFailure = Literal["gates", "scoring", "timeout", "publish"]
SHADOW_FAILURES: tuple[ShadowFailure, ...] = get_args(ShadowFailure)
ShadowBatch = Literal["shadowed", "dropped", "failed"]
SHADOW_BATCHES: tuple[ShadowBatch, ...] = get_args(ShadowBatch)
ScoringPath = Literal["compiled", "pipeline"]
SCORING_PATHS: tuple[ScoringPath, ...] = get_args(ScoringPath)

RUNTIME_METRIC_NAMES = (
    "scorer_messages_total",
    "scorer_batch_duration_seconds",
    "scorer_model_info",
    "scorer_scoring_path",
    "scorer_feature_drift_psi",
    "scorer_prediction_drift_psi",
    "scorer_feature_null_ratio",
    "scorer_feature_null_reference",
    "scorer_mean_probability",
    "scorer_positive_label_ratio",
    "scorer_drift_window_events",
    "scorer_drift_reference",
    "scorer_shadow_abs_difference",
    "scorer_shadow_label_disagreements_total",
    "scorer_shadow_failures_total",
    "scorer_shadow_duration_seconds",
    "scorer_shadow_batches_total",
    "scorer_shadow_switched_off",
)
"""The runtime's metrics, exported by every front door."""

STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Seconds: the buckets of every per-batch stage duration."""
_DIFFERENCE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class RuntimeMetrics:
    """The runtime's metrics, registered on ``registry``."""

    registry: CollectorRegistry
    messages: Counter
    batch_duration: Histogram
    model_info: Gauge
    scoring_path: Gauge
    # The drift sentinel (scoring.drift), over its window of recent events.
    feature_drift_psi: Gauge
    prediction_drift_psi: Gauge
    feature_null_ratio: Gauge
    feature_null_reference: Gauge
    mean_probability: Gauge
    positive_label_ratio: Gauge
    drift_window_events: Gauge
    drift_reference: Gauge
    # The shadow (scoring.shadow).
    shadow_difference: Histogram
    shadow_disagreements: Counter
    shadow_failures: Counter
    shadow_duration: Histogram
    shadow_batches: Counter
    shadow_switched_off: Gauge

    @classmethod
    def create(
        cls,
        registry: CollectorRegistry,
        outcomes: Sequence[str] = RUNTIME_OUTCOMES,
        stages: Sequence[str] = RUNTIME_STAGES,
    ) -> RuntimeMetrics:
        """Register the runtime's metrics. ``outcomes`` and ``stages`` are the label values
        shown from the start (at 0): the runtime's, plus any a front door adds (the consumer's
        ``failed``/``skipped`` messages, its ``publish``/``commit`` stages)."""
        messages = Counter(
            "scorer_messages",
            "Input messages by outcome: scored, rejected (dead-lettered), failed (retried) or "
            "skipped (no dead letter could hold it; logged with its offset).",
            ["outcome"],
            registry=registry,
        )
        for outcome in outcomes:
            messages.labels(outcome=outcome)
        batch_duration = Histogram(
            "scorer_batch_duration_seconds",
            "Time spent per batch in each stage.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        for stage in stages:
            batch_duration.labels(stage=stage)
        shadow_failures = Counter(
            "scorer_shadow_failures",
            "Shadow model failures: gates (refused at start), scoring (raised: switched off), "
            "timeout (a batch over SHADOW_BATCH_TIMEOUT_S: switched off), publish.",
            ["stage"],
            registry=registry,
        )
        for failure in SHADOW_FAILURES:
            shadow_failures.labels(stage=failure)
        shadow_batches = Counter(
            "scorer_shadow_batches",
            "Batches handed to the shadow: shadowed (scored and compared), dropped (the shadow "
            "was still busy: not compared) or failed (raised or overran its time budget).",
            ["result"],
            registry=registry,
        )
        for result in SHADOW_BATCHES:
            shadow_batches.labels(result=result)
        return cls(
            registry=registry,
            messages=messages,
            batch_duration=batch_duration,
            model_info=Gauge(
                "scorer_model_info",
                "The model builds loaded (value 1): role primary serves, role shadow is compared.",
                ["role", "build_id", "variant", "git_sha"],
                registry=registry,
            ),
            scoring_path=Gauge(
                "scorer_scoring_path",
                "Which scoring path serves (1): the verified fast path `compiled`, or the "
                "`pipeline` itself (slower; the fast path failed its check or at scoring).",
                ["path"],
                registry=registry,
            ),
            feature_drift_psi=Gauge(
                "scorer_feature_drift_psi",
                "Population stability index of a raw feature in the drift window vs training.",
                ["feature"],
                registry=registry,
            ),
            prediction_drift_psi=Gauge(
                "scorer_prediction_drift_psi",
                "Population stability index of the probability in the drift window vs the "
                "build's test split.",
                registry=registry,
            ),
            feature_null_ratio=Gauge(
                "scorer_feature_null_ratio",
                "Share of events in the drift window whose feature is null.",
                ["feature"],
                registry=registry,
            ),
            feature_null_reference=Gauge(
                "scorer_feature_null_reference",
                "Share of the build's training rows whose feature is null (the reference of "
                "scorer_feature_null_ratio).",
                ["feature"],
                registry=registry,
            ),
            mean_probability=Gauge(
                "scorer_mean_probability",
                "Mean probability over the drift window.",
                registry=registry,
            ),
            positive_label_ratio=Gauge(
                "scorer_positive_label_ratio",
                "Share of events in the drift window labelled positive (probability >= threshold).",
                registry=registry,
            ),
            drift_window_events=Gauge(
                "scorer_drift_window_events",
                "Events in the drift window at its last refresh.",
                registry=registry,
            ),
            drift_reference=Gauge(
                "scorer_drift_reference",
                "The build's reference values: positive_label_ratio and mean_probability on its "
                "test split.",
                ["quantity"],
                registry=registry,
            ),
            shadow_difference=Histogram(
                "scorer_shadow_abs_difference",
                "|primary - shadow| purchase probability, per event scored by both.",
                buckets=_DIFFERENCE_BUCKETS,
                registry=registry,
            ),
            shadow_disagreements=Counter(
                "scorer_shadow_label_disagreements",
                "Events whose label (probability >= the build's threshold) differs between "
                "the primary and the shadow.",
                registry=registry,
            ),
            shadow_failures=shadow_failures,
            shadow_duration=Histogram(
                "scorer_shadow_duration_seconds",
                "Time spent scoring (and publishing) a batch with the shadow model.",
                buckets=STAGE_BUCKETS,
                registry=registry,
            ),
            shadow_batches=shadow_batches,
            shadow_switched_off=Gauge(
                "scorer_shadow_switched_off",
                "1 when SHADOW_MODEL_URI is set but the shadow does not score: refused at start, "
                "raised, or overran SHADOW_BATCH_TIMEOUT_S on a batch; 0 otherwise.",
                registry=registry,
            ),
        )

    def count(self, outcome: RuntimeOutcome, n: int = 1) -> None:
        if n:
            self.messages.labels(outcome=outcome).inc(n)

    def observe_stage(self, stage: RuntimeStage, seconds: float) -> None:
        self.batch_duration.labels(stage=stage).observe(seconds)

    def set_scoring_path(self, path: ScoringPath) -> None:
        for each in SCORING_PATHS:
            self.scoring_path.labels(path=each).set(1 if each == path else 0)


def observe_all(histogram: Histogram, values: npt.ArrayLike) -> None:
    """`histogram.observe(v)` for each of `values`, in order, in one pass of numpy.

    prometheus_client has no bulk observe, and one call per event costs ~0.6 µs. This adds to
    the histogram's own bucket counters and sum what those calls would add: a value goes to the
    first bucket whose upper bound it does not exceed (`v <= bound`; a NaN goes to none), and
    the sum is accumulated value by value from its current value (`np.add.accumulate` is
    sequential), so the exposition is exactly the one of observing one by one
    (tests/unit/scoring/test_metrics.py). For a histogram without labels, or one child of a
    labelled one, observed from one thread (the sum is read, then set).
    """
    amounts = np.asarray(values, dtype=np.float64).reshape(-1)
    if not len(amounts):
        return
    if histogram._labelnames and not histogram._labelvalues:  # observe() refuses it too
        raise ValueError(f"{histogram._name}: observe a child (labels(...)), not the parent")
    bounds = np.asarray(histogram._upper_bounds, dtype=np.float64)
    bucket_of = np.searchsorted(bounds, amounts, side="left")  # first bound >= the value
    counts = np.bincount(bucket_of, minlength=len(bounds) + 1)  # len(bounds): a NaN
    for bucket, count in zip(histogram._buckets, counts[: len(bounds)].tolist(), strict=True):
        if count:
            bucket.inc(count)
    start = histogram._sum.get()
    histogram._sum.set(float(np.add.accumulate(np.concatenate(([start], amounts)))[-1]))
