"""The typed shape of a build's ``manifest.json``.

Kept import-cheap (pydantic only) so the consumer can validate a manifest without pulling in
scikit-learn, pandas or matplotlib. Unknown keys are kept: the manifest may grow.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ArtifactEntry",
    "DataInfo",
    "GoldenRow",
    "Manifest",
    "Metrics",
    "MetricsPair",
    "SplitInfo",
]


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
