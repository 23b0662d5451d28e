"""A build's manifest: its typed shape, how it is read, and what serving checks against it.

Training writes ``manifest.json`` beside the artifacts of a build; the consumer reads it before
it loads an artifact. Both sides take every definition from here: the schema, the file names,
the sha256 of an artifact, the libraries whose versions must match, and the tolerance within
which an artifact must reproduce its golden rows. Import-cheap (pydantic and the standard
library only). Unknown keys are kept: the manifest may grow.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.errors import ContractError

__all__ = [
    "CHECKED_LIBRARIES",
    "GOLDEN_TOLERANCE",
    "MANIFEST_MAX_BYTES",
    "MANIFEST_NAME",
    "RECORDED_LIBRARIES",
    "ArtifactEntry",
    "DataInfo",
    "GoldenRow",
    "Manifest",
    "ManifestError",
    "Metrics",
    "MetricsPair",
    "SplitInfo",
    "artifact_name",
    "library_versions",
    "read_manifest",
    "sha256_file",
]

MANIFEST_NAME: Final[str] = "manifest.json"
RECORDED_LIBRARIES: Final[tuple[str, ...]] = (
    "scikit-learn",
    "xgboost",
    "pandas",
    "numpy",
    "joblib",
)
"""Distributions whose versions a build records."""
CHECKED_LIBRARIES: Final[tuple[str, ...]] = ("scikit-learn", "xgboost")
"""Distributions whose versions must be equal when a build is served (pickles depend on them)."""
GOLDEN_TOLERANCE: Final[float] = 1e-6
"""Largest difference allowed between a golden row's recorded and recomputed probability."""
_CHUNK: Final[int] = 1 << 20
MANIFEST_MAX_BYTES: Final[int] = 16 * 1024 * 1024
"""Largest manifest read: a real one is ~35 kB (20 golden rows per artifact); a file that is
larger is not a manifest, and reading it whole would only cost the consumer memory and time."""


class ManifestError(ContractError):
    """A manifest that is missing or does not have the manifest's shape; names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Metrics(_Model):
    """Binary-classification metrics; the thresholded ones use the artifact's ``threshold``."""

    roc_auc: float
    pr_auc: float = Field(description="average precision (area under the PR curve)")
    f1: float
    precision: float
    recall: float
    brier: float


class MetricsPair(_Model):
    test: Metrics = Field(description="the held-out test split, scored once by the refit model")
    cv: Metrics = Field(description="out-of-fold predictions on the training split")


class GoldenRow(_Model):
    """A raw event from the test split and the probability this artifact gives it."""

    event: dict[str, Any]
    probability: float


class ArtifactEntry(_Model):
    variant: str
    sha256: str
    size_bytes: int
    estimator: str
    best_params: dict[str, Any]
    required_columns: list[str]
    threshold: float = Field(description="predict a purchase when probability >= threshold")
    metrics: MetricsPair
    golden: list[GoldenRow]


class DataInfo(_Model):
    uri: str
    sha256: str = Field(description="sha256 of the source bytes as read")
    rows_raw: int
    rows_deduplicated: int
    rows_train: int
    rows_test: int
    positive_rate: float = Field(description="share of Revenue=True after deduplication")


class SplitInfo(_Model):
    seed: int
    test_size: float
    stratified: bool


class Manifest(_Model):
    build_id: str
    created_at: str
    git_sha: str
    contract_version: str
    python: str
    libraries: dict[str, str]
    data: DataInfo
    split: SplitInfo
    artifacts: dict[str, ArtifactEntry]


def artifact_name(variant: str) -> str:
    """The file name of a variant's artifact inside a build."""
    return f"best_model_{variant}.joblib"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions(names: tuple[str, ...] = RECORDED_LIBRARIES) -> dict[str, str]:
    """Installed version of each distribution, as the manifest records them."""
    return {name: metadata.version(name) for name in names}


def read_manifest(build_dir: Path) -> Manifest:
    """Read and validate ``build_dir/manifest.json``; raise ManifestError saying what is wrong."""
    path = Path(build_dir) / MANIFEST_NAME
    try:
        with path.open("rb") as handle:
            raw = handle.read(MANIFEST_MAX_BYTES + 1)
    except FileNotFoundError as exc:
        raise ManifestError(path, "does not exist") from exc
    except OSError as exc:
        raise ManifestError(path, f"cannot be read: {exc.strerror or exc}") from exc
    if len(raw) > MANIFEST_MAX_BYTES:
        raise ManifestError(
            path,
            f"is over {MANIFEST_MAX_BYTES} bytes (MANIFEST_MAX_BYTES); a manifest is ~35 kB",
        )
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise ManifestError(path, f"is not a valid manifest: {exc}") from exc
