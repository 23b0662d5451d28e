"""The drift sentinel: does the stream still look like what the model was trained on?

Over a sliding window of the most recent ``DRIFT_WINDOW_EVENTS`` scored events it keeps, per
raw feature, the counts in the bins of the build's reference profile (``contract.profile``), and
the same for the probability. Every ``DRIFT_REFRESH_EVENTS`` events it publishes the population
stability index of each feature and of the probability against the reference, the null ratio
per feature, the mean probability and the share labelled positive.

Cost: one call per scored batch, a few numpy operations per feature (binning with
``searchsorted``, one ``bincount`` for the whole batch); the window is a sum of per-batch count
vectors, so an event is counted once when it arrives and subtracted once when it leaves. The
window is kept whole batches at a time: it holds the last ``DRIFT_WINDOW_EVENTS`` events plus
at most part of one batch.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from contract.manifest import ReferenceProfile
from contract.profile import ProfileBinner
from scoring.gates import artifact_entry, manifest_beside
from scoring.metrics import RuntimeMetrics
from scoring.settings import ModelSettings

logger = logging.getLogger(__name__)

__all__ = [
    "PSI_BAND_MARGIN",
    "PSI_CRITICAL",
    "PSI_WARNING",
    "DriftSentinel",
    "DriftSnapshot",
    "drift_sentinel",
]

PSI_WARNING: Final[float] = 0.1
PSI_CRITICAL: Final[float] = 0.25
"""The usual PSI reading: < 0.1 stable, 0.1-0.25 a moderate shift, > 0.25 a major one."""
PSI_BAND_MARGIN: Final[float] = 0.025
"""Hysteresis of the logged band: the worst PSI enters a higher band as soon as it passes the
edge, but leaves a band downwards only once it is this far below the edge, so a PSI hovering at
0.1 or 0.25 logs once, not at every refresh."""


@dataclass(frozen=True)
class DriftSnapshot:
    """What the sentinel published at its last refresh."""

    events: int
    feature_psi: dict[str, float]
    null_ratio: dict[str, float]
    prediction_psi: float
    mean_probability: float
    positive_label_ratio: float

    def worst(self) -> tuple[str, float]:
        """The feature with the largest PSI (NaN PSIs, from empty bins, are ignored)."""
        finite = {name: value for name, value in self.feature_psi.items() if not math.isnan(value)}
        if not finite:
            return "", math.nan
        name = max(finite, key=lambda key: finite[key])
        return name, finite[name]


@dataclass
class _Batch:
    n: int
    counts: npt.NDArray[np.int64]
    probability_sum: float
    positives: int


class DriftSentinel:
    """Feed it every scored batch with :meth:`observe`; it refreshes its gauges by itself."""

    def __init__(
        self,
        profile: ReferenceProfile,
        threshold: float,
        metrics: RuntimeMetrics | None,
        window_events: int = 10_000,
        refresh_events: int = 1_000,
    ) -> None:
        self._binner = ProfileBinner(profile)
        self._threshold = threshold
        self._metrics = metrics
        self._window_events = window_events
        self._refresh_events = refresh_events
        self._batches: deque[_Batch] = deque()
        self._counts = np.zeros(self._binner.size, dtype=np.int64)
        self._n = 0
        self._probability_sum = 0.0
        self._positives = 0
        self._since_refresh = 0
        self.snapshot: DriftSnapshot | None = None
        self._band = -1  # of the worst PSI (see _band); -1 before the first refresh
        if metrics is not None:
            metrics.drift_reference.labels(quantity="positive_label_ratio").set(
                profile.positive_label_rate
            )
            metrics.drift_reference.labels(quantity="mean_probability").set(
                profile.mean_probability
            )
            for name, feature in profile.features.items():
                metrics.feature_null_reference.labels(feature=name).set(feature.null_rate)

    @property
    def features(self) -> list[str]:
        return self._binner.features

    def observe(self, columns: Mapping[str, Any], probabilities: npt.NDArray[np.float64]) -> None:
        """Count one scored batch: its raw feature ``columns`` (name -> values, index-aligned
        with ``probabilities``) and its probabilities."""
        n = len(probabilities)
        if n == 0:
            return
        batch = _Batch(
            n,
            self._binner.counts(columns, probabilities),
            float(probabilities.sum()),
            int(np.count_nonzero(probabilities >= self._threshold)),
        )
        self._add(batch, 1)
        self._batches.append(batch)
        while len(self._batches) > 1 and self._n - self._batches[0].n >= self._window_events:
            self._add(self._batches.popleft(), -1)
        self._since_refresh += n
        if self._since_refresh >= self._refresh_events:
            self.refresh()

    def _add(self, batch: _Batch, sign: int) -> None:
        self._counts += sign * batch.counts
        self._n += sign * batch.n
        self._probability_sum += sign * batch.probability_sum
        self._positives += sign * batch.positives

    def refresh(self) -> DriftSnapshot:
        """Compute the window's figures now, publish them and return them."""
        self._since_refresh = 0
        counts, binner = self._counts, self._binner
        snapshot = DriftSnapshot(
            events=self._n,
            feature_psi={name: binner.feature_psi(name, counts) for name in binner.features},
            null_ratio={name: binner.null_ratio(name, counts) for name in binner.features},
            prediction_psi=binner.prediction_psi(counts),
            mean_probability=self._probability_sum / self._n if self._n else math.nan,
            positive_label_ratio=self._positives / self._n if self._n else math.nan,
        )
        self._publish(snapshot)
        self.snapshot = snapshot
        previous, self._band = self._band, _band(snapshot, self._band)
        if previous != self._band:
            name, value = snapshot.worst()
            logger.info(
                "drift window_events=%d worst_feature=%s psi=%.3f prediction_psi=%.3f",
                snapshot.events,
                name,
                value,
                snapshot.prediction_psi,
            )
        return snapshot

    def _publish(self, snapshot: DriftSnapshot) -> None:
        metrics = self._metrics
        if metrics is None:
            return
        for name, value in snapshot.feature_psi.items():
            metrics.feature_drift_psi.labels(feature=name).set(value)
            metrics.feature_null_ratio.labels(feature=name).set(snapshot.null_ratio[name])
        metrics.prediction_drift_psi.set(snapshot.prediction_psi)
        metrics.mean_probability.set(snapshot.mean_probability)
        metrics.positive_label_ratio.set(snapshot.positive_label_ratio)
        metrics.drift_window_events.set(snapshot.events)


def _band_of(psi: float) -> int:
    return 2 if psi > PSI_CRITICAL else 1 if psi > PSI_WARNING else 0


def _band(snapshot: DriftSnapshot, current: int) -> int:
    """0 stable, 1 moderate, 2 major shift somewhere (features or prediction), from the band
    ``current`` (-1 before the first refresh): up as soon as the worst PSI passes an edge, down
    only as far as it is ``PSI_BAND_MARGIN`` below the edges."""
    values = [*snapshot.feature_psi.values(), snapshot.prediction_psi]
    worst = max((value for value in values if not math.isnan(value)), default=0.0)
    band = _band_of(worst)
    return band if band >= current else min(current, _band_of(worst + PSI_BAND_MARGIN))


def drift_sentinel(
    settings: ModelSettings, metrics: RuntimeMetrics, threshold: float, artifact: Path
) -> DriftSentinel | None:
    """The sentinel for the served build, or None (said in the log) when it is switched off or
    the build has no reference profile (builds older than the profile)."""
    if not settings.drift_enabled:
        logger.info("drift sentinel off: DRIFT_ENABLED=false")
        return None
    entry = artifact_entry(manifest_beside(artifact), artifact)
    if entry.profile is None:
        logger.warning(
            "drift sentinel off: the manifest of %s has no reference profile "
            "(built before profiles were recorded); retrain to get one",
            artifact.name,
        )
        return None
    logger.info(
        "drift sentinel on window_events=%d refresh_events=%d features=%d",
        settings.drift_window_events,
        settings.drift_refresh_events,
        len(entry.profile.features),
    )
    return DriftSentinel(
        entry.profile,
        threshold,
        metrics,
        window_events=settings.drift_window_events,
        refresh_events=settings.drift_refresh_events,
    )
