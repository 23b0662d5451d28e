"""The held-out test split: stratified for a table without times, by time for one with them.

A table with ``event_time`` (what ``python -m training collect`` writes) is split by time: the
most recent ``test_size`` share of the rows is the test split, and the rows at the boundary time
go to test too, so no training row is newer than any test row. Its figures then say how the
model does on the days after those it learnt from, not on a random sample of the same past.
A table without times (the shared CSV) keeps the stratified random split.

Cross-validation inside the training part stays stratified k-fold either way: the search, the
calibration and the threshold need out-of-fold predictions of every training row
(``cross_val_predict`` needs folds that partition the rows), which a forward-chaining split
does not give. The time split guards the test figures, the promise the monitor checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from training.data import DataError, split_features_label
from training.dataset import TIME_COLUMN

__all__ = ["Split", "split_rows", "time_boundary"]


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    manifest: dict[str, Any]
    """The manifest's ``split`` block."""
    times: dict[str, str]
    """With event times: ``event_time_min`` and ``event_time_max`` of the data (UTC ISO)."""


def _iso(moment: pd.Timestamp) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_boundary(times: pd.Series, test_size: float) -> pd.Timestamp:
    """The earliest test time: the time of the row ``ceil(n * test_size)`` from the newest.
    Every row at or after it is test, every row before it is training."""
    ordered = times.sort_values(kind="stable").reset_index(drop=True)
    n_test = max(1, math.ceil(len(ordered) * test_size))
    boundary: pd.Timestamp = ordered.iloc[len(ordered) - n_test]
    return boundary


def split_rows(frame: pd.DataFrame, test_size: float, seed: int, folds: int) -> Split:
    """Split a deduplicated table into training and test rows (module docstring)."""
    X, y = split_features_label(frame)
    cv = f"stratified {folds}-fold within the training split, shuffled with the seed"
    if TIME_COLUMN not in frame.columns:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_size, stratify=y, random_state=seed
        )
        info = {"seed": seed, "test_size": test_size, "stratified": True, "rule": "stratified"}
        return Split(X_train, X_test, y_train, y_test, {**info, "cv": cv}, {})
    times = frame[TIME_COLUMN]
    boundary = time_boundary(times, test_size)
    test = (times >= boundary).to_numpy()
    if test.all():
        raise DataError(
            "event_time",
            f"every row has the time {_iso(boundary)} or later: a time split needs rows older "
            "than the newest test_size share",
        )
    info = {
        "seed": seed,
        "test_size": test_size,
        "stratified": False,
        "rule": "time",
        "time_boundary": _iso(boundary),
        "cv": cv,
    }
    extent = {"event_time_min": _iso(times.min()), "event_time_max": _iso(times.max())}
    split = Split(X[~test], X[test], y[~test], y[test], info, extent)
    _check_classes(split, folds)
    return split


def _check_classes(split: Split, folds: int) -> None:
    """Both classes in the test split, and enough of each in training for the folds."""
    counts = split.y_train.value_counts()
    if split.y_test.nunique() < 2 or len(counts) < 2 or counts.min() < folds:
        raise DataError(
            "event_time",
            f"the time split leaves too few purchases or non-purchases: test "
            f"{split.y_test.value_counts().to_dict()}, training {counts.to_dict()} "
            f"({folds} folds need {folds} of each); collect a longer range",
        )
