"""Build ids, provenance and the immutable write of a build directory.

A build is written into a hidden temporary directory inside the registry and then renamed to
``<registry>/<build_id>`` in one step, so a reader never sees a half-written build and an
earlier build is never overwritten (the rename is refused if the name exists).

An object store has no rename: a build for an ``s3://`` registry is written locally the same
way, then uploaded under ``<registry>/<build_id>/`` with ``manifest.json`` last. Readers treat a
build without a manifest as absent, so a half-uploaded build is never served, and an upload is
refused when anything already exists under that build id.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.manifest import MANIFEST_NAME, Manifest
from contract.signing import fingerprint, sign_build
from contract.storage import StorageError, Store, join

logger = logging.getLogger(__name__)

__all__ = ["BuildExistsError", "git_sha", "new_build_id", "upload_build", "write_build"]


class BuildExistsError(FileExistsError):
    """The build directory already exists; builds are never overwritten."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        super().__init__(f"build {path} already exists; builds are immutable")


def new_build_id(now: datetime) -> str:
    """``20261126T151500Z-<8 hex>``: sortable by time, unique by the random suffix."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def python_version() -> str:
    return platform.python_version()


def git_sha(repo_dir: Path | None = None) -> str:
    """The checkout's HEAD commit (``-dirty`` appended when tracked files changed); outside a
    git checkout (the container image) the ``GIT_SHA`` the image was built with, or ``unknown``."""
    cwd = repo_dir or Path(__file__).resolve().parent.parent
    try:
        sha = _git(cwd, "rev-parse", "HEAD")
        dirty = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        baked_in = os.environ.get("GIT_SHA", "").strip()
        if baked_in and baked_in != "unknown":
            return baked_in
        logger.warning("git sha unavailable dir=%s", cwd)
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()


def write_build(
    registry: Path,
    build_id: str,
    fill: Callable[[Path], dict[str, Any]],
    signing_key: Ed25519PrivateKey | None = None,
) -> Path:
    """Create ``registry/build_id`` atomically.

    ``fill(tmp_dir)`` writes the artifacts and reports into ``tmp_dir`` and returns the manifest
    (a dict); the manifest is validated against :class:`Manifest`, written, every file is made
    read-only and the directory is renamed into place. With ``signing_key`` the manifest's exact
    bytes are signed into ``manifest.sig`` before the rename, so no unsigned build ever appears.
    Raises :class:`BuildExistsError` if the final name is taken; on any failure the temporary
    directory is removed.
    """
    registry.mkdir(parents=True, exist_ok=True)
    final = registry / build_id
    if final.exists():
        raise BuildExistsError(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{build_id}-", dir=registry))
    try:
        manifest = fill(tmp)
        Manifest.model_validate(manifest)
        (tmp / MANIFEST_NAME).write_text(
            json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False) + "\n",
            encoding="utf-8",
        )
        if signing_key is not None:
            sign_build(tmp, signing_key)
            logger.info("manifest signed key=%s", fingerprint(signing_key.public_key()))
        _make_read_only(tmp)
        # os.rename would silently replace an *empty* existing directory; check again just
        # before, the random suffix in build_id makes a race practically impossible.
        if final.exists():
            raise BuildExistsError(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.chmod(final, 0o755)
    logger.info("build written path=%s", final)
    return final


def _make_read_only(root: Path) -> None:
    read_only = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    for path in root.rglob("*"):
        if path.is_file():
            path.chmod(read_only)


def upload_build(build_dir: Path, registry_uri: str, store: Store) -> str:
    """Upload a finished local build to ``<registry_uri>/<build_id>/``; returns that URI.

    Every file but the manifest goes first, ``manifest.json`` last: until it is there, readers
    see no build. Raises :class:`BuildExistsError` if any object exists under the build id.
    """
    build_uri = join(registry_uri, build_dir.name)
    if not store.is_empty_prefix(build_uri):
        raise BuildExistsError(build_uri)
    files = sorted(p for p in build_dir.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    try:
        for path in [*files, build_dir / MANIFEST_NAME]:
            store.put_file(path, join(build_uri, *path.relative_to(build_dir).parts))
    except StorageError as exc:
        if exc.problem == "exists":
            raise BuildExistsError(build_uri) from exc
        raise
    logger.info("build uploaded uri=%s files=%d", build_uri, len(files) + 1)
    return build_uri
