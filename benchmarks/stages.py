"""``python -m benchmarks.stages``: CPU time per event of each consumer stage, in process.

No broker: the consumer's own stage functions run on generated events in batches, timed with
``time.process_time`` (CPU, not wall clock, so other jobs on the machine matter less). The
fastest of ``--repeat`` passes is kept per stage. It shows where the time goes for one build;
``python -m benchmarks`` measures the whole consumer through a broker.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter

from benchmarks.measure import REPO
from benchmarks.workload import generate_payloads
from consumer.inflight import PendingBatch
from consumer.metrics import ScorerMetrics
from consumer.publish import output_records, rfc3339_now
from contract.frame import event_columns
from contract.manifest import read_manifest
from contract.schema import SessionEvent
from scoring.decode import decode_batch
from scoring.drift import DriftSentinel
from scoring.gates import load_checked_model
from scoring.metrics import RuntimeMetrics, observe_all
from scoring.settings import ModelSettings

logger = logging.getLogger("benchmarks.stages")


@dataclass(frozen=True, slots=True)
class Message:
    """The part of a consumed message the stages read (`scoring.decode.MessageLike`)."""

    _value: bytes
    _key: bytes
    _offset: int

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return self._key

    def topic(self) -> str:
        return "sessions"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_796_000_000_000 + self._offset)  # CreateTime, in ms

    def headers(self) -> None:
        return None


@dataclass(frozen=True)
class StageCost:
    stage: str
    microseconds_per_event: float
    counted: bool = True
    """False for a part of another stage (inside `Scorer.score`) or a measurement beside the
    path: not added to the total."""
    note: str = ""


def _best_per_event(run: Callable[[], Any], events: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best / events * 1e6


def measure(model_uri: str, events: int, batch_size: int, repeat: int) -> list[StageCost]:
    """Per-event CPU cost of decode, columns, transform, estimator and output records."""
    scorer = load_checked_model(ModelSettings.model_construct(model_uri=model_uri).model_path)
    compiled = scorer.fast_path
    payloads = generate_payloads(events)
    messages = [Message(value, key, i) for i, (key, value) in enumerate(payloads)]
    batches = [messages[i : i + batch_size] for i in range(0, len(messages), batch_size)]
    decoded = [decode_batch(batch, 1_048_576) for batch in batches]
    columns = [event_columns(d.events) for d in decoded]
    probabilities = [scorer.score(d.events) for d in decoded]
    scored_at = rfc3339_now()

    def each(step: Callable[[int], Any]) -> Callable[[], None]:
        def run() -> None:
            for i in range(len(batches)):
                step(i)

        return run

    values = [[m.value() for m in batch] for batch in batches]
    batch_of_events = TypeAdapter(list[SessionEvent])
    stages: list[tuple[str, Callable[[int], Any]]] = [
        ("decode + validate (decode_batch)", lambda i: decode_batch(batches[i], 1_048_576)),
        (
            ASIDE + "pydantic-core alone, one call per message (model_validate_json)",
            lambda i: [SessionEvent.model_validate_json(v) for v in values[i]],
        ),
        (
            ASIDE + "pydantic-core alone, one call per batch (a JSON array, list[SessionEvent])",
            lambda i: batch_of_events.validate_json(b"[" + b",".join(values[i]) + b"]"),
        ),
        (PART + "events -> columns (event_columns)", lambda i: event_columns(decoded[i].events)),
    ]
    if compiled is not None:
        matrices = [compiled.transform(c) for c in columns]
        stages += [
            (
                PART + "clean -> engineer -> encode (compiled)",
                lambda i: compiled.transform(columns[i]),
            ),
            (PART + "estimator (compiled path)", lambda i: compiled.proba_of_matrix(matrices[i])),
        ]
    latency = ScorerMetrics.create(CollectorRegistry()).end_to_end_latency
    stamps = [np.asarray([m.timestamp()[1] for m in batch], dtype=np.float64) for batch in batches]
    stages += [
        ("whole score (Scorer.score)", lambda i: scorer.score(decoded[i].events)),
        (
            "output records (output_records)",
            lambda i: output_records(
                decoded[i].events, decoded[i].messages, probabilities[i], scorer.info, scored_at
            ),
        ),
        (
            "batch bookkeeping (PendingBatch: offsets, timestamps)",
            lambda i: PendingBatch(batches[i], decoded[i].messages, len(decoded[i].messages)),
        ),
        (
            "end-to-end latency histogram (observe_all)",
            lambda i: observe_all(latency, np.maximum(0.0, stamps[i][-1] + 20 - stamps[i]) / 1000),
        ),
    ]
    path = ModelSettings.model_construct(model_uri=model_uri).model_path
    profile = read_manifest(path.parent).artifacts[path.name].profile
    if profile is not None:  # the drift sentinel, gauges included, on the columns scoring built
        metrics = RuntimeMetrics.create(CollectorRegistry())
        sentinel = DriftSentinel(profile, scorer.info.threshold, metrics, 10_000, 1_000)
        stages.append(
            (
                "drift sentinel (DriftSentinel.observe)",
                lambda i: sentinel.observe(columns[i], probabilities[i]),
            )
        )
    return [
        StageCost(
            name.removeprefix(PART).removeprefix(ASIDE),
            _best_per_event(each(step), events, repeat),
            counted=not name.startswith((PART, ASIDE)),
            note="part of the score"
            if name.startswith(PART)
            else "for comparison, not on the path"
            if name.startswith(ASIDE)
            else "",
        )
        for name, step in stages
    ]


PART = "part: "
"""Marks a stage that is part of the whole score (shown, not added to the total)."""
ASIDE = "aside: "
"""Marks a measurement beside the path (what validation alone costs, and the batch-shaped
alternative issue 25 proposed): shown, not added to the total."""


def table(costs: Sequence[StageCost]) -> str:
    lines = ["| stage | CPU µs / event |", "|---|---:|"]
    for cost in costs:
        name = f"({cost.note}) {cost.stage}" if cost.note else cost.stage
        lines.append(f"| {name} | {cost.microseconds_per_event:.2f} |")
    return "\n".join(lines)


def total(costs: Sequence[StageCost]) -> float:
    """CPU µs per event of the stages that are not part of another."""
    return sum(cost.microseconds_per_event for cost in costs if cost.counted)


def default_model_uri(parser: argparse.ArgumentParser, registry: Path = REPO / "registry") -> str:
    """The newest build's full artifact in the registry; a usage error when there is none."""
    builds = sorted(registry.glob("*/best_model_full.joblib"))
    if not builds:
        parser.error(f"no build in {registry}; pass --model-uri")
    return builds[-1].resolve().as_uri()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stages", description=__doc__)
    parser.add_argument("--model-uri", help="a best_model_<variant>.joblib (default: newest)")
    parser.add_argument("--registry", type=Path, default=REPO / "registry")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    model_uri = args.model_uri or default_model_uri(parser, args.registry)
    costs = measure(model_uri, args.events, args.batch_size, args.repeat)
    print(f"model: {model_uri}\nevents: {args.events:,} in batches of {args.batch_size:,}")
    print(table(costs))
    print(f"| in-process stages in all | {total(costs):.2f} |")
    print(f"(numpy {np.__version__}; fastest of {args.repeat} passes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
