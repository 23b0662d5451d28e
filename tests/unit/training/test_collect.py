"""The transport-free parts of ``python -m training collect``: the range, the merge, the labeller
(the quality monitor's join rule on session events), the Parquet writer and its reader."""

from __future__ import annotations

import heapq
import json
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from contract.frame import dataset_row_to_event_dict
from contract.join import MissingOutcome, Outcome, OutcomeJoin
from contract.limits import MAX_KEY_BYTES
from contract.outcome import outcome_json
from contract.schema import FEATURE_COLUMNS, LABEL_COLUMN
from contract.storage import Store
from tests.integration.faults.test_poison import INPUT_MAX_MESSAGE_BYTES, poison_catalogue
from training.collect import main as collect_main
from training.data import DataError, load_sessions
from training.dataset import (
    SUMMARY_NAME,
    TIME_COLUMN,
    CollectSummary,
    DatasetError,
    PartWriter,
    part_name,
)
from training.label import EVENT_STREAM, Labeller, Row
from training.merge import TimeMerge
from training.synthetic import generate_sessions
from training.timerange import TimeRange, iso_ms, parse_instant, resolve_range

NOW = parse_instant("2026-12-08T12:00:00Z")
DAY = 86_400_000
WINDOW = 60_000


# --- the range ------------------------------------------------------------------------------


def test_since_counts_back_from_now() -> None:
    assert resolve_range("7d", None, None, NOW) == TimeRange(NOW - 7 * DAY, NOW)
    assert resolve_range("90m", None, None, NOW).from_ms == NOW - 90 * 60_000


def test_from_and_to_are_instants_utc_when_no_offset_is_given() -> None:
    span = resolve_range(None, "2026-12-01", "2026-12-02T01:00:00+01:00", NOW)
    assert iso_ms(span.from_ms) == "2026-12-01T00:00:00.000Z"
    assert iso_ms(span.to_ms) == "2026-12-02T00:00:00.000Z"
    assert resolve_range(None, "2026-12-01T00:00:00Z", None, NOW).to_ms == NOW


@pytest.mark.parametrize(
    ("since", "start", "end", "message"),
    [
        (None, None, None, "give the range"),
        ("7d", "2026-12-01", None, "not both"),
        ("7d", None, "2026-12-01", "--from with --to"),
        ("a week", None, None, "duration"),
        (None, "yesterday", None, "not a time"),
        (None, "2026-12-02", "2026-12-01", "before it starts"),
    ],
)
def test_bad_ranges_are_refused_with_a_reason(
    since: str | None, start: str | None, end: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_range(since, start, end, NOW)


def test_the_command_refuses_bad_arguments_and_settings(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    with pytest.raises(SystemExit) as refused:
        collect_main(["--out", out, "--since", "7d"], {})  # no KAFKA_BOOTSTRAP_SERVERS
    assert refused.value.code == 2
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "OUTCOME_WINDOW": "a day"}
    with pytest.raises(SystemExit) as refused:
        collect_main(["--out", out, "--since", "7d"], env)
    assert refused.value.code == 2
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "KAFKA_GROUP_ID": "mine"}
    with pytest.raises(SystemExit) as refused:
        collect_main(["--out", out, "--since", "7d"], env)  # a property collect sets itself
    assert refused.value.code == 2
    assert not (tmp_path / "out").exists()


# --- the merge ------------------------------------------------------------------------------


def test_the_merge_releases_the_same_sequence_however_the_chunks_arrive() -> None:
    rng = random.Random(5)
    sources = [sorted(rng.randrange(1000) for _ in range(rng.randrange(0, 40))) for _ in range(5)]
    expected = list(
        heapq.merge(*([(t, s, i) for i, t in enumerate(seq)] for s, seq in enumerate(sources)))
    )
    for trial in range(20):
        merge: TimeMerge[int] = TimeMerge(len(sources))
        cursors = [0] * len(sources)
        released = []
        order = random.Random(trial)
        while not merge.done:
            open_sources = [s for s in range(len(sources)) if not merge.finished(s)]
            s = order.choice(open_sources)
            take = order.randrange(1, 6)
            for t in sources[s][cursors[s] : cursors[s] + take]:
                merge.push(s, t, cursors[s])
                cursors[s] += 1
            if cursors[s] == len(sources[s]):
                merge.finish(s)
            while (item := merge.pop()) is not None:
                released.append((item.time_ms, item.source, item.item))
        assert released == expected


def test_the_merge_waits_for_every_unfinished_source() -> None:
    merge: TimeMerge[str] = TimeMerge(2)
    merge.push(0, 10, "a")
    assert merge.pop() is None  # source 1 may still send something older
    merge.push(1, 5, "b")
    assert merge.pop() == (5, 1, "b")
    assert merge.pop() is None
    merge.finish(1)
    assert merge.pop() == (10, 0, "a")
    merge.finish(0)
    assert merge.done


# --- the labeller -----------------------------------------------------------------------------


def event_json(session_id: str, row: int = 0) -> bytes:
    frame = generate_sessions(20, seed=1)
    event = dataset_row_to_event_dict(frame.iloc[row].to_dict(), session_id)
    return json.dumps(event).encode()


def outcome(session_id: str, purchased: bool) -> bytes:
    return outcome_json(session_id, purchased, datetime(2026, 12, 1, tzinfo=UTC))


def test_invalid_events_are_counted_by_the_consumers_code_and_never_held() -> None:
    labeller = Labeller(WINDOW, "negative", 100, 100)
    labeller.event(1, b"{not json")
    labeller.event(2, b"")
    labeller.event(3, json.dumps({**json.loads(event_json("s")), "Revenue": True}).encode())
    labeller.event(4, b"\x00\x00\x00\x00\x00" + event_json("s"))  # Schema Registry id 0
    labeller.event(5, b"\x00\x00\x00\x00\x07" + event_json("framed"))  # id 7: valid
    assert labeller.held_sessions == 1
    assert dict(labeller.tally.invalid_events) == {
        "invalid_json": 1,
        "empty_value": 1,
        "label_not_allowed": 1,
        "unknown_schema_id": 1,
    }
    rows = labeller.advance(10 * WINDOW)
    assert [(r.session_id, r.revenue) for r in rows] == [("framed", False)]


def test_every_poison_the_consumer_dead_letters_is_counted_under_its_code_and_never_held() -> None:
    """The labeller decides through the consumer's own decoding: the catalogue of bad input
    the fault tests send through the broker, plus the key and value size limits."""
    labeller = Labeller(WINDOW, "negative", 100, 100, max_message_bytes=INPUT_MAX_MESSAGE_BYTES)
    expected: Counter[str] = Counter()
    for time_ms, (_, value, code) in enumerate(poison_catalogue(), start=1):
        labeller.event(time_ms, value)
        expected[code] += 1
    labeller.event(10_000, event_json("key"), key=b"k" * (MAX_KEY_BYTES + 1))
    labeller.event(10_001, event_json("large").ljust(INPUT_MAX_MESSAGE_BYTES + 1))
    expected.update(["key_too_large", "message_too_large"])
    assert labeller.tally.invalid_events == expected
    assert labeller.held_sessions == 0
    assert labeller.tally.events_read == sum(expected.values())


def test_the_labeller_applies_the_join_rule_of_the_monitor() -> None:
    """A stream of every case, fed in time order with a watermark, gives the labels that
    ``contract.join`` gives the same records fed at once: one rule."""
    records: list[tuple[int, str, str, Any]] = [
        (1_000, "event", "bought", 0),
        (5_000, "outcome", "bought", True),
        (1_000, "event", "left", 1),
        (2_000, "outcome", "left", False),
        (3_000, "event", "updated", 2),
        (4_000, "event", "updated", 3),  # the latest event before the outcome is written
        (9_000, "outcome", "updated", True),
        (30_000, "event", "updated", 4),  # after the decision: ignored
        (2_000, "event", "no-outcome", 5),
        (3_000, "event", "late", 6),
        (3_000 + WINDOW + 1, "outcome", "late", True),  # after the window: missing
        (6_000, "outcome", "early", False),  # before its event, within a window
        (7_000, "event", "early", 7),
        (8_000, "event", "twice", 8),
        (9_000, "outcome", "twice", True),
        (9_500, "outcome", "twice", False),  # a duplicate outcome
        (10_000, "outcome", "nobody", True),
    ]
    rules: tuple[MissingOutcome, ...] = ("negative", "unknown")
    for missing in rules:
        labeller = Labeller(WINDOW, missing, 100, 100)
        rows: list[Row] = []
        watermark = -1
        for time_ms, kind, session, value in sorted(records, key=lambda r: r[0]):
            if time_ms - 1 > watermark:
                watermark = time_ms - 1
                rows += labeller.advance(watermark)
            if kind == "event":
                labeller.event(time_ms, event_json(session, value))
            else:
                labeller.outcome(time_ms, outcome(session, value))
        rows += labeller.advance(10 * WINDOW)
        labeller.close()

        direct: OutcomeJoin[int] = OutcomeJoin(WINDOW, missing, 100, 100)
        for time_ms, kind, session, value in records:
            if kind == "event":
                direct.add_record(session, EVENT_STREAM, time_ms, value)
            else:
                direct.add_outcome(session, Outcome(time_ms, value, time_ms))
        expected = {
            j.session_id: (j.held_time_ms[EVENT_STREAM], j.label)
            for j in direct.advance(10 * WINDOW)
            if j.label is not None
        }
        assert {r.session_id: (r.time_ms, r.revenue) for r in rows} == expected
        labels = {r.session_id: r.revenue for r in rows}
        assert labels["bought"] is True
        assert labels["left"] is False
        assert labels["early"] is False
        assert labels["updated"] is True
        assert labels["twice"] is True
        updated = next(r for r in rows if r.session_id == "updated")
        assert updated.time_ms == 4_000
        if missing == "negative":
            assert labels["no-outcome"] is False
            assert labels["late"] is False
            assert labeller.tally.missing_as_negative == 2
        else:
            assert "no-outcome" not in labels
            assert "late" not in labels
            assert labeller.tally.skipped["missing_outcome"] == 2
        skipped = labeller.tally.skipped
        assert skipped["after_decision"] == 1
        assert skipped["unknown_session"] == 1
        # The duplicate of "twice", and the late outcome: after "late" was decided (as the
        # monitor counts it), or after its window (fed at once).
        assert skipped["duplicate_outcome"] + skipped["outcome_after_window"] == 2
        assert labeller.tally.positives == sum(labels.values())


def test_sessions_whose_window_is_open_at_the_end_are_counted_not_written() -> None:
    labeller = Labeller(WINDOW, "negative", 100, 100)
    labeller.event(1_000, event_json("open"))
    assert labeller.advance(WINDOW) == []
    labeller.close()
    assert labeller.tally.skipped["window_open"] == 1
    assert labeller.tally.rows == 0


# --- the writer and the reader ------------------------------------------------------------------


def rows_of(n: int, seed: int = 4) -> list[Row]:
    frame = generate_sessions(n, seed=seed)
    rng = random.Random(seed)
    rows = []
    for i, record in enumerate(frame.to_dict(orient="records")):
        event = dataset_row_to_event_dict(record, f"s{i}")
        features = tuple(event[name] for name in FEATURE_COLUMNS)
        rows.append(Row(f"s{i}", NOW + rng.randrange(DAY), features, bool(record[LABEL_COLUMN])))
    return rows


def summary_of(writer: PartWriter, rows: list[Row]) -> CollectSummary:
    return CollectSummary(
        input_topic="sessions",
        outcome_topic="session-outcomes",
        range_from=iso_ms(NOW),
        range_to=iso_ms(NOW + DAY),
        outcome_window_seconds=60,
        missing_outcome="unknown",
        collected_at=iso_ms(NOW + 2 * DAY),
        rows=len(rows),
        positives=sum(r.revenue for r in rows),
        event_time_min=None,
        event_time_max=None,
        counts={},
        parts=list(writer.parts),
    )


def write(out: Path, rows: list[Row], part_rows: int) -> PartWriter:
    writer = PartWriter(str(out), Store(), part_rows)
    writer.add(rows)
    writer.flush()
    writer.close(summary_of(writer, rows))
    return writer


def test_parts_are_sorted_deterministic_and_read_back_as_training_reads_them(
    tmp_path: Path,
) -> None:
    rows = rows_of(250)
    write(tmp_path / "a", rows, part_rows=100)
    write(tmp_path / "b", rows, part_rows=100)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [SUMMARY_NAME, part_name(0), part_name(1), part_name(2)]
    for name in names[1:]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        part = pd.read_parquet(tmp_path / "a" / name)
        assert part[TIME_COLUMN].is_monotonic_increasing
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]

    loaded = load_sessions(str(tmp_path / "a"))
    assert loaded.format == "collected"
    assert loaded.source is not None
    assert loaded.source.input_topic == "sessions"
    assert list(loaded.frame.columns) == [*FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN]
    assert str(loaded.frame[TIME_COLUMN].dt.tz) == "UTC"
    assert len(loaded.frame) == 250
    # The same values as the rows, with the dtypes the contract's frame has.
    by_time = loaded.frame.sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)
    first = min(rows, key=lambda r: (r.time_ms, r.session_id))
    assert by_time[TIME_COLUMN].iloc[0] == pd.Timestamp(first.time_ms, unit="ms", tz="UTC")
    assert by_time["Month"].iloc[0] == first.features[FEATURE_COLUMNS.index("Month")]
    assert by_time[LABEL_COLUMN].dtype == bool


def test_a_dataset_is_never_written_over_and_a_changed_part_is_refused(tmp_path: Path) -> None:
    rows = rows_of(30)
    write(tmp_path / "a", rows, part_rows=100)
    with pytest.raises(DatasetError, match="not empty"):
        PartWriter(str(tmp_path / "a"), Store())
    part = tmp_path / "a" / part_name(0)
    part.chmod(0o644)
    part.write_bytes(part.read_bytes().replace(b"Returning_Visitor", b"Returning_Visitoz", 1))
    with pytest.raises(DataError, match="differs from its sha256"):
        load_sessions(str(tmp_path / "a"))


def test_an_empty_dataset_or_a_plain_directory_is_a_data_error(tmp_path: Path) -> None:
    write(tmp_path / "empty", [], part_rows=100)
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == [SUMMARY_NAME]
    with pytest.raises(DataError, match="holds no rows"):
        load_sessions(str(tmp_path / "empty"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match=r"without _collect\.json"):
        load_sessions(str(tmp_path / "plain"))
