"""Model gates: checks an artifact must pass before the consumer reads a single message.

The gates themselves, and their order, are ``contract.builds`` (shared with ``python -m
training compare``): the signature gate runs first, before the manifest is even parsed, and the
sha256 gate before ``joblib.load``. This module is the runtime's side of them: a refusal becomes
a :class:`GateError`, the golden rows are re-scored by the :class:`Scorer` that will serve (its
fast path, when verified), and what was (or could not be) verified is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from contract import builds
from contract.manifest import ArtifactEntry, Manifest
from contract.signing import TrustedKey
from scoring.errors import GateError
from scoring.scorer import ModelInfo, Scorer

logger = logging.getLogger(__name__)


@contextmanager
def gate_errors() -> Iterator[None]:
    """A contract gate's refusal, raised as the runtime's GateError (same gate, same reason)."""
    try:
        yield
    except GateError:
        raise
    except builds.BuildGateError as exc:
        raise GateError(exc.gate, exc.reason) from exc


def _warn_unverified(build_dir: Path) -> None:
    logger.warning(
        "MODEL_TRUSTED_KEYS is not set: the build's signature is not checked, so its origin "
        "is not verified build_dir=%s",
        build_dir,
    )


def _log_verified(build_dir: Path, signer: TrustedKey) -> None:
    logger.info("manifest signature verified key=%s build_dir=%s", signer.fingerprint, build_dir)


def check_signature(build_dir: Path, trusted_keys: Path | None) -> None:
    """manifest.json is signed by a key in MODEL_TRUSTED_KEYS (gate ``signature``).

    Without trusted keys nothing can be verified: the build is served with a warning (settings
    refuse that when REQUIRE_SIGNED_MODEL=true). With them, an unsigned build is refused too.
    """
    if trusted_keys is None:
        _warn_unverified(build_dir)
        return
    with gate_errors():
        signer = builds.verify_signature(build_dir, trusted_keys)
    _log_verified(build_dir, signer)


def manifest_beside(artifact: Path) -> Manifest:
    """The build's manifest.json beside the artifact (gates ``artifact`` and ``manifest``)."""
    with gate_errors():
        return builds.manifest_beside(artifact)


def artifact_entry(manifest: Manifest, artifact: Path) -> ArtifactEntry:
    with gate_errors():
        return builds.artifact_entry(manifest, artifact)


def load_checked_model(
    artifact: Path, allow_library_mismatch: bool = False, trusted_keys: Path | None = None
) -> Scorer:
    """Run every gate and return the scorer; raise GateError naming the first gate that failed."""
    if trusted_keys is None:
        _warn_unverified(artifact.parent)
    with gate_errors():
        checked = builds.check_build(artifact, trusted_keys, allow_library_mismatch)
    if checked.signer is not None:
        _log_verified(artifact.parent, checked.signer)
    if checked.library_mismatches:
        logger.warning(
            "library mismatch allowed by ALLOW_LIBRARY_MISMATCH: %s",
            list(checked.library_mismatches),
        )
    entry = checked.entry
    info = ModelInfo(
        build_id=checked.manifest.build_id,
        variant=entry.variant,
        git_sha=checked.manifest.git_sha,
        threshold=entry.threshold,
    )
    scorer = Scorer(checked.pipeline, info)
    with gate_errors():
        builds.check_golden_rows(entry, scorer.score)
    logger.info(
        "model gates passed build_id=%s variant=%s threshold=%.4f",
        info.build_id,
        info.variant,
        info.threshold,
    )
    return scorer
