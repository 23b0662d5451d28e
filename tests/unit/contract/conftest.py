"""Fixtures for the contract's unit tests: the real dataset (by path) and a valid event."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
DATASET = REPO_ROOT / ".." / "shared" / "data" / "online_shoppers_intention.csv"


@pytest.fixture(scope="session")
def dataset() -> pd.DataFrame:
    """The shared dataset exactly as pandas reads it (fails, never skips, when it is missing)."""
    if not DATASET.is_file():
        pytest.fail(f"the shared dataset is missing at {DATASET.resolve()}")
    return pd.read_csv(DATASET)


@pytest.fixture
def valid_event() -> dict[str, object]:
    """A hand-written valid event (not a dataset row)."""
    return {
        "session_id": "session-0001",
        "event_time": "2024-11-29T18:30:05.250+01:00",
        "Administrative": 2,
        "Administrative_Duration": 35.5,
        "Informational": 0,
        "Informational_Duration": 0,
        "ProductRelated": 14,
        "ProductRelated_Duration": 512.25,
        "BounceRates": 0.01,
        "ExitRates": 0.03,
        "PageValues": 12.5,
        "SpecialDay": 0.0,
        "Month": "Nov",
        "OperatingSystems": 2,
        "Browser": 2,
        "Region": 1,
        "TrafficType": 3,
        "VisitorType": "Returning_Visitor",
        "Weekend": False,
    }
