"""The scorer's compiled path: validated events -> raw columns -> `contract.compiled`.

`compile_verified` compiles a loaded pipeline and proves the copy on a large generated sample
(including the contract's edge values: nulls, the -1 sentinel, unseen codes, months absent from
the dataset, rates at 0 and 1). Only a verified copy is used; otherwise the pipeline is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from contract.compiled import CompiledPipeline, NotCompilable, Verification, verify_compiled
from contract.frame import FRAME_DTYPES, events_to_frame
from contract.samples import edge_events
from contract.schema import (
    FEATURE_COLUMNS,
    SessionEvent,
)

logger = logging.getLogger(__name__)

_FEATURES = attrgetter(*FEATURE_COLUMNS)
_NUMPY_DTYPES = {"float64": np.float64, "int64": np.int64, "bool": np.bool_}
VERIFICATION_ROWS = 2000
VERIFICATION_SEED = 20261126
PROBABILITY_TOLERANCE = 1e-12
"""The encoded matrix must be bit-identical; probabilities may differ by BLAS summation order
(an ulp for linear models, never for forests), bounded far below any threshold decision."""


def event_columns(events: Sequence[SessionEvent]) -> dict[str, Any]:
    """The raw columns of `events_to_frame(events)`, without building the frame (None -> NaN)."""
    rows = list(map(_FEATURES, events))
    columns: dict[str, Any] = {}
    for name, values in zip(FEATURE_COLUMNS, zip(*rows, strict=True), strict=True):
        dtype = FRAME_DTYPES[name]
        columns[name] = values if dtype == "str" else np.array(values, dtype=_NUMPY_DTYPES[dtype])
    return columns


def compile_verified(
    pipeline: Any, events: Sequence[SessionEvent] | None = None
) -> tuple[CompiledPipeline, Verification]:
    """Compile `pipeline` and prove it on `events` (default: the contract's edge events).

    Raises NotCompilable when the pipeline cannot be compiled or the copy differs.
    """
    if not isinstance(pipeline, Pipeline):
        raise NotCompilable("pipeline", f"{type(pipeline).__name__} is not a Pipeline")
    compiled = CompiledPipeline(pipeline)
    sample = (
        list(events) if events is not None else edge_events(VERIFICATION_ROWS, VERIFICATION_SEED)
    )
    # Several batch sizes: a one-row batch takes other code paths than a large one.
    frames = [events_to_frame(sample[:1]), events_to_frame(sample[1:17]), events_to_frame(sample)]
    verification = verify_compiled(pipeline, compiled, frames, tolerance=PROBABILITY_TOLERANCE)
    # The serving path builds its columns from events, not from a frame: check that too.
    direct = compiled.predict_proba(event_columns(sample))
    reference = compiled.proba_of_matrix(compiled.transform(_frame_columns_of(sample)))
    if not np.array_equal(direct, reference):
        raise NotCompilable("verify", "event columns differ from the frame's columns")
    return compiled, verification


def _frame_columns_of(events: Sequence[SessionEvent]) -> dict[str, Any]:
    from contract.compiled import frame_columns

    return frame_columns(events_to_frame(events))
