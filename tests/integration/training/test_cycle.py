"""``python -m training cycle`` through the real broker: sessions whose purchase behaviour has
changed (page values now put people off) and their outcomes on the topics; the cycle collects
them, trains a challenger, compares it with the champion on the freshest part, and records the
verdict in the challenger's build folder."""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from sklearn.linear_model import LogisticRegression

from contract.frame import dataset_row_to_event_dict
from contract.outcome import outcome_json
from contract.pipeline import build_pipeline
from contract.schema import LABEL_COLUMN
from tests.builds import write_pipeline_build
from tests.integration.broker import wait_for_topic
from training.cycle import main as cycle_main
from training.dataset import TIME_COLUMN
from training.synthetic import generate_sessions
from training.timerange import iso_ms

SESSIONS = 1200
MINUTE = 60_000
SPAN_MS = 60 * MINUTE
FRESH = "15m"


@pytest.fixture(scope="module")
def changed_stream(kafka_bootstrap: str, admin: AdminClient) -> Iterator[dict[str, object]]:
    """An hour of sessions, two hours ago, where page values reverse their pull on buying;
    each session's outcome a minute after it."""
    topics = {role: f"it-cycle-{role}-{uuid.uuid4().hex[:8]}" for role in ("events", "outcomes")}
    for future in admin.create_topics(
        [NewTopic(t, num_partitions=2) for t in topics.values()]
    ).values():
        future.result(30)
    for topic in topics.values():
        wait_for_topic(admin, topic, 2)
    start = (int(time.time() * 1000) - 3 * SPAN_MS) // 1000 * 1000
    frame = generate_sessions(SESSIONS, seed=5, page_value_effect=-1.5)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
    for i, row in enumerate(frame.to_dict(orient="records")):
        at = start + i * SPAN_MS // SESSIONS
        session = f"cycle-{i}"
        event = json.dumps(dataset_row_to_event_dict(row, session)).encode()
        producer.produce(topics["events"], event, session.encode(), timestamp=at)
        moment = pd.Timestamp(at + MINUTE, unit="ms", tz="UTC").to_pydatetime()
        outcome = outcome_json(session, bool(row[LABEL_COLUMN]), moment)
        producer.produce(topics["outcomes"], outcome, session.encode(), timestamp=at + MINUTE)
    assert producer.flush(30) == 0
    yield {**topics, "from": start, "to": start + SPAN_MS}
    admin.delete_topics(list(topics.values()), operation_timeout=30)


def champion(registry: Path) -> Path:
    """A build of the old world: trained where page values meant buying."""
    frame = generate_sessions(3000, seed=6)
    X, y = frame.drop(columns=[LABEL_COLUMN]), frame[LABEL_COLUMN].astype(bool)
    pipeline = build_pipeline(LogisticRegression(max_iter=500), "full").fit(X, y)
    return write_pipeline_build(registry, pipeline, X, y, threshold=0.5)


def test_the_cycle_trains_a_challenger_that_beats_the_champion_on_fresh_outcomes(
    kafka_bootstrap: str,
    changed_stream: dict[str, object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = tmp_path / "registry"
    artifact = champion(registry)
    for name, value in {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "INPUT_TOPIC": str(changed_stream["events"]),
        "OUTCOME_TOPIC": str(changed_stream["outcomes"]),
        "OUTCOME_WINDOW": "10m",
        "MODEL_URI": artifact.as_uri(),
    }.items():
        monkeypatch.setenv(name, value)
    argv = [
        "--registry", str(registry),
        "--from", iso_ms(int(str(changed_stream["from"]))),
        "--to", iso_ms(int(str(changed_stream["to"]))),
        "--fresh", FRESH,
        "--n-iter", "2", "--families", "logistic_regression", "--n-jobs", "1",
        "--bootstrap", "300", "--rule", "roc_auc", "--rule", "brier",
    ]  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cycle_main(argv)
    printed = {
        key: value
        for key, _, value in (line.partition("=") for line in out.getvalue().splitlines())
        if key.isupper()
    }
    assert status == 0
    assert printed["VERDICT"] == "not_worse"
    assert printed["CHAMPION"] == artifact.as_uri()
    assert printed["CHALLENGER"].startswith("file://")  # a MODEL_URI, as model.env writes it
    challenger = Path(printed["CHALLENGER"].removeprefix("file://"))
    assert challenger.name == artifact.name
    assert challenger.parent.parent == registry
    report = json.loads((challenger.parent / "comparison" / "comparison.json").read_text())
    assert report["verdict"] == "not_worse"
    assert {"comparison.md", "reliability.png"} <= {
        p.name for p in (challenger.parent / "comparison").iterdir()
    }
    # The comparison's rows are the fresh part only, after every row the challenger saw.
    (cycle,) = (registry / "datasets").iterdir()
    train = pd.concat(pd.read_parquet(p) for p in sorted((cycle / "train").glob("part-*.parquet")))
    fresh = pd.concat(pd.read_parquet(p) for p in sorted((cycle / "fresh").glob("part-*.parquet")))
    assert len(train) + len(fresh) == SESSIONS
    assert train[TIME_COLUMN].max() < fresh[TIME_COLUMN].min()
    assert report["data"]["rows"] == len(fresh)
