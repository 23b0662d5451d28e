"""The synthetic sessions generator: shape, determinism, mess and a learnable label."""

from __future__ import annotations

import numpy as np
import pandas as pd

from contract.frame import FRAME_DTYPES
from contract.schema import FEATURE_COLUMNS, LABEL_COLUMN
from training.synthetic import generate_sessions


def test_columns_dtypes_and_determinism() -> None:
    frame = generate_sessions(2000, seed=11)
    assert list(frame.columns) == [*FEATURE_COLUMNS, LABEL_COLUMN]
    for column, dtype in FRAME_DTYPES.items():
        assert str(frame[column].dtype) == dtype, column
    assert frame[LABEL_COLUMN].dtype == bool
    pd.testing.assert_frame_equal(frame, generate_sessions(2000, seed=11))
    assert not frame.equals(generate_sessions(2000, seed=12))


def test_ranges_and_mess() -> None:
    frame = generate_sessions(5000, seed=1)
    assert 0.10 < frame[LABEL_COLUMN].mean() < 0.21
    assert set(frame["Month"]) <= {
        "Feb",
        "Mar",
        "May",
        "June",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    }
    assert frame["OperatingSystems"].between(1, 8).all()
    assert frame["Browser"].between(1, 13).all()
    assert frame["Region"].between(1, 9).all()
    assert frame["TrafficType"].between(1, 20).all()
    assert frame["BounceRates"].dropna().between(0, 0.2).all()
    assert frame["ExitRates"].dropna().between(0, 0.2).all()
    assert (frame["PageValues"] >= 0).all()
    assert (frame["Administrative_Duration"] == -1).sum() >= 5
    assert frame["ProductRelated"].isna().sum() >= 3
    assert frame.duplicated().sum() >= 25
    assert (frame["PageValues"] == 0).mean() > 0.6  # most sessions carry no page value


def test_label_depends_on_page_values() -> None:
    frame = generate_sessions(5000, seed=2)
    with_value = frame.loc[frame["PageValues"] > 0, LABEL_COLUMN].mean()
    without = frame.loc[frame["PageValues"] == 0, LABEL_COLUMN].mean()
    assert with_value > 3 * without
    exits = frame["ExitRates"].fillna(frame["ExitRates"].median())
    assert np.corrcoef(exits, frame[LABEL_COLUMN])[0, 1] < -0.05
