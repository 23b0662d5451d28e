"""The benchmark's input: generated session events, pre-filled or offered at a steady rate."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from confluent_kafka import Producer

from consumer.publish import produce_when_room
from contract.schema import LABEL_COLUMN
from contract.validation import parse_event
from training.synthetic import generate_sessions

logger = logging.getLogger(__name__)

Payload = tuple[bytes, bytes]  # (key, value)
_CHUNK = 50_000


def generate_payloads(n: int, seed: int = 2024) -> list[Payload]:
    """`n` valid events as (key, JSON value): `training.synthetic` sessions, with event times.

    The values follow the dataset's published shapes (skewed counts, durations proportional to
    pages, ~15 % buyers, the -1 sentinel and empty fields) and are serialized the way a pandas
    producer does (`frame.to_json`: counts as `3.0`, empty cells as null); a sample is
    validated against the contract here so that a broken generator fails before anything is
    measured.
    """
    payloads: list[Payload] = []
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rng = np.random.default_rng(seed)
    for chunk_start in range(0, n, _CHUNK):
        size = min(_CHUNK, n - chunk_start)
        frame = generate_sessions(max(size, 20), seed=seed + chunk_start)[:size]
        frame = frame.drop(columns=[LABEL_COLUMN]).reset_index(drop=True)
        seconds = rng.integers(0, 30 * 86_400, size=size)
        ids = [f"bench-{seed}-{chunk_start + i}" for i in range(size)]
        frame.insert(0, "session_id", ids)
        frame["event_time"] = [
            (start + timedelta(seconds=int(seconds[i]), milliseconds=(chunk_start + i) % 1000))
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
            for i in range(size)
        ]
        lines = frame.to_json(orient="records", lines=True).splitlines()
        payloads.extend((key.encode(), line.encode()) for key, line in zip(ids, lines, strict=True))
    for _, value in payloads[:: max(1, n // 500)]:
        parse_event(value)  # raises ContractViolation if the generator drifted from the contract
    return payloads


def producer(bootstrap: str, linger_ms: int = 5) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": linger_ms,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        }
    )


def prefill(bootstrap: str, topic: str, payloads: Sequence[Payload], repeat: int = 1) -> int:
    """Produce every payload (`repeat` times) and wait for all acknowledgements."""
    client = producer(bootstrap, linger_ms=20)
    count = 0
    for _ in range(repeat):
        for key, value in payloads:
            produce_when_room(client, topic, value, key)
            count += 1
            if count % 10_000 == 0:
                client.poll(0)
    if client.flush(300):
        raise RuntimeError(f"pre-fill of {topic} was not acknowledged")
    return count


def warm_up_idempotence(bootstrap: str, topic: str) -> None:
    """Have the broker hand out one idempotent producer id before anything is measured.

    A fresh broker loads its transaction coordinator when the first idempotent producer asks
    for an id (`Coordinator load in progress`, retried by librdkafka for seconds); whoever asks
    first would wait, with its records queued and stamped: the ceiling's clock, or the latency
    of the first run, would include that wait."""
    client = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    client.produce(topic, b"warm-up")
    if client.flush(120):
        raise RuntimeError(f"the broker gave no idempotent producer id within 120 s ({topic})")


def cycle(payloads: Sequence[Payload]) -> Iterator[Payload]:
    while True:
        yield from payloads


def offer_steadily(
    bootstrap: str, topic: str, payloads: Sequence[Payload], rate: float, duration_s: float
) -> int:
    """Produce at `rate` events/s for `duration_s`, paced every millisecond; return the count.

    Each record's CreateTime is stamped when it is produced, which is where latency starts.
    """
    client = producer(bootstrap, linger_ms=1)
    source = cycle(payloads)
    sent = 0
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= duration_s:
            break
        due = int(min(elapsed, duration_s) * rate)
        while sent < due:
            key, value = next(source)
            produce_when_room(client, topic, value, key)
            sent += 1
        client.poll(0)
        time.sleep(0.001)
    if client.flush(60):
        raise RuntimeError(f"steady load on {topic} was not acknowledged")
    return sent
