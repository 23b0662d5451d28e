"""``python -m benchmarks`` / ``make bench``: the consumer's throughput and latency, measured.

One run, one machine, one local broker (started here unless ``--bootstrap`` is given):

1. pre-fill an input topic with N generated events;
2. the ceiling: ``benchmarks.passthrough`` (consume -> produce, same client settings);
3. the naive baseline: ``benchmarks.naive`` (one message at a time), on a prefix of the topic;
4. ``python -m consumer`` as shipped at each batch size;
5. latency under a steady offered load (p50/p95/p99 end to end, per record);
6. memory: RSS after 100,000 and after 1,000,000 events (scaled down with ``--quick``);
7. adversarial decode: CPU per hostile message vs per valid event, in process
   (``benchmarks.adversarial``);
8. the HTTP front door: ``python -m serve`` and the baseline endpoint through a real HTTP
   client (``benchmarks.http_bench``; ``--http only`` runs it alone, without a broker).

Prints tables and writes JSON to ``benchmarks/results/`` (``bench-*.json``, ``http-*.json``; see
docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import adversarial, http_bench, stages
from benchmarks.measure import REPO
from benchmarks.results import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_EVENTS,
    DEFAULT_RATES,
    PASSTHROUGH,
    Options,
    Results,
    machine,
    model_summary,
    summarise,
    table,
    write_json,
)
from benchmarks.runs import (
    Topics,
    find_or_train_model,
    latency_pairs,
    memory_run,
    shadow_comparison,
    throughput_run,
)
from benchmarks.slow_shadow import slow_shadow_comparison
from benchmarks.workload import generate_payloads, prefill, warm_up_idempotence

logger = logging.getLogger("benchmarks")


# --- the command ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=None, help=f"N (default {DEFAULT_EVENTS:,})")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (N=2,000)")
    parser.add_argument("--model-uri", help="a best_model_<variant>.joblib (default: --registry)")
    parser.add_argument("--registry", type=Path, default=REPO / "registry")
    parser.add_argument(
        "--data", type=Path, default=REPO / "../shared/data/online_shoppers_intention.csv"
    )
    parser.add_argument("--bootstrap", help="use this broker instead of starting a local one")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument(
        "--work", type=Path, default=None, help="process logs (default: a temp dir)"
    )
    parser.add_argument("--batch-sizes", default=",".join(map(str, DEFAULT_BATCH_SIZES)))
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    parser.add_argument("--latency-seconds", type=float, default=None, help="default 12 (quick 3)")
    parser.add_argument(
        "--latency-batch-wait-ms", type=int, default=None, help="default: the consumer's own"
    )
    parser.add_argument("--memory-events", type=int, default=None, help="default 1,000,000")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory run")
    parser.add_argument("--naive-seconds", type=float, default=None, help="default 30 (quick 5)")
    parser.add_argument(
        "--shadow",
        choices=["also", "no", "only", "slow"],
        default="also",
        help="the run with SHADOW_MODEL_URI = the build's other variant, at the largest batch "
        "size: also (default), no, or only (that run and the same run without a shadow); slow: "
        "only the primary beside a deliberately slow shadow vs without, throughput at the "
        "largest batch size and latency at the first rate (benchmarks.slow_shadow)",
    )
    parser.add_argument(
        "--slow-shadow-ms",
        type=int,
        default=200,
        help="--shadow slow: how long the shadow sleeps per batch (default 200)",
    )
    parser.add_argument(
        "--http",
        choices=["also", "no", "only"],
        default="also",
        help="the HTTP front door (benchmarks.http_bench) after the Kafka runs: also (default), "
        "no, or only (no broker started)",
    )
    http_bench.add_arguments(parser)
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    events = args.events or (2000 if quick else DEFAULT_EVENTS)
    memory_events = (
        0 if args.no_memory else args.memory_events or (10 * events if quick else 1_000_000)
    )
    work = args.work or Path(
        __import__("tempfile").mkdtemp(prefix="bench-", dir=os.environ.get("TMPDIR"))
    )
    work.mkdir(parents=True, exist_ok=True)
    opts = Options(
        events=events,
        batch_sizes=tuple(int(b) for b in args.batch_sizes.split(",") if b),
        rates=tuple(int(r) for r in args.rates.split(",") if r),
        latency_seconds=args.latency_seconds or (3.0 if quick else 12.0),
        latency_batch_wait_ms=args.latency_batch_wait_ms,
        naive_events=min(events, 300 if quick else 5000),
        naive_seconds=args.naive_seconds or (5.0 if quick else 30.0),
        memory_events=memory_events,
        memory_checkpoint=max(1, memory_events // 10),
        model_uri=args.model_uri or "",
        bootstrap=args.bootstrap,
        out=args.out,
        work=work,
        quick=quick,
        shadow=args.shadow,
        slow_shadow_ms=args.slow_shadow_ms,
    )
    return opts, args


def run(opts: Options, argv: Sequence[str]) -> Results:
    started = time.monotonic()
    results = Results(
        started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command="python -m benchmarks " + " ".join(argv),
        machine=machine(),
        model=model_summary(opts.model_uri),
        options={k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
    )
    assert opts.bootstrap is not None
    topics = Topics(opts.bootstrap)
    logger.info("generating %d events", opts.events)
    payloads = generate_payloads(opts.events)
    input_topic = topics.create("input")
    t = time.monotonic()
    prefill(opts.bootstrap, input_topic, payloads)
    logger.info("pre-filled %s in %.1fs", input_topic, time.monotonic() - t)
    warm_up_idempotence(opts.bootstrap, topics.create("warm-up", 1))

    if opts.shadow == "slow":
        slow_shadow_comparison(opts, topics, input_topic, payloads, results)
        results.seconds_total = round(time.monotonic() - started, 1)
        return results
    if opts.shadow == "only":
        shadow_comparison(opts, topics, input_topic, results)
        results.seconds_total = round(time.monotonic() - started, 1)
        return results
    results.throughput.append(
        throughput_run(opts, topics, input_topic, "ceiling", PASSTHROUGH, 1000, opts.events)
    )
    results.throughput.append(
        throughput_run(
            opts,
            topics,
            input_topic,
            "naive",
            "benchmarks.naive",
            1,
            opts.naive_events,
            time_limit_s=opts.naive_seconds,
        )
    )
    for batch in opts.batch_sizes:
        results.throughput.append(
            throughput_run(
                opts, topics, input_topic, f"consumer-{batch}", "consumer", batch, opts.events
            )
        )
    variants: dict[str, dict[str, str]] = {  # batch 1,000, other settings: what they cost
        "consumer-exactly-once-1000": {"PROCESSING_GUARANTEE": "exactly_once"},
        "consumer-drift-off-1000": {"DRIFT_ENABLED": "false"},
    }
    for name, settings in variants.items():
        results.throughput.append(
            throughput_run(
                opts, topics, input_topic, name, "consumer", 1000, opts.events, None, **settings
            )
        )
    if opts.shadow == "also":
        shadow_comparison(opts, topics, input_topic, results, baseline_done=True)
    latency_pairs(opts, topics, payloads, results)
    if opts.memory_events:
        results.memory = memory_run(opts, topics, payloads)
    logger.info("stages: CPU per event of each stage of the consumer, in process")
    results.stages = stages.measure(opts.model_uri, 20_000, 1000, repeat=3 if opts.quick else 5)
    logger.info("adversarial decode: CPU per message of hostile input, in process")
    results.adversarial_decode = adversarial.measure(opts.model_uri, repeat=3 if opts.quick else 5)
    summarise(results)
    results.seconds_total = round(time.monotonic() - started, 1)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    opts, args = parse_args(argv)
    if not opts.model_uri:
        opts.model_uri = find_or_train_model(args.registry, args.data)
    command = "python -m benchmarks " + " ".join(argv)
    if args.http == "only":
        http_bench.run_and_report(
            http_bench.options_from(args, opts.model_uri, opts.quick), command
        )
        return 0
    broker = None
    if opts.bootstrap is None:
        from tests.integration.broker import LocalBroker, unique_broker_name

        broker = LocalBroker(unique_broker_name("bench"), owner_pid=os.getpid())
        opts.bootstrap = broker.start()
    try:
        results = run(opts, argv)
    finally:
        if broker is not None:
            broker.stop()
    print(table(results))
    path = write_json(results, opts.out)
    print(f"\nwrote {path} (process logs in {opts.work})")
    if args.http == "also":
        http_bench.run_and_report(
            http_bench.options_from(args, opts.model_uri, opts.quick), command
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
