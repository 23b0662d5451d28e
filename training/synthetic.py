"""Synthetic sessions shaped like the UCI "Online Shoppers Purchasing Intention" dataset.

Tests, the benchmark and the fault tests need data without touching the real file. The shapes
come only from the dataset's published description (column names and dtypes, the code ranges,
the months present, the ~15 % positive rate, the kinds of mess) plus generic assumptions
about web sessions (skewed counts, durations proportional to pages seen). No value here is
taken from the real rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contract.schema import FEATURE_COLUMNS, LABEL_COLUMN

__all__ = ["COLUMNS", "generate_sessions"]

COLUMNS: tuple[str, ...] = (*FEATURE_COLUMNS, LABEL_COLUMN)
"""The dataset's 18 columns, in its order."""

_MONTHS = ("Feb", "Mar", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_P = (0.02, 0.15, 0.27, 0.025, 0.035, 0.035, 0.035, 0.05, 0.24, 0.14)
# Months with a "special day" nearby (Valentine's day, Mother's day) get non-zero SpecialDay.
_SPECIAL_MONTHS = ("Feb", "May")
_VISITORS = ("Returning_Visitor", "New_Visitor", "Other")
_VISITOR_P = (0.855, 0.138, 0.007)
_TARGET_POSITIVE_RATE = 0.155


def _skewed_codes(rng: np.random.Generator, n: int, high: int, concentration: float) -> np.ndarray:
    """Codes 1..high with geometric-like popularity (a few codes carry most sessions)."""
    weights = concentration ** np.arange(high, dtype=float)
    return rng.choice(np.arange(1, high + 1), size=n, p=weights / weights.sum())


def _counts(rng: np.random.Generator, n: int, mean: float, zero_share: float) -> np.ndarray:
    """Over-dispersed page counts: a share of zeros, the rest negative-binomial."""
    dispersion = 0.8
    counts = rng.negative_binomial(dispersion, dispersion / (dispersion + mean), size=n)
    counts[rng.random(n) < zero_share] = 0
    return counts.astype(float)


def _durations(rng: np.random.Generator, pages: np.ndarray, seconds_per_page: float) -> np.ndarray:
    """Time on pages: roughly proportional to the pages seen, log-normal noise, 0 for 0 pages."""
    per_page = rng.lognormal(mean=np.log(seconds_per_page), sigma=0.9, size=pages.shape[0])
    return np.round(pages * per_page, 4)


def generate_sessions(n: int, seed: int = 0, page_value_effect: float = 1.5) -> pd.DataFrame:
    """Return ``n`` synthetic sessions with the dataset's 18 columns (17 features + ``Revenue``).

    ``page_value_effect`` is how strongly page values drive a purchase (the logit's weight of
    ``log1p(PageValues)``); a negative one reverses the relation: sessions whose behaviour has
    changed, for the retraining cycle's demo and tests. Deterministic for given arguments.
    Includes the dataset's kinds of mess: a few rows with ``-1`` in the three ``*_Duration``
    columns, a few with the first eight numeric columns empty, and a few exact duplicate rows.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)

    month = rng.choice(np.array(_MONTHS), size=n, p=_MONTH_P)
    visitor = rng.choice(np.array(_VISITORS), size=n, p=_VISITOR_P)
    weekend = rng.random(n) < 0.23
    engagement = rng.normal(0.0, 1.0, size=n)  # latent interest, drives pages and purchases

    scale = np.exp(0.6 * engagement)
    administrative = _counts(rng, n, 2.5 * scale.mean(), 0.45) * np.round(scale, 1)
    administrative = np.minimum(np.round(administrative), 27.0)
    informational = np.minimum(_counts(rng, n, 0.5, 0.75), 24.0)
    product = np.minimum(np.round(_counts(rng, n, 30.0, 0.01) * scale), 705.0)
    admin_dur = _durations(rng, administrative, 30.0)
    info_dur = _durations(rng, informational, 60.0)
    product_dur = _durations(rng, product, 38.0)

    bounce_base = rng.beta(0.4, 30.0, size=n) / (1.0 + 0.5 * scale)
    bounce = np.clip(np.where(product <= 1, rng.uniform(0.1, 0.2, size=n), bounce_base), 0, 0.2)
    exit_rates = np.clip(bounce + rng.gamma(1.5, 0.02, size=n) / scale, 0.0, 0.2)
    bounce, exit_rates = np.round(bounce, 6), np.round(exit_rates, 6)

    # PageValues is non-zero for a minority of sessions, more often for engaged ones.
    has_value = rng.random(n) < 1.0 / (1.0 + np.exp(-(1.2 * engagement - 1.6)))
    page_values = np.where(has_value, np.round(rng.lognormal(2.6, 1.0, size=n), 6), 0.0)
    page_values = np.minimum(page_values, 361.0)

    special = np.zeros(n)
    in_special = np.isin(month, _SPECIAL_MONTHS) & (rng.random(n) < 0.35)
    special[in_special] = rng.choice([0.2, 0.4, 0.6, 0.8, 1.0], size=int(in_special.sum()))

    # The label: page values dominate; engagement, exits, season and visitor type add signal
    # that a model without PageValues can still pick up.
    logit = (
        page_value_effect * np.log1p(page_values)
        + 0.5 * np.log1p(product)
        - 18.0 * exit_rates
        + 0.9 * (month == "Nov")
        + 0.4 * (visitor == "New_Visitor")
        - 0.8 * special
        + 0.6 * engagement
    )
    intercept = _calibrate_intercept(logit, _TARGET_POSITIVE_RATE)
    revenue = rng.random(n) < 1.0 / (1.0 + np.exp(-(logit + intercept)))

    frame = pd.DataFrame(
        {
            "Administrative": administrative,
            "Administrative_Duration": admin_dur,
            "Informational": informational,
            "Informational_Duration": info_dur,
            "ProductRelated": product,
            "ProductRelated_Duration": product_dur,
            "BounceRates": bounce,
            "ExitRates": exit_rates,
            "PageValues": page_values,
            "SpecialDay": special,
            "Month": month,
            "OperatingSystems": _skewed_codes(rng, n, 8, 0.45),
            "Browser": _skewed_codes(rng, n, 13, 0.4),
            "Region": _skewed_codes(rng, n, 9, 0.7),
            "TrafficType": _skewed_codes(rng, n, 20, 0.7),
            "VisitorType": visitor,
            "Weekend": weekend,
            "Revenue": revenue,
        },
        columns=list(COLUMNS),
    )
    return _add_mess(frame, rng)


def _calibrate_intercept(logit: np.ndarray, rate: float) -> float:
    """Bisection for the intercept that gives the wanted mean probability."""
    low, high = -30.0, 30.0
    for _ in range(60):
        mid = (low + high) / 2.0
        if float(np.mean(1.0 / (1.0 + np.exp(-(logit + mid))))) < rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def _add_mess(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """-1 durations (~0.3 %), empty leading numerics (~0.1 %), exact duplicates (~1 %)."""
    n = len(frame)
    if n < 20:
        return frame
    rows = rng.permutation(n)
    n_minus_one = max(1, round(0.003 * n))
    n_empty = max(1, round(0.001 * n))
    minus_one = rows[:n_minus_one]
    empty = rows[n_minus_one : n_minus_one + n_empty]
    durations = ["Administrative_Duration", "Informational_Duration", "ProductRelated_Duration"]
    frame.loc[minus_one, durations] = -1.0
    frame.loc[empty, list(COLUMNS[:8])] = np.nan
    n_dup = max(1, round(0.01 * n))
    sources = rng.choice(n, size=n_dup, replace=False)
    targets = rng.choice(np.setdiff1d(np.arange(n), sources), size=n_dup, replace=False)
    frame.iloc[targets] = frame.iloc[sources].to_numpy()
    return frame.astype(
        {
            **dict.fromkeys(COLUMNS[:10], "float64"),
            **dict.fromkeys(("OperatingSystems", "Browser", "Region", "TrafficType"), "int64"),
            "Weekend": "bool",
            "Revenue": "bool",
        }
    )
