"""The main job, end to end on this machine: ``make demo``.

Starts a local Kafka broker, trains a build when none exists, starts the scoring consumer,
replays the dataset's rows as session events (plus a few malformed messages) at a steady rate,
and prints a summary. Everything it started is stopped at the end unless ``--keep-running``.

``--s3`` runs the whole job through a local S3 server (``deploy/local/s3.sh``): the dataset is
uploaded to a bucket, training reads it from there and writes its build there, and the consumer
fetches the build by an ``s3://`` MODEL_URI. The server's data is kept for the next run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from demo_builds import S3_NAME, S3_SH, find_or_train, through_object_store  # beside it
from demo_messages import concept_drift_messages, dataset_messages, drifted_messages, paced
from demo_quality import (
    OUTCOME_WINDOW,
    create_outcome_topic,
    print_figures,
    send_outcomes,
    start_monitor,
    wait_judged,
)
from report import MetricsRecorder, draw_report  # deploy/local/report.py, beside this script
from tqdm import tqdm

from benchmarks.replay import free_port, produce_messages, read_topic  # root on PYTHONPATH
from contract.pipeline import VARIANTS

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"
BROKER_NAME = "demo"
WARM_UP_MS = 1000
REPORT_PNG = REPO / "build" / "demo" / "report.png"
DRIFT_WINDOW_EVENTS = 10_000
"""The consumer's DRIFT_WINDOW_EVENTS (its default): a segment this long fills the window."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with running(args, consumer_port=9400 if args.keep_running else 0) as demo:
        recorder = MetricsRecorder(demo.metrics_url).start()
        purchases: dict[str, bool] = {}
        summary = replay_and_measure(demo.bootstrap, demo.topics, args, purchases)
        summary["report"] = draw_report(recorder.stop(), REPORT_PNG)
        summary["metrics"] = demo.metrics_url
        print_summary(summary)
        # The order system: each scored session's real outcome (Revenue), a little later.
        scored_ids = [str(session_id) for session_id in summary["scored_ids"]]  # type: ignore[attr-defined]
        judged = send_outcomes(demo.bootstrap, demo.topics["outcomes"], purchases, scored_ids)
        print(f"==> the order system sent {judged:,} outcomes (the dataset's Revenue)")
        print_figures("the replay", wait_judged(demo.quality_url, judged))
        judged += replay_concept_drift(
            demo.bootstrap, demo.topics, args, demo.metrics_url, demo.quality_url, judged
        )
        replay_drift(demo.bootstrap, demo.topics, args, demo.metrics_url, demo.quality_url, judged)
        if args.keep_running:
            print(f"\nKept running: {demo.metrics_url}/metrics — press Ctrl-C to stop everything.")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0


@dataclass
class Services:
    """What a demo runs on: the broker, the build, its topics, the consumer and the quality
    monitor; what `running` started is stopped on leaving it."""

    bootstrap: str = ""
    started_broker: bool = False
    model_uri: str = ""
    registry: str = ""
    """Where the build's <build_id>/manifest.json is: a directory or an s3:// prefix."""
    store_env: dict[str, str] = field(default_factory=dict)
    """The local S3 server's client settings (--s3); empty without it."""
    topics: dict[str, str] = field(default_factory=dict)
    consumer: subprocess.Popen[bytes] | None = None
    metrics_url: str = ""
    monitor: subprocess.Popen[bytes] | None = None
    quality_url: str = ""


@contextlib.contextmanager
def running(
    args: argparse.Namespace, consumer_port: int = 0, outcome_window: str = OUTCOME_WINDOW
) -> Iterator[Services]:
    """A broker (KAFKA_BOOTSTRAP_SERVERS, else a local one), the build (`find_or_train`, or
    `through_object_store` with --s3), new topics, the consumer serving the build and the quality
    monitor beside it, both ready. Everything started here is stopped on leaving."""
    demo = Services()
    try:
        demo.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        if not demo.bootstrap:
            print("==> starting a local Kafka broker (first run resolves its jars from Maven)")
            demo.bootstrap = start_broker()
            demo.started_broker = True
        print(f"    broker at {demo.bootstrap}")
        if args.s3:
            demo.model_uri, demo.store_env = through_object_store(args)
            demo.registry = demo.model_uri.rsplit("/", 2)[0]
        else:
            artifact = find_or_train(args.registry, args.data, args.n_iter, args.variant)
            demo.model_uri = artifact.resolve().as_uri()
            demo.registry = str(args.registry.resolve())
        print(f"==> model {demo.model_uri}")
        demo.topics = create_topics(demo.bootstrap, args.partitions)
        demo.consumer, demo.metrics_url = start_consumer(
            demo.bootstrap, demo.topics, demo.model_uri, demo.store_env, consumer_port
        )
        wait_ready(demo.consumer, demo.metrics_url)
        demo.monitor, demo.quality_url = start_monitor(
            demo.bootstrap,
            demo.topics["output"],
            demo.topics["outcomes"],
            demo.registry,
            demo.store_env,
            outcome_window,
        )
        wait_ready(demo.monitor, demo.quality_url, "the quality monitor")
        yield demo
    finally:
        stop(demo)


def stop(demo: Services) -> None:
    """Stop the monitor, the consumer, and the broker and S3 server when the demo started them."""
    if demo.monitor is not None and demo.monitor.poll() is None:
        demo.monitor.send_signal(signal.SIGTERM)
        print(f"==> quality monitor stopped (exit {demo.monitor.wait(60)})")
    if demo.consumer is not None and demo.consumer.poll() is None:
        demo.consumer.send_signal(signal.SIGTERM)
        print(f"==> consumer stopped (exit {demo.consumer.wait(60)})")
    if demo.started_broker:
        subprocess.run([str(KAFKA_SH), "stop", "--name", BROKER_NAME], check=False)
        print("==> broker stopped")
    if demo.store_env:
        subprocess.run([str(S3_SH), "stop", "--name", S3_NAME, "--keep-data"], check=False)
        print("==> S3 server stopped (its data kept for the next run)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_options(parser, rate=2000)
    parser.add_argument("--malformed", type=int, default=8, help="bad messages mixed in")
    parser.add_argument("--keep-running", action="store_true", help="leave it up for /metrics")
    return parser.parse_args(argv)


def add_common_options(parser: argparse.ArgumentParser, rate: float) -> None:
    """The options `running` reads (the data, the registry, the build, the topics, --s3) and the
    replay's rate, shared by the demos."""
    parser.add_argument(
        "--data", default=str(REPO.parent / "shared/data/online_shoppers_intention.csv")
    )
    parser.add_argument("--registry", type=Path, default=REPO / "registry")
    parser.add_argument("--variant", default="full", choices=VARIANTS)
    parser.add_argument("--n-iter", type=int, default=4, help="search budget when training")
    parser.add_argument("--rate", type=float, default=rate, help="events per second replayed")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--s3", action="store_true", help="data, builds and the model through a local S3 server"
    )


def start_broker() -> str:
    result = subprocess.run(
        [str(KAFKA_SH), "start", "--name", BROKER_NAME], check=True, capture_output=True, text=True
    )
    return result.stdout.strip().splitlines()[-1]


def create_topics(bootstrap: str, partitions: int) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    topics = {
        "input": f"demo-sessions-{run}",
        "output": f"demo-scores-{run}",
        "dlq": f"demo-dlq-{run}",
        "outcomes": f"demo-outcomes-{run}",
    }
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [
            NewTopic(topics["input"], partitions, 1),
            NewTopic(topics["output"], partitions, 1),
            NewTopic(topics["dlq"], 1, 1),
        ]
    )
    for future in futures.values():
        future.result(30)
    create_outcome_topic(bootstrap, topics["outcomes"], partitions)
    return topics


def consumer_settings(bootstrap: str, topics: dict[str, str], model_uri: str) -> dict[str, str]:
    """The demo consumer's own settings: its build, broker, topics and group."""
    return {
        "MODEL_URI": model_uri,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INPUT_TOPIC": topics["input"],
        "OUTPUT_TOPIC": topics["output"],
        "DLQ_TOPIC": topics["dlq"],
        "CONSUMER_GROUP": f"demo-{topics['input']}",
    }


def start_consumer(
    bootstrap: str,
    topics: dict[str, str],
    model_uri: str,
    store_env: dict[str, str],
    port: int = 0,
) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m consumer` on the build; `/metrics` on `port` (0: a free one)."""
    port = free_port() if port == 0 else port
    env = {
        **os.environ,
        **store_env,
        **consumer_settings(bootstrap, topics, model_uri),
        "METRICS_PORT": str(port),
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
    }
    print("==> starting the consumer")
    process = subprocess.Popen([sys.executable, "-m", "consumer"], env=env, cwd=REPO)
    return process, f"http://127.0.0.1:{port}"


def wait_ready(
    consumer: subprocess.Popen[bytes], metrics_url: str, name: str = "the consumer"
) -> None:
    """Wait for a service's /readyz (the consumer's, the quality monitor's)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if consumer.poll() is not None:
            raise SystemExit(f"{name} exited with status {consumer.returncode}")
        try:
            with urllib.request.urlopen(metrics_url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{name} did not become ready within 120 s")


def replay_and_measure(
    bootstrap: str,
    topics: dict[str, str],
    args: argparse.Namespace,
    purchases: dict[str, bool] | None = None,
) -> dict[str, object]:
    messages = dataset_messages(args.data, args.malformed, purchases=purchases)
    print(f"==> replaying {len(messages)} messages at {args.rate:.0f}/s into {topics['input']}")
    started = time.monotonic()
    with tqdm(total=len(messages), unit="ev", desc="replay") as bar:
        produced = produce_messages(
            bootstrap,
            topics["input"],
            paced(messages, args.rate),
            on_progress=lambda n: _advance(bar, n),
        )
    replay_seconds = time.monotonic() - started
    inputs = read_topic(bootstrap, topics["input"], produced, idle_s=0.5)
    scored = read_topic(bootstrap, topics["output"], produced - args.malformed, timeout_s=120)
    dead = read_topic(bootstrap, topics["dlq"], args.malformed, timeout_s=30, idle_s=0.5)
    input_ts = {(r.partition, r.offset): r.timestamp_ms for r in inputs}
    # The first second warms the consumer up (first fetches, first numpy calls): left out, as
    # the benchmark does; the report picture shows it.
    warm = min(input_ts.values(), default=0) + WARM_UP_MS
    started_at = [
        input_ts[(r.json()["source"]["partition"], r.json()["source"]["offset"])] for r in scored
    ]
    latencies = np.array(
        [r.timestamp_ms - t for r, t in zip(scored, started_at, strict=True) if t >= warm]
    )
    out_ts = np.array([r.timestamp_ms for r in scored])
    span_s = max(1e-3, (out_ts.max() - min(input_ts.values())) / 1000) if len(out_ts) else 0
    return {
        "events_in": produced,
        "scored": len(scored),
        "dead_lettered": len(dead),
        "unaccounted": produced - len(scored) - len(dead),
        "replay_rate": produced / replay_seconds,
        "throughput": len(scored) / span_s if span_s else 0.0,
        "latency_p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else None,
        "latency_p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else None,
        "dead_letter_reasons": sorted({r.headers.get("error.type", b"").decode() for r in dead}),
        "examples": [r.json() for r in scored[:3]],
        "positives": sum(1 for r in scored if r.json()["label"]),
        "scored_ids": [str(r.json()["session_id"]) for r in scored],
    }


def _advance(bar: tqdm[Any], n: int) -> None:
    bar.update(n)


def print_summary(summary: dict[str, object]) -> None:
    print("\n================ summary ================")
    print(f"events in           {summary['events_in']:>10,}")
    print(f"scored              {summary['scored']:>10,}")
    print(f"  labelled purchase {summary['positives']:>10,}")
    print(f"dead-lettered       {summary['dead_lettered']:>10,}  {summary['dead_letter_reasons']}")
    print(f"unaccounted         {summary['unaccounted']:>10,}")
    print(f"replay rate         {summary['replay_rate']:>10,.0f} events/s offered")
    print(f"throughput          {summary['throughput']:>10,.0f} events/s scored")
    p50, p99 = summary["latency_p50_ms"], summary["latency_p99_ms"]
    if isinstance(p50, float) and isinstance(p99, float):
        print(
            f"end-to-end latency  p50 {p50:.1f} ms   p99 {p99:.1f} ms   "
            "(input record time -> output record time, after the first second)"
        )
    else:
        print("end-to-end latency  none measured: nothing was scored")
    if summary.get("report"):
        print(f"report picture      {summary['report']}")
    print("a few output records:")
    for example in summary["examples"]:  # type: ignore[attr-defined]
        print("  " + json.dumps(example))
    if summary["unaccounted"]:
        raise SystemExit(f"{summary['unaccounted']} events are unaccounted for")


def drift(metrics_url: str) -> tuple[float, dict[str, float], float]:
    """The consumer's scored count, PSI per feature and prediction PSI, from its /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(metrics_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    psi, prediction, scored = {}, float("nan"), 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "scorer_feature_drift_psi":
                psi[sample.labels["feature"]] = sample.value
            elif sample.name == "scorer_prediction_drift_psi":
                prediction = sample.value
            elif sample.name == "scorer_messages_total":
                scored += sample.value if sample.labels["outcome"] == "scored" else 0.0
    return scored, psi, prediction


def wait_scored(metrics_url: str, count: float) -> tuple[float, dict[str, float], float]:
    deadline = time.monotonic() + 120
    scored, psi, prediction = drift(metrics_url)
    while scored < count and time.monotonic() < deadline:
        time.sleep(0.5)
        scored, psi, prediction = drift(metrics_url)
    return scored, psi, prediction


def replay_concept_drift(
    bootstrap: str,
    topics: dict[str, str],
    args: argparse.Namespace,
    metrics_url: str,
    quality_url: str,
    judged: int,
) -> int:
    """Replay dataset rows unchanged whose outcomes no longer follow the model: the drift
    sentinel stays quiet, the quality monitor does not. Returns the sessions judged."""
    purchases: dict[str, bool] = {}
    # As many as the drift sentinel's window (10,000): it then sees this segment alone.
    messages = concept_drift_messages(args.data, DRIFT_WINDOW_EVENTS, purchases)
    scored_before, _, _ = drift(metrics_url)
    print(
        f"\n==> concept drift: replaying {len(messages):,} dataset rows unchanged, whose purchases "
        "no longer follow the model (the real ones, shuffled among the sessions)"
    )
    produce_messages(bootstrap, topics["input"], paced(messages, args.rate))
    _, psi, prediction = wait_scored(metrics_url, scored_before + len(messages))
    sent = send_outcomes(bootstrap, topics["outcomes"], purchases, purchases)
    found = wait_judged(quality_url, judged + sent)
    worst = max(psi, key=lambda name: psi[name]) if psi else "none"
    print(
        f"drift sentinel      worst feature {worst} PSI {psi.get(worst, float('nan')):.3f}, "
        f"prediction PSI {prediction:.3f} over the segment (< 0.1 stable, > 0.25 major): the "
        "inputs did not move"
    )
    print_figures("the concept-drift segment (inputs unchanged)", found)
    return sent


def replay_drift(
    bootstrap: str,
    topics: dict[str, str],
    args: argparse.Namespace,
    metrics_url: str,
    quality_url: str,
    judged: int,
) -> None:
    """Print the drift sentinel's reading of the replay, then replay a window of the dataset
    with PageValues zeroed (a tracking bug) and print the PSI rise and the live quality."""
    scored_before, before, prediction_before = drift(metrics_url)
    if not before:
        print("drift               the sentinel is off (DRIFT_ENABLED, or a build without profile)")
        return
    worst = max(before, key=lambda name: before[name])
    print(
        f"drift               worst feature {worst} PSI {before[worst]:.3f}, prediction PSI "
        f"{prediction_before:.3f}  (last 10,000 events vs training, < 0.1 is stable; the file"
        " is in month order, so its last rows are a season the window sees alone)"
    )
    purchases: dict[str, bool] = {}
    messages = drifted_messages(args.data, 10_000, purchases)
    print(f"==> replaying {len(messages)} events with PageValues = 0 (a tracking bug)")
    produce_messages(bootstrap, topics["input"], paced(messages, args.rate))
    _, after, prediction_after = wait_scored(metrics_url, scored_before + len(messages))
    print(
        f"drift               PageValues PSI {before['PageValues']:.3f} -> "
        f"{after['PageValues']:.3f}, prediction PSI {prediction_before:.3f} -> "
        f"{prediction_after:.3f}, worst other feature "
        f"{max(v for k, v in after.items() if k != 'PageValues'):.3f}  (> 0.25: major shift)"
    )
    sent = send_outcomes(bootstrap, topics["outcomes"], purchases, purchases)
    print_figures(
        "the tracking-bug segment (PageValues = 0)", wait_judged(quality_url, judged + sent)
    )


if __name__ == "__main__":
    sys.exit(main())
