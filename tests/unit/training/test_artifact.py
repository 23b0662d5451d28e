"""Immutable build directories, build ids and manifest reading."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contract.manifest import read_manifest, sha256_file
from training.artifact import BuildExistsError, new_build_id, write_build


def _manifest(build_id: str) -> dict[str, Any]:
    metrics = {
        "roc_auc": 0.9,
        "pr_auc": 0.7,
        "f1": 0.6,
        "precision": 0.6,
        "recall": 0.6,
        "brier": 0.1,
    }
    return {
        "build_id": build_id,
        "created_at": "2026-11-26T15:15:00Z",
        "git_sha": "unknown",
        "contract_version": "1.0.0",
        "python": "3.11.7",
        "libraries": {"scikit-learn": "1"},
        "data": {
            "uri": "x.csv",
            "sha256": "0" * 64,
            "rows_raw": 10,
            "rows_deduplicated": 9,
            "rows_train": 7,
            "rows_test": 2,
            "positive_rate": 0.2,
        },
        "split": {"seed": 1, "test_size": 0.2, "stratified": True},
        "artifacts": {
            "best_model_full.joblib": {
                "variant": "full",
                "sha256": "0" * 64,
                "size_bytes": 1,
                "estimator": "X",
                "best_params": {},
                "required_columns": ["a"],
                "threshold": 0.5,
                "metrics": {"test": metrics, "cv": metrics},
                "golden": [{"event": {"session_id": "g"}, "probability": 0.5}],
            }
        },
    }


def test_build_id_format() -> None:
    now = datetime(2026, 11, 26, 15, 15, 0, tzinfo=UTC)
    first, second = new_build_id(now), new_build_id(now)
    assert re.fullmatch(r"20261126T151500Z-[0-9a-f]{8}", first)
    assert first != second


def test_write_build_is_atomic_and_never_overwrites(tmp_path: Path) -> None:
    def fill(tmp: Path) -> dict[str, Any]:
        (tmp / "model.bin").write_bytes(b"weights")
        return _manifest("b1")

    build = write_build(tmp_path, "b1", fill)
    assert build == tmp_path / "b1"
    assert read_manifest(build).build_id == "b1"
    assert sha256_file(build / "model.bin") == hashlib.sha256(b"weights").hexdigest()
    assert not (build / "model.bin").stat().st_mode & 0o222  # files are read-only

    def other(tmp: Path) -> dict[str, Any]:
        (tmp / "model.bin").write_bytes(b"different")
        return _manifest("b1")

    with pytest.raises(BuildExistsError):
        write_build(tmp_path, "b1", other)
    assert (build / "model.bin").read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b1"]  # no temp dir left behind


def test_failed_fill_leaves_nothing(tmp_path: Path) -> None:
    def broken(tmp: Path) -> dict[str, Any]:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_build(tmp_path, "b2", broken)
    assert list(tmp_path.iterdir()) == []


def test_invalid_manifest_is_refused(tmp_path: Path) -> None:
    def incomplete(tmp: Path) -> dict[str, Any]:
        manifest = _manifest("b3")
        del manifest["artifacts"]["best_model_full.joblib"]["threshold"]
        return manifest

    with pytest.raises(ValueError, match="threshold"):
        write_build(tmp_path, "b3", incomplete)
    assert list(tmp_path.iterdir()) == []
