"""Delivery guarantees and lifecycle with real processes and real signals."""

from __future__ import annotations

import collections
import json
import shutil
import time
from pathlib import Path

from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import produce_events, read_topic, synthetic_events


def wait_for_metric(consumer: object, name: str, labels: str, at_least: float) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if consumer.metric(name, labels) >= at_least:  # type: ignore[attr-defined]
            return
        time.sleep(0.05)
    raise AssertionError(f"{name}{{{labels}}} never reached {at_least}")


def test_sigkill_mid_stream_loses_nothing_at_least_once(
    kafka_bootstrap: str, topics: Topics, start_consumer: ConsumerFactory
) -> None:
    events = synthetic_events(4000, seed=21)
    produce_events(kafka_bootstrap, topics.input, events)
    group = "alo-sigkill"
    first = start_consumer(topics, group=group, BATCH_MAX_MESSAGES="50")
    first.wait_ready()
    wait_for_metric(first, "scorer_messages_total", 'outcome="scored"', 500)
    first.kill()  # SIGKILL mid-stream: no commit, no goodbye

    second = start_consumer(topics, group=group, BATCH_MAX_MESSAGES="500")
    second.wait_ready()
    records = read_topic(kafka_bootstrap, topics.output, expected=len(events), idle_s=3)
    counts = collections.Counter(r.json()["session_id"] for r in records)
    assert set(counts) == {e["session_id"] for e in events}  # nothing lost
    duplicates = sum(c - 1 for c in counts.values())
    print(f"at-least-once after SIGKILL: {len(events)} events, {duplicates} duplicates")
    assert second.terminate() == 0


def test_exactly_once_crash_between_produce_and_commit_leaves_no_duplicate(
    kafka_bootstrap: str, topics: Topics, start_consumer: ConsumerFactory
) -> None:
    events = synthetic_events(1500, seed=22)
    produce_events(kafka_bootstrap, topics.input, events)
    group = "eos-crash"
    common = {
        "PROCESSING_GUARANTEE": "exactly_once",
        "BATCH_MAX_MESSAGES": "100",
        "TRANSACTIONAL_ID": "eos-crash-replica-0",
    }
    crashing = start_consumer(topics, group=group, FAULT_CRASH_BEFORE_COMMIT_BATCH="4", **common)
    assert crashing.wait_exit(120) == -9  # it SIGKILLed itself with batch 4 produced, uncommitted
    assert "fault injection" in crashing.log_tail()

    survivor = start_consumer(topics, group=group, **common)
    survivor.wait_ready()
    committed = read_topic(kafka_bootstrap, topics.output, expected=len(events), idle_s=3)
    counts = collections.Counter(r.json()["session_id"] for r in committed)
    assert set(counts) == {e["session_id"] for e in events}
    assert max(counts.values()) == 1, "a read_committed reader saw an input twice"
    # The aborted batch's records exist in the log, but only uncommitted readers see them.
    uncommitted = read_topic(
        kafka_bootstrap, topics.output, expected=len(events), read_committed=False, idle_s=1
    )
    assert len(uncommitted) > len(committed)
    assert survivor.terminate() == 0


def _copy_build(model_build: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "build-copy"
    shutil.copytree(model_build, copy)
    return copy


def _refused(start_consumer: ConsumerFactory, topics: Topics, artifact: Path, gate: str) -> None:
    consumer = start_consumer(topics, MODEL_URI=artifact.as_uri())
    assert consumer.wait_exit(60) == 3
    log = consumer.log_tail()
    assert f"model gate '{gate}' failed" in log, log
    assert "scoring input=" not in log  # nothing was consumed


def test_tampered_artifact_is_refused(
    model_build: Path, tmp_path: Path, topics: Topics, start_consumer: ConsumerFactory
) -> None:
    build = _copy_build(model_build, tmp_path)
    artifact = build / "best_model_full.joblib"
    with artifact.open("ab") as handle:
        handle.write(b"\x00tampered")
    _refused(start_consumer, topics, artifact, "sha256")


def test_mismatched_manifest_is_refused(
    model_build: Path, tmp_path: Path, topics: Topics, start_consumer: ConsumerFactory
) -> None:
    build = _copy_build(model_build, tmp_path)
    manifest_path = build / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["libraries"]["scikit-learn"] = "0.0.1"
    manifest_path.write_text(json.dumps(manifest))
    _refused(start_consumer, topics, build / "best_model_full.joblib", "libraries")


def test_not_ready_until_gates_pass_and_partitions_are_held(
    topics: Topics, start_consumer: ConsumerFactory
) -> None:
    # No broker answers at this address: the gates pass but no assignment can be held.
    consumer = start_consumer(topics, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9")
    deadline = time.monotonic() + 60
    states = []
    while time.monotonic() < deadline:
        state = consumer.readiness()
        if state is not None:
            states.append(state)
            if state["gates_passed"]:
                break
        time.sleep(0.1)
    assert states, consumer.log_tail()
    assert all(not s["ready"] for s in states)
    assert states[-1]["gates_passed"] is True
    time.sleep(1)
    assert consumer.http("/readyz")[0] == 503
    assert consumer.http("/healthz")[0] == 200
    assert consumer.terminate() == 0
