"""`python -m training keygen` and `sign`, and train's --signing-key (checked before training)."""

from __future__ import annotations

import contextlib
import io
import json
import stat
from pathlib import Path

import pytest

from contract.signing import SIGNATURE_NAME, load_trusted_keys, verify_build
from training.__main__ import main
from training.synthetic import generate_sessions


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    return status, out.getvalue()


def test_keygen_then_sign_an_existing_build_by_uri(tmp_path: Path) -> None:
    private, public = tmp_path / "signing.pem", tmp_path / "trusted.pem"
    status, out = _run(["keygen", "--private-key", str(private), "--public-key", str(public)])
    assert status == 0
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text() not in out  # only paths and the fingerprint are printed
    build = tmp_path / "build"
    build.mkdir()
    (build / "manifest.json").write_text(json.dumps({"build_id": "b"}))
    (build / "best_model_full.joblib").write_bytes(b"x")
    uri = (build / "best_model_full.joblib").as_uri()
    status, signed = _run(["sign", "--build", uri, "--signing-key", str(private)])
    assert status == 0
    assert f"signature={build / SIGNATURE_NAME}" in signed
    (key,) = load_trusted_keys(public)
    assert verify_build(build, [key]) == key
    assert f"fingerprint={key.fingerprint}" in out


def test_keygen_never_overwrites_a_key(tmp_path: Path) -> None:
    private = tmp_path / "signing.pem"
    private.write_text("keep me")
    status, _ = _run(["keygen", "--private-key", str(private), "--public-key", str(tmp_path / "p")])
    assert status == 1
    assert private.read_text() == "keep me"


def test_sign_reads_the_key_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = tmp_path / "signing.pem", tmp_path / "trusted.pem"
    _run(["keygen", "--private-key", str(private), "--public-key", str(public)])
    build = tmp_path / "build"
    build.mkdir()
    (build / "manifest.json").write_text("{}")
    monkeypatch.setenv("MODEL_SIGNING_KEY_FILE", str(private))
    assert _run(["sign", "--build", str(build)])[0] == 0
    verify_build(build, load_trusted_keys(public))


def test_sign_without_a_manifest_fails(tmp_path: Path) -> None:
    private = tmp_path / "signing.pem"
    _run(["keygen", "--private-key", str(private), "--public-key", str(tmp_path / "p.pem")])
    status, _ = _run(["sign", "--build", str(tmp_path), "--signing-key", str(private)])
    assert status == 1


def test_train_refuses_a_bad_signing_key_before_training(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Valid data, bad key: the job stops at once, writes no build and never shows the key."""
    data = tmp_path / "sessions.csv"
    generate_sessions(300, seed=5).to_csv(data, index=False)
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text(
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n"
    )
    argv = ["--data", str(data), "--out", str(tmp_path / "registry"), "--n-iter", "1"]
    status, _ = _run([*argv, "--signing-key", str(not_a_key)])
    assert status == 1
    assert "not-a-key.pem: is not an unencrypted PEM private key" in caplog.text
    assert "c2VjcmV0LWJ5dGVz" not in caplog.text
    assert not (tmp_path / "registry").exists()
