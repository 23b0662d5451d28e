"""Signed builds: Ed25519 over manifest.json's exact bytes, keys as OpenSSL writes them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from contract.signing import (
    SIGNATURE_NAME,
    SignatureError,
    SigningKeyError,
    fingerprint,
    generate_key_pair,
    load_signing_key,
    load_trusted_keys,
    sign_build,
    verify_build,
)


def _pair(root: Path, name: str) -> tuple[Path, Path]:
    private, public = generate_key_pair()
    (root / f"{name}.pem").write_bytes(private)
    (root / f"{name}.pub").write_bytes(public)
    return root / f"{name}.pem", root / f"{name}.pub"


def _build(root: Path) -> Path:
    build = root / "build"
    build.mkdir()
    (build / "manifest.json").write_text(json.dumps({"artifacts": {"a": {"sha256": "ab" * 32}}}))
    return build


def test_sign_then_verify_names_the_signing_key(tmp_path: Path) -> None:
    private, public = _pair(tmp_path, "k1")
    build = _build(tmp_path)
    signature = sign_build(build, load_signing_key(private))
    assert signature == build / SIGNATURE_NAME
    assert len(signature.read_bytes()) == 64
    (trusted,) = load_trusted_keys(public)
    assert verify_build(build, [trusted]) == trusted
    assert trusted.fingerprint == fingerprint(load_signing_key(private).public_key())


def test_one_changed_byte_of_the_manifest_is_refused(tmp_path: Path) -> None:
    private, public = _pair(tmp_path, "k1")
    build = _build(tmp_path)
    sign_build(build, load_signing_key(private))
    manifest = build / "manifest.json"
    manifest.write_text(manifest.read_text().replace("ab", "cd", 1))
    with pytest.raises(SignatureError, match=r"not a signature of manifest\.json by any trusted"):
        verify_build(build, load_trusted_keys(public))


def test_unsigned_build_and_foreign_key_are_refused(tmp_path: Path) -> None:
    _, public = _pair(tmp_path, "trusted")
    other, _ = _pair(tmp_path, "other")
    build = _build(tmp_path)
    with pytest.raises(SignatureError, match="not signed"):
        verify_build(build, load_trusted_keys(public))
    sign_build(build, load_signing_key(other))
    with pytest.raises(SignatureError) as caught:
        verify_build(build, load_trusted_keys(public))
    assert load_trusted_keys(public)[0].fingerprint in str(caught.value)


def test_rotation_file_with_two_keys_accepts_either(tmp_path: Path) -> None:
    old, old_public = _pair(tmp_path, "old")
    new, new_public = _pair(tmp_path, "new")
    both = tmp_path / "trusted.pem"
    both.write_bytes(old_public.read_bytes() + new_public.read_bytes())
    trusted = load_trusted_keys(both)
    assert len(trusted) == 2
    for private, index in ((old, 0), (new, 1)):
        build = tmp_path / f"b-{index}"
        build.mkdir()
        (build / "manifest.json").write_text(f'{{"n": {index}}}')
        sign_build(build, load_signing_key(private))
        assert verify_build(build, trusted) == trusted[index]


def test_resigning_replaces_a_read_only_signature(tmp_path: Path) -> None:
    old, _ = _pair(tmp_path, "old")
    new, new_public = _pair(tmp_path, "new")
    build = _build(tmp_path)
    sign_build(build, load_signing_key(old)).chmod(0o444)
    (build / "manifest.json").chmod(0o444)
    sign_build(build, load_signing_key(new))
    verify_build(build, load_trusted_keys(new_public))
    assert sorted(p.name for p in build.iterdir()) == ["manifest.json", SIGNATURE_NAME]


def test_openssl_keys_and_signatures_interoperate(tmp_path: Path) -> None:
    """Keys from `openssl genpkey`/`openssl pkey -pubout`; OpenSSL verifies our signature."""
    private, public = tmp_path / "ossl.pem", tmp_path / "ossl.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", private], check=True)
    subprocess.run(["openssl", "pkey", "-in", private, "-pubout", "-out", public], check=True)
    build = _build(tmp_path)
    sign_build(build, load_signing_key(private))
    verify_build(build, load_trusted_keys(public))
    verified = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin",
         "-in", build / "manifest.json", "-sigfile", build / SIGNATURE_NAME],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_bad_key_files_name_the_file_never_the_content(tmp_path: Path) -> None:
    private, public = _pair(tmp_path, "k")
    with pytest.raises(SigningKeyError, match="holds no PEM public key"):
        load_trusted_keys(private)
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM private key") as caught:
        load_signing_key(public)
    assert public.read_text().splitlines()[1] not in str(caught.value)
    rsa = ["openssl", "genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:1024"]
    subprocess.run([*rsa, "-out", tmp_path / "rsa.pem"], check=True, capture_output=True)
    with pytest.raises(SigningKeyError, match="not an Ed25519 private key"):
        load_signing_key(tmp_path / "rsa.pem")
    with pytest.raises(SigningKeyError, match="cannot be read"):
        load_trusted_keys(tmp_path / "absent.pem")
