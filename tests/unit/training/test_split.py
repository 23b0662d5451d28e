"""training.split: by time for data with event times (no training row newer than a test row),
stratified for data without."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contract.schema import LABEL_COLUMN
from training.data import DataError, deduplicate
from training.dataset import TIME_COLUMN
from training.split import split_rows
from training.synthetic import generate_sessions

START = pd.Timestamp("2026-12-01", tz="UTC")


def with_times(frame: pd.DataFrame, seed: int, distinct: int) -> pd.DataFrame:
    """Event times over a week, only ``distinct`` different ones (many ties), in random order."""
    rng = np.random.default_rng(seed)
    minutes = rng.integers(0, 7 * 24 * 60, size=distinct)
    frame = frame.copy()
    frame[TIME_COLUMN] = START + pd.to_timedelta(rng.choice(minutes, len(frame)), unit="m")
    return frame


@pytest.mark.parametrize(("seed", "distinct"), [(1, 1000), (2, 40), (3, 7)])
def test_the_time_split_never_puts_a_newer_row_in_training(seed: int, distinct: int) -> None:
    frame = deduplicate(with_times(generate_sessions(1000, seed=seed), seed, distinct))
    split = split_rows(frame, test_size=0.2, seed=seed, folds=5)
    train_times = frame.loc[split.X_train.index, TIME_COLUMN]
    test_times = frame.loc[split.X_test.index, TIME_COLUMN]
    assert train_times.max() < test_times.min()
    boundary = pd.Timestamp(split.manifest["time_boundary"])
    assert test_times.min() == boundary
    # The newest 20 %, and the rows tied with the oldest of them: never fewer than 20 %.
    assert len(split.X_test) >= 0.2 * len(frame)
    assert len(split.X_test) == (frame[TIME_COLUMN] >= boundary).sum()
    assert len(split.X_train) + len(split.X_test) == len(frame)
    assert TIME_COLUMN not in split.X_train.columns
    assert split.manifest["rule"] == "time"
    assert split.manifest["stratified"] is False
    assert split.times["event_time_min"] <= split.manifest["time_boundary"]


def test_without_times_the_split_stays_stratified() -> None:
    frame = deduplicate(generate_sessions(1000, seed=4))
    split = split_rows(frame, test_size=0.2, seed=4, folds=5)
    assert split.manifest["rule"] == "stratified"
    assert split.manifest["stratified"] is True
    assert split.times == {}
    rate = frame[LABEL_COLUMN].mean()
    assert split.y_test.mean() == pytest.approx(rate, abs=0.01)


def test_a_time_split_with_nothing_older_than_the_test_rows_is_refused() -> None:
    frame = generate_sessions(200, seed=5)
    frame[TIME_COLUMN] = START
    with pytest.raises(DataError, match="a time split needs rows older"):
        split_rows(deduplicate(frame), test_size=0.2, seed=5, folds=5)


def test_duplicates_keep_the_oldest_row() -> None:
    frame = generate_sessions(50, seed=6).drop_duplicates().reset_index(drop=True)
    doubled = pd.concat([frame, frame], ignore_index=True)
    doubled[TIME_COLUMN] = START + pd.to_timedelta(np.arange(len(doubled))[::-1], unit="s")
    unique = deduplicate(doubled)
    assert len(unique) == len(frame)
    assert unique[TIME_COLUMN].is_monotonic_increasing
    assert unique[TIME_COLUMN].max() == START + pd.Timedelta(seconds=len(frame) - 1)
