"""The signature gate: first of the model gates, before the manifest is parsed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from contract.signing import generate_key_pair, load_signing_key, sign_build
from scoring.errors import GateError, SettingsError
from scoring.gates import check_signature, load_checked_model
from scoring.settings import ModelSettings, load

BASE = {"MODEL_URI": "/models/b1/best_model_full.joblib"}


def _keys(root: Path) -> tuple[Path, Path]:
    private, public = generate_key_pair()
    (root / "k.pem").write_bytes(private)
    (root / "k.pub").write_bytes(public)
    return root / "k.pem", root / "k.pub"


def _build(root: Path, manifest: str = "{}") -> Path:
    build = root / "build"
    build.mkdir()
    (build / "manifest.json").write_text(manifest)
    return build


def test_signature_runs_before_the_manifest_is_parsed(tmp_path: Path) -> None:
    """An unsigned build with an unparseable manifest fails `signature`, not `manifest`."""
    _, public = _keys(tmp_path)
    build = _build(tmp_path, "not json at all")
    (build / "best_model_full.joblib").write_bytes(b"never unpickled")
    with pytest.raises(GateError) as caught:
        load_checked_model(build / "best_model_full.joblib", trusted_keys=public)
    assert caught.value.gate == "signature"
    assert "not signed" in caught.value.reason


def test_signed_build_passes_and_logs_the_key_fingerprint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private, public = _keys(tmp_path)
    build = _build(tmp_path)
    sign_build(build, load_signing_key(private))
    with caplog.at_level(logging.INFO, logger="scoring.gates"):
        check_signature(build, public)
    assert "manifest signature verified key=sha256:" in caplog.text


def test_without_trusted_keys_an_unsigned_build_passes_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build = _build(tmp_path)
    with caplog.at_level(logging.WARNING, logger="scoring.gates"):
        check_signature(build, None)
    assert "MODEL_TRUSTED_KEYS is not set" in caplog.text


def test_unreadable_trusted_keys_file_is_a_signature_gate_failure(tmp_path: Path) -> None:
    build = _build(tmp_path)
    with pytest.raises(GateError) as caught:
        check_signature(build, tmp_path / "absent.pem")
    assert caught.value.gate == "signature"
    assert "MODEL_TRUSTED_KEYS" in caught.value.reason


def test_settings_require_trusted_keys_when_signatures_are_required(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load(ModelSettings, {**BASE, "REQUIRE_SIGNED_MODEL": "true"})
    assert "MODEL_TRUSTED_KEYS" in str(caught.value)
    settings = load(
        ModelSettings,
        {**BASE, "REQUIRE_SIGNED_MODEL": "true", "MODEL_TRUSTED_KEYS": str(tmp_path / "k.pub")},
    )
    assert settings.require_signed_model
    assert settings.model_trusted_keys == tmp_path / "k.pub"
    assert load(ModelSettings, BASE).model_trusted_keys is None
