"""Shadow scoring against the real broker: agreement metrics, shadow output, and shadows that
fail without touching the primary's output."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import numpy.typing as npt
import pytest

from contract.frame import events_to_frame
from contract.schema import SessionEvent
from tests.integration.consumer.conftest import ConsumerFactory, Topics, TopicsFactory
from tests.integration.consumer.doctored import FailsAfterGates, copy_build, replace_artifact
from tests.integration.consumer.kafka_io import produce_events, read_topic, synthetic_events
from tests.integration.consumer.process import ConsumerProcess

FULL = "best_model_full.joblib"
OTHER = "best_model_no_page_values.joblib"


def _offline(build: Path, name: str, events: list[dict[str, object]]) -> npt.NDArray[np.float64]:
    validated = [SessionEvent.model_validate(e) for e in events]
    probabilities = joblib.load(build / name).predict_proba(events_to_frame(validated))[:, 1]
    return np.asarray(probabilities, dtype=np.float64)  # as the consumer computes with them


def _threshold(build: Path, name: str) -> float:
    manifest = json.loads((build / "manifest.json").read_text())
    return float(manifest["artifacts"][name]["threshold"])


def _probabilities(bootstrap: str, topic: str, events: list[dict[str, object]]) -> dict[str, float]:
    records = read_topic(bootstrap, topic, expected=len(events))
    return {r.json()["session_id"]: r.json()["probability"] for r in records}


def _shadow_info_lines(consumer: ConsumerProcess) -> list[str]:
    return [
        line
        for line in consumer.http("/metrics")[1].splitlines()
        if line.startswith("scorer_model_info{") and 'role="shadow"' in line
    ]


def test_agreement_metrics_and_shadow_output_on_a_known_pair(
    kafka_bootstrap: str,
    model_build: Path,
    topics: Topics,
    topic_factory: object,
    start_consumer: ConsumerFactory,
) -> None:
    assert callable(topic_factory)
    shadow_topic = topic_factory(partitions=3)
    events = synthetic_events(400, seed=41, prefix="sh")
    produce_events(kafka_bootstrap, topics.input, events)
    consumer = start_consumer(
        topics,
        SHADOW_MODEL_URI=(model_build / OTHER).as_uri(),
        SHADOW_OUTPUT_TOPIC=shadow_topic,
    )
    consumer.wait_ready()
    ids = [str(e["session_id"]) for e in events]
    primary = _probabilities(kafka_bootstrap, topics.output, events)
    shadow = _probabilities(kafka_bootstrap, shadow_topic, events)
    expected_primary = _offline(model_build, FULL, events)
    expected_shadow = _offline(model_build, OTHER, events)
    np.testing.assert_allclose([primary[i] for i in ids], expected_primary, rtol=0, atol=1e-12)
    np.testing.assert_allclose([shadow[i] for i in ids], expected_shadow, rtol=0, atol=1e-12)

    differences = np.abs(expected_primary - expected_shadow)
    disagreements = np.count_nonzero(
        (expected_primary >= _threshold(model_build, FULL))
        != (expected_shadow >= _threshold(model_build, OTHER))
    )
    assert disagreements > 0  # the leakage experiment disagrees with the full model somewhere
    assert consumer.metric("scorer_shadow_abs_difference_count") == len(events)
    assert consumer.metric("scorer_shadow_abs_difference_sum") == pytest.approx(
        float(differences.sum()), rel=1e-9
    )
    small = float(np.count_nonzero(differences <= 0.05))
    assert consumer.metric("scorer_shadow_abs_difference_bucket", 'le="0.05"') == small
    assert consumer.metric("scorer_shadow_label_disagreements_total") == disagreements
    assert len(_shadow_info_lines(consumer)) == 1
    assert consumer.terminate() == 0


def test_failing_shadows_leave_the_primary_output_identical_and_complete(
    kafka_bootstrap: str,
    model_build: Path,
    topics_factory: TopicsFactory,
    start_consumer: ConsumerFactory,
    tmp_path: Path,
) -> None:
    refused = copy_build(model_build, tmp_path / "refused")
    replace_artifact(refused, OTHER, {"not": "this build"}, update_manifest=False)
    failing = copy_build(model_build, tmp_path / "failing")
    pipeline = joblib.load(model_build / OTHER)
    replace_artifact(failing, OTHER, FailsAfterGates(pipeline), update_manifest=True)

    events = synthetic_events(300, seed=43, prefix="sf")
    cases = {"gates": refused, "scoring": failing}
    runs: dict[str, tuple[Topics, ConsumerProcess]] = {}
    for stage, build in cases.items():
        topics = topics_factory()
        produce_events(kafka_bootstrap, topics.input, events)
        runs[stage] = topics, start_consumer(topics, SHADOW_MODEL_URI=(build / OTHER).as_uri())
    expected = _offline(model_build, FULL, events)
    ids = [str(e["session_id"]) for e in events]
    for stage, (topics, consumer) in runs.items():
        consumer.wait_ready()
        online = _probabilities(kafka_bootstrap, topics.output, events)
        assert sorted(online) == sorted(ids), stage
        np.testing.assert_allclose([online[i] for i in ids], expected, rtol=0, atol=1e-12)
        assert consumer.metric("scorer_messages_total", 'outcome="scored"') == len(events)
        assert consumer.metric("scorer_shadow_failures_total", f'stage="{stage}"') == 1, stage
        assert _shadow_info_lines(consumer) == [], stage  # switched off, not shown as loaded
        state = consumer.readiness()  # readiness is the primary's alone
        assert state is not None
        assert state.get("ready") is True, (stage, state)
        assert consumer.terminate() == 0, consumer.log_tail()
