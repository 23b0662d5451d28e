"""``python -m training collect`` through the real broker (and the real S3 server): the range
honoured at both ends, the join rule's labels, invalid events counted and not written, the same
bytes on a re-run, and a collected dataset that trains as it is, split by time."""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from contract.brokers import BrokerConnection
from contract.frame import events_to_frame
from contract.manifest import read_manifest
from contract.schema import FEATURE_COLUMNS, LABEL_COLUMN, SessionEvent
from contract.storage import Store
from tests.integration.broker import wait_for_topic
from tests.integration.s3 import LocalS3
from training.__main__ import main as training_main
from training.collect import CollectConfig, collect
from training.collect import main as collect_main
from training.data import deduplicate, load_sessions
from training.dataset import SUMMARY_NAME, TIME_COLUMN, CollectSummary
from training.timerange import TimeRange, iso_ms

from .stream import WINDOW_MS, Stream, build_stream, expected_labels, produce

SESSIONS = 300


@dataclass(frozen=True)
class Topics:
    bootstrap: str
    events: str
    outcomes: str
    stream: Stream

    def argv(self, out: str, *extra: str) -> list[str]:
        return [
            "--out",
            out,
            "--from",
            iso_ms(self.stream.from_ms),
            "--to",
            iso_ms(self.stream.to_ms),
            "--input-topic",
            self.events,
            *extra,
        ]

    def env(self, **more: str) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "OUTCOME_TOPIC": self.outcomes,
            "OUTCOME_WINDOW": f"{WINDOW_MS // 1000}s",
            **more,
        }


@pytest.fixture(scope="module")
def topics(kafka_bootstrap: str, admin: AdminClient) -> Iterator[Topics]:
    """The stream, an hour and a half in the past, on an events topic of 2 partitions and an
    outcome topic of 3 (collect joins across partitions: no co-partitioning needed)."""
    names = {"events": 2, "outcomes": 3}
    created = {role: f"it-collect-{role}-{uuid.uuid4().hex[:8]}" for role in names}
    futures = admin.create_topics(
        [NewTopic(created[role], num_partitions=n) for role, n in names.items()]
    )
    for future in futures.values():
        future.result(30)
    for role, n in names.items():
        wait_for_topic(admin, created[role], n)
    start = (int(time.time() * 1000) - 90 * 60_000) // 1000 * 1000
    stream = build_stream(start, SESSIONS)
    produce(kafka_bootstrap, stream.records, created["events"], created["outcomes"])
    yield Topics(kafka_bootstrap, created["events"], created["outcomes"], stream)
    admin.delete_topics(list(created.values()), operation_timeout=30)


def run_collect(argv: list[str], env: dict[str, str], status: int = 0) -> str:
    """``python -m training collect`` in this process; its stdout."""
    out = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out):
        assert collect_main(argv, env) == status
    print(f"[collect] {time.monotonic() - started:.1f} s")
    return out.getvalue()


def labels(parts: Path) -> dict[str, tuple[int, bool]]:
    raw = read_parts(parts)
    return {
        row.session_id: (int(row.event_time.value // 1_000_000), bool(row.Revenue))
        for row in raw.itertuples()
    }


def read_parts(directory: Path) -> pd.DataFrame:
    parts = sorted(directory.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(part) for part in parts], ignore_index=True)


def same_bytes(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("part-*.parquet"))
    assert names == sorted(p.name for p in b.glob("part-*.parquet"))
    assert names
    return all((a / name).read_bytes() == (b / name).read_bytes() for name in names)


def collected(out: Path | str, store: Store | None = None) -> tuple[pd.DataFrame, CollectSummary]:
    loaded = load_sessions(str(out), store=store)
    assert loaded.source is not None
    return loaded.frame, loaded.source


@pytest.fixture(scope="module")
def unknown(topics: Topics, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The range collected with MISSING_OUTCOME=unknown (the default)."""
    out = tmp_path_factory.mktemp("collect") / "unknown"
    stdout = run_collect(topics.argv(str(out)), topics.env())
    assert f"DATA={out}" in stdout
    return out


def test_the_rows_are_the_join_rules_labels_within_the_range(topics: Topics, unknown: Path) -> None:
    frame, summary = collected(unknown)
    raw = read_parts(unknown)
    expected = expected_labels(topics.stream, "unknown")
    got = labels(unknown)
    assert got == expected
    seed = "11"
    # Both ends are included; a millisecond outside either is not read.
    assert {f"first-{seed}", f"last-{seed}", f"framed-{seed}"} <= got.keys()
    assert not {f"before-{seed}", f"after-{seed}"} & got.keys()
    assert raw[TIME_COLUMN].min() == pd.Timestamp(topics.stream.from_ms, unit="ms", tz="UTC")
    assert raw[TIME_COLUMN].max() == pd.Timestamp(topics.stream.to_ms, unit="ms", tz="UTC")
    # The features are those of the event judged (the latest before the outcome).
    times = (raw[TIME_COLUMN] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    events = [
        SessionEvent.model_validate(topics.stream.events[(session_id, int(t))])
        for session_id, t in zip(raw.session_id, times, strict=True)
    ]
    pd.testing.assert_frame_equal(
        raw[list(FEATURE_COLUMNS)], events_to_frame(events), check_dtype=False
    )
    # Invalid events are counted by the consumer's codes, never written.
    counts = summary.counts
    assert counts["invalid_events"] == {
        "invalid_json": 1,
        "less_than_equal": 1,
        "label_not_allowed": 1,
        "unknown_schema_id": 1,
    }
    assert not raw.session_id.str.startswith("bad-").any()
    assert counts["skipped"]["invalid_outcome"] == 2
    without_outcome = SESSIONS // 20 * 2  # none, or one after the window
    assert counts["skipped"]["missing_outcome"] == without_outcome
    assert counts["skipped"].get("window_open", 0) == 0
    assert summary.rows == len(raw) == len(expected) == len(frame)
    assert summary.positives == int(raw[LABEL_COLUMN].sum())


def test_a_rerun_writes_the_same_bytes_and_missing_outcomes_can_be_negatives(
    topics: Topics, unknown: Path, tmp_path: Path
) -> None:
    rerun = tmp_path / "rerun"
    run_collect(topics.argv(str(rerun)), topics.env())
    assert same_bytes(rerun, unknown)
    # Partitions paused and resumed all along (8 records buffered at most): the same bytes.
    paused = tmp_path / "paused"
    config = CollectConfig(
        out=str(paused),
        time_range=TimeRange(topics.stream.from_ms, topics.stream.to_ms),
        input_topic=topics.events,
        outcome_topic=topics.outcomes,
        window_s=WINDOW_MS / 1000,
        buffer_records=8,
    )
    connection = BrokerConnection(kafka_bootstrap_servers=topics.bootstrap)
    collect(config, connection, Store())
    assert same_bytes(paused, unknown)

    by_option, by_env = tmp_path / "negative-option", tmp_path / "negative-env"
    argv = ["--missing-outcome", "negative", "--part-rows", "100"]
    run_collect(topics.argv(str(by_option), *argv), topics.env(MISSING_OUTCOME="unknown"))
    run_collect(
        topics.argv(str(by_env), "--part-rows", "100"), topics.env(MISSING_OUTCOME="negative")
    )
    assert len(list(by_option.glob("part-*.parquet"))) > 1
    assert same_bytes(by_option, by_env)
    assert labels(by_option) == expected_labels(topics.stream, "negative")
    summary = json.loads((by_option / SUMMARY_NAME).read_text())
    assert summary["counts"]["missing_as_negative"] == SESSIONS // 20 * 2


def test_a_collected_dataset_trains_as_it_is_split_by_time(
    topics: Topics, unknown: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    argv = ["--data", str(unknown), "--out", str(registry), "--n-iter", "1"]
    argv += ["--families", "logistic_regression", "--variants", "full", "--n-jobs", "1"]
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        assert training_main(argv) == 0
    print(f"[train] {time.monotonic() - started:.1f} s")
    (build,) = list(registry.iterdir())
    manifest = read_manifest(build)
    split, data = manifest.split, manifest.data
    assert split.rule == "time"
    assert not split.stratified
    assert data.format == "collected"
    assert data.source is not None
    assert (data.source.input_topic, data.source.outcome_topic) == (
        topics.events,
        topics.outcomes,
    )
    assert data.source.range_from == iso_ms(topics.stream.from_ms)
    assert data.event_time_min is not None
    assert data.event_time_max is not None
    assert split.time_boundary is not None
    assert data.event_time_min < split.time_boundary <= data.event_time_max
    frame, _ = collected(unknown)
    times = deduplicate(frame)[TIME_COLUMN]  # as training dropped the exact duplicates
    boundary = pd.Timestamp(split.time_boundary)
    assert data.rows_test == (times >= boundary).sum()
    assert data.rows_train == (times < boundary).sum()


def test_collect_into_a_bucket_reads_back_as_training_data(
    topics: Topics, unknown: Path, s3_server: LocalS3, s3_bucket: str
) -> None:
    prefix = f"s3://{s3_bucket}/datasets/collected"
    env = {**topics.env(), **s3_server.env()}
    run_collect(topics.argv(prefix), env)
    store = Store(s3_server.options())
    assert sorted(store.files(prefix)) == sorted(p.name for p in unknown.iterdir())
    for name in store.files(prefix):
        if name != SUMMARY_NAME:
            assert store.read_bytes(f"{prefix}/{name}") == (unknown / name).read_bytes()
    frame, summary = collected(prefix, store)
    assert summary.rows == len(frame) > 0
    run_collect(topics.argv(prefix), env, status=1)  # never written over
