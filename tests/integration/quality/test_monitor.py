"""The quality monitor as a real process on the real broker: live figures equal the offline ones
of the same rows, through a SIGKILL and a second replica; memory held under its caps."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from contract.join import in_sample
from tests.integration.broker import GroupFactory, TopicFactory
from tests.integration.consumer.process import ConsumerProcess

from .stream import OUTPUT_RECORD_SCHEMA, Row, ScoredStream, publish, score_record, scored_stream
from .support import Start, figure, labelled, wait_for

PARTITIONS = 2
EXACT = 1e-9


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
        # The same figure to 1e-9 (a mean over rows in another order differs in the last bit).
        matching = [
            i
            for i, rows in enumerate(by_partition)
            if abs(stream.offline(rows)["brier"] - brier) <= EXACT
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
