"""Start, refuse, stop: readiness only after the gates, exit 3 on a refusal, a graceful SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from benchmarks.replay import free_port
from tests.integration.consumer.doctored import copy_build, replace_artifact
from tests.integration.consumer.kafka_io import synthetic_events
from tests.integration.serve.conftest import ServeFactory
from tests.integration.serve.slow import slow_build


def test_never_ready_while_the_gates_fail_then_exit_3(start_serve: ServeFactory) -> None:
    """An unreachable store: the fetch gate retries (the server answers 503 meanwhile), then
    refuses; the process exits 3 and says why."""
    serve = start_serve(
        MODEL_URI="s3://models/builds/b1/best_model_full.joblib",
        AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{free_port()}",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION="us-east-1",
        MODEL_FETCH_ATTEMPTS="4",
    )
    answers: list[tuple[int, bool, int]] = []
    while serve.exit_code() is None:
        try:
            ready = httpx.get(serve.base_url + "/readyz", timeout=5)
            scored = httpx.post(serve.base_url + "/v1/score", json={}, timeout=5)
        except httpx.TransportError:  # not listening yet, or gone
            time.sleep(0.1)
            continue
        answers.append((ready.status_code, ready.json()["ready"], scored.status_code))
        time.sleep(0.1)
    assert serve.wait_exit(30) == 3
    assert answers, "the server answered while the gates ran"
    assert set(answers) == {(503, False, 503)}
    assert "model gate 'fetch' failed" in serve.log_tail()


def test_a_build_that_fails_its_sha256_exits_3(
    start_serve: ServeFactory, model_build: Path, tmp_path: Path
) -> None:
    build = copy_build(model_build, tmp_path / "tampered")
    replace_artifact(build, "best_model_full.joblib", {"not": "a model"}, update_manifest=False)
    serve = start_serve(MODEL_URI=str(build / "best_model_full.joblib"))
    assert serve.wait_exit(60) == 3
    assert "model gate 'sha256' failed" in serve.log_tail()


def test_a_bad_setting_exits_2_naming_it(start_serve: ServeFactory) -> None:
    serve = start_serve(SERVE_MAX_CONCURRENCY="lots")
    assert serve.wait_exit(60) == 2
    assert "SERVE_MAX_CONCURRENCY" in serve.log_tail()


def test_sigterm_lets_the_requests_in_flight_finish_and_exits_0(
    start_serve: ServeFactory, model_build: Path, tmp_path: Path
) -> None:
    serve = start_serve(
        MODEL_URI=str(slow_build(model_build, tmp_path / "slow", seconds=2.0)),
        SERVE_TIMEOUT_MS="20000",
        SERVE_SHUTDOWN_TIMEOUT_S="20",
    )
    serve.wait_ready()
    events = synthetic_events(3, seed=8, prefix="inflight")
    answers: list[httpx.Response] = []
    threads = [
        threading.Thread(target=lambda e=event: answers.append(serve.score(e))) for event in events
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while serve.metric("serve_requests_in_flight") < 3:
        assert time.monotonic() < deadline, "the requests did not arrive"
        time.sleep(0.05)
    serve.signal(signal.SIGTERM)
    assert serve.wait_exit(30) == 0
    for thread in threads:
        thread.join(30)
    assert sorted(a.status_code for a in answers) == [200, 200, 200]
    assert sorted(a.json()["session_id"] for a in answers) == [e["session_id"] for e in events]
