"""Small real model builds for tests: the training job run on generated sessions, or one
fitted pipeline written as a complete build without the job's search and reports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.frame import events_to_frame
from contract.manifest import artifact_name, library_versions, sha256_file
from contract.metrics import metrics_at
from contract.pipeline import Variant, required_columns
from contract.schema import CONTRACT_VERSION, SessionEvent
from training.__main__ import main as train_main
from training.artifact import new_build_id, write_build
from training.job import golden_events
from training.synthetic import generate_sessions


def train_tiny_build(registry: Path, rows: int = 1500, seed: int = 7) -> Path:
    """Run the real training CLI on generated data; return the new build directory."""
    registry.mkdir(parents=True, exist_ok=True)
    data = registry.parent / f"synthetic-{seed}-{rows}.csv"
    generate_sessions(rows, seed=seed).to_csv(data, index=False)
    before = set(registry.iterdir())
    status = train_main(
        [
            "--data",
            str(data),
            "--out",
            str(registry),
            "--n-iter",
            "1",
            "--seed",
            str(seed),
            "--families",
            "xgboost",
        ]
    )
    assert status == 0, f"training exited {status}"
    (build,) = [p for p in registry.iterdir() if p not in before and p.is_dir()]
    return build


class MarkerPickle:
    """Unpickling this creates the file at `path`: proof that a pickle's code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def write_pipeline_build(
    registry: Path,
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    threshold: float,
    variant: Variant = "full",
    signing_key: Ed25519PrivateKey | None = None,
) -> Path:
    """Write ``pipeline`` (fitted) as a complete build that passes every gate; return the
    artifact's path. Its golden rows come from ``X``/``y`` and are scored as the job scores
    them (events -> frame -> predict_proba); its test metrics are its figures on ``X``/``y``."""
    created = datetime.now(UTC)
    build_id = new_build_id(created)
    name = artifact_name(variant)
    _, events = golden_events(X, y, seed=0)
    parsed = [SessionEvent.model_validate(event) for event in events]
    golden = pipeline.predict_proba(events_to_frame(parsed))[:, 1]
    metrics = metrics_at(y, pipeline.predict_proba(X)[:, 1], threshold)

    def fill(tmp: Path) -> dict[str, Any]:
        joblib.dump(pipeline, tmp / name)
        return {
            "build_id": build_id,
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "git_sha": "unknown",
            "contract_version": CONTRACT_VERSION,
            "python": "3.11",
            "libraries": library_versions(),
            "data": {"uri": "generated", "sha256": "0" * 64, "rows_raw": len(X),
                     "rows_deduplicated": len(X), "rows_train": len(X), "rows_test": len(X),
                     "positive_rate": float(y.mean())},
            "split": {"seed": 0, "test_size": 0.2, "stratified": True},
            "artifacts": {
                name: {
                    "variant": variant, "sha256": sha256_file(tmp / name),
                    "size_bytes": (tmp / name).stat().st_size,
                    "estimator": type(pipeline.steps[-1][1]).__name__, "best_params": {},
                    "required_columns": required_columns(variant), "threshold": threshold,
                    "metrics": {"test": metrics, "cv": metrics},
                    "golden": [
                        {"event": event, "probability": float(p)}
                        for event, p in zip(events, golden, strict=True)
                    ],
                }
            },
        }  # fmt: skip

    return write_build(registry, build_id, fill, signing_key) / name
