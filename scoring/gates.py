"""Model gates: checks an artifact must pass before the consumer reads a single message.

Order matters: the signature gate runs first, before the manifest is even parsed, because
whoever can write the registry can replace an artifact and recompute its hash in the manifest;
only a signature by a trusted key proves the manifest came from training. The sha256 gate runs
before ``joblib.load`` because unpickling runs code, so a file that does not match its (signed)
manifest is never loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import joblib
import numpy as np
from pydantic import ValidationError

from contract.manifest import (
    CHECKED_LIBRARIES,
    GOLDEN_TOLERANCE,
    ArtifactEntry,
    Manifest,
    ManifestError,
    library_versions,
    read_manifest,
    sha256_file,
)
from contract.schema import FEATURE_COLUMNS, SessionEvent
from contract.signing import SignatureError, SigningKeyError, load_trusted_keys, verify_build
from scoring.errors import GateError
from scoring.scorer import ModelInfo, Scorer

logger = logging.getLogger(__name__)


def check_signature(build_dir: Path, trusted_keys: Path | None) -> None:
    """manifest.json is signed by a key in MODEL_TRUSTED_KEYS (gate ``signature``).

    Without trusted keys nothing can be verified: the build is served with a warning (settings
    refuse that when REQUIRE_SIGNED_MODEL=true). With them, an unsigned build is refused too.
    """
    if trusted_keys is None:
        logger.warning(
            "MODEL_TRUSTED_KEYS is not set: the build's signature is not checked, so its origin "
            "is not verified build_dir=%s",
            build_dir,
        )
        return
    try:
        signer = verify_build(build_dir, load_trusted_keys(trusted_keys))
    except SigningKeyError as exc:
        raise GateError("signature", f"MODEL_TRUSTED_KEYS {exc}") from exc
    except SignatureError as exc:
        raise GateError("signature", str(exc)) from exc
    logger.info("manifest signature verified key=%s build_dir=%s", signer.fingerprint, build_dir)


def manifest_beside(artifact: Path) -> Manifest:
    """The build's manifest.json beside the artifact (gates ``artifact`` and ``manifest``)."""
    if not artifact.is_file():
        raise GateError("artifact", f"{artifact} does not exist")
    try:
        return read_manifest(artifact.parent)
    except ManifestError as exc:
        raise GateError("manifest", str(exc)) from exc


def artifact_entry(manifest: Manifest, artifact: Path) -> ArtifactEntry:
    entry = manifest.artifacts.get(artifact.name)
    if entry is None:
        raise GateError("manifest", f"the manifest does not list {artifact.name}")
    return entry


def check_sha256(artifact: Path, entry: ArtifactEntry) -> None:
    actual = sha256_file(artifact)
    if actual != entry.sha256:
        raise GateError(
            "sha256", f"{artifact.name} has sha256 {actual}, the manifest says {entry.sha256}"
        )


def check_libraries(manifest: Manifest, allow_mismatch: bool) -> None:
    built_with = manifest.libraries
    mismatches = [
        f"{name} {built_with.get(name)} (built) != {running} (running)"
        for name, running in library_versions(CHECKED_LIBRARIES).items()
        if built_with.get(name) != running
    ]
    if not mismatches:
        return
    if allow_mismatch:
        logger.warning("library mismatch allowed by ALLOW_LIBRARY_MISMATCH: %s", mismatches)
        return
    raise GateError(
        "libraries", "; ".join(mismatches) + " (set ALLOW_LIBRARY_MISMATCH=true to override)"
    )


def check_required_columns(entry: ArtifactEntry) -> None:
    missing = sorted(set(entry.required_columns) - set(FEATURE_COLUMNS))
    if missing:
        raise GateError("required_columns", f"the contract has no column {', '.join(missing)}")


def check_golden_rows(scorer: Scorer, entry: ArtifactEntry) -> None:
    golden = entry.golden
    if not golden:
        raise GateError("golden", "the manifest has no golden rows")
    try:
        events = [SessionEvent.model_validate(row.event) for row in golden]
    except ValidationError as exc:
        raise GateError("golden", f"a golden row is not a valid event: {exc}") from exc
    expected = np.array([row.probability for row in golden], dtype=np.float64)
    actual = scorer.score(events)
    # A NaN difference counts as the largest, and fails: a model that returns NaN never serves.
    difference = np.abs(actual - expected)
    difference[~np.isfinite(difference)] = np.inf
    worst = int(np.argmax(difference))
    if not difference[worst] <= GOLDEN_TOLERANCE:
        raise GateError(
            "golden",
            f"golden row {worst} ({events[worst].session_id}) scores {actual[worst]:.9f}, "
            f"the manifest recorded {expected[worst]:.9f}",
        )


def load_checked_model(
    artifact: Path, allow_library_mismatch: bool = False, trusted_keys: Path | None = None
) -> Scorer:
    """Run every gate and return the scorer; raise GateError naming the first gate that failed."""
    check_signature(artifact.parent, trusted_keys)
    manifest = manifest_beside(artifact)
    entry = artifact_entry(manifest, artifact)
    check_sha256(artifact, entry)
    check_libraries(manifest, allow_library_mismatch)
    check_required_columns(entry)
    try:
        pipeline = joblib.load(artifact)
    except Exception as exc:  # unpickling can fail in many ways; all mean "not servable"
        raise GateError("load", f"joblib.load({artifact.name}) failed: {exc!r}") from exc
    if not hasattr(pipeline, "predict_proba"):
        raise GateError("load", f"{artifact.name} holds no predict_proba estimator")
    info = ModelInfo(
        build_id=manifest.build_id,
        variant=entry.variant,
        git_sha=manifest.git_sha,
        threshold=entry.threshold,
    )
    scorer = Scorer(pipeline, info)
    check_golden_rows(scorer, entry)
    logger.info(
        "model gates passed build_id=%s variant=%s threshold=%.4f",
        info.build_id,
        info.variant,
        info.threshold,
    )
    return scorer
