"""Artifact attacks: each bad build is refused by a named gate and never loaded (the suite's one
test of the sha256, manifest and libraries gates with real processes)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import joblib

from tests.builds import MarkerPickle
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import produce_events, synthetic_events
from tests.integration.faults.support import (
    OFFSET_INVALID,
    Accounting,
    Ledger,
    TopicReader,
    committed_offsets,
)

ARTIFACT = "best_model_full.joblib"


def _copy(model_build: Path, root: Path, name: str) -> Path:
    build = root / name
    shutil.copytree(model_build, build)
    return build


def _edit_manifest(build: Path, edit: str) -> None:
    path = build / "manifest.json"
    manifest = json.loads(path.read_text())
    if edit == "wrong_hash":
        manifest["artifacts"][ARTIFACT]["sha256"] = "0" * 64
    elif edit == "libraries":
        manifest["libraries"]["scikit-learn"] = "0.0.1"
        manifest["libraries"]["xgboost"] = "0.0.1"
    path.write_text(json.dumps(manifest))


def test_bad_artifacts_are_refused_and_never_loaded(
    kafka_bootstrap: str,
    model_build: Path,
    tmp_path: Path,
    topics: Topics,
    start_consumer: ConsumerFactory,
    ledger: Ledger,
) -> None:
    started = time.monotonic()
    produce_events(kafka_bootstrap, topics.input, synthetic_events(50, seed=110, prefix="a"))

    # The payload is real: loading it directly does create the marker.
    control = tmp_path / "control-marker"
    joblib.dump(MarkerPickle(control), tmp_path / "control.joblib")
    joblib.load(tmp_path / "control.joblib")
    assert control.exists()

    marker = tmp_path / "unpickled-marker"
    tampered = _copy(model_build, tmp_path, "tampered")
    joblib.dump(MarkerPickle(marker), tampered / ARTIFACT)  # the manifest keeps the original hash
    wrong_hash = _copy(model_build, tmp_path, "wrong-hash")
    _edit_manifest(wrong_hash, "wrong_hash")
    no_manifest = _copy(model_build, tmp_path, "no-manifest")
    (no_manifest / "manifest.json").unlink()
    libraries = _copy(model_build, tmp_path, "libraries")
    _edit_manifest(libraries, "libraries")
    cases = {
        "tampered joblib (code-running pickle)": (tampered, "sha256"),
        "manifest with a wrong hash": (wrong_hash, "sha256"),
        "missing manifest": (no_manifest, "manifest"),
        "library-version mismatch": (libraries, "libraries"),
    }
    # All four start together: the imports dominate, and they share nothing but the topics.
    groups = {name: f"faults-artifact-{i}" for i, name in enumerate(cases)}
    processes = {
        name: start_consumer(topics, group=groups[name], MODEL_URI=(build / ARTIFACT).as_uri())
        for name, (build, _) in cases.items()
    }
    for name, (_, gate) in cases.items():
        process = processes[name]
        assert process.wait_exit(120) == 3, f"{name}: {process.log_tail()}"
        log = process.log_tail(200)
        assert f"model gate '{gate}' failed" in log, f"{name}: {log}"
        assert "model gates passed" not in log, name
        assert "scoring input=" not in log, name
        if gate == "libraries":  # each library is compared on its own: both are named
            assert "scikit-learn 0.0.1 (built)" in log, log
            assert "xgboost 0.0.1 (built)" in log, log
        committed = committed_offsets(kafka_bootstrap, groups[name], topics.input, 3)
        assert committed == [OFFSET_INVALID] * 3, f"{name}: committed {committed}"
    assert not marker.exists(), "the tampered pickle was unpickled"
    reader = TopicReader(kafka_bootstrap, topics.output)
    try:
        assert reader.read_to_end() == []
    finally:
        reader.close()
    ledger.record(
        "artifact attacks: tampered, wrong hash, no manifest, library mismatch",
        runs=len(cases),
        accounting=Accounting(0, [], 0, 0, 0, []),
        seconds=time.monotonic() - started,
        refused=len(cases),
        loaded=0,
    )
