"""A shadow can never slow or stop the primary, against the real broker.

Four consumers score the same events from topics of their own: one without a shadow (the
reference), one with a shadow that sleeps 200 ms per batch, one whose shadow hangs within a
generous SHADOW_BATCH_TIMEOUT_S and one whose shadow hangs past a short one. The shadows are the
build's other variant behind `doctored.SlowOffTheMainThread`: real builds that pass every gate
(golden rows and the fast path's check run on the main thread, at full speed), then sleep on
the shadow's own thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import joblib

from tests.integration.consumer.conftest import ConsumerFactory, Topics, TopicsFactory
from tests.integration.consumer.doctored import copy_build, replace_artifact, slow_pipeline
from tests.integration.consumer.kafka_io import produce_events, read_topic, synthetic_events
from tests.integration.consumer.process import ConsumerProcess

OTHER = "best_model_no_page_values.joblib"
EVENTS = 300
BATCH = "20"  # 15 batches or more: enough for a busy shadow to drop some
HANG_S = 3600.0
SHORT_BUDGET_S = "2"


def _outputs(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    """session_id -> output record, less what differs between runs by design (the time of
    scoring, the input topic's name)."""
    records = {}
    for record in read_topic(bootstrap, topic, expected=EVENTS):
        value = record.json()
        del value["scored_at"]
        del value["source"]["topic"]
        records[value["session_id"]] = value
    return records


def _doctored(model_build: Path, destination: Path, seconds: float) -> Path:
    build = copy_build(model_build, destination)
    replace_artifact(
        build, OTHER, slow_pipeline(joblib.load(model_build / OTHER), seconds), update_manifest=True
    )
    return build / OTHER


def _batches(consumer: ConsumerProcess, result: str) -> float:
    return consumer.metric("scorer_shadow_batches_total", f'result="{result}"')


def _alive_and_ready(consumer: ConsumerProcess) -> None:
    status, body = consumer.http("/healthz")
    assert status == 200, body
    assert '"alive": true' in body, body
    state = consumer.readiness()
    assert state is not None
    assert state.get("ready") is True, state
    assert consumer.http("/readyz")[0] == 200


def _wait_for(condition: Any, consumer: ConsumerProcess, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, consumer.log_tail()
        time.sleep(0.2)


def test_slow_and_hung_shadows_leave_the_primary_complete_identical_and_alive(
    kafka_bootstrap: str,
    model_build: Path,
    topics_factory: TopicsFactory,
    start_consumer: ConsumerFactory,
    tmp_path: Path,
) -> None:
    slow = _doctored(model_build, tmp_path / "slow", 0.2)
    hung = _doctored(model_build, tmp_path / "hung", HANG_S)
    events = synthetic_events(EVENTS, seed=47, prefix="iso")
    cases: dict[str, dict[str, str]] = {
        "none": {},
        "slow": {"SHADOW_MODEL_URI": slow.as_uri()},
        "hung": {"SHADOW_MODEL_URI": hung.as_uri(), "SHADOW_BATCH_TIMEOUT_S": "600"},
        "timed-out": {"SHADOW_MODEL_URI": hung.as_uri(), "SHADOW_BATCH_TIMEOUT_S": SHORT_BUDGET_S},
    }
    runs: dict[str, tuple[Topics, ConsumerProcess]] = {}
    for name, env in cases.items():
        topics = topics_factory()
        produce_events(kafka_bootstrap, topics.input, events)
        runs[name] = topics, start_consumer(topics, BATCH_MAX_MESSAGES=BATCH, **env)

    outputs = {}
    for name, (topics, consumer) in runs.items():
        consumer.wait_ready()
        outputs[name] = _outputs(kafka_bootstrap, topics.output)
    reference = outputs["none"]
    assert len(reference) == EVENTS
    for name, output in outputs.items():
        assert output == reference, f"{name}: the primary's output differs from the run without"
    for name, (_, consumer) in runs.items():
        assert consumer.metric("scorer_messages_total", 'outcome="scored"') == EVENTS, name
        _alive_and_ready(consumer)  # the hung shadows are still hung in their threads

    # Slow: it compares what it has time for and drops the rest; every batch is accounted for.
    _, slow_run = runs["slow"]
    batches = slow_run.metric("scorer_batch_size_count")
    assert batches >= 15
    _wait_for(
        lambda: _batches(slow_run, "shadowed") + _batches(slow_run, "dropped") == batches, slow_run
    )
    assert _batches(slow_run, "dropped") > 0
    assert _batches(slow_run, "shadowed") > 0
    assert _batches(slow_run, "failed") == 0
    assert 0 < slow_run.metric("scorer_shadow_abs_difference_count") < EVENTS
    assert slow_run.metric("scorer_shadow_switched_off") == 0

    # Hung within its budget: the primary scored everything while the shadow held one batch.
    _, hung_run = runs["hung"]
    assert _batches(hung_run, "shadowed") == 0
    # One batch in its hands, one waiting in the slot, every later one dropped.
    assert _batches(hung_run, "dropped") == hung_run.metric("scorer_batch_size_count") - 2
    assert hung_run.metric("scorer_shadow_switched_off") == 0

    # Hung past SHADOW_BATCH_TIMEOUT_S: switched off, counted, logged.
    _, timed_out = runs["timed-out"]
    _wait_for(lambda: timed_out.metric("scorer_shadow_switched_off") == 1, timed_out)
    assert timed_out.metric("scorer_shadow_failures_total", 'stage="timeout"') == 1
    assert _batches(timed_out, "failed") == 1
    assert _batches(timed_out, "shadowed") == 0
    assert 'role="shadow"' not in timed_out.http("/metrics")[1]
    log = timed_out.log_path.read_text()
    assert f"SHADOW_BATCH_TIMEOUT_S={float(SHORT_BUDGET_S)}" in log
    assert "the shadow is switched off" in log
    _alive_and_ready(timed_out)

    # Shutdown is bounded whatever the shadow does: a clean exit with the hung threads alive.
    for name, (_, consumer) in runs.items():
        assert consumer.terminate() == 0, (name, consumer.log_tail())
    assert "not waiting for it" in hung_run.log_path.read_text()
