"""A tiny run of the benchmark harness against the session broker: it runs and writes its JSON.

No timing is asserted; only that every stage ran, accounted for every event and reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_benchmark_smoke_run_writes_its_results(
    kafka_bootstrap: str, model_build: Path, tmp_path: Path
) -> None:
    build = model_build
    out = tmp_path / "results"
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "--quick",
        "--events",
        "400",
        "--bootstrap",
        kafka_bootstrap,
        "--model-uri",
        (build / "best_model_full.joblib").as_uri(),
        "--out",
        str(out),
        "--work",
        str(tmp_path / "work"),
        "--batch-sizes",
        "50,400",
        "--rates",
        "200",
        "--latency-seconds",
        "2",
        "--naive-seconds",
        "2",
        "--memory-events",
        "1200",
        "--http",
        "no",  # the HTTP part has its own smoke test (test_http_bench_smoke.py)
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = out.glob("bench-*.json")
    results = json.loads(path.read_text())

    runs = {run["name"]: run for run in results["throughput"]}
    eos, drift_off = "consumer-exactly-once-1000", "consumer-drift-off-1000"
    expected = {"ceiling", "naive", "consumer-50", "consumer-400", "shadow-400", eos, drift_off}
    assert set(runs) == expected
    for name in expected - {"naive"}:
        assert runs[name]["events"] == 400, name  # every event came out, none dead-lettered
        assert runs[name]["events_per_s"] > 0
        assert runs[name]["peak_rss_mb"] > 0
    assert runs["naive"]["events"] >= 1
    assert runs["consumer-400"]["notes"] == ""  # the compiled path was verified and used
    assert runs["shadow-400"]["notes"] == "shadow=no_page_values"  # the other variant, in service
    assert results["ratios"]["shadow-400/consumer-400"] > 0
    floor, latency = results["latency"]  # the passthrough's, then the consumer's
    assert floor["name"] == "passthrough-latency-200"
    for run in (floor, latency):
        assert run["offered_per_s"] == 200
        assert run["measured"] == run["events"] > 0
        assert 0 <= run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"] <= run["max_ms"]
    stages = {stage["stage"] for stage in results["stages"]}
    assert {"decode + validate (decode_batch)", "whole score (Scorer.score)"} <= stages
    assert results["memory"]["events"] == 1200
    assert results["ratios"]["consumer-400/ceiling"] > 0
    assert set(results["targets"]) >= {
        "share of ceiling >= 0.8 (batch 1000)",
        "exactly_once / at_least_once >= 0.5",
        "p99 at 2000/s <= 15 ms",
        "consumer-1000 / ceiling >= 0.8",
        "CPU per event <= the passthrough's + 3 us (batch 1000)",
        "exactly_once / at_least_once >= 0.7",
        "p99 at 200/s <= the passthrough's + 10 ms",
    }
    assert results["machine"]["nproc"] >= 1
    outcomes = {row["kind"]: row["outcome"] for row in results["adversarial_decode"]}
    assert outcomes["valid event"] == "scored"
    assert outcomes["5,000 extra fields (54 kB)"] == "too_many_strings"
    assert outcomes["record key of 999,900 bytes"] == "key_too_large"
    assert all(row["microseconds_per_message"] > 0 for row in results["adversarial_decode"])
    assert "Adversarial decode" in done.stdout
    assert "| consumer-400 | 400 |" in done.stdout  # the printed table
