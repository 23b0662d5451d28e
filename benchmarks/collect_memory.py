"""``python -m benchmarks.collect_memory``: the memory ``python -m training collect`` needs.

Two measurements, in process, on generated sessions (``training.synthetic``, serialized as a
pandas producer sends them), through the collect's own pieces (``training.merge.TimeMerge`` of
an events and an outcomes source, ``training.label.Labeller`` -- the join -- and
``training.dataset.PartWriter``); the Kafka client adds a bounded amount beside them (its
prefetch queue, ``queued.max.messages.kbytes`` = 16 MiB, and ``BUFFER_RECORDS`` per partition):

1. **Per held session**: ``--held`` sessions whose outcome has not come (the watermark never
   reaches their window's end), and the growth of the resident memory: bytes per session the
   join holds.
2. **A whole range**: ``--sessions`` sessions spread over ``--days``, each with its outcome
   ``--delay-max`` after it at most (``--missing`` of them without: those are held a whole
   ``--window``), collected into Parquet parts; the peak resident memory over the baseline and
   the sessions held at most. Memory follows the sessions of one window, not the range.

Figures in docs/training.md, "Memory".
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil

from contract.durations import duration_seconds
from contract.schema import LABEL_COLUMN
from contract.storage import Store
from training.dataset import PartWriter
from training.label import Labeller
from training.merge import TimeMerge
from training.synthetic import generate_sessions

CHUNK = 20_000
START_MS = 1_796_000_000_000


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def events(n: int, seed: int) -> Iterator[tuple[str, bytes, bool]]:
    """``n`` (session id, event JSON, Revenue), generated a chunk at a time."""
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        frame = generate_sessions(max(size, 20), seed=seed + start)[:size].reset_index(drop=True)
        labels = frame.pop(LABEL_COLUMN).to_numpy()
        ids = [f"s-{start + i:07d}-{(start + i) * 7919 % 999_983:06x}" for i in range(size)]
        frame.insert(0, "session_id", ids)
        lines = frame.to_json(orient="records", lines=True).splitlines()
        for session_id, line, label in zip(ids, lines, labels, strict=True):
            yield session_id, line.encode(), bool(label)


def outcome_value(session_id: str, purchased: bool, time_ms: int) -> bytes:
    moment = datetime.fromtimestamp(time_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    record = {
        "contract_version": "1.0.0",
        "session_id": session_id,
        "purchased": purchased,
        "outcome_time": moment,
    }
    return json.dumps(record).encode()


def per_held_session(n: int, window_ms: int) -> float:
    labeller = Labeller(window_ms, "unknown", n + 1, n + 1)
    payloads = list(events(n, seed=7))
    before = rss()
    for i, (_, value, _) in enumerate(payloads):
        labeller.event(START_MS + i, value)
    held = rss()
    assert labeller.held_sessions == n
    del payloads
    return (held - before) / n


def whole_range(args: argparse.Namespace, window_ms: int) -> dict[str, float]:
    n = args.sessions
    span_ms = round(args.days * 86_400_000)
    delay_max_ms = round(duration_seconds(args.delay_max) * 1000)
    rng = np.random.default_rng(3)
    labeller = Labeller(window_ms, "unknown", 10_000_000, 10_000_000)
    merge: TimeMerge[bytes] = TimeMerge(2)
    pending: list[tuple[int, bytes]] = []
    watermark, most_held = -1, 0
    baseline = rss()

    def drain() -> None:
        nonlocal watermark, most_held
        while (merged := merge.pop()) is not None:
            if merged.time_ms - 1 > watermark:
                watermark = merged.time_ms - 1
                writer.add(labeller.advance(watermark))
            if merged.source == 0:
                labeller.event(merged.time_ms, merged.item)
            else:
                labeller.outcome(merged.time_ms, merged.item)
        most_held = max(most_held, labeller.held_sessions)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="collect-memory-") as tmp:
        writer = PartWriter(str(Path(tmp) / "out"), Store())
        for i, (session_id, value, bought) in enumerate(events(n, seed=11)):
            t = START_MS + i * span_ms // n
            while pending and pending[0][0] <= t:
                u, outcome = heapq.heappop(pending)
                merge.push(1, u, outcome)
            merge.push(0, t, value)
            if rng.random() >= args.missing:
                u = t + int(rng.integers(1_000, delay_max_ms))
                heapq.heappush(pending, (u, outcome_value(session_id, bought, u)))
            if i % 1_000 == 0:
                drain()
        while pending:
            u, outcome = heapq.heappop(pending)
            merge.push(1, u, outcome)
        merge.finish(0)
        merge.finish(1)
        drain()
        writer.add(labeller.advance(2**62))
        writer.flush()
        parts = len(writer.parts)
        writer.abort()
    seconds = time.perf_counter() - started
    return {
        "rows": labeller.tally.rows,
        "parts": parts,
        "most_held": most_held,
        "peak_mib": (peak_rss() - baseline) / 2**20,
        "seconds": seconds,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collect_memory")
    parser.add_argument("--held", type=int, default=200_000, help="sessions held, part 1")
    parser.add_argument("--sessions", type=int, default=1_000_000, help="sessions, part 2")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--window", default="24h")
    parser.add_argument("--delay-max", default="30m")
    parser.add_argument("--missing", type=float, default=0.1, help="share without outcome")
    parser.add_argument(
        "--only",
        choices=["range", "held"],
        help="one measurement, in this process (by default each runs in a fresh process: "
        "memory freed by one would hide the other's growth)",
    )
    args = parser.parse_args(argv)
    window_ms = round(duration_seconds(args.window) * 1000)
    if args.only is None:
        own = [a for a in (sys.argv[1:] if argv is None else argv)]
        for part in ("range", "held"):
            command = [sys.executable, "-m", "benchmarks.collect_memory", *own, "--only", part]
            subprocess.run(command, check=True)
        return 0

    if args.only == "held":
        per_session = per_held_session(args.held, window_ms)
        print(f"held sessions          {args.held:,}")
        print(f"bytes per held session {per_session:,.0f}")
        print(f"MiB per million held   {per_session * 1_000_000 / 2**20:,.0f}")
        return 0
    figures = whole_range(args, window_ms)
    print(
        f"range                  {args.sessions:,} sessions over {args.days:g} days, window "
        f"{args.window}, outcomes within {args.delay_max}, {args.missing:.0%} without"
    )
    print(f"rows written           {figures['rows']:,.0f} in {figures['parts']:.0f} parts")
    print(f"sessions held at most  {figures['most_held']:,.0f}")
    print(f"peak RSS over baseline {figures['peak_mib']:,.0f} MiB")
    print(f"seconds                {figures['seconds']:,.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
