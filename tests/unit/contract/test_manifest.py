"""Reading a manifest: a file far larger than any manifest is refused before it is read whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.manifest import MANIFEST_MAX_BYTES, MANIFEST_NAME, ManifestError, read_manifest
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
