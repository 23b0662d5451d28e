"""The training job end to end: data -> split -> search -> evaluate -> artifact.

The split is ``training.split``: stratified, or by time for data with event times.

``__main__`` only parses arguments and calls :func:`run_training`; tests call it directly.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from contract.errors import ContractError, ContractViolation, violations_from_validation_error
from contract.frame import dataset_row_to_event_dict, events_to_frame
from contract.manifest import (
    GOLDEN_TOLERANCE,
    DataSource,
    artifact_name,
    library_versions,
    sha256_file,
)
from contract.pipeline import Variant, required_columns
from contract.profile import reference_profile
from contract.schema import CONTRACT_VERSION, LABEL_COLUMN, SessionEvent
from contract.storage import S3Options, Store, is_s3, join
from training import artifact, report
from training.data import LoadedData, deduplicate, load_sessions
from training.evaluate import F1_RULE, Evaluation, ThresholdRule, evaluate
from training.search import FAMILIES, SCORING, SearchResult, run_search
from training.split import split_rows

logger = logging.getLogger(__name__)

__all__ = ["BuildResult", "TrainConfig", "TrainServeSkewError", "golden_events", "run_training"]

N_GOLDEN = 20


@dataclass(frozen=True)
class TrainConfig:
    data: str
    out: str
    """A registry directory, or an ``s3://bucket/prefix`` URI."""
    variants: tuple[Variant, ...]
    n_iter: int = 20
    seed: int = 42
    table: str | None = None
    n_jobs: int = 2
    test_size: float = 0.2
    folds: int = 5
    families: tuple[str, ...] = FAMILIES
    signing_key: Ed25519PrivateKey | None = None  # signs manifest.json into manifest.sig
    threshold_rule: ThresholdRule = F1_RULE


@dataclass(frozen=True)
class BuildResult:
    build_uri: str  # the build directory, or s3://bucket/prefix/<build_id>
    model_uris: dict[str, str]  # artifact file name -> file:// or s3:// URI
    manifest: dict[str, Any]


@dataclass(frozen=True)
class _Trained:
    variant: Variant
    search: SearchResult
    evaluation: Evaluation
    seconds: float


def golden_events(
    X_test: pd.DataFrame, y_test: pd.Series, seed: int
) -> tuple[list[int], list[dict[str, Any]]]:
    """Up to 20 test rows (half purchases when possible): their positions in ``X_test`` and the
    rows as validated events in JSON form.

    Validated here, before any training, so a row the contract rejects fails the job at once.
    """
    rng = np.random.default_rng(seed)
    labels = y_test.to_numpy()
    positives = np.flatnonzero(labels == 1)
    negatives = np.flatnonzero(labels == 0)
    n_pos = min(len(positives), N_GOLDEN // 2)
    n_neg = min(len(negatives), N_GOLDEN - n_pos)
    chosen = np.sort(
        np.concatenate(
            [
                rng.choice(positives, n_pos, replace=False),
                rng.choice(negatives, n_neg, replace=False),
            ]
        )
    )
    events = []
    for i, position in enumerate(chosen):
        row = {str(column): value for column, value in X_test.iloc[int(position)].items()}
        try:
            event = SessionEvent.model_validate(
                dataset_row_to_event_dict(row, session_id=f"golden-{i}")
            )
        except ValidationError as exc:
            violations = violations_from_validation_error(exc)
            first = violations[0]
            raise ContractViolation(
                first.field, first.value, first.rule, first.detail, violations
            ) from exc
        events.append(event.model_dump(mode="json"))
    return [int(position) for position in chosen], events


def _score_golden(pipeline: Pipeline, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Score the events exactly as the consumer will: JSON -> SessionEvent -> frame -> model."""
    parsed = [SessionEvent.model_validate(json.loads(json.dumps(event))) for event in events]
    proba = pipeline.predict_proba(events_to_frame(parsed))[:, 1]
    return [
        {"event": event, "probability": float(p)} for event, p in zip(events, proba, strict=True)
    ]


class TrainServeSkewError(ContractError):
    """Rows scored from the dataset frame and from events differ: the build is not written."""

    def __init__(self, variant: str, difference: float) -> None:
        self.variant = variant
        self.difference = difference
        super().__init__(
            f"training/serving skew in variant {variant}: golden rows scored from events and "
            f"from the dataset frame differ by up to {difference:.3g} "
            f"(tolerance {GOLDEN_TOLERANCE:g}); the build is not written"
        )


def _check_frame_parity(
    pipeline: Pipeline, rows: pd.DataFrame, golden: Sequence[dict[str, Any]], variant: str
) -> None:
    """The same rows read from the dataset and sent as events should score the same; a gap
    means the contract's frame differs from the dataset's (training/serving skew)."""
    direct = pipeline.predict_proba(rows)[:, 1]
    via_events = np.array([row["probability"] for row in golden])
    worst = float(np.max(np.abs(direct - via_events)))
    if not worst <= GOLDEN_TOLERANCE:  # NaN fails too
        raise TrainServeSkewError(variant, worst)


def _source(loaded: LoadedData) -> dict[str, Any]:
    """The manifest's ``data.source`` of a collected dataset: the topics and the range."""
    summary = loaded.source
    if summary is None:
        return {}
    source = DataSource(
        input_topic=summary.input_topic,
        outcome_topic=summary.outcome_topic,
        range_from=summary.range_from,
        range_to=summary.range_to,
        outcome_window_seconds=summary.outcome_window_seconds,
        missing_outcome=summary.missing_outcome,
    )
    return {"source": source.model_dump(mode="json")}


def run_training(config: TrainConfig, store: Store | None = None) -> BuildResult:
    """Train every requested variant and write one immutable build; returns where it went."""
    started = time.perf_counter()
    created = datetime.now(UTC)
    store = store or Store(S3Options.from_environ())
    loaded = load_sessions(config.data, config.table, store=store)
    frame = deduplicate(loaded.frame)
    split = split_rows(frame, config.test_size, config.seed, config.folds)
    X_train, X_test, y_train, y_test = split.X_train, split.X_test, split.y_train, split.y_test
    positive_rate = float(frame[LABEL_COLUMN].mean())
    logger.info(
        "split rule=%s rows_raw=%d rows_deduplicated=%d rows_train=%d rows_test=%d "
        "positive_rate=%.4f time_boundary=%s",
        split.manifest["rule"],
        len(loaded.frame),
        len(frame),
        len(X_train),
        len(X_test),
        positive_rate,
        split.manifest.get("time_boundary", "-"),
    )
    golden_rows, golden = golden_events(X_test, y_test, config.seed)
    cv = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)

    trained: list[_Trained] = []
    for variant in config.variants:
        t0 = time.perf_counter()
        search = run_search(
            X_train,
            y_train,
            variant,
            n_iter=config.n_iter,
            seed=config.seed,
            cv=cv,
            n_jobs=config.n_jobs,
            family_names=config.families,
        )
        evaluation = evaluate(
            search.best_pipeline,
            search.unfitted_pipeline,
            X_train,
            y_train,
            X_test,
            y_test,
            cv,
            n_jobs=config.n_jobs,
            rule=config.threshold_rule,
        )
        trained.append(_Trained(variant, search, evaluation, time.perf_counter() - t0))

    manifest: dict[str, Any] = {
        "build_id": artifact.new_build_id(created),
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "git_sha": artifact.git_sha(),
        "contract_version": CONTRACT_VERSION,
        "python": artifact.python_version(),
        "libraries": library_versions(),
        "data": {
            "uri": loaded.uri,
            "sha256": loaded.sha256,
            "format": loaded.format,
            "rows_raw": len(loaded.frame),
            "rows_deduplicated": len(frame),
            "rows_train": len(X_train),
            "rows_test": len(X_test),
            "positive_rate": positive_rate,
            **split.times,
            **_source(loaded),
        },
        "split": split.manifest,
        "training": {
            "search": "RandomizedSearchCV per estimator family",
            "scoring": SCORING,
            "folds": config.folds,
            "n_iter_per_family": config.n_iter,
            "threshold_rule": str(config.threshold_rule),
            "threshold": "positive when probability >= threshold; the threshold rule is applied "
            "to calibrated out-of-fold predictions of the training split",
            "calibration": "lowest CV Brier of: none (class-weighted), unweighted training, "
            "isotonic or sigmoid map fitted on out-of-fold scores",
        },
        "artifacts": {},
    }

    def fill(tmp: Path) -> dict[str, Any]:
        reports_dir = tmp / "reports"
        summaries: list[report.VariantReport] = []
        for item in trained:
            name = artifact_name(item.variant)
            pipeline = item.evaluation.pipeline
            joblib.dump(pipeline, tmp / name)
            scored = _score_golden(pipeline, golden)
            _check_frame_parity(pipeline, X_test.iloc[golden_rows], scored, item.variant)
            columns = list(required_columns(item.variant))
            importances = report.feature_importances(
                pipeline, X_test, y_test, columns, config.seed, n_jobs=config.n_jobs
            )
            plots = report.plot_variant(
                reports_dir,
                item.variant,
                y_test,
                item.evaluation.test_proba,
                y_train,
                item.evaluation.oof_proba,
                item.evaluation.threshold,
                importances,
                {
                    "method": item.evaluation.calibration["method"],
                    "test": item.evaluation.test,
                    "cv": item.evaluation.cv,
                },
            )
            profile = reference_profile(
                {column: X_train[column] for column in columns},
                float(y_train.mean()),
                item.evaluation.test_proba,
                item.evaluation.threshold,
            )
            manifest["artifacts"][name] = {
                "variant": item.variant,
                "sha256": sha256_file(tmp / name),
                "size_bytes": (tmp / name).stat().st_size,
                "estimator": type(pipeline.steps[-1][1]).__name__,
                "family": item.search.family,
                "best_params": item.search.best_params,
                "required_columns": columns,
                "threshold": item.evaluation.threshold,
                "threshold_rule": item.evaluation.threshold_rule,
                "calibration": item.evaluation.calibration,
                "metrics": {"test": item.evaluation.test, "cv": item.evaluation.cv},
                "profile": profile.model_dump(mode="json"),
                "search": {
                    "best_cv_average_precision_per_family": item.search.family_scores,
                    "candidates": item.search.n_candidates,
                },
                "train_seconds": round(item.seconds, 1),
                "golden": scored,
            }
            summaries.append(
                report.VariantReport(
                    variant=item.variant,
                    artifact=name,
                    estimator=type(pipeline.steps[-1][1]).__name__,
                    family_scores=item.search.family_scores,
                    threshold=item.evaluation.threshold,
                    cv=item.evaluation.cv,
                    test=item.evaluation.test,
                    importances=importances,
                    plots=plots,
                    train_seconds=item.seconds,
                    calibration=item.evaluation.calibration["method"],
                )
            )
        manifest["training"]["duration_seconds"] = round(time.perf_counter() - started, 1)
        report.write_summary(reports_dir / "summary.md", manifest, summaries)
        return manifest

    if is_s3(config.out):
        with tempfile.TemporaryDirectory(prefix="build-") as staging:
            local = artifact.write_build(
                Path(staging), manifest["build_id"], fill, config.signing_key
            )
            build_uri = artifact.upload_build(local, config.out, store)
        uris = {name: join(build_uri, name) for name in manifest["artifacts"]}
    else:
        build_dir = artifact.write_build(
            Path(config.out), manifest["build_id"], fill, config.signing_key
        )
        build_uri = str(build_dir)
        uris = {name: (build_dir / name).resolve().as_uri() for name in manifest["artifacts"]}
    logger.info(
        "training done build_id=%s seconds=%.1f",
        manifest["build_id"],
        time.perf_counter() - started,
    )
    return BuildResult(build_uri=build_uri, model_uris=uris, manifest=manifest)
