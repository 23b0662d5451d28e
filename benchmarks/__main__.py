"""``python -m benchmarks`` / ``make bench``: the consumer's throughput and latency, measured.

One run, one machine, one local broker (started here unless ``--bootstrap`` is given):

1. pre-fill an input topic with N generated events;
2. the ceiling: ``benchmarks.passthrough`` (consume -> produce, same client settings);
3. the naive baseline: ``benchmarks.naive`` (one message at a time), on a prefix of the topic;
4. ``python -m consumer`` as shipped at each batch size;
5. latency under a steady offered load (p50/p95/p99 end to end, per record);
6. memory: RSS after 100,000 and after 1,000,000 events (scaled down with ``--quick``);
7. adversarial decode: CPU per hostile message vs per valid event, in process
   (``benchmarks.adversarial``).

Prints a table and writes JSON to ``benchmarks/results/`` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from benchmarks import adversarial
from benchmarks.adversarial import KindCost
from benchmarks.measure import REPO, BenchmarkError, ServiceProcess, Watermarks, peak_rss_bytes
from benchmarks.workload import Payload, generate_payloads, offer_steadily, prefill
from consumer.replay import read_topic

logger = logging.getLogger("benchmarks")

DEFAULT_EVENTS = 200_000
DEFAULT_BATCH_SIZES = (100, 500, 1000, 5000)
DEFAULT_RATES = (2000, 20_000)
PARTITIONS = 3
MB = 1024 * 1024


@dataclass
class Options:
    events: int
    batch_sizes: tuple[int, ...]
    rates: tuple[int, ...]
    latency_seconds: float
    latency_batch_wait_ms: int | None
    naive_events: int
    naive_seconds: float
    memory_events: int
    memory_checkpoint: int
    model_uri: str
    bootstrap: str | None
    out: Path
    work: Path
    quick: bool
    shadow: str = "also"


@dataclass
class Throughput:
    name: str
    batch_size: int
    events: int
    seconds: float
    events_per_s: float
    cpu_s_per_1000: float
    peak_rss_mb: float
    notes: str = ""


@dataclass
class Latency:
    offered_per_s: int
    events: int
    measured: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    batch_max_wait_ms: int


@dataclass
class Memory:
    events: int
    checkpoint: int
    rss_at_checkpoint_mb: float
    rss_at_end_mb: float
    growth: float
    peak_rss_mb: float
    events_per_s: float


@dataclass
class Results:
    started_at: str
    command: str
    machine: dict[str, Any]
    model: dict[str, Any]
    options: dict[str, Any]
    throughput: list[Throughput] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    memory: Memory | None = None
    adversarial_decode: list[KindCost] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
    seconds_total: float = 0.0


# --- the environment ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def model_summary(model_uri: str) -> dict[str, Any]:
    from consumer.settings import Settings

    path = Settings.model_construct(model_uri=model_uri).model_path
    manifest = orjson.loads((path.parent / "manifest.json").read_bytes())
    entry = manifest["artifacts"][path.name]
    return {
        "model_uri": model_uri,
        "build_id": manifest["build_id"],
        "variant": entry["variant"],
        "family": entry.get("family"),
        "estimator": entry.get("estimator"),
        "best_params": entry.get("best_params"),
        "trained_on": manifest.get("data", {}).get("uri"),
    }


def find_or_train_model(registry: Path, data: Path) -> str:
    """The newest build's full model in `registry`; train one (``--n-iter 2``) if none."""
    builds = (
        sorted(p for p in registry.glob("*/best_model_full.joblib")) if registry.is_dir() else []
    )
    if not builds:
        source = str(data)
        if not data.is_file():
            from training.synthetic import generate_sessions

            registry.mkdir(parents=True, exist_ok=True)
            source = str(registry.parent / "bench-synthetic.csv")
            generate_sessions(12_000, seed=7).to_csv(source, index=False)
            logger.warning("no dataset at %s: training on generated sessions", data)
        logger.info("no build in %s: training one (python -m training --n-iter 2)", registry)
        command = [sys.executable, "-m", "training", "--data", source, "--out", str(registry)]
        subprocess.run([*command, "--n-iter", "2"], check=True, cwd=REPO)
        builds = sorted(registry.glob("*/best_model_full.joblib"))
    return builds[-1].resolve().as_uri()


class Topics:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.run_id = uuid.uuid4().hex[:6]

    def create(
        self, name: str, partitions: int = PARTITIONS, config: dict[str, str] | None = None
    ) -> str:
        from tests.integration.broker import wait_for_topic

        topic = f"bench-{self.run_id}-{name}"
        futures = self.admin.create_topics([NewTopic(topic, partitions, config=config or {})])
        futures[topic].result(30)
        wait_for_topic(self.admin, topic, partitions)
        return topic


# --- the runs ----------------------------------------------------------------------------------


def settings_env(
    opts: Options, topics: Topics, input_topic: str, name: str, batch: int, **extra: str
) -> dict[str, str]:
    return {
        "MODEL_URI": opts.model_uri,
        "KAFKA_BOOTSTRAP_SERVERS": topics.bootstrap,
        "INPUT_TOPIC": input_topic,
        "OUTPUT_TOPIC": topics.create(f"{name}-out"),
        "DLQ_TOPIC": topics.create(f"{name}-dlq", 1),
        "CONSUMER_GROUP": f"bench-{topics.run_id}-{name}",
        "BATCH_MAX_MESSAGES": str(batch),
        "LOG_LEVEL": "INFO",
        **extra,
    }


def throughput_run(
    opts: Options,
    topics: Topics,
    input_topic: str,
    name: str,
    module: str,
    batch: int,
    target: int,
    time_limit_s: float | None = None,
    **extra: str,
) -> Throughput:
    env = settings_env(opts, topics, input_topic, name, batch, **extra)
    process = ServiceProcess(module, env, opts.work / f"{name}.log").start()
    outputs = Watermarks(topics.bootstrap, env["OUTPUT_TOPIC"], PARTITIONS)
    try:
        begin = process.wait_consuming()
        if time_limit_s is None:
            end = process.wait_outputs(outputs, target, timeout_s=max(600.0, target / 200))
            done = target
        else:
            deadline = begin.at + time_limit_s
            while time.monotonic() < deadline and outputs.total() < target:
                time.sleep(0.05)
            end = process.sample()
            done = outputs.total()
        peak = peak_rss_bytes(process.pid)
        dead = Watermarks(topics.bootstrap, env["DLQ_TOPIC"], 1)
        rejected = dead.total()
        dead.close()
    finally:
        outputs.close()
        code = process.stop()
    if rejected:
        raise BenchmarkError(f"{name}: {rejected} events were dead-lettered; the input is broken")
    if code not in (0, -15):
        raise BenchmarkError(f"{name}: exited {code}:\n{process.log_tail()}")
    seconds = end.at - begin.at
    result = Throughput(
        name=name,
        batch_size=batch,
        events=done,
        seconds=round(seconds, 3),
        events_per_s=round(done / seconds, 1),
        cpu_s_per_1000=round((end.cpu_s - begin.cpu_s) / done * 1000, 4),
        peak_rss_mb=round(peak / MB, 1),
    )
    if extra.get("SHADOW_MODEL_URI") and "shadow scoring build_id=" not in process.log_text():
        raise BenchmarkError(f"{name}: the shadow was not in service:\n{process.log_tail()}")
    if module == "consumer" and "compiled scoring path verified" not in process.log_text():
        result.notes = "pipeline path (compiled path not verified)"
    logger.info("%s", result)
    return result


def latency_run(opts: Options, topics: Topics, payloads: Sequence[Payload], rate: int) -> Latency:
    name = f"latency-{rate}"
    input_topic = topics.create(f"{name}-in")
    wait = opts.latency_batch_wait_ms  # None: the consumer's defaults, as shipped
    extra = {} if wait is None else {"BATCH_MAX_WAIT_MS": str(wait)}
    env = settings_env(opts, topics, input_topic, name, 1000, **extra)
    # The broker stamps each output when it appends it: the acknowledgement time, per record.
    output = env["OUTPUT_TOPIC"] = topics.create(
        f"{name}-out-append", config={"message.timestamp.type": "LogAppendTime"}
    )
    process = ServiceProcess("consumer", env, opts.work / f"{name}.log").start()
    outputs = Watermarks(topics.bootstrap, output, PARTITIONS)
    try:
        process.wait_consuming()
        sent = offer_steadily(topics.bootstrap, input_topic, payloads, rate, opts.latency_seconds)
        process.wait_outputs(outputs, sent, timeout_s=120)
    finally:
        outputs.close()
        process.stop()
    inputs = read_topic(topics.bootstrap, input_topic, sent, idle_s=0.5)
    produced_at = {(r.partition, r.offset): r.timestamp_ms for r in inputs}
    first = min(produced_at.values())
    warm_up_ms = 1000 if opts.latency_seconds > 3 else 0
    latencies = []
    for record in read_topic(topics.bootstrap, output, sent, idle_s=0.5):
        source = record.json()["source"]
        start = produced_at[(source["partition"], source["offset"])]
        if start - first >= warm_up_ms:  # the first second warms caches and the group up
            latencies.append(record.timestamp_ms - start)
    values = np.array(latencies, dtype=np.float64)
    result = Latency(
        offered_per_s=rate,
        events=sent,
        measured=len(values),
        p50_ms=float(np.percentile(values, 50)),
        p95_ms=float(np.percentile(values, 95)),
        p99_ms=float(np.percentile(values, 99)),
        max_ms=float(values.max()),
        batch_max_wait_ms=opts.latency_batch_wait_ms or 100,
    )
    logger.info("%s", result)
    return result


def memory_run(opts: Options, topics: Topics, payloads: Sequence[Payload]) -> Memory:
    name = "memory"
    input_topic = topics.create(f"{name}-in")
    repeat = -(-opts.memory_events // len(payloads))
    total = prefill(topics.bootstrap, input_topic, payloads, repeat=repeat)
    env = settings_env(opts, topics, input_topic, name, 1000)
    process = ServiceProcess("consumer", env, opts.work / f"{name}.log").start()
    outputs = Watermarks(topics.bootstrap, env["OUTPUT_TOPIC"], PARTITIONS)
    try:
        begin = process.wait_consuming()
        at_checkpoint = process.wait_outputs(outputs, opts.memory_checkpoint, timeout_s=600)
        end = process.wait_outputs(outputs, total, timeout_s=max(600.0, total / 500))
        peak = peak_rss_bytes(process.pid)
    finally:
        outputs.close()
        process.stop()
    result = Memory(
        events=total,
        checkpoint=opts.memory_checkpoint,
        rss_at_checkpoint_mb=round(at_checkpoint.rss_bytes / MB, 1),
        rss_at_end_mb=round(end.rss_bytes / MB, 1),
        growth=round(end.rss_bytes / at_checkpoint.rss_bytes - 1, 4),
        peak_rss_mb=round(peak / MB, 1),
        events_per_s=round(total / (end.at - begin.at), 1),
    )
    logger.info("%s", result)
    return result


# --- the report ----------------------------------------------------------------------------------


def summarise(results: Results) -> None:
    by_name = {run.name: run for run in results.throughput}
    ceiling, naive = by_name.get("ceiling"), by_name.get("naive")
    shipped = [run for run in results.throughput if run.name.startswith("consumer")]
    best = max(shipped, key=lambda run: run.events_per_s, default=None)
    if best is not None and ceiling is not None:
        for run in shipped:
            results.ratios[f"{run.name}/ceiling"] = round(
                run.events_per_s / ceiling.events_per_s, 3
            )
    if best is not None and naive is not None:
        for run in shipped:
            results.ratios[f"{run.name}/naive"] = round(run.events_per_s / naive.events_per_s, 1)
    p99 = {lat.offered_per_s: lat.p99_ms for lat in results.latency}
    memory = results.memory
    at_1000, eos = by_name.get("consumer-1000"), by_name.get("consumer-exactly-once-1000")
    results.targets = {
        "events_per_s >= 75000 (batch 1000)": _verdict(
            at_1000.events_per_s >= 75_000 if at_1000 else None
        ),
        "x naive >= 100": _verdict(
            best.events_per_s / naive.events_per_s >= 100 if best and naive else None
        ),
        "share of ceiling >= 0.8 (batch 1000)": _verdict(
            at_1000.events_per_s / ceiling.events_per_s >= 0.8 if at_1000 and ceiling else None
        ),
        "CPU per event <= 12 us (batch 1000)": _verdict(
            at_1000.cpu_s_per_1000 <= 0.012 if at_1000 else None
        ),
        "exactly_once / at_least_once >= 0.5": _verdict(
            eos.events_per_s / at_1000.events_per_s >= 0.5 if eos and at_1000 else None
        ),
        "p99 at 2000/s <= 15 ms": _verdict(p99[2000] <= 15 if 2000 in p99 else None),
        "p99 at 20000/s <= 30 ms": _verdict(p99[20_000] <= 30 if 20_000 in p99 else None),
        "rss growth checkpoint->end <= 10 %": _verdict(
            memory.growth <= 0.10 if memory is not None else None
        ),
    }


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "met" if ok else "NOT met"


def table(results: Results) -> str:
    lines = [
        "| run | batch | events | events/s | x ceiling | x naive | CPU s / 1k | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in results.throughput:
        ceiling = results.ratios.get(f"{run.name}/ceiling")
        naive = results.ratios.get(f"{run.name}/naive")
        lines.append(
            f"| {run.name} | {run.batch_size} | {run.events:,} | {run.events_per_s:,.0f} | "
            f"{'' if ceiling is None else f'{ceiling:.2f}'} | "
            f"{'' if naive is None else f'{naive:,.0f}'} | {run.cpu_s_per_1000:.3f} | "
            f"{run.peak_rss_mb:,.0f} |"
        )
    if results.latency:
        lines += [
            "",
            "| offered events/s | events | p50 ms | p95 ms | p99 ms | max ms | BATCH_MAX_WAIT_MS |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {lat.offered_per_s:,} | {lat.measured:,} | {lat.p50_ms:.1f} | {lat.p95_ms:.1f} | "
            f"{lat.p99_ms:.1f} | {lat.max_ms:.1f} | {lat.batch_max_wait_ms} |"
            for lat in results.latency
        ]
    if results.memory is not None:
        m = results.memory
        lines += [
            "",
            f"Memory: RSS {m.rss_at_checkpoint_mb:,.0f} MB after {m.checkpoint:,} events, "
            f"{m.rss_at_end_mb:,.0f} MB after {m.events:,} ({m.growth:+.1%}); "
            f"peak {m.peak_rss_mb:,.0f} MB; {m.events_per_s:,.0f} events/s.",
        ]
    if results.adversarial_decode:
        lines += ["", "Adversarial decode (in process, CPU per message):"]
        lines += [adversarial.table(results.adversarial_decode)]
    for key, ratio in results.ratios.items():
        if key.startswith("shadow-"):
            lines += ["", f"With a shadow of the other variant: {key} = {ratio:.2f}"]
    lines += ["", "Targets: " + "; ".join(f"{k}: {v}" for k, v in results.targets.items())]
    return "\n".join(lines)


def write_json(results: Results, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = results.started_at.replace(":", "").replace("-", "")
    path = out / f"bench-{stamp}.json"
    path.write_bytes(orjson.dumps(asdict(results), option=orjson.OPT_INDENT_2))
    return path


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
        choices=["also", "no", "only"],
        default="also",
        help="the run with SHADOW_MODEL_URI = the build's other variant, at the largest batch "
        "size: also (default), no, or only (that run and the same run without a shadow)",
    )
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

    if opts.shadow == "only":
        shadow_comparison(opts, topics, input_topic, results)
        results.seconds_total = round(time.monotonic() - started, 1)
        return results
    results.throughput.append(
        throughput_run(
            opts, topics, input_topic, "ceiling", "benchmarks.passthrough", 1000, opts.events
        )
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
    results.throughput.append(
        throughput_run(
            opts,
            topics,
            input_topic,
            "consumer-exactly-once-1000",
            "consumer",
            1000,
            opts.events,
            PROCESSING_GUARANTEE="exactly_once",
        )
    )
    if opts.shadow == "also":
        shadow_comparison(opts, topics, input_topic, results, baseline_done=True)
    for rate in opts.rates:
        results.latency.append(latency_run(opts, topics, payloads, rate))
    if opts.memory_events:
        results.memory = memory_run(opts, topics, payloads)
    logger.info("adversarial decode: CPU per message of hostile input, in process")
    results.adversarial_decode = adversarial.measure(opts.model_uri, repeat=3 if opts.quick else 5)
    summarise(results)
    results.seconds_total = round(time.monotonic() - started, 1)
    return results


def shadow_comparison(
    opts: Options, topics: Topics, input_topic: str, results: Results, baseline_done: bool = False
) -> None:
    """The consumer at the largest batch size with a shadow of the build's other variant."""
    batch = max(opts.batch_sizes)
    primary = opts.model_uri.rsplit("/", 1)
    other = "no_page_values" if primary[1] == "best_model_full.joblib" else "full"
    shadow_uri = f"{primary[0]}/best_model_{other}.joblib"
    baseline = f"consumer-{batch}"
    if not baseline_done:
        results.throughput.append(
            throughput_run(opts, topics, input_topic, baseline, "consumer", batch, opts.events)
        )
    run = throughput_run(
        opts,
        topics,
        input_topic,
        f"shadow-{batch}",
        "consumer",
        batch,
        opts.events,
        SHADOW_MODEL_URI=shadow_uri,
    )
    run.notes = (run.notes + f" shadow={other}").strip()
    results.throughput.append(run)
    by_name = {r.name: r for r in results.throughput}
    results.ratios[f"shadow-{batch}/{baseline}"] = round(
        run.events_per_s / by_name[baseline].events_per_s, 3
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    opts, args = parse_args(argv)
    if not opts.model_uri:
        opts.model_uri = find_or_train_model(args.registry, args.data)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
