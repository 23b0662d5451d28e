"""SessionFeatures computes the engineered columns it promises, from the columns it is given."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from contract.cleaning import SessionCleaner
from contract.features import FEATURES, SessionFeatures
from contract.schema import FEATURE_COLUMNS


def _cleaned() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "Administrative": [2, 0],
            "Administrative_Duration": [30.0, 0.0],
            "Informational": [1, 0],
            "Informational_Duration": [10.0, 0.0],
            "ProductRelated": [7, 0],
            "ProductRelated_Duration": [160.0, 0.0],
            "BounceRates": [0.1, 0.2],
            "ExitRates": [0.25, 0.2],
            "PageValues": [20.0, 0.0],
            "SpecialDay": [0.6, 0.0],
            "Month": ["Apr", "Oct"],
            "OperatingSystems": [1, 2],
            "Browser": [1, 2],
            "Region": [3, 4],
            "TrafficType": [5, 6],
            "VisitorType": ["New_Visitor", "Other"],
            "Weekend": [True, False],
        }
    )
    result: pd.DataFrame = SessionCleaner().set_output(transform="pandas").fit_transform(raw)
    return result


def test_engineered_values() -> None:
    out = SessionFeatures().set_output(transform="pandas").fit_transform(_cleaned())
    first, empty = out.iloc[0], out.iloc[1]
    assert first["total_pages"] == 10
    assert first["total_duration"] == 200.0
    assert first["mean_duration_per_page"] == 20.0
    assert first["product_page_share"] == pytest.approx(0.7)
    assert first["product_duration_share"] == pytest.approx(0.8)
    assert first["log_product_duration_per_page"] == pytest.approx(math.log1p(160 / 7))
    assert first["bounce_x_exit"] == pytest.approx(0.025)
    assert first["exit_minus_bounce"] == pytest.approx(0.15)
    assert first["has_special_day"] == 1.0
    assert first["log_page_values"] == pytest.approx(math.log1p(20))
    assert first["has_page_value"] == 1.0
    assert (first["month_sin"], first["month_cos"]) == pytest.approx((1.0, 0.0))  # April
    assert first["Weekend"] == 1.0
    # A session with no pages divides by nothing: shares and per-page values are 0, not NaN.
    assert empty["mean_duration_per_page"] == 0.0
    assert empty["product_page_share"] == 0.0
    assert not out.select_dtypes("number").isna().any().any()


def test_names_match_output_and_are_stable() -> None:
    features = SessionFeatures().set_output(transform="pandas")
    out = features.fit_transform(_cleaned())
    names = list(features.get_feature_names_out())
    assert names == list(out.columns)
    assert names[: len(FEATURE_COLUMNS)] == list(FEATURE_COLUMNS)
    assert names[-len(FEATURES) :] == list(FEATURES)


def test_without_page_values_nothing_derived_from_it_is_computed() -> None:
    features = SessionFeatures(use_page_values=False).set_output(transform="pandas")
    out = features.fit_transform(_cleaned())
    dropped = {name for name, (needs, _) in FEATURES.items() if "PageValues" in needs}
    assert dropped == {
        "log_page_values",
        "has_page_value",
        "log_page_value_x_product_share",
        "page_value_x_stay",
    }
    assert "PageValues" not in out.columns
    assert not dropped & set(out.columns)
    changed = _cleaned().assign(PageValues=[999.0, 1.0])
    pd.testing.assert_frame_equal(features.transform(changed), out)


def test_generic_numeric_input_passes_through() -> None:
    X = np.arange(12, dtype=np.float64).reshape(4, 3)
    features = SessionFeatures().fit(X)
    assert features.engineered_ == []
    np.testing.assert_array_equal(features.transform(X), X)
