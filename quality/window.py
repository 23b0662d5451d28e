"""The live figures: the last ``QUALITY_WINDOW_LABELS`` labelled sessions of each build, and
what the probabilities alone promised (``contract.metrics``, the same functions as training).

Judged sessions are held per partition, so that a partition revoked in a rebalance takes its
sessions with it (its new owner rebuilds them from the topics) and no session is counted by two
replicas. The window of a build is the last N of the union, by decision time then session id.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np

from contract.join import Judgement
from contract.metrics import FIGURES, expected_at, metrics_at

PRIMARY: Final = "primary"
SHADOW: Final = "shadow"

LIVE_METRICS: Final = (*FIGURES, "mean_probability", "positive_rate")
"""The realised figures of a window (``mean_probability`` vs the observed ``positive_rate``)."""
EXPECTED_METRICS: Final = (
    "brier",
    "precision",
    "recall",
    "positive_rate",
    "predicted_positive_rate",
)


@dataclass(frozen=True, slots=True)
class Scored:
    """The part of a scored record the monitor keeps (the record format is
    consumer/output_record.schema.json)."""

    probability: float
    threshold: float
    build_id: str
    variant: str


Build = tuple[str, str, str]
"""(role, build id, variant): role is ``primary`` (SCORES_TOPIC) or ``shadow``."""
Pair = tuple[str, str, str, str]
"""(primary build id, primary variant, shadow build id, shadow variant)."""
_Row = tuple[int, str, float, float, int]
"""(decided ms, session id, probability, threshold, label)."""
_PairRow = tuple[int, str, float, float, float, float, int]
RowT = TypeVar("RowT", bound=tuple[Any, ...])


@dataclass(frozen=True)
class Figures:
    labels: int
    threshold: float
    live: dict[str, float]
    expected: dict[str, float]
    """Expected figures on the same labelled sessions: their gap to ``live`` is concept drift."""


@dataclass(frozen=True)
class PairFigures:
    labels: int
    agreement: float
    primary: dict[str, float]
    shadow: dict[str, float]


def live_figures(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """The realised figures of labels ``y`` and probabilities ``p`` at ``threshold``."""
    measured = metrics_at(y, p, threshold)
    return {
        **{name: float(measured[name]) for name in FIGURES},
        "mean_probability": float(np.mean(p)),
        "positive_rate": float(np.mean(y)),
    }


class LabelledWindow:
    """Judged sessions per partition and build, the recent scores per build, and the pairs."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._labelled: dict[int, dict[Build, deque[_Row]]] = {}
        self._recent: dict[int, dict[Build, deque[tuple[int, float, float]]]] = {}
        self._pairs: dict[int, dict[Pair, deque[_PairRow]]] = {}

    def drop(self, partition: int) -> None:
        """Forget a partition's sessions (revoked: its new owner rebuilds them)."""
        for held in (self._labelled, self._recent, self._pairs):
            held.pop(partition, None)

    def add_score(self, partition: int, role: str, time_ms: int, scored: Scored) -> None:
        """A score read (labelled or not yet): the estimate before outcomes uses these."""
        key = (role, scored.build_id, scored.variant)
        recent = self._recent.setdefault(partition, {})
        if key not in recent:
            recent[key] = deque(maxlen=self.size)
        recent[key].append((time_ms, scored.probability, scored.threshold))

    def add(self, partition: int, judged: Judgement[Scored]) -> None:
        if judged.label is None:
            return
        label = int(judged.label)
        by_build = self._labelled.setdefault(partition, {})
        for role, scored in judged.held.items():
            key = (role, scored.build_id, scored.variant)
            if key not in by_build:
                by_build[key] = deque(maxlen=self.size)
            row = (judged.decided_ms, judged.session_id, scored.probability, scored.threshold)
            by_build[key].append((*row, label))
        primary, shadow = judged.held.get(PRIMARY), judged.held.get(SHADOW)
        if primary is not None and shadow is not None:
            pair = (primary.build_id, primary.variant, shadow.build_id, shadow.variant)
            pairs = self._pairs.setdefault(partition, {})
            if pair not in pairs:
                pairs[pair] = deque(maxlen=self.size)
            pairs[pair].append(
                (
                    judged.decided_ms,
                    judged.session_id,
                    primary.probability,
                    primary.threshold,
                    shadow.probability,
                    shadow.threshold,
                    label,
                )
            )

    def _last(self, rows: Iterable[RowT]) -> list[RowT]:
        """The last ``size`` rows by decision time, then session id (deterministic)."""
        return sorted(rows, key=lambda row: (row[0], row[1]))[-self.size :]

    def figures(self) -> dict[Build, Figures]:
        builds = {key for held in self._labelled.values() for key in held}
        out: dict[Build, Figures] = {}
        for key in sorted(builds):
            rows = self._last(row for held in self._labelled.values() for row in held.get(key, ()))
            p = np.array([row[2] for row in rows], dtype=np.float64)
            y = np.array([row[4] for row in rows], dtype=np.int64)
            threshold = rows[-1][3]
            out[key] = Figures(
                len(rows), threshold, live_figures(y, p, threshold), expected_at(p, threshold)
            )
        return out

    def expected_recent(self) -> dict[Build, dict[str, float]]:
        """The estimate before outcomes: expected figures over each build's recent scores."""
        builds = {key for held in self._recent.values() for key in held}
        out: dict[Build, dict[str, float]] = {}
        for key in sorted(builds):
            rows = sorted(row for held in self._recent.values() for row in held.get(key, ()))
            rows = rows[-self.size :]
            p = np.array([row[1] for row in rows], dtype=np.float64)
            out[key] = expected_at(p, float(rows[-1][2]))
        return out

    def pair_figures(self) -> dict[Pair, PairFigures]:
        pairs = {key for held in self._pairs.values() for key in held}
        out: dict[Pair, PairFigures] = {}
        for key in sorted(pairs):
            rows = self._last(row for held in self._pairs.values() for row in held.get(key, ()))
            arr = np.array([row[2:] for row in rows], dtype=np.float64)
            y = arr[:, 4].astype(np.int64)
            t1, t2 = float(arr[-1, 1]), float(arr[-1, 3])
            agree = float(np.mean((arr[:, 0] >= arr[:, 1]) == (arr[:, 2] >= arr[:, 3])))
            out[key] = PairFigures(
                len(rows),
                agree,
                live_figures(y, arr[:, 0], t1),
                live_figures(y, arr[:, 2], t2),
            )
        return out
