"""All 12,330 dataset rows, serialized the way a pandas producer does, are every one scored.

pandas reads the count columns as floats (14 rows are empty), so `frame.to_json` writes
`"Administrative": 3.0` and `null`: the shape that the published schema accepts and that
contract 1.0.0 dead-lettered. Each row is checked against the published JSON Schema first (as
the README tells producers to), then decoded and scored by the consumer's Scorer over a fitted
pipeline of the contract's shape (the `pipeline` fixture).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from contract.schema import LABEL_COLUMN
from scoring.decode import decode_batch
from scoring.scorer import ModelInfo, Scorer, score_isolating_failures
from tests.unit.scoring.fakes import FakeMessage

REPO = Path(__file__).resolve().parents[3]
DATASET = REPO / ".." / "shared" / "data" / "online_shoppers_intention.csv"
SCHEMA = json.loads((REPO / "contract" / "session_event.schema.json").read_text(encoding="utf-8"))


@pytest.mark.data
def test_pandas_serialized_dataset_is_all_scored_none_dead_lettered(pipeline: Pipeline) -> None:
    if not DATASET.is_file():
        pytest.fail(f"the shared dataset is missing at {DATASET.resolve()}")
    frame = pd.read_csv(DATASET).drop(columns=[LABEL_COLUMN])
    assert frame["Administrative"].dtype == np.float64  # the pandas way: counts as floats
    frame.insert(0, "session_id", [f"row-{i}" for i in range(len(frame))])
    frame["event_time"] = "2026-11-30T08:00:00Z"
    values = frame.to_json(orient="records", lines=True).splitlines()
    assert len(values) == 12_330
    assert '"Administrative":0.0' in values[0]

    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for value in values:
        validator.validate(json.loads(value))

    messages = [FakeMessage(value.encode(), offset) for offset, value in enumerate(values)]
    decoded = decode_batch(messages, 65_536)
    assert decoded.rejections == []
    assert len(decoded.events) == 12_330

    scorer = Scorer(pipeline, ModelInfo("replay", "full", "x", 0.5))
    assert scorer.path == "compiled"
    probabilities, failures = score_isolating_failures(scorer, decoded.events)
    assert failures == []
    assert probabilities.shape == (12_330,)
    assert np.isfinite(probabilities).all()
