"""SessionCleaner turns the data's real mess (and export spellings) into canonical columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contract.cleaning import SessionCleaner
from contract.errors import ContractViolation
from contract.schema import FEATURE_COLUMNS


def _messy() -> pd.DataFrame:
    """Four sessions as an SQLite/CSV export might spell them (generated, not dataset rows)."""
    return pd.DataFrame(
        {
            "Administrative": ["2", "", 4, -3],
            "Administrative_Duration": [10.0, np.nan, -1, 30.0],
            "Informational": [0, None, "1", 2],
            "Informational_Duration": ["0", None, -1.0, "5.5"],
            "ProductRelated": [5.0, np.nan, 7, 9],
            "ProductRelated_Duration": [100.0, None, "-1", np.inf],
            "BounceRates": [0.0, np.nan, 1.7, "0.2"],
            "ExitRates": [0.1, None, 0.2, 0.3],
            "PageValues": [0.0, 5.0, -2.0, 10.0],
            "SpecialDay": [0.0, 0.4, 1.0, 3.0],
            "Month": ["June", "jun", 11, "Smarch"],
            "OperatingSystems": [1, "2", 0, 2.5],
            "Browser": [1, 2, 3, None],
            "Region": [1, 1, 2, 9],
            "TrafficType": ["20", 1, 2, -4],
            "VisitorType": ["Returning_Visitor", "new_visitor", " Other ", "bot"],
            "Weekend": ["TRUE", "false", 1, None],
        },
        index=[10, 11, 11, 13],  # repeated labels must not confuse anything
    )


def test_cleaner_coerces_marks_and_imputes() -> None:
    cleaner = SessionCleaner().set_output(transform="pandas")
    out = cleaner.fit_transform(_messy())
    assert list(out.columns) == [*FEATURE_COLUMNS, "pages_unknown", "durations_unknown"]
    assert list(out.index) == [10, 11, 11, 13]
    # Unknown values (-1, negative, Inf, out of range, empty) became the fitted medians.
    assert cleaner.fill_values_["Administrative"] == 3.0  # median of 2 and 4; "" and -3 unknown
    assert out["Administrative"].tolist() == [2.0, 3.0, 4.0, 3.0]
    assert out["Administrative_Duration"].tolist() == [10.0, 20.0, 20.0, 30.0]
    assert out["ProductRelated_Duration"].tolist() == [100.0, 100.0, 100.0, 100.0]
    assert out["BounceRates"].tolist() == [0.0, 0.1, 0.1, 0.2]
    assert out["PageValues"].tolist() == [0.0, 5.0, 5.0, 10.0]
    assert out["SpecialDay"].tolist() == [0.0, 0.4, 1.0, 0.4]
    assert out["pages_unknown"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert out["durations_unknown"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert out["Month"].tolist() == ["June", "June", "Nov", "Unknown"]
    assert out["VisitorType"].tolist() == ["Returning_Visitor", "New_Visitor", "Other", "Other"]
    assert out["OperatingSystems"].tolist() == [1, 2, 0, 0]  # 0 is "unknown code"
    assert out["TrafficType"].tolist() == [20, 1, 2, 0]
    assert out["Weekend"].tolist() == [True, False, True, True]  # unknown -> most frequent
    assert out["OperatingSystems"].dtype == np.int64
    assert out["Weekend"].dtype == np.bool_
    for column in ("Administrative", "ExitRates", "PageValues", "pages_unknown"):
        assert out[column].dtype == np.float64
    assert not out.isna().any().any()


def test_dataset_frame_is_cleaned_without_missing_values(dataset: pd.DataFrame) -> None:
    raw = dataset.drop(columns="Revenue")
    out = SessionCleaner().set_output(transform="pandas").fit_transform(raw)
    assert not out.isna().any().any()
    assert int(out["pages_unknown"].sum()) == 14
    assert int(out["durations_unknown"].sum()) == 14 + 33
    assert (out[["Administrative_Duration", "ProductRelated_Duration"]] >= 0).all().all()


def test_fit_does_not_change_the_input() -> None:
    messy = _messy()
    before = messy.copy()
    SessionCleaner().fit(messy).transform(messy)
    pd.testing.assert_frame_equal(messy, before)


def test_the_label_is_refused() -> None:
    frame = _messy().assign(Revenue=[True, False, False, True])
    with pytest.raises(ContractViolation) as caught:
        SessionCleaner().fit(frame)
    assert caught.value.rule == "label_not_allowed"


def test_columns_selects_and_ignores_the_rest() -> None:
    columns = [c for c in FEATURE_COLUMNS if c != "PageValues"]
    cleaner = SessionCleaner(columns=columns).set_output(transform="pandas")
    messy = _messy().assign(Revenue=True, session_id="s")
    out = cleaner.fit_transform(messy)
    assert "PageValues" not in out.columns
    assert list(cleaner.feature_names_in_) == columns
    # A frame without the ignored columns works as well.
    same = cleaner.transform(_messy().drop(columns="PageValues"))
    pd.testing.assert_frame_equal(out, same)
    with pytest.raises(ValueError, match="Month"):
        cleaner.transform(_messy().drop(columns="Month"))


def test_default_output_is_an_array() -> None:
    out = SessionCleaner().fit(_messy()).transform(_messy())
    assert isinstance(out, np.ndarray)
    assert out.shape == (4, len(FEATURE_COLUMNS) + 2)
