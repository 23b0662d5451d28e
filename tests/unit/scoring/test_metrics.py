"""`observe_all` gives the exposition of observing each value one by one."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from scoring.metrics import STAGE_BUCKETS, observe_all

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _histogram(labels: tuple[str, ...] = ()) -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    return registry, Histogram("h_seconds", "h", labels, buckets=BUCKETS, registry=registry)


def _exposition(registry: CollectorRegistry) -> list[str]:
    """The text exposition without the `_created` lines (when each histogram was made)."""
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]


def _values(rng: np.random.Generator, n: int) -> np.ndarray:
    values = rng.exponential(0.05, size=n)
    values[::7] = rng.choice(np.asarray(BUCKETS), size=len(values[::7]))  # exactly on a bound
    values[3::11] = np.nextafter(values[3::11], np.inf)  # just above one
    values[5::13] = 0.0
    values[6::17] = rng.uniform(10, 1e6, size=len(values[6::17]))  # +Inf bucket
    return values


@pytest.mark.parametrize("batches", [1, 5])
def test_the_exposition_equals_observing_one_by_one(batches: int) -> None:
    rng = np.random.default_rng(5)
    one_registry, one = _histogram()
    all_registry, bulk = _histogram()
    for _ in range(batches):
        values = _values(rng, int(rng.integers(0, 3000)))
        for value in values.tolist():
            one.observe(value)
        observe_all(bulk, values)
    assert _exposition(all_registry) == _exposition(one_registry)


def test_a_child_of_a_labelled_histogram_and_nan() -> None:
    registry = CollectorRegistry()
    one = Histogram("a_seconds", "a", ["stage"], buckets=STAGE_BUCKETS, registry=registry)
    bulk = Histogram("b_seconds", "a", ["stage"], buckets=STAGE_BUCKETS, registry=registry)
    values = [0.0005, 0.3, float("nan"), 7.0]
    for value in values:
        one.labels(stage="x").observe(value)
    observe_all(bulk.labels(stage="x"), values)
    exposition = _exposition(registry)
    one_lines = [line for line in exposition if line.startswith("a_seconds")]
    bulk_lines = [line for line in exposition if line.startswith("b_seconds")]
    assert len(one_lines) == len(STAGE_BUCKETS) + 3  # the buckets, +Inf, count and sum
    assert [line.replace("b_seconds", "a_seconds", 1) for line in bulk_lines] == one_lines
    with pytest.raises(ValueError, match="child"):
        observe_all(bulk, values)
