"""The ``fetch`` gate, then the others: one build from its URI to a scorer.

``contract.builds.fetch_artifact`` brings an ``s3://`` build's artifact and manifest into
``MODEL_CACHE_DIR`` (a local ``MODEL_URI`` needs no fetch); the other gates
(``scoring.gates``) then run on the local copies exactly as on a build read from a path: the
sha256 is checked before anything is unpickled. A missing object, refused credentials or an
unreachable store is retried ``MODEL_FETCH_ATTEMPTS`` times, then refused with a message that
says which of the three it was.
"""

from __future__ import annotations

from pathlib import Path

from contract.builds import fetch_artifact
from contract.storage import Store
from scoring.gates import gate_errors, load_checked_model
from scoring.scorer import Scorer
from scoring.settings import ModelSettings


def load_model(uri: str, settings: ModelSettings, store: Store) -> tuple[Scorer, Path]:
    """Fetch (when remote) and gate one build; GateError names the gate that refused it.

    Returns the scorer and the local path of the artifact (its manifest beside it)."""
    with gate_errors():
        artifact = fetch_artifact(
            uri, settings.model_cache_dir, store, settings.model_fetch_attempts
        )
    scorer = load_checked_model(
        artifact, settings.allow_library_mismatch, settings.model_trusted_keys
    )
    return scorer, artifact
