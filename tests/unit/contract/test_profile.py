"""Reference profiles and PSI: hand-computed values, empty bins, nulls, the "other" category."""

from __future__ import annotations

import math

import numpy as np
import pytest

from contract.manifest import CategoricalProfile, NumericProfile, ReferenceProfile
from contract.profile import (
    PSI_FLOOR,
    ProfileBinner,
    category_key,
    feature_profile,
    numeric_profile,
    psi,
    reference_profile,
)


def test_psi_matches_hand_computed_values() -> None:
    # expected 50/50, observed 75/25: 0.25 ln(1.5) + 0.25 ln(2)
    assert psi([0.5, 0.5], [3, 1]) == pytest.approx(0.25 * math.log(1.5) + 0.25 * math.log(2))
    # three bins: sum (a - e) ln(a / e)
    expected, observed = [0.2, 0.3, 0.5], [30, 30, 40]
    by_hand = (0.3 - 0.2) * math.log(0.3 / 0.2) + 0 + (0.4 - 0.5) * math.log(0.4 / 0.5)
    assert psi(expected, observed) == pytest.approx(by_hand)
    assert psi([0.1, 0.9], [10, 90]) == pytest.approx(0.0)


def test_psi_with_empty_bins_is_finite_and_large() -> None:
    # An observed bin with no events and a reference bin with no share both count at the floor.
    empty_observed = psi([0.5, 0.5], [4, 0])
    by_hand = 0.5 * math.log(1 / 0.5) + (PSI_FLOOR - 0.5) * math.log(PSI_FLOOR / 0.5)
    assert empty_observed == pytest.approx(by_hand)
    empty_reference = psi([1.0, 0.0], [1, 1])
    assert math.isfinite(empty_reference)
    assert empty_reference > 0.25
    assert math.isnan(psi([0.5, 0.5], [0, 0]))  # nothing observed: no figure, not a zero


def test_numeric_profile_uses_right_closed_decile_bins_and_counts_nulls_apart() -> None:
    values = np.array([0.0] * 70 + list(range(1, 31)) + [np.nan] * 25)
    profile = numeric_profile(values)
    assert profile.null_rate == pytest.approx(25 / 125)
    assert profile.edges[0] == 0.0  # the mass at 0 is one bin of its own
    assert profile.fractions[0] == pytest.approx(0.7)
    assert sum(profile.fractions) == pytest.approx(1.0)
    assert len(profile.fractions) == len(profile.edges) + 1


def test_categorical_profile_keeps_frequent_values_and_pools_the_rest() -> None:
    values = np.array([1] * 600 + [2] * 395 + [7] * 5)
    profile = feature_profile("TrafficType", values)
    assert isinstance(profile, CategoricalProfile)
    assert profile.categories == ["1", "2"]
    assert profile.fractions == pytest.approx([0.6, 0.395, 0.005])
    assert [category_key(v) for v in (True, np.int64(3), 3.0, "Nov", None, math.nan)] == [
        "True", "3", "3", "Nov", None, None,
    ]  # fmt: skip


def _profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return reference_profile(
        {
            "PageValues": np.where(rng.random(5000) < 0.8, 0.0, rng.exponential(20, 5000)),
            "Month": rng.choice(["Mar", "May", "Nov", "Dec"], 5000, p=[0.2, 0.3, 0.3, 0.2]),
            "Weekend": rng.random(5000) < 0.25,
        },
        positive_rate=0.15,
        probabilities=rng.beta(1, 6, 5000),
        threshold=0.4,
    )


def test_binner_counts_every_value_once_in_its_bin() -> None:
    profile = _profile()
    binner = ProfileBinner(profile)
    columns = {
        "PageValues": np.array([0.0, 0.0, np.nan, 1000.0]),
        "Month": ("Nov", "Nov", "Jan", "Mar"),  # Jan is unseen: "other"
        "Weekend": np.array([True, False, False, False]),
    }
    counts = binner.counts(columns, np.array([0.01, 0.2, 0.5, 0.99]))
    page_values = counts[binner.slices["PageValues"]]
    assert page_values[0] == 2
    assert page_values[-1] == 1
    assert page_values.sum() == 3
    assert counts[binner.null_slot["PageValues"]] == 1
    month = profile.features["Month"]
    assert isinstance(month, CategoricalProfile)
    month_counts = counts[binner.slices["Month"]]
    assert month_counts[month.categories.index("Nov")] == 2
    assert month_counts[-1] == 1  # other
    assert counts[binner.prediction_slice].sum() == 4
    assert counts.sum() == 4 * 3 + 4
    assert binner.null_ratio("PageValues", counts) == pytest.approx(0.25)
    assert isinstance(profile.prediction, NumericProfile)


def _one_feature(null_rate: float | None) -> ProfileBinner:
    """A binner of one numeric feature, ``ExitRates``: bins (-inf, 0.1], (0.1, 0.2], (0.2, inf)
    holding 50 %, 30 % and 20 % of the non-null training values; ``null_rate`` None leaves
    it out of the profile (a profile written without one)."""
    feature: dict[str, object] = {
        "kind": "numeric",
        "edges": [0.1, 0.2],
        "fractions": [0.5, 0.3, 0.2],
    }
    if null_rate is not None:
        feature["null_rate"] = null_rate
    prediction = {"null_rate": 0.0, "edges": [0.5], "fractions": [0.5, 0.5]}
    return ProfileBinner(
        ReferenceProfile.model_validate(
            {
                "features": {"ExitRates": feature},
                "prediction": prediction,
                "positive_rate": 0.15,
                "positive_label_rate": 0.5,
                "mean_probability": 0.4,
            }
        )
    )


def _exit_rates_psi(binner: ProfileBinner, values: list[float]) -> float:
    counts = binner.counts({"ExitRates": np.array(values)}, np.full(len(values), 0.3))
    return binner.feature_psi("ExitRates", counts)


def test_an_all_null_window_has_a_finite_psi_above_the_major_threshold() -> None:
    # The tracking bug: the field is null in every event. The null bin holds everything.
    binner = _one_feature(0.0)
    value = _exit_rates_psi(binner, [math.nan] * 40)
    bins = sum((PSI_FLOOR - f) * math.log(PSI_FLOOR / f) for f in (0.5, 0.3, 0.2))
    by_hand = bins + (1 - PSI_FLOOR) * math.log(1 / PSI_FLOOR)
    assert math.isfinite(value)
    assert value == pytest.approx(by_hand)
    assert value > 9  # far above 0.25, the major-shift line
    # against a reference with nulls too: smaller, still a major shift
    with_nulls = _exit_rates_psi(_one_feature(0.1), [math.nan] * 40)
    assert 0.25 < with_nulls < value


def test_a_window_without_nulls_against_a_profile_without_nulls_is_the_plain_psi() -> None:
    # 10 values: 4 in the first bin, 4 in the second, 2 in the third; no nulls anywhere.
    values = [0.0, 0.05, 0.1, 0.1, 0.15, 0.15, 0.2, 0.2, 0.5, 0.9]
    by_hand = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.4 - 0.3) * math.log(0.4 / 0.3) + 0.0
    assert _exit_rates_psi(_one_feature(0.0), values) == pytest.approx(by_hand, rel=1e-12)
    assert _exit_rates_psi(_one_feature(0.0), values) == pytest.approx(
        psi([0.5, 0.3, 0.2], [4, 4, 2])
    )


def test_the_null_bin_is_compared_with_the_reference_null_share() -> None:
    # reference: 10 % null, the rest 50/30/20; window: the same shares, nulls included
    values = [0.0] * 45 + [0.15] * 27 + [0.5] * 18 + [math.nan] * 10
    assert _exit_rates_psi(_one_feature(0.1), values) == pytest.approx(0.0, abs=1e-12)
    # the same window against a reference without nulls: the 10 % nulls are a shift
    shifted = _exit_rates_psi(_one_feature(0.0), values)
    bins = sum((0.9 * f - f) * math.log(0.9 * f / f) for f in (0.5, 0.3, 0.2))
    by_hand = bins + (0.1 - PSI_FLOOR) * math.log(0.1 / PSI_FLOOR)
    assert shifted == pytest.approx(by_hand, rel=1e-9)
    assert shifted > 0.25


def test_a_profile_without_a_null_rate_reads_as_no_nulls_in_training() -> None:
    absent, zero = _one_feature(None), _one_feature(0.0)
    assert absent.profile.features["ExitRates"].null_rate == 0.0
    window = [0.0, 0.15, math.nan, 0.5]
    assert _exit_rates_psi(absent, window) == _exit_rates_psi(zero, window)
    with pytest.raises(ValueError, match="less than or equal to 1"):
        _one_feature(1.5)
