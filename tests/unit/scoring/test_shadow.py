"""The shadow's hand-off: the loop's side never waits and never raises; a busy shadow drops
batches (counted), one over SHADOW_BATCH_TIMEOUT_S is switched off and never waited for.

The shadow is a real Scorer over the real fitted pipeline behind a door the test opens, so each
state (scoring, behind, hung) is reached by construction, not by timing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sklearn.pipeline import Pipeline

from consumer.batch import BatchResult, process_batch
from consumer.settings import load_settings
from scoring.errors import SettingsError
from scoring.metrics import RuntimeMetrics
from scoring.scorer import ModelInfo, Scorer
from scoring.shadow import THREAD_NAME, Shadow
from tests.unit.scoring.fakes import FakeMessage, valid_event

PRIMARY = ModelInfo(build_id="primary", variant="full", git_sha="p", threshold=0.5)
SHADOW = ModelInfo(build_id="shadow", variant="full", git_sha="s", threshold=0.5)
WAIT_S = 30.0  # an upper bound on waiting for the shadow's thread, never a speed assertion
BUDGET_S = 0.5  # SHADOW_BATCH_TIMEOUT_S where a test overruns it on purpose


class Door:
    """The real pipeline; each call from the shadow's thread says so, then waits for the door
    (and raises if ``fail``)."""

    def __init__(self, pipeline: Pipeline, fail: bool = False) -> None:
        self.pipeline = pipeline
        self.fail = fail
        self.entered = threading.Semaphore(0)
        self.opened = threading.Event()

    def predict_proba(self, frame: Any) -> Any:
        if threading.current_thread().name == THREAD_NAME:
            self.entered.release()
            if not self.opened.wait(WAIT_S):
                raise TimeoutError("the test never opened the door")
            if self.fail:
                raise RuntimeError("this shadow fails at scoring, on purpose")
        return self.pipeline.predict_proba(frame)

    def wait_entered(self) -> None:
        assert self.entered.acquire(timeout=WAIT_S), "the shadow's thread never took a batch"


@pytest.fixture
def metrics() -> RuntimeMetrics:
    return RuntimeMetrics.create(CollectorRegistry())


@pytest.fixture(scope="module")
def primary(pipeline: Pipeline) -> Scorer:
    return Scorer(pipeline, PRIMARY)  # compiled and verified once: a few seconds


@pytest.fixture
def batch(primary: Scorer) -> Callable[[int], BatchResult]:
    def make(events: int) -> BatchResult:
        messages = [
            FakeMessage(orjson.dumps(valid_event(f"s-{i}")), offset=i) for i in range(events)
        ]
        return process_batch(messages, primary, 65_536, "2026-01-01T00:00:00Z")

    return make


def value(metrics: RuntimeMetrics, name: str, **labels: str) -> float:
    sample = metrics.registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


def batches(metrics: RuntimeMetrics, result: str) -> float:
    return value(metrics, "scorer_shadow_batches_total", result=result)


def shadow_info_shown(metrics: RuntimeMetrics) -> bool:
    labels = {"role": "shadow", "build_id": "shadow", "variant": "full", "git_sha": "s"}
    return metrics.registry.get_sample_value("scorer_model_info", labels) == 1


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "the shadow's thread did not get there"
        time.sleep(0.005)


def start(door: Door, metrics: RuntimeMetrics, timeout_s: float = 60.0) -> Shadow:
    return Shadow(Scorer(door, SHADOW, compiled=False), PRIMARY, metrics, timeout_s=timeout_s)


def test_a_busy_shadow_drops_batches_and_counts_them(
    pipeline: Pipeline, metrics: RuntimeMetrics, batch: Callable[[int], BatchResult]
) -> None:
    door = Door(pipeline)
    shadow = start(door, metrics)
    shadow.observe(batch(3))
    door.wait_entered()  # the shadow scores the first batch and waits at the door
    shadow.observe(batch(4))  # waits in the hand-off slot
    shadow.observe(batch(5))  # finds the slot full: dropped; observe returned all the same
    shadow.observe(batch(6))
    assert batches(metrics, "dropped") == 2
    assert batches(metrics, "shadowed") == 0

    door.opened.set()
    wait_until(lambda: batches(metrics, "shadowed") == 2)
    assert value(metrics, "scorer_shadow_abs_difference_count") == 3 + 4  # the dropped: none
    assert value(metrics, "scorer_shadow_abs_difference_sum") <= 1e-9  # the same pipeline
    assert value(metrics, "scorer_shadow_label_disagreements_total") == 0
    assert value(metrics, "scorer_shadow_duration_seconds_count") == 2
    assert (batches(metrics, "dropped"), batches(metrics, "failed")) == (2, 0)
    assert shadow.active
    assert value(metrics, "scorer_shadow_switched_off") == 0
    assert shadow_info_shown(metrics)
    shadow.close(WAIT_S)


def test_a_batch_over_the_time_budget_switches_the_shadow_off(
    pipeline: Pipeline,
    metrics: RuntimeMetrics,
    batch: Callable[[int], BatchResult],
    caplog: pytest.LogCaptureFixture,
) -> None:
    door = Door(pipeline)
    first, second, third = batch(3), batch(4), batch(5)
    shadow = start(door, metrics, timeout_s=BUDGET_S)
    shadow.observe(first)
    door.wait_entered()
    shadow.observe(second)  # waiting behind the hung one
    time.sleep(BUDGET_S * 1.2)  # now the batch in hand is over its budget, whatever the machine
    with caplog.at_level(logging.ERROR, logger="scoring.shadow"):
        shadow.supervise()
    assert not shadow.active
    assert value(metrics, "scorer_shadow_failures_total", stage="timeout") == 1
    assert value(metrics, "scorer_shadow_switched_off") == 1
    assert batches(metrics, "failed") == 1  # the one in hand
    assert batches(metrics, "dropped") == 1  # the one waiting: never scored now
    assert not shadow_info_shown(metrics)
    assert any("SHADOW_BATCH_TIMEOUT_S" in r.getMessage() for r in caplog.records)

    shadow.observe(third)  # switched off: nothing happens, nothing raises
    shadow.supervise()
    assert value(metrics, "scorer_shadow_failures_total", stage="timeout") == 1
    assert batches(metrics, "dropped") == 1

    door.opened.set()  # the hung call returns at last: its figures are not counted
    shadow._thread.join(WAIT_S)
    assert not shadow._thread.is_alive()
    assert value(metrics, "scorer_shadow_abs_difference_count") == 0
    assert batches(metrics, "shadowed") == 0


def test_observe_notices_an_overdue_batch_too(
    pipeline: Pipeline, metrics: RuntimeMetrics, batch: Callable[[int], BatchResult]
) -> None:
    """``observe`` itself notices an overdue batch too (the loop calls it with each batch)."""
    door = Door(pipeline)
    first, second = batch(3), batch(4)
    shadow = start(door, metrics, timeout_s=BUDGET_S)
    shadow.observe(first)
    door.wait_entered()
    time.sleep(BUDGET_S * 1.2)
    shadow.observe(second)
    assert not shadow.active
    assert value(metrics, "scorer_shadow_failures_total", stage="timeout") == 1
    assert (batches(metrics, "failed"), batches(metrics, "dropped")) == (1, 0)
    door.opened.set()


def test_a_shadow_that_raises_is_switched_off_and_observe_never_raises(
    pipeline: Pipeline, metrics: RuntimeMetrics, batch: Callable[[int], BatchResult]
) -> None:
    door = Door(pipeline, fail=True)
    door.opened.set()
    shadow = start(door, metrics)
    shadow.observe(batch(3))
    wait_until(lambda: not shadow.active)
    assert value(metrics, "scorer_shadow_failures_total", stage="scoring") == 1
    assert value(metrics, "scorer_shadow_switched_off") == 1
    assert batches(metrics, "failed") == 1
    assert not shadow_info_shown(metrics)
    shadow.observe(batch(4))
    shadow.supervise()
    shadow.close(WAIT_S)
    assert batches(metrics, "failed") == 1


def test_observe_survives_what_it_is_handed(
    pipeline: Pipeline, metrics: RuntimeMetrics, batch: Callable[[int], BatchResult]
) -> None:
    door = Door(pipeline)
    door.opened.set()
    shadow = start(door, metrics)
    shadow.observe(None)  # type: ignore[arg-type]  # not a batch at all: switched off, no raise
    assert not shadow.active
    assert value(metrics, "scorer_shadow_failures_total", stage="scoring") == 1
    empty = batch(0)
    assert not empty.events
    shadow.observe(empty)


def test_close_does_not_wait_for_a_hung_shadow(
    pipeline: Pipeline, metrics: RuntimeMetrics, batch: Callable[[int], BatchResult]
) -> None:
    door = Door(pipeline)
    shadow = start(door, metrics)
    shadow.observe(batch(3))
    door.wait_entered()
    shadow.close(0.05)  # returns although the batch in hand never ends
    assert shadow._thread.is_alive()
    assert shadow._thread.daemon  # so it cannot hold the process's exit either
    door.opened.set()
    shadow._thread.join(WAIT_S)
    assert not shadow._thread.is_alive()  # it ended after that batch: close asked it to


def test_close_ends_an_idle_shadow(pipeline: Pipeline, metrics: RuntimeMetrics) -> None:
    shadow = start(Door(pipeline), metrics)
    shadow.close(WAIT_S)
    assert not shadow._thread.is_alive()


def test_the_time_budget_setting() -> None:
    base = {"MODEL_URI": "/models/b1/best_model_full.joblib", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}
    assert load_settings(base).shadow_batch_timeout_s == 10.0
    assert load_settings({**base, "SHADOW_BATCH_TIMEOUT_S": "2.5"}).shadow_batch_timeout_s == 2.5
    for bad in ("0", "-1", "601", "soon"):
        with pytest.raises(SettingsError) as caught:
            load_settings({**base, "SHADOW_BATCH_TIMEOUT_S": bad})
        assert caught.value.variable == "SHADOW_BATCH_TIMEOUT_S"
