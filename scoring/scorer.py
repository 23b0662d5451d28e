"""Score: validated events in, purchase probabilities out, in one vectorised call per batch."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.frame import columns_to_frame, event_columns
from contract.schema import FEATURE_COLUMNS, SessionEvent
from scoring.fastpath import FastPipeline, NotCompilable, compile_verified
from scoring.metrics import ScoringPath

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What the output records and ``scorer_model_info`` say about the model in service."""

    build_id: str
    variant: str
    git_sha: str
    threshold: float


class Scorer:
    """The loaded pipeline (the artifact is the reference) plus its decision threshold.

    With ``compiled=True`` the fast path (``scoring.fastpath``) is built and used once it
    reproduced the pipeline on the contract's edge events; ``path`` says which path serves.
    """

    def __init__(self, pipeline: Any, info: ModelInfo, compiled: bool = True) -> None:
        self._pipeline = pipeline
        self.info = info
        self._compiled: FastPipeline | None = None
        if compiled:
            self._compile()

    @property
    def path(self) -> ScoringPath:
        return "pipeline" if self._compiled is None else "compiled"

    @property
    def fast_path(self) -> FastPipeline | None:
        """The fast path while it serves (None: the pipeline serves)."""
        return self._compiled

    def _compile(self) -> None:
        try:
            self._compiled, verification = compile_verified(self._pipeline)
        except NotCompilable as exc:
            logger.warning("compiled scoring path not used, scoring with the pipeline: %s", exc)
            return
        logger.info(
            "compiled scoring path verified rows=%d max_abs_difference=%.3g",
            verification.rows,
            verification.max_abs_difference,
        )

    def score(self, events: Sequence[SessionEvent]) -> npt.NDArray[np.float64]:
        """Probability of a purchase for each event, in the events' order."""
        return self.score_columns(event_columns(events))

    def score_columns(self, columns: Mapping[str, Any]) -> npt.NDArray[np.float64]:
        """Probability of a purchase for each row of raw columns (`event_columns` output)."""
        if not len(columns[FEATURE_COLUMNS[0]]):
            return np.empty(0, dtype=np.float64)
        if self._compiled is not None:
            try:
                return self._compiled.predict_proba(columns)
            except Exception:  # the verified path met something new: the reference decides
                logger.exception("compiled scoring path failed; using the pipeline from now on")
                self._compiled = None
        probabilities = self._pipeline.predict_proba(columns_to_frame(columns))[:, 1]
        return np.asarray(probabilities, dtype=np.float64)


def score_isolating_failures(
    scorer: Scorer, events: Sequence[SessionEvent], columns: Mapping[str, Any] | None = None
) -> tuple[npt.NDArray[np.float64], list[tuple[int, str]]]:
    """Score a batch (its raw `columns`, when the caller has them already); if the batched call
    fails, score one by one to find the culprits.

    Returns the probabilities of the events that scored (NaN marks a failed one) and the
    index and reason of each event that could not be scored, for the dead-letter topic.
    """
    try:
        batch = event_columns(events) if columns is None else columns
        return _finite_or_raise(scorer.score_columns(batch)), []
    except Exception:  # a validated event must never take the batch down; isolate it
        logger.exception("batched scoring failed; retrying events one by one")
    probabilities = np.full(len(events), np.nan, dtype=np.float64)
    failures: list[tuple[int, str]] = []
    for index, event in enumerate(events):
        try:
            probabilities[index] = _finite_or_raise(scorer.score([event]))[0]
        except Exception as exc:
            failures.append((index, f"{type(exc).__name__}: {exc}"))
    return probabilities, failures


def _finite_or_raise(probabilities: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("the model returned a non-finite probability")
    return probabilities
