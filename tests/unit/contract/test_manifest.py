"""Reading a manifest: a file far larger than any manifest is refused before it is read whole;
manifests written before the time split and collected data still read, with their defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.manifest import (
    MANIFEST_MAX_BYTES,
    MANIFEST_NAME,
    DataInfo,
    ManifestError,
    SplitInfo,
    read_manifest,
)
from scoring.errors import GateError
from scoring.gates import manifest_beside

FIFTY_MB = 50 * 1000 * 1000


def huge_manifest(build: Path) -> Path:
    """A 50 MB manifest.json (sparse: it takes no disk space, and reads as zeros)."""
    build.mkdir()
    with (build / MANIFEST_NAME).open("wb") as handle:
        handle.truncate(FIFTY_MB)
    artifact = build / "best_model_full.joblib"
    artifact.write_bytes(b"never loaded")
    return artifact


def test_a_50_mb_manifest_is_refused_with_its_limit(tmp_path: Path) -> None:
    huge_manifest(tmp_path / "b1")
    with pytest.raises(ManifestError) as caught:
        read_manifest(tmp_path / "b1")
    assert caught.value.path == tmp_path / "b1" / MANIFEST_NAME
    assert f"over {MANIFEST_MAX_BYTES} bytes" in caught.value.reason


def test_the_consumer_gate_reports_it_as_the_manifest_gate(tmp_path: Path) -> None:
    artifact = huge_manifest(tmp_path / "b1")
    with pytest.raises(GateError) as caught:
        manifest_beside(artifact)
    assert caught.value.gate == "manifest"
    assert "MANIFEST_MAX_BYTES" in caught.value.reason


def test_a_manifest_at_the_limit_is_read_and_judged_by_its_shape(tmp_path: Path) -> None:
    build = tmp_path / "b1"
    build.mkdir()
    (build / MANIFEST_NAME).write_bytes(b"{" + b" " * (MANIFEST_MAX_BYTES - 2) + b"}")
    with pytest.raises(ManifestError) as caught:
        read_manifest(build)
    assert "is not a valid manifest" in caught.value.reason


def test_split_and_data_of_older_manifests_read_with_defaults() -> None:
    split = SplitInfo.model_validate({"seed": 1, "test_size": 0.2, "stratified": True})
    assert (split.rule, split.time_boundary, split.cv) == ("stratified", None, None)
    data = DataInfo.model_validate(
        {
            "uri": "x.csv",
            "sha256": "0" * 64,
            "rows_raw": 10,
            "rows_deduplicated": 9,
            "rows_train": 7,
            "rows_test": 2,
            "positive_rate": 0.2,
        }
    )
    assert (data.event_time_min, data.event_time_max, data.source) == (None, None, None)


def test_a_time_split_of_collected_data() -> None:
    split = SplitInfo.model_validate(
        {
            "seed": 1,
            "test_size": 0.2,
            "stratified": False,
            "rule": "time",
            "time_boundary": "2026-12-07T00:00:00.000Z",
        }
    )
    assert split.rule == "time"
    with pytest.raises(ValueError, match="rule"):
        SplitInfo.model_validate({"seed": 1, "test_size": 0.2, "stratified": False, "rule": "x"})
