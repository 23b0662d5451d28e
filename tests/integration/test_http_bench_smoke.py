"""A tiny run of the HTTP benchmark through the real servers: ``python -m benchmarks --http only``
starts ``python -m serve`` and the baseline, drives them with httpx and writes its JSON.

No timing is asserted; only that every run happened, every request was answered 200 and the
result file has the shape docs/benchmarks.md describes. No broker is needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_http_benchmark_smoke_run_writes_its_results(model_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "--http",
        "only",
        "--quick",
        "--model-uri",
        (model_build / "best_model_full.joblib").as_uri(),
        "--out",
        str(out),
        "--work",
        str(tmp_path / "work"),
        "--http-seconds",
        "2",
        "--http-concurrency",
        "1,4",
        "--http-batch",
        "10",
        "--http-rate",
        "5",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not list(out.glob("bench-*.json")), "--http only runs no Kafka part"
    (path,) = out.glob("http-*.json")
    results = json.loads(path.read_text())

    runs = {run["name"]: run for run in results["runs"]}
    assert set(runs) == {
        "serve-1-c1",
        "serve-1-c4",
        "serve-10-c1",
        "serve-10-c4",
        "serve-1-open-5",
        "baseline-1-c1",
        "baseline-1-c4",
        "baseline-1-open-5",
    }
    for name, run in runs.items():
        assert run["requests"] > 0, name
        # Every request was answered, and scored (200) unless serve's own time limit answered
        # 503 first (SERVE_TIMEOUT_MS on a loaded machine: the limit working, not a failure);
        # a request still unanswered when the run gave up is an error of its own kind. Nothing
        # here is timed.
        statuses = run["statuses"]
        assert set(statuses) <= {"200", "503"}, name
        assert statuses.get("200", 0) > 0, name
        assert sum(statuses.values()) == run["requests"], name
        refused = run["requests"] - statuses["200"]
        assert run["errors"] == run["unanswered"] + refused, name
        # events/s counts the scored requests' events only
        assert run["events_per_s"] == pytest.approx(
            statuses["200"] / run["seconds"] * run["events_per_request"], rel=0.02
        ), name
        assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], name
        assert run["server_cpu_ms_per_request"] > 0, name
        assert run["server"] == name.split("-")[0]
    assert runs["serve-10-c4"]["events_per_request"] == 10
    assert runs["serve-1-open-5"]["mode"] == "open"
    assert runs["serve-1-open-5"]["offered_per_s"] == 5
    assert set(results["targets"]) == {
        "serve single-event p99 <= 10 ms at 5 requests/s",
        "serve single-event throughput >= 4x the baseline's",
        "10-event requests >= 20,000 events/s",
        "every request to serve answered 200",
    }
    assert set(results["targets"].values()) <= {"met", "NOT met"}
    assert results["ratios"]["serve/baseline single-event, best of each"] > 0
    assert results["model"]["variant"] == "full"
    assert results["machine"]["nproc"] >= 1
    assert len(results["load_average_at_end"]) == 3
    assert "| serve-1-c1 | 1 | 1 |" in done.stdout  # the printed table
