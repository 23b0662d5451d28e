"""A scored stream with its outcomes, as the scorer and an order system write them."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
from confluent_kafka import Producer

from contract.manifest import artifact_name, read_manifest
from contract.metrics import metrics_at
from contract.outcome import outcome_json
from contract.schema import CONTRACT_VERSION, FEATURE_COLUMNS, LABEL_COLUMN
from training.synthetic import generate_sessions

REPO = Path(__file__).resolve().parents[3]
OUTPUT_RECORD_SCHEMA = json.loads(
    (REPO / "consumer" / "output_record.schema.json").read_text(encoding="utf-8")
)


@dataclass(frozen=True)
class Row:
    session_id: str
    probability: float
    purchased: bool
    partition: int


@dataclass(frozen=True)
class ScoredStream:
    build_id: str
    variant: str
    threshold: float
    rows: list[Row]

    def offline(self, rows: list[Row] | None = None) -> dict[str, float]:
        """The figures of these rows, computed offline by the same functions as training."""
        chosen = self.rows if rows is None else rows
        y = np.array([int(r.purchased) for r in chosen])
        p = np.array([r.probability for r in chosen])
        figures = metrics_at(y, p, self.threshold)
        return {name: float(figures[name]) for name in ("brier", "ece", "pr_auc", "roc_auc")}


def scored_stream(build: Path, n: int, partitions: int, seed: int = 3) -> ScoredStream:
    """``n`` generated sessions scored by the build's ``full`` artifact, with their Revenue."""
    manifest = read_manifest(build)
    entry = manifest.artifacts[artifact_name("full")]
    sessions = generate_sessions(n, seed=seed)
    pipeline = joblib.load(build / artifact_name("full"))
    proba = pipeline.predict_proba(sessions[list(FEATURE_COLUMNS)])[:, 1]
    rows = []
    for index, (p, purchased) in enumerate(zip(proba, sessions[LABEL_COLUMN], strict=True)):
        session_id = f"q{seed}-{index}"
        partition = zlib.crc32(session_id.encode()) % partitions
        rows.append(Row(session_id, float(p), bool(purchased), partition))
    return ScoredStream(manifest.build_id, "full", entry.threshold, rows)


def score_record(stream: ScoredStream, row: Row) -> dict[str, object]:
    """A record in the scorer's output format (consumer/output_record.schema.json)."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "session_id": row.session_id,
        "probability": row.probability,
        "label": row.probability >= stream.threshold,
        "threshold": stream.threshold,
        "model_build_id": stream.build_id,
        "model_variant": stream.variant,
        "contract_version": CONTRACT_VERSION,
        "scored_at": now,
        "source": {"topic": "sessions", "partition": row.partition, "offset": 0},
    }


def publish(
    bootstrap: str,
    stream: ScoredStream,
    rows: list[Row],
    scores_topic: str,
    outcome_topic: str | None,
) -> None:
    """Each row's score, then (when a topic is given) its outcome, into the row's partition of
    both topics, keyed by session id."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for row in rows:
        value = json.dumps(score_record(stream, row)).encode()
        producer.produce(scores_topic, value, row.session_id.encode(), partition=row.partition)
    producer.flush(30)
    if outcome_topic is not None:
        for row in rows:
            value = outcome_json(row.session_id, row.purchased, datetime.now(UTC))
            producer.produce(outcome_topic, value, row.session_id.encode(), partition=row.partition)
    assert producer.flush(30) == 0
