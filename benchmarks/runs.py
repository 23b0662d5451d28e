"""The benchmark's runs: each starts a process under test against the broker and measures it."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from benchmarks.measure import REPO, BenchmarkError, ServiceProcess, Watermarks, peak_rss_bytes
from benchmarks.replay import Record, read_topic
from benchmarks.results import (
    FLOOR_PREFIX,
    MB,
    PARTITIONS,
    PASSTHROUGH,
    Latency,
    Memory,
    Options,
    Results,
    Throughput,
)
from benchmarks.workload import Payload, offer_steadily, prefill

logger = logging.getLogger("benchmarks")


def find_or_train_model(registry: Path, data: Path) -> str:
    """The full model of the newest build in `registry` trained on `data` (on generated sessions
    when there is no `data`), passing over the challengers ``make cycle`` trains on collected
    sessions; train one (``--n-iter 2``) if there is none."""
    from contract.manifest import artifact_name, sha256_file
    from training.registry import builds_of_data

    source = data
    if not data.is_file():
        from training.synthetic import generate_sessions

        logger.warning(
            "no dataset at %s: the benchmark's build is trained on generated sessions", data
        )
        source = registry.parent / "bench-synthetic.csv"
        if not source.is_file():
            registry.mkdir(parents=True, exist_ok=True)
            generate_sessions(12_000, seed=7).to_csv(source, index=False)
    digest = sha256_file(source)
    builds = builds_of_data(registry, "full", digest)
    if not builds:
        logger.info(
            "no build of %s in %s: training one (python -m training --n-iter 2)", source, registry
        )
        command = [sys.executable, "-m", "training", "--data", str(source), "--out", str(registry)]
        subprocess.run([*command, "--n-iter", "2"], check=True, cwd=REPO)
        builds = builds_of_data(registry, "full", digest)
    return (builds[-1] / artifact_name("full")).resolve().as_uri()


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


def latency_run(
    opts: Options,
    topics: Topics,
    payloads: Sequence[Payload],
    rate: int,
    name: str | None = None,
    module: str = "consumer",
    seconds: float | None = None,
    settings: Mapping[str, str] | None = None,
) -> Latency:
    """p50/p95/p99 end to end at ``rate`` offered events/s through ``module`` (the consumer,
    or ``benchmarks.passthrough`` for the floor), for ``seconds`` (default: the options');
    ``settings``: extra variables."""
    name = name or f"latency-{rate}"
    input_topic = topics.create(f"{name}-in")
    wait = opts.latency_batch_wait_ms  # None: the consumer's defaults, as shipped
    extra = {} if wait is None else {"BATCH_MAX_WAIT_MS": str(wait)}
    env = settings_env(opts, topics, input_topic, name, 1000, **extra, **(settings or {}))
    # The broker stamps each output when it appends it: the acknowledgement time, per record.
    output = env["OUTPUT_TOPIC"] = topics.create(
        f"{name}-out-append", config={"message.timestamp.type": "LogAppendTime"}
    )
    process = ServiceProcess(module, env, opts.work / f"{name}.log").start()
    outputs = Watermarks(topics.bootstrap, output, PARTITIONS)
    try:
        process.wait_consuming()
        duration_s = seconds or opts.latency_seconds
        sent = offer_steadily(topics.bootstrap, input_topic, payloads, rate, duration_s)
        process.wait_outputs(outputs, sent, timeout_s=120)
    finally:
        outputs.close()
        process.stop()
    inputs = read_topic(topics.bootstrap, input_topic, sent, idle_s=0.5)
    outputs_read = read_topic(topics.bootstrap, output, sent, idle_s=0.5)
    latencies = per_record_latencies(inputs, outputs_read, 1000 if duration_s > 3 else 0)
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
        name=name,
    )
    logger.info("%s", result)
    return result


def latency_pairs(
    opts: Options, topics: Topics, payloads: Sequence[Payload], results: Results
) -> None:
    """At each offered rate, the passthrough (the floor) and then the consumer, back to back.

    First an unmeasured warm-up: a fresh broker on this machine took seconds to keep up with
    the first paced load it ever got (its JIT warming up: p50 0.8-6 s at 2,000 events/s in the
    first run of a process, 8-14 ms in the next, for the passthrough as for the consumer), and
    that first run used to be the consumer's at 2,000/s."""
    if not opts.rates:
        return
    logger.info("latency warm-up (not measured): the passthrough at %d/s", opts.rates[0])
    latency_run(
        opts,
        topics,
        payloads,
        opts.rates[0],
        "latency-warm-up",
        PASSTHROUGH,
        min(6.0, opts.latency_seconds),
    )
    for rate in opts.rates:
        results.latency.append(
            latency_run(opts, topics, payloads, rate, f"{FLOOR_PREFIX}{rate}", PASSTHROUGH)
        )
        results.latency.append(latency_run(opts, topics, payloads, rate))


def per_record_latencies(
    inputs: Sequence[Record], outputs: Sequence[Record], warm_up_ms: int
) -> list[int]:
    """Output append time minus input create time, per record, after the first `warm_up_ms`.

    An output is matched to its input by key and order: the n-th output with a key is the
    n-th input with it (one key is one input partition, read in order, and one output
    partition, written in order by the idempotent producer). That holds for the consumer and
    for the passthrough, whose outputs are the input bytes and carry no source position.
    """
    produced: dict[bytes | None, deque[int]] = defaultdict(deque)
    for record in sorted(inputs, key=lambda r: (r.partition, r.offset)):
        produced[record.key].append(record.timestamp_ms)
    first = min(r.timestamp_ms for r in inputs)
    latencies = []
    for record in sorted(outputs, key=lambda r: (r.partition, r.offset)):
        start = produced[record.key].popleft()
        if start - first >= warm_up_ms:  # the first second warms caches and the group up
            latencies.append(record.timestamp_ms - start)
    return latencies


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
