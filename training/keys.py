"""``python -m training keygen`` and ``sign``: make a signing key pair, sign an existing build.

The signature logic itself lives in :mod:`contract.signing`, shared with the consumer; this
module only writes key files and finds the build a ``--build`` argument names. It never prints
or logs a private key's bytes: only file paths and public key fingerprints.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from contract.manifest import MANIFEST_NAME
from contract.signing import (
    SigningKeyError,
    fingerprint,
    generate_key_pair,
    load_signing_key,
    sign_build,
)

logger = logging.getLogger(__name__)

__all__ = ["SIGNING_KEY_ENV", "BuildNotFoundError", "build_dir_of", "keygen", "sign"]

SIGNING_KEY_ENV = "MODEL_SIGNING_KEY_FILE"
"""Environment variable naming the private key file when ``--signing-key`` is not given."""


class BuildNotFoundError(FileNotFoundError):
    """``--build`` names no directory holding a manifest.json."""


def build_dir_of(location: str) -> Path:
    """A build directory from a path or ``file://`` URI of the build or of one of its artifacts."""
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        raise BuildNotFoundError(f"--build {location}: only paths and file:// URIs are signed")
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(location)
    if path.is_file():
        path = path.parent
    if not (path / MANIFEST_NAME).is_file():
        raise BuildNotFoundError(f"--build {location}: no {MANIFEST_NAME} in {path}")
    return path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (never overwrite one) with ``mode`` from the start."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise SigningKeyError(path, "exists already; keys are never overwritten") from exc
    except OSError as exc:
        raise SigningKeyError(path, f"cannot be created: {exc.strerror}") from exc
    with os.fdopen(handle, "wb") as out:
        out.write(data)


def keygen(private_key: Path, public_key: Path) -> str:
    """Write a new pair (private 0600, public 0644); return the public key's fingerprint."""
    private, public = generate_key_pair()
    _write_new(private_key, private, 0o600)
    try:
        _write_new(public_key, public, 0o644)
    except SigningKeyError:
        private_key.unlink()
        raise
    return fingerprint(load_signing_key(private_key).public_key())


def sign(location: str, signing_key: Path) -> tuple[Path, str]:
    """Sign (or re-sign) the build at ``location``; return the signature file and the key's
    fingerprint."""
    build = build_dir_of(location)
    key = load_signing_key(signing_key)
    key_id = fingerprint(key.public_key())
    logger.debug("signing build=%s key_file=%s key=%s", build, signing_key, key_id)
    signature = sign_build(build, key)
    logger.info("manifest signed build=%s key=%s", build, key_id)
    return signature, key_id
