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
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.errors import ContractError

__all__ = [
    "CHECKED_LIBRARIES",
    "GOLDEN_TOLERANCE",
    "MANIFEST_MAX_BYTES",
    "MANIFEST_NAME",
    "RECORDED_LIBRARIES",
    "ArtifactEntry",
    "CategoricalProfile",
    "DataInfo",
    "DataSource",
    "FeatureProfile",
    "GoldenRow",
    "Manifest",
    "ManifestError",
    "Metrics",
    "MetricsPair",
    "NumericProfile",
    "ReferenceProfile",
    "ReliabilityPoint",
    "SplitInfo",
    "SplitRule",
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


class ReliabilityPoint(_Model):
    """One quantile bin of the reliability curve."""

    mean_probability: float
    positive_rate: float = Field(description="share of purchases among the bin's events")
    n: int


class Metrics(_Model):
    """Binary-classification metrics; the thresholded ones use the artifact's ``threshold``.

    ``log_loss``, ``ece`` and ``reliability`` are absent from builds older than calibration.
    """

    roc_auc: float
    pr_auc: float = Field(description="average precision (area under the PR curve)")
    f1: float
    precision: float
    recall: float
    brier: float
    log_loss: float | None = None
    ece: float | None = Field(
        default=None, description="expected calibration error over 10 quantile bins"
    )
    reliability: list[ReliabilityPoint] | None = None


class MetricsPair(_Model):
    test: Metrics = Field(description="the held-out test split, scored once by the refit model")
    cv: Metrics = Field(description="out-of-fold predictions on the training split")


class GoldenRow(_Model):
    """A raw event from the test split and the probability this artifact gives it."""

    event: dict[str, Any]
    probability: float


_NULL_RATE: Final = Field(
    default=0.0,
    ge=0.0,
    le=1.0,
    description="share of the rows whose value is null (the PSI's null bin); every profile "
    "training writes has it, one without it reads as 0: no nulls in the reference, so nulls "
    "in the stream count as drift",
)


class NumericProfile(_Model):
    """A numeric value's training distribution: right-closed bins ``(-inf, e0], (e0, e1], ...,
    (e_last, inf)`` between the distinct deciles ``edges``, and the share of the non-null
    values in each (``len(edges) + 1`` fractions)."""

    kind: Literal["numeric"] = "numeric"
    null_rate: float = _NULL_RATE
    edges: list[float]
    fractions: list[float]


class CategoricalProfile(_Model):
    """A categorical value's training distribution: the frequent ``categories`` (as strings)
    and their shares, then the share of every other value (``len(categories) + 1`` fractions)."""

    kind: Literal["categorical"] = "categorical"
    null_rate: float = _NULL_RATE
    categories: list[str]
    fractions: list[float]


FeatureProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class ReferenceProfile(_Model):
    """What the stream is compared with to detect drift (``scoring.drift``)."""

    features: dict[str, FeatureProfile] = Field(description="per raw feature, training split")
    prediction: NumericProfile = Field(description="the probability on the test split")
    positive_rate: float = Field(description="share of purchases in the training split")
    positive_label_rate: float = Field(
        description="share of test-split events at or above the threshold"
    )
    mean_probability: float = Field(description="mean probability on the test split")


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
    threshold_rule: str | None = Field(
        default=None, description="f1, precision=<p> or cost=<fp>:<fn>; absent before calibration"
    )
    calibration: dict[str, Any] | None = Field(
        default=None, description="chosen method and every candidate's CV scores"
    )
    profile: ReferenceProfile | None = Field(
        default=None, description="reference for drift; absent in older builds (no sentinel)"
    )


class DataSource(_Model):
    """Where a dataset collected from the stream came from (``python -m training collect``)."""

    input_topic: str
    outcome_topic: str
    range_from: str = Field(description="session events from this time (UTC, ISO 8601) ...")
    range_to: str = Field(description="... to this one, both included")
    outcome_window_seconds: float
    missing_outcome: str = Field(description="negative or unknown, as the join applied it")


class DataInfo(_Model):
    uri: str
    sha256: str = Field(description="sha256 of the source bytes as read")
    rows_raw: int
    rows_deduplicated: int
    rows_train: int
    rows_test: int
    positive_rate: float = Field(description="share of Revenue=True after deduplication")
    format: str | None = Field(
        default=None,
        description="how the source was read: csv, parquet, sqlite or collected (a collect's "
        "dataset); absent in builds written before it was recorded",
    )
    event_time_min: str | None = Field(
        default=None, description="earliest event time of the rows (UTC); absent: no event times"
    )
    event_time_max: str | None = Field(default=None, description="latest event time of the rows")
    source: DataSource | None = Field(
        default=None, description="the topics and range of a collected dataset; absent: a file"
    )


SplitRule = Literal["stratified", "time"]


class SplitInfo(_Model):
    seed: int
    test_size: float
    stratified: bool
    rule: SplitRule = Field(
        default="stratified",
        description="stratified (random, by label) or time (test: the most recent rows)",
    )
    time_boundary: str | None = Field(
        default=None,
        description="time split: every training row is older than this (UTC), every test row "
        "at or after it",
    )
    cv: str | None = Field(default=None, description="how the training part is cross-validated")


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
