"""``python -m benchmarks.quality_memory``: bytes the quality monitor holds per scored session.

Holds N scored sessions (no outcome yet) in the join state and the estimate's recent-score
window exactly as the monitor does (``contract.join.OutcomeJoin`` of ``quality.window.Scored``,
session ids like ``s-123456-abcdef``, one build id), and reports the growth of the process's
resident memory, per million sessions. Then judges them all (outcomes for every one) and reports
what is left. Figures in docs/quality.md, "Memory".
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

import psutil

from contract.join import Outcome, OutcomeJoin
from quality.window import Scored


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality_memory")
    parser.add_argument("--sessions", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    n = args.sessions
    build, variant = sys.intern("20261203T153515Z-48d6aff3"), sys.intern("full")
    join: OutcomeJoin[Scored] = OutcomeJoin(86_400_000, "unknown", n, n)
    before = rss()
    for i in range(n):
        scored = Scored(0.1 + (i % 800) / 1000, 0.42, build, variant)
        join.add_record(f"s-{i:06d}-{i * 7919 % 999_983:06x}", "primary", 1_000 + i, scored)
    held = rss()
    per_session = (held - before) / n
    print(f"sessions held      {join.held_sessions:,}")
    print(f"RSS growth         {(held - before) / 2**20:,.0f} MiB")
    print(f"bytes per session  {per_session:,.0f}")
    print(f"MiB per million    {per_session * 1_000_000 / 2**20:,.0f}")
    for i in range(n):
        join.add_outcome(f"s-{i:06d}-{i * 7919 % 999_983:06x}", Outcome(2_000 + i, False, 0))
    judged = join.advance(10**12)
    print(f"judged             {len(judged):,}; held after: {join.held_sessions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
