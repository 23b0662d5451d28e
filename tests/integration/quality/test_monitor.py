"""The quality monitor as a real process on the real broker: live figures equal the offline ones
of the same rows, through a SIGKILL and a second replica; memory held under its caps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest

from contract.join import in_sample
from tests.integration.broker import GroupFactory, TopicFactory
from tests.integration.consumer.process import ConsumerProcess

from .stream import OUTPUT_RECORD_SCHEMA, Row, ScoredStream, publish, score_record, scored_stream

PARTITIONS = 2
EXACT = 1e-9

Start = Callable[..., ConsumerProcess]


@pytest.fixture
def start_monitor(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Start]:
    started: list[ConsumerProcess] = []

    def start(env: dict[str, str]) -> ConsumerProcess:
        log = tmp_path / f"quality-{len(started)}.log"
        process = ConsumerProcess(
            {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "QUALITY_GRACE": "1s",
                "QUALITY_REFRESH": "0.2s",
                "LOG_LEVEL": "INFO",
                # A SIGKILLed member leaves the group after 6 s (the broker's least), not 45 s.
                "KAFKA_SESSION_TIMEOUT_MS": "6000",
                "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
                **env,
            },
            log,
            module="quality",
        )
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.ensure_stopped()


def figure(process: ConsumerProcess, stream: ScoredStream, metric: str) -> float:
    labels = f'build_id="{stream.build_id}",metric="{metric}",role="primary",variant="full"'
    return process.metric("quality_live", labels)


def labelled(process: ConsumerProcess, stream: ScoredStream) -> float:
    labels = f'build_id="{stream.build_id}",role="primary",variant="full"'
    return process.metric("quality_window_labels", labels)


def wait_for(what: str, condition: Callable[[], bool], *processes: ConsumerProcess) -> None:
    started = time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if condition():
                print(f"[quality] {what}: {time.monotonic() - started:.1f} s")
                return
        except OSError:  # the probe server is not listening yet
            pass
        for process in processes:
            if process.exit_code() is not None:
                raise AssertionError(f"monitor exited {process.exit_code()}:\n{process.log_tail()}")
        time.sleep(0.1)
    tails = "\n---\n".join(p.log_tail() for p in processes)
    raise AssertionError(f"not within 60 s: {what}\n{tails}")


def assert_figures(process: ConsumerProcess, stream: ScoredStream, rows: list[Row]) -> None:
    offline = stream.offline(rows)
    assert labelled(process, stream) == len(rows)
    for name, value in offline.items():
        assert figure(process, stream, name) == pytest.approx(value, abs=EXACT), name


def test_live_figures_equal_the_offline_ones_through_a_sigkill_and_a_second_replica(
    kafka_bootstrap: str,
    topic_factory: TopicFactory,
    group_factory: GroupFactory,
    model_build: Path,
    start_monitor: Start,
) -> None:
    stream = scored_stream(model_build, 400, PARTITIONS)
    jsonschema.validate(score_record(stream, stream.rows[0]), OUTPUT_RECORD_SCHEMA)
    scores, outcomes = topic_factory(PARTITIONS), topic_factory(PARTITIONS)
    env = {
        "SCORES_TOPIC": scores,
        "OUTCOME_TOPIC": outcomes,
        "QUALITY_CONSUMER_GROUP": group_factory(),
        "OUTCOME_WINDOW": "120s",
        "QUALITY_HISTORY": "120s",
        "MISSING_OUTCOME": "unknown",
        "QUALITY_WINDOW_LABELS": "100000",
        "QUALITY_MODEL_REGISTRY": str(model_build.parent),
    }
    first, second = stream.rows[:250], stream.rows[250:]
    publish(kafka_bootstrap, stream, first, scores, outcomes)
    monitor = start_monitor(env)
    wait_for("the first rows judged", lambda: labelled(monitor, stream) == len(first), monitor)
    assert_figures(monitor, stream, first)
    # Live vs promised: the build's test figures beside the live ones.
    promised = monitor.metric(
        "quality_promised",
        f'build_id="{stream.build_id}",metric="brier",role="primary",variant="full"',
    )
    assert promised > 0

    # SIGKILL while the rest of the stream is being written; the next process rebuilds it all.
    publish(kafka_bootstrap, stream, second[:60], scores, outcomes)
    monitor.kill()
    publish(kafka_bootstrap, stream, second[60:], scores, outcomes)
    restarted = start_monitor(env)
    wait_for("every row judged", lambda: labelled(restarted, stream) == len(stream.rows), restarted)
    assert_figures(restarted, stream, stream.rows)

    # A second replica: partition i of both topics moves to it, each session judged once.
    joined = start_monitor(env)
    replicas = (restarted, joined)

    def split() -> bool:
        states = [p.readiness() or {} for p in replicas]
        counts = [labelled(p, stream) for p in replicas]
        return (
            all(s.get("ready") for s in states) and sum(counts) == len(stream.rows) and all(counts)
        )

    wait_for("the partitions shared", split, *replicas)
    by_partition = [[r for r in stream.rows if r.partition == i] for i in range(PARTITIONS)]
    held = []
    for process in replicas:
        brier = figure(process, stream, "brier")
        matching = [
            i for i, rows in enumerate(by_partition) if stream.offline(rows)["brier"] == brier
        ]
        assert len(matching) == 1, f"brier {brier} is no one partition's"
        assert_figures(process, stream, by_partition[matching[0]])
        held += matching
    assert sorted(held) == list(range(PARTITIONS))


def test_memory_stays_under_the_cap_with_a_ten_times_larger_stream_at_a_small_sample(
    kafka_bootstrap: str,
    topic_factory: TopicFactory,
    group_factory: GroupFactory,
    model_build: Path,
    start_monitor: Start,
) -> None:
    stream = scored_stream(model_build, 4000, PARTITIONS, seed=5)
    scores, outcomes = topic_factory(PARTITIONS), topic_factory(PARTITIONS)
    cap = 250
    monitor = start_monitor(
        {
            "SCORES_TOPIC": scores,
            "OUTCOME_TOPIC": outcomes,
            "QUALITY_CONSUMER_GROUP": group_factory(),
            "OUTCOME_WINDOW": "1h",  # no outcome comes: every sampled score is held
            "QUALITY_SAMPLE_RATE": "0.1",
            "QUALITY_MAX_SESSIONS": str(cap),
        }
    )
    publish(kafka_bootstrap, stream, stream.rows, scores, None)
    sampled = sum(in_sample(r.session_id, 0.1) for r in stream.rows)
    assert 300 < sampled < 500  # the sample: ~10 % of 4,000
    wait_for(
        "every sampled record read",
        lambda: monitor.metric("quality_scores_total", 'role="primary"') == sampled,
        monitor,
    )
    held = monitor.metric("quality_held_sessions")
    assert held == cap  # full, and the rest dropped and counted, never evicting
    assert monitor.metric("quality_ignored_total", 'reason="session_cap"') == sampled - cap
