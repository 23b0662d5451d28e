"""The ``fetch`` gate: bring an ``s3://`` build's artifact and manifest into the local cache.

The other gates (``scoring.gates``) then run on the local copies exactly as on a build read from
a path: the sha256 is checked before anything is unpickled. A local ``MODEL_URI`` needs no fetch.
A missing object, refused credentials or an unreachable store is retried a bounded number of
times, then refused with a message that says which of the three it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from contract.manifest import MANIFEST_NAME
from contract.signing import SIGNATURE_NAME
from contract.storage import S3Location, StorageError, Store, parse_location
from scoring.errors import GateError
from scoring.gates import load_checked_model
from scoring.scorer import Scorer
from scoring.settings import ModelSettings

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


def fetch_artifact(
    uri: str,
    cache_dir: Path,
    store: Store,
    attempts: int,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """The local path of ``uri``'s artifact, with its build's manifest.json beside it."""
    location = parse_location(uri)
    if isinstance(location, Path):
        return location
    build_key, _, name = location.key.rpartition("/")
    local_dir = cache_dir / location.bucket / build_key
    manifest_uri = str(S3Location(location.bucket, f"{build_key}/{MANIFEST_NAME}"))
    last: StorageError | None = None
    for attempt in range(1, attempts + 1):
        try:
            # The manifest first: a build without one is absent (unfinished or not a build).
            store.download(manifest_uri, local_dir / MANIFEST_NAME)
            _download_signature(store, location.bucket, build_key, local_dir)
            store.download(uri, local_dir / name)
        except StorageError as exc:
            last = exc
            if attempt < attempts:
                backoff = min(MAX_BACKOFF_S, 0.5 * 2 ** (attempt - 1))
                logger.warning(
                    "fetch attempt=%d/%d failed, retrying in %.1fs: %s",
                    attempt,
                    attempts,
                    backoff,
                    exc,
                )
                sleep(backoff)
            continue
        logger.info("fetched uri=%s into=%s attempts=%d", uri, local_dir, attempt)
        return local_dir / name
    assert last is not None
    what = {
        "not_found": "missing object",
        "credentials": "wrong credentials",
        "unreachable": "store unreachable",
    }.get(last.problem, last.problem)
    if last.problem == "not_found" and last.uri == manifest_uri:
        what = "missing manifest (the build is absent or unfinished)"
    raise GateError("fetch", f"{what} after {attempts} attempts: {last}")


def load_model(uri: str, settings: ModelSettings, store: Store) -> tuple[Scorer, Path]:
    """Fetch (when remote) and gate one build; GateError names the gate that refused it.

    Returns the scorer and the local path of the artifact (its manifest beside it)."""
    artifact = fetch_artifact(uri, settings.model_cache_dir, store, settings.model_fetch_attempts)
    scorer = load_checked_model(
        artifact, settings.allow_library_mismatch, settings.model_trusted_keys
    )
    return scorer, artifact


def _download_signature(store: Store, bucket: str, build_key: str, local_dir: Path) -> None:
    """The build's manifest.sig, when it has one; whether one is needed is the signature gate's
    decision, not the fetch's."""
    signature = local_dir / SIGNATURE_NAME
    signature.unlink(missing_ok=True)  # never judge a build by another fetch's signature
    try:
        store.download(str(S3Location(bucket, f"{build_key}/{SIGNATURE_NAME}")), signature)
    except StorageError as exc:
        if exc.problem != "not_found":
            raise
