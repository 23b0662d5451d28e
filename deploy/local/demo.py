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
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from report import MetricsRecorder, draw_report  # deploy/local/report.py, beside this script
from tqdm import tqdm

from consumer.replay import KeyValue, free_port, produce_messages, read_topic
from contract.__main__ import schema_text
from contract.frame import dataset_row_to_event_dict
from contract.manifest import MANIFEST_NAME, artifact_name
from contract.pipeline import VARIANTS
from contract.schema import LABEL_COLUMN

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"
S3_SH = REPO / "deploy" / "local" / "s3.sh"
BROKER_NAME = "demo"
REPORT_PNG = REPO / "build" / "demo" / "report.png"
S3_NAME, S3_BUCKET = "demo", "shopper-intent"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_broker = False
    consumer: subprocess.Popen[bytes] | None = None
    store_env: dict[str, str] = {}
    try:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            print("==> starting a local Kafka broker (first run resolves its jars from Maven)")
            bootstrap = start_broker()
            started_broker = True
        print(f"    broker at {bootstrap}")
        if args.s3:
            model_uri, store_env = through_object_store(args)
        else:
            artifact = find_or_train(args.registry, args.data, args.n_iter, args.variant)
            model_uri = artifact.resolve().as_uri()
        print(f"==> model {model_uri}")
        topics = create_topics(bootstrap, args.partitions)
        consumer, metrics_url = start_consumer(bootstrap, topics, model_uri, store_env, args)
        wait_ready(consumer, metrics_url)
        recorder = MetricsRecorder(metrics_url).start()
        summary = replay_and_measure(bootstrap, topics, args)
        summary["report"] = draw_report(recorder.stop(), REPORT_PNG)
        summary["metrics"] = metrics_url
        print_summary(summary)
        replay_drift(bootstrap, topics, args, metrics_url)
        if args.keep_running:
            print(f"\nKept running: {metrics_url}/metrics — press Ctrl-C to stop everything.")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    finally:
        if consumer is not None and consumer.poll() is None:
            consumer.send_signal(signal.SIGTERM)
            code = consumer.wait(60)
            print(f"==> consumer stopped (exit {code})")
        if started_broker:
            subprocess.run([str(KAFKA_SH), "stop", "--name", BROKER_NAME], check=False)
            print("==> broker stopped")
        if store_env:
            subprocess.run([str(S3_SH), "stop", "--name", S3_NAME, "--keep-data"], check=False)
            print("==> S3 server stopped (its data kept for the next run)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data", default=str(REPO.parent / "shared/data/online_shoppers_intention.csv")
    )
    parser.add_argument("--registry", type=Path, default=REPO / "registry")
    parser.add_argument("--variant", default="full", choices=VARIANTS)
    parser.add_argument("--n-iter", type=int, default=4, help="search budget when training")
    parser.add_argument("--rate", type=float, default=2000, help="events per second replayed")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--malformed", type=int, default=8, help="bad messages mixed in")
    parser.add_argument("--keep-running", action="store_true", help="leave it up for /metrics")
    parser.add_argument(
        "--s3", action="store_true", help="data, builds and the model through a local S3 server"
    )
    return parser.parse_args(argv)


def start_broker() -> str:
    result = subprocess.run(
        [str(KAFKA_SH), "start", "--name", BROKER_NAME], check=True, capture_output=True, text=True
    )
    return result.stdout.strip().splitlines()[-1]


def builds_with(registry: Path, variant: str) -> list[Path]:
    """Complete builds (a manifest written) that hold `variant`'s artifact, oldest first."""
    manifests = sorted(registry.glob(f"*/{MANIFEST_NAME}")) if registry.is_dir() else []
    return [m.parent for m in manifests if (m.parent / artifact_name(variant)).is_file()]


def find_or_train(registry: Path, data: str, n_iter: int, variant: str) -> Path:
    """The newest complete build with the variant; train one (small budget) when there is none."""
    builds = builds_with(registry, variant)
    if builds:
        return builds[-1] / artifact_name(variant)
    print(f"==> no build in {registry}: training one (--n-iter {n_iter}); this takes a few minutes")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "--data",
            data,
            "--out",
            str(registry),
            "--n-iter",
            str(n_iter),
        ],
        check=True,
    )
    return builds_with(registry, variant)[-1] / artifact_name(variant)


def through_object_store(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """Start the local S3 server, put the dataset in its bucket, and train into the bucket when
    it holds no build yet; return the s3:// MODEL_URI and the client settings to serve it."""
    from contract.storage import S3Options, Store
    from training.registry import list_builds

    print("==> starting a local S3 server (first run resolves S3Proxy from Maven)")
    result = subprocess.run(
        [str(S3_SH), "start", "--name", S3_NAME, "--bucket", S3_BUCKET],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = result.stdout.strip().splitlines()
    env = dict(line.split("=", 1) for line in lines[:-1] if line.startswith("AWS_"))
    env["AWS_ENDPOINT_URL_S3"] = lines[-1]
    print(f"    S3 endpoint {lines[-1]}, bucket {S3_BUCKET}")
    store = Store(S3Options.from_environ(env))
    data_uri = f"s3://{S3_BUCKET}/data/{Path(args.data).name}"
    if not store.exists(data_uri):
        store.put_file(Path(args.data), data_uri)
    registry = f"s3://{S3_BUCKET}/registry"
    name = f"best_model_{args.variant}.joblib"
    builds, _ = list_builds(registry, store)
    if not builds:
        print(f"==> no build in {registry}: training one from {data_uri} (--n-iter {args.n_iter})")
        command = [sys.executable, "-m", "training", "--data", data_uri, "--out", registry]
        subprocess.run(
            [*command, "--n-iter", str(args.n_iter)], check=True, env={**os.environ, **env}
        )
        builds, _ = list_builds(registry, store)
    newest = max(builds, key=lambda build: build.build_id)
    return next(a.model_uri for a in newest.artifacts if a.name == name), env


def create_topics(bootstrap: str, partitions: int) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    topics = {
        "input": f"demo-sessions-{run}",
        "output": f"demo-scores-{run}",
        "dlq": f"demo-dlq-{run}",
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
    return topics


def start_consumer(
    bootstrap: str,
    topics: dict[str, str],
    model_uri: str,
    store_env: dict[str, str],
    args: argparse.Namespace,
) -> tuple[subprocess.Popen[bytes], str]:
    port = 9400 if args.keep_running else 0
    port = free_port() if port == 0 else port
    env = {
        **os.environ,
        **store_env,
        "MODEL_URI": model_uri,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INPUT_TOPIC": topics["input"],
        "OUTPUT_TOPIC": topics["output"],
        "DLQ_TOPIC": topics["dlq"],
        "CONSUMER_GROUP": f"demo-{topics['input']}",
        "METRICS_PORT": str(port),
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
    }
    print("==> starting the consumer")
    process = subprocess.Popen([sys.executable, "-m", "consumer"], env=env, cwd=REPO)
    return process, f"http://127.0.0.1:{port}"


def wait_ready(consumer: subprocess.Popen[bytes], metrics_url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if consumer.poll() is not None:
            raise SystemExit(f"the consumer exited with status {consumer.returncode}")
        try:
            with urllib.request.urlopen(metrics_url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit("the consumer did not become ready within 120 s")


def malformed_messages(count: int, good: dict[str, object]) -> list[KeyValue]:
    kinds: list[bytes] = [
        b"{not json at all",
        json.dumps({**good, "Revenue": True}).encode(),
        json.dumps({**good, "BounceRates": 7.0}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "Month"}).encode(),
        json.dumps({**good, "ProductRelated": "lots"}).encode(),
        b"\xff\xfe binary",
        json.dumps({**good, "Month": "Smarch"}).encode(),
        json.dumps({**good, "session_id": ""}).encode(),
    ]
    return [(f"malformed-{i}".encode(), kinds[i % len(kinds)]) for i in range(count)]


def dataset_messages(data: str, malformed: int, framed_every: int = 10) -> list[KeyValue]:
    """The dataset's rows as a pandas producer sends them, every `framed_every`-th one framed.

    `frame.to_json` writes the count columns as floats (`3.0`: pandas reads them as float64
    because 14 rows are empty) and empty cells as null. Every `framed_every`-th row goes
    through confluent-kafka's `JSONSerializer` (a `mock://` registry: no registry server here),
    which validates it against the published schema and adds the Schema Registry header.
    """
    frame = pd.read_csv(data).drop(columns=[LABEL_COLUMN])
    frame.insert(0, "session_id", [f"demo-{uuid.uuid4().hex[:12]}" for _ in range(len(frame))])
    frame["event_time"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    rows = [json.loads(line) for line in frame.to_json(orient="records", lines=True).splitlines()]
    registry = SchemaRegistryClient.new_client({"url": "mock://demo"})
    serializer = JSONSerializer(schema_text(), registry)
    context = SerializationContext("sessions", MessageField.VALUE)
    messages: list[KeyValue] = [
        (
            str(row["session_id"]).encode(),
            serializer(row, context) if i % framed_every == 0 else json.dumps(row).encode(),
        )
        for i, row in enumerate(rows)
    ]
    step = max(1, len(messages) // max(1, malformed))
    for i, bad in enumerate(malformed_messages(malformed, rows[0])):
        messages.insert(min(len(messages), (i + 1) * step), bad)
    return messages


def paced(messages: list[KeyValue], rate: float) -> Iterator[KeyValue]:
    start = time.monotonic()
    for index, message in enumerate(messages):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield message


def replay_and_measure(
    bootstrap: str, topics: dict[str, str], args: argparse.Namespace
) -> dict[str, object]:
    messages = dataset_messages(args.data, args.malformed)
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
    latencies = np.array(
        [
            r.timestamp_ms
            - input_ts[(r.json()["source"]["partition"], r.json()["source"]["offset"])]
            for r in scored
        ]
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
            "(input record time -> output record time)"
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


def replay_drift(
    bootstrap: str, topics: dict[str, str], args: argparse.Namespace, metrics_url: str
) -> None:
    """Print the drift sentinel's reading of the replay, then replay a window of the dataset
    with PageValues zeroed (a tracking bug) and print the PSI rise."""
    from prometheus_client.parser import text_string_to_metric_families

    def drift() -> tuple[float, dict[str, float], float]:
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

    scored_before, before, prediction_before = drift()
    if not before:
        print("drift               the sentinel is off (DRIFT_ENABLED, or a build without profile)")
        return
    worst = max(before, key=lambda name: before[name])
    print(
        f"drift               worst feature {worst} PSI {before[worst]:.3f}, prediction PSI "
        f"{prediction_before:.3f}  (last 10,000 events vs training, < 0.1 is stable; the file"
        " is in month order, so its last rows are a season the window sees alone)"
    )
    # A random 10,000 rows (the file is in month order), PageValues zeroed: nothing else moves.
    frame = pd.read_csv(args.data)
    rows = (
        frame.sample(n=min(10_000, len(frame)), random_state=0)
        .assign(PageValues=0.0)
        .to_dict(orient="records")
    )
    drifted = [
        dataset_row_to_event_dict(row, session_id=f"drift-{i}") for i, row in enumerate(rows)
    ]
    messages: list[KeyValue] = [
        (str(e["session_id"]).encode(), json.dumps(e).encode()) for e in drifted
    ]
    print(f"==> replaying {len(messages)} events with PageValues = 0 (a tracking bug)")
    produce_messages(bootstrap, topics["input"], paced(messages, args.rate))
    deadline = time.monotonic() + 120
    scored, after, prediction_after = drift()
    while scored < scored_before + len(messages) and time.monotonic() < deadline:
        time.sleep(0.5)
        scored, after, prediction_after = drift()
    print(
        f"drift               PageValues PSI {before['PageValues']:.3f} -> "
        f"{after['PageValues']:.3f}, prediction PSI {prediction_before:.3f} -> "
        f"{prediction_after:.3f}, worst other feature "
        f"{max(v for k, v in after.items() if k != 'PageValues'):.3f}  (> 0.25: major shift)"
    )


if __name__ == "__main__":
    sys.exit(main())
