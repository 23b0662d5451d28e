"""Signed builds: an Ed25519 signature over the exact bytes of a build's ``manifest.json``.

The sha256 gate proves that an artifact matches the manifest beside it; whoever can write the
registry can rewrite both. The signature proves where the manifest came from: only the holder of
the training job's private key can make one that a trusted public key accepts, and the manifest
holds every artifact's sha256, so a valid signature covers the artifacts too.

Training signs (``training``), the signature gate verifies (``contract.builds``, run by the
consumer and by ``python -m training compare``); both import this one module. Keys are PEM
files exactly as OpenSSL writes them:

    openssl genpkey -algorithm ed25519 -out signing.pem        # PKCS#8 private key
    openssl pkey -in signing.pem -pubout -out trusted.pem      # SubjectPublicKeyInfo public key

A trusted-keys file may hold several public keys one after another (key rotation). The detached
signature ``manifest.sig`` is the raw 64-byte Ed25519 signature, so OpenSSL can check it too:

    openssl pkeyutl -verify -pubin -inkey trusted.pem -rawin -in manifest.json \
        -sigfile manifest.sig

Secrets: no message raised or logged here ever carries a key's bytes, only file paths and public
key fingerprints.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from contract.errors import ContractError
from contract.manifest import MANIFEST_NAME

__all__ = [
    "SIGNATURE_NAME",
    "SignatureError",
    "SigningKeyError",
    "TrustedKey",
    "fingerprint",
    "generate_key_pair",
    "load_signing_key",
    "load_trusted_keys",
    "public_pem",
    "sign_build",
    "verify_build",
]

SIGNATURE_NAME: Final[str] = "manifest.sig"
_PEM_PUBLIC_KEY: Final = re.compile(
    rb"-----BEGIN PUBLIC KEY-----\r?\n.*?-----END PUBLIC KEY-----", re.DOTALL
)


class SigningKeyError(ContractError):
    """A key file that cannot be read or is not an Ed25519 key; names the file, never its bytes."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class SignatureError(ContractError):
    """A build whose manifest signature is missing or not made by a trusted key."""

    def __init__(self, build_dir: Path, reason: str) -> None:
        self.build_dir = build_dir
        self.reason = reason
        super().__init__(f"{build_dir}: {reason}")


@dataclass(frozen=True)
class TrustedKey:
    key: Ed25519PublicKey
    fingerprint: str


def fingerprint(key: Ed25519PublicKey) -> str:
    """``sha256:<first 16 hex>`` of the raw public key: safe to log, names a key in rotation."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new (PKCS#8 private PEM, SubjectPublicKeyInfo public PEM) pair, as OpenSSL writes them."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return private, public_pem(key)


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SigningKeyError(path, f"cannot be read: {reason}") from exc


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The unencrypted PKCS#8 Ed25519 private key in ``path``."""
    try:
        key = load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as exc:
        # The library's message is about the format, but drop it anyway: never echo key material.
        raise SigningKeyError(
            path, "is not an unencrypted PEM private key (PKCS#8, as openssl genpkey writes it)"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(path, f"holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_trusted_keys(path: Path) -> list[TrustedKey]:
    """Every Ed25519 public key in ``path`` (PEM blocks one after another); at least one."""
    blocks = _PEM_PUBLIC_KEY.findall(_read(path))
    if not blocks:
        raise SigningKeyError(path, "holds no PEM public key (-----BEGIN PUBLIC KEY-----)")
    keys = []
    for number, block in enumerate(blocks, start=1):
        try:
            key = load_pem_public_key(block)
        except ValueError as exc:
            raise SigningKeyError(path, f"public key {number} is not valid PEM") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(path, f"public key {number} is not an Ed25519 key")
        keys.append(TrustedKey(key, fingerprint(key)))
    return keys


def sign_build(build_dir: Path, key: Ed25519PrivateKey) -> Path:
    """Write ``build_dir/manifest.sig`` (replacing an older one, read-only like the build)."""
    manifest = Path(build_dir) / MANIFEST_NAME
    signature = key.sign(manifest.read_bytes())
    target = Path(build_dir) / SIGNATURE_NAME
    # A build's files are read-only, its directory is not: write aside and rename over.
    handle, tmp = tempfile.mkstemp(prefix=".manifest.sig-", dir=build_dir)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(signature)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def verify_build(build_dir: Path, trusted: list[TrustedKey]) -> TrustedKey:
    """The trusted key that signed ``build_dir/manifest.json``; SignatureError when none did."""
    build_dir = Path(build_dir)
    try:
        signature = (build_dir / SIGNATURE_NAME).read_bytes()
    except FileNotFoundError as exc:
        raise SignatureError(build_dir, f"the build is not signed (no {SIGNATURE_NAME})") from exc
    except OSError as exc:
        raise SignatureError(build_dir, f"{SIGNATURE_NAME} cannot be read: {exc.strerror}") from exc
    try:
        manifest = (build_dir / MANIFEST_NAME).read_bytes()
    except OSError as exc:
        raise SignatureError(build_dir, f"{MANIFEST_NAME} cannot be read: {exc.strerror}") from exc
    for candidate in trusted:
        try:
            candidate.key.verify(signature, manifest)
        except InvalidSignature:
            continue
        return candidate
    shown = ", ".join(key.fingerprint for key in trusted)
    raise SignatureError(
        build_dir,
        f"{SIGNATURE_NAME} is not a signature of {MANIFEST_NAME} by any trusted key ({shown})",
    )
