"""events_to_frame gives the dataset's own frame; dataset rows become valid event dicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from contract.errors import ContractViolation
from contract.frame import FRAME_DTYPES, dataset_row_to_event_dict, events_to_frame
from contract.schema import FEATURE_COLUMNS, SessionEvent


def test_frame_has_feature_columns_and_dtypes(valid_event: dict[str, object]) -> None:
    unknown = {**valid_event, "session_id": "b", "Administrative": None, "BounceRates": None}
    frame = events_to_frame(
        [SessionEvent.model_validate(valid_event), SessionEvent.model_validate(unknown)]
    )
    assert tuple(frame.columns) == FEATURE_COLUMNS
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        c: str(pd.Series([], dtype=t).dtype) for c, t in FRAME_DTYPES.items()
    }
    assert frame["Administrative"].tolist()[0] == 2.0
    assert math.isnan(frame["Administrative"].iloc[1])
    assert math.isnan(frame["BounceRates"].iloc[1])
    assert frame["Weekend"].dtype == np.bool_
    assert frame["Browser"].dtype == np.int64


def test_empty_batch_keeps_columns_and_dtypes() -> None:
    frame = events_to_frame([])
    assert tuple(frame.columns) == FEATURE_COLUMNS
    assert len(frame) == 0
    assert frame["Browser"].dtype == np.int64


def test_events_frame_equals_the_csv_frame(dataset: pd.DataFrame) -> None:
    """Train/serve parity of the raw frame: events built from every row give back the CSV frame."""
    events = [
        SessionEvent.model_validate(dataset_row_to_event_dict(row, f"r{i}"))
        for i, row in enumerate(dataset.to_dict("records"))
    ]
    pd.testing.assert_frame_equal(events_to_frame(events), dataset[list(FEATURE_COLUMNS)])


def test_row_conversion_handles_the_csv_spellings() -> None:
    row: dict[str, object] = {
        "Administrative": np.float64(3.0),
        "Administrative_Duration": -1.0,
        "Informational": float("nan"),
        "Informational_Duration": None,
        "ProductRelated": "12",
        "ProductRelated_Duration": np.float64(80.5),
        "BounceRates": 0.0,
        "ExitRates": np.float32(0.25),
        "PageValues": 0,
        "SpecialDay": 0.2,
        "Month": " June ",
        "OperatingSystems": np.int64(2),
        "Browser": 3.0,
        "Region": 1,
        "TrafficType": 20,
        "VisitorType": "New_Visitor",
        "Weekend": "TRUE",
        "Revenue": "FALSE",
    }
    event_dict = dataset_row_to_event_dict(row, "x")
    assert "Revenue" not in event_dict
    assert event_dict["Administrative"] == 3
    assert type(event_dict["Administrative"]) is int
    assert event_dict["Informational"] is None
    assert event_dict["Informational_Duration"] is None
    assert event_dict["ProductRelated"] == 12
    assert event_dict["Month"] == "June"
    assert event_dict["Weekend"] is True
    assert type(event_dict["OperatingSystems"]) is int
    event = SessionEvent.model_validate(event_dict)
    assert event.Administrative_Duration == -1.0


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("Weekend", "maybe", "bool_parsing"),
        ("Browser", 2.5, "int_parsing"),
        ("SpecialDay", "x", "float_parsing"),
    ],
)
def test_row_conversion_names_unconvertible_values(column: str, value: object, rule: str) -> None:
    row: dict[str, object] = dict.fromkeys(FEATURE_COLUMNS, 1)
    row.update({"Month": "Feb", "VisitorType": "Other", "Weekend": False, column: value})
    with pytest.raises(ContractViolation) as caught:
        dataset_row_to_event_dict(row, "x")
    assert (caught.value.field, caught.value.rule) == (column, rule)


def test_row_conversion_requires_every_feature() -> None:
    with pytest.raises(ContractViolation) as caught:
        dataset_row_to_event_dict({"Administrative": 1}, "x")
    assert caught.value.rule == "missing"
