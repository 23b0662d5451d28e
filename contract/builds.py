"""A build read through its gates: every check an artifact must pass before it scores anything.

One implementation for every reader of builds: the scoring runtime (``scoring.gates``,
``scoring.fetch``: the consumer, serve, the shadow) and ``python -m training compare``. Each
gate raises :class:`BuildGateError` naming itself; a reader wraps it in its own error type.

Order matters, and :func:`check_build` is the one place it is written:

0. ``fetch`` (:func:`fetch_artifact`, ``s3://`` only): the manifest, its signature and the
   artifact into a local directory; every gate below runs on the local copies.
1. ``signature``: with trusted keys, ``manifest.sig`` signs ``manifest.json``'s exact bytes. It
   runs before the manifest is even parsed, because whoever can write the registry can replace
   an artifact and recompute its hash in the manifest; only a signature by a trusted key proves
   the manifest came from training. With trusted keys, an unsigned build is refused too.
2. ``artifact`` / ``manifest``: the file exists, its build's manifest is beside it and lists it.
3. ``sha256``: the artifact's bytes are the manifest's. It runs before ``joblib.load`` because
   unpickling runs code, so a file that does not match its (signed) manifest is never loaded.
4. ``libraries``, ``required_columns``, ``load``.
5. ``golden`` (:func:`check_golden_rows`): the manifest's golden rows re-score within
   ``GOLDEN_TOLERANCE``, by whatever will score in earnest (the runtime's fast path, or the
   pipeline itself), so it is the caller's to run last.

Nothing here logs a decision: what was verified is returned (:class:`CheckedBuild`), and the
caller says it in its own words (the consumer warns when no trusted keys are set).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import joblib
import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from contract.errors import ContractError
from contract.manifest import (
    CHECKED_LIBRARIES,
    GOLDEN_TOLERANCE,
    MANIFEST_NAME,
    ArtifactEntry,
    Manifest,
    ManifestError,
    library_versions,
    read_manifest,
    sha256_file,
)
from contract.schema import FEATURE_COLUMNS, SessionEvent
from contract.signing import (
    SIGNATURE_NAME,
    SignatureError,
    SigningKeyError,
    TrustedKey,
    load_trusted_keys,
    verify_build,
)
from contract.storage import S3Location, StorageError, Store, parse_location

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_BACKOFF_S",
    "BuildGateError",
    "CheckedBuild",
    "artifact_entry",
    "check_build",
    "check_golden_rows",
    "check_required_columns",
    "check_sha256",
    "fetch_artifact",
    "library_mismatches",
    "load_pipeline",
    "manifest_beside",
    "verify_signature",
]

MAX_BACKOFF_S: Final[float] = 5.0
"""Longest wait between two fetch attempts (0.5, 1, 2, 4, 5, 5 s...)."""


class BuildGateError(ContractError):
    """A gate refused the build; nothing of it is scored. ``gate`` names the gate."""

    def __init__(self, gate: str, reason: str) -> None:
        self.gate = gate
        self.reason = reason
        super().__init__(f"model gate '{gate}' failed: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.gate, self.reason))


@dataclass(frozen=True)
class CheckedBuild:
    """An artifact that passed every gate up to ``load``, and what was verified on the way."""

    artifact: Path
    manifest: Manifest
    entry: ArtifactEntry
    pipeline: Any
    """The unpickled estimator: ``predict_proba(frame)`` on the raw feature frame."""
    signer: TrustedKey | None
    """The trusted key that signed the manifest; None when no trusted keys were given."""
    library_mismatches: tuple[str, ...]
    """Library versions that differ from the build's, allowed by the caller (empty: none)."""


def fetch_artifact(
    uri: str,
    cache_dir: Path,
    store: Store,
    attempts: int,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """The local path of ``uri``'s artifact, with its build's manifest.json (and manifest.sig,
    when it has one) beside it (gate ``fetch``). A local path or ``file://`` URI is returned as
    it is; an ``s3://`` one is downloaded under ``cache_dir/<bucket>/<build key>/``.

    A missing object, refused credentials or an unreachable store is retried ``attempts`` times
    in all, then refused with a message that says which of the three it was."""
    location = parse_location(uri)  # a URI that is none of the three is the caller's error
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
    raise BuildGateError("fetch", f"{what} after {attempts} attempts: {last}")


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


def verify_signature(
    build_dir: Path, trusted_keys: Path, setting: str = "MODEL_TRUSTED_KEYS"
) -> TrustedKey:
    """The trusted key (from the file ``trusted_keys``) that signed ``build_dir/manifest.json``
    (gate ``signature``); an unsigned build is refused. ``setting`` names where the file was
    configured, for the message when it cannot be read."""
    try:
        return verify_build(build_dir, load_trusted_keys(trusted_keys))
    except SigningKeyError as exc:
        raise BuildGateError("signature", f"{setting} {exc}") from exc
    except SignatureError as exc:
        raise BuildGateError("signature", str(exc)) from exc


def manifest_beside(artifact: Path) -> Manifest:
    """The build's manifest.json beside the artifact (gates ``artifact`` and ``manifest``)."""
    if not artifact.is_file():
        raise BuildGateError("artifact", f"{artifact} does not exist")
    try:
        return read_manifest(artifact.parent)
    except ManifestError as exc:
        raise BuildGateError("manifest", str(exc)) from exc


def artifact_entry(manifest: Manifest, artifact: Path) -> ArtifactEntry:
    """The manifest's entry for the artifact's file name (gate ``manifest``)."""
    entry = manifest.artifacts.get(artifact.name)
    if entry is None:
        raise BuildGateError("manifest", f"the manifest does not list {artifact.name}")
    return entry


def check_sha256(artifact: Path, entry: ArtifactEntry) -> None:
    """The artifact's bytes are the ones the manifest lists (gate ``sha256``)."""
    actual = sha256_file(artifact)
    if actual != entry.sha256:
        raise BuildGateError(
            "sha256", f"{artifact.name} has sha256 {actual}, the manifest says {entry.sha256}"
        )


def library_mismatches(manifest: Manifest) -> list[str]:
    """``name built != running`` for each checked library whose version differs (pickles of
    scikit-learn and xgboost depend on them)."""
    built_with = manifest.libraries
    return [
        f"{name} {built_with.get(name)} (built) != {running} (running)"
        for name, running in library_versions(CHECKED_LIBRARIES).items()
        if built_with.get(name) != running
    ]


def check_required_columns(entry: ArtifactEntry) -> None:
    """Every column the artifact reads is a contract field (gate ``required_columns``)."""
    missing = sorted(set(entry.required_columns) - set(FEATURE_COLUMNS))
    if missing:
        raise BuildGateError("required_columns", f"the contract has no column {', '.join(missing)}")


def load_pipeline(artifact: Path) -> Any:
    """``joblib.load`` the artifact (gate ``load``): only after the sha256 gate passed."""
    try:
        pipeline = joblib.load(artifact)
    except Exception as exc:  # unpickling can fail in many ways; all mean "not servable"
        raise BuildGateError("load", f"joblib.load({artifact.name}) failed: {exc!r}") from exc
    if not hasattr(pipeline, "predict_proba"):
        raise BuildGateError("load", f"{artifact.name} holds no predict_proba estimator")
    return pipeline


def check_build(
    artifact: Path,
    trusted_keys: Path | None,
    allow_library_mismatch: bool = False,
    *,
    trusted_keys_setting: str = "MODEL_TRUSTED_KEYS",
    library_override: str = "set ALLOW_LIBRARY_MISMATCH=true",
) -> CheckedBuild:
    """Every gate from ``signature`` to ``load``, in order, on a local artifact; raise
    BuildGateError naming the first that failed. The golden rows are next
    (:func:`check_golden_rows`), with the scorer that will be used.

    ``trusted_keys`` None verifies no signature (the caller warns); ``trusted_keys_setting``
    and ``library_override`` are the caller's names for its settings, for the messages."""
    signer = None
    if trusted_keys is not None:
        signer = verify_signature(artifact.parent, trusted_keys, trusted_keys_setting)
    manifest = manifest_beside(artifact)
    entry = artifact_entry(manifest, artifact)
    check_sha256(artifact, entry)
    mismatches = library_mismatches(manifest)
    if mismatches and not allow_library_mismatch:
        raise BuildGateError(
            "libraries", "; ".join(mismatches) + f" ({library_override} to override)"
        )
    check_required_columns(entry)
    pipeline = load_pipeline(artifact)
    return CheckedBuild(artifact, manifest, entry, pipeline, signer, tuple(mismatches))


def check_golden_rows(
    entry: ArtifactEntry,
    score: Callable[[Sequence[SessionEvent]], npt.NDArray[np.float64]],
) -> None:
    """The manifest's golden rows, validated as events, re-score to their recorded
    probabilities within ``GOLDEN_TOLERANCE`` by ``score`` (gate ``golden``)."""
    golden = entry.golden
    if not golden:
        raise BuildGateError("golden", "the manifest has no golden rows")
    try:
        events = [SessionEvent.model_validate(row.event) for row in golden]
    except ValidationError as exc:
        raise BuildGateError("golden", f"a golden row is not a valid event: {exc}") from exc
    expected = np.array([row.probability for row in golden], dtype=np.float64)
    actual = np.asarray(score(events), dtype=np.float64)
    # A NaN difference counts as the largest, and fails: a model that returns NaN never serves.
    difference = np.abs(actual - expected)
    difference[~np.isfinite(difference)] = np.inf
    worst = int(np.argmax(difference))
    if not difference[worst] <= GOLDEN_TOLERANCE:
        raise BuildGateError(
            "golden",
            f"golden row {worst} ({events[worst].session_id}) scores {actual[worst]:.9f}, "
            f"the manifest recorded {expected[worst]:.9f}",
        )
