"""PNG plots and the Markdown summary written into a build's ``reports/``.

All plots are of the held-out test split (the PR and ROC plots also draw the out-of-fold curve
of the training split for comparison). Nothing here feeds back into a decision.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    confusion_matrix,
    precision_recall_curve,
    roc_curve,
)
from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)

__all__ = ["VariantReport", "feature_importances", "plot_variant", "write_summary"]

_DPI = 100


@dataclass(frozen=True)
class VariantReport:
    """What the summary needs to know about one trained variant."""

    variant: str
    artifact: str
    estimator: str
    family_scores: Mapping[str, float]
    threshold: float
    cv: Mapping[str, Any]
    test: Mapping[str, Any]
    importances: pd.Series
    plots: Sequence[str]
    train_seconds: float
    calibration: str


def feature_importances(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    columns: Sequence[str],
    seed: int,
    n_jobs: int = 2,
) -> pd.Series:
    """Permutation importance (drop in average precision) of each raw input column.

    Model-agnostic, so logistic regression, forests and XGBoost are comparable, and expressed in
    the raw dataset columns a producer sends rather than in engineered features.
    """
    result = permutation_importance(
        pipeline,
        X,
        y,
        scoring="average_precision",
        n_repeats=5,
        random_state=seed,
        n_jobs=n_jobs,
    )
    importances = pd.Series(result.importances_mean, index=list(X.columns))
    return importances.loc[list(columns)].sort_values(ascending=False)


def plot_variant(
    out_dir: Path,
    variant: str,
    y_test: pd.Series,
    test_proba: np.ndarray,
    y_train: pd.Series,
    oof_proba: np.ndarray,
    threshold: float,
    importances: pd.Series,
    calibration: Mapping[str, Any],
) -> list[str]:
    """Write the five PNGs for one variant; returns their file names.

    ``calibration`` holds ``method`` and the ``test`` and ``cv`` metrics (with their
    ``reliability`` points, ``ece`` and ``brier``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        f"{variant}_precision_recall.png": _pr_curve(
            y_test, test_proba, y_train, oof_proba, threshold, variant
        ),
        f"{variant}_roc.png": _roc_curve(y_test, test_proba, y_train, oof_proba, variant),
        f"{variant}_calibration.png": _calibration(calibration, variant),
        f"{variant}_confusion_matrix.png": _confusion(y_test, test_proba, threshold, variant),
        f"{variant}_feature_importance.png": _importances(importances, variant),
    }
    for name, figure in files.items():
        figure.savefig(out_dir / name, dpi=_DPI, bbox_inches="tight")
        plt.close(figure)
    return list(files)


def _pr_curve(
    y_test: pd.Series,
    proba: np.ndarray,
    y_train: pd.Series,
    oof: np.ndarray,
    threshold: float,
    variant: str,
) -> Any:
    figure, axes = plt.subplots(figsize=(6, 5))
    for y, p, label, style in ((y_test, proba, "test", "-"), (y_train, oof, "train OOF", "--")):
        precision, recall, thresholds = precision_recall_curve(y, p)
        (line,) = axes.plot(recall, precision, style, label=label)
        # The operating point: the first curve point whose threshold reaches the chosen one.
        index = min(int(np.searchsorted(thresholds, threshold)), len(thresholds) - 1)
        axes.plot(recall[index], precision[index], "o", markersize=8, color=line.get_color())
        if label == "test":
            axes.annotate(
                f"threshold {threshold:.3f}",
                (recall[index], precision[index]),
                xytext=(-90, -24),
                textcoords="offset points",
            )
    axes.set(xlabel="recall", ylabel="precision", title=f"Precision-recall ({variant})")
    axes.set(xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower left")
    return figure


def _roc_curve(
    y_test: pd.Series, proba: np.ndarray, y_train: pd.Series, oof: np.ndarray, variant: str
) -> Any:
    figure, axes = plt.subplots(figsize=(6, 5))
    for y, p, label, style in ((y_test, proba, "test", "-"), (y_train, oof, "train OOF", "--")):
        fpr, tpr, _ = roc_curve(y, p)
        axes.plot(fpr, tpr, style, label=label)
    axes.plot([0, 1], [0, 1], ":", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC ({variant})")
    axes.legend(loc="lower right")
    return figure


def _calibration(calibration: Mapping[str, Any], variant: str) -> Any:
    """The reliability curves (10 quantile bins) of the test split and the OOF predictions."""
    figure, axes = plt.subplots(figsize=(6, 5))
    for split, style in (("test", "o-"), ("cv", "s--")):
        metrics = calibration[split]
        points = metrics["reliability"]
        axes.plot(
            [point["mean_probability"] for point in points],
            [point["positive_rate"] for point in points],
            style,
            label=f"{'test' if split == 'test' else 'train OOF'}: ECE {metrics['ece']:.3f}, "
            f"Brier {metrics['brier']:.3f}",
        )
    axes.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    axes.set(
        xlabel="mean predicted probability (10 quantile bins)",
        ylabel="observed purchase rate",
        title=f"Calibration ({variant}, {calibration['method']})",
    )
    axes.legend(loc="upper left")
    return figure


def _confusion(y_test: pd.Series, proba: np.ndarray, threshold: float, variant: str) -> Any:
    figure, axes = plt.subplots(figsize=(5, 4.5))
    matrix = confusion_matrix(y_test, (proba >= threshold).astype(int), labels=[0, 1])
    ConfusionMatrixDisplay(matrix, display_labels=["no purchase", "purchase"]).plot(
        ax=axes, colorbar=False, values_format="d"
    )
    axes.set_title(f"Confusion matrix at {threshold:.3f} ({variant}, test)")
    return figure


def _importances(importances: pd.Series, variant: str) -> Any:
    figure, axes = plt.subplots(figsize=(6, 5))
    ordered = importances.sort_values()
    axes.barh(list(ordered.index), ordered.to_numpy())
    axes.set(
        xlabel="drop in average precision when permuted (test)",
        title=f"Permutation importance ({variant})",
    )
    return figure


def _split_line(split: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    shares = f"{1 - split['test_size']:.0%}/{split['test_size']:.0%}"
    counts = f"{data['rows_train']} train, {data['rows_test']} test"
    if split.get("rule") == "time":
        return (
            f"- split: by time {shares}, test from {split['time_boundary']} (data "
            f"{data['event_time_min']} to {data['event_time_max']}): {counts}"
        )
    return f"- split: stratified {shares}, seed {split['seed']}: {counts}"


def write_summary(
    path: Path, manifest: Mapping[str, Any], reports: Sequence[VariantReport]
) -> None:
    """A short Markdown summary: data, protocol, per-variant metrics and top features."""
    data, split = manifest["data"], manifest["split"]
    lines = [
        f"# Build {manifest['build_id']}",
        "",
        f"- created: {manifest['created_at']}, git {manifest['git_sha']}, "
        f"contract {manifest['contract_version']}",
        f"- data: `{data['uri']}` (sha256 `{data['sha256'][:16]}…`), {data['rows_raw']} rows, "
        f"{data['rows_deduplicated']} after dropping exact duplicates, positive rate "
        f"{data['positive_rate']:.3f}",
        _split_line(split, data),
        "- search: RandomizedSearchCV per estimator family, stratified 5-fold, average "
        "precision; calibration chosen by CV Brier; threshold rule "
        f"`{manifest['training']['threshold_rule']}` on out-of-fold training predictions; "
        "test scored once",
        "",
        "| variant | estimator | calibration | threshold | test ROC-AUC | test PR-AUC | test F1 "
        "| test precision | test recall | test Brier | test ECE | test log loss | CV PR-AUC "
        "| train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        t = report.test
        lines.append(
            f"| {report.variant} | {report.estimator} | {report.calibration} | "
            f"{report.threshold:.4f} | "
            f"{t['roc_auc']:.4f} | {t['pr_auc']:.4f} | {t['f1']:.4f} | {t['precision']:.4f} | "
            f"{t['recall']:.4f} | {t['brier']:.4f} | {t['ece']:.4f} | {t['log_loss']:.4f} | "
            f"{report.cv['pr_auc']:.4f} | "
            f"{report.train_seconds:.0f} |"
        )
    for report in reports:
        scores = ", ".join(f"{name} {score:.4f}" for name, score in report.family_scores.items())
        top = ", ".join(
            f"{name} ({value:.3f})" for name, value in report.importances.head(5).items()
        )
        lines += [
            "",
            f"## {report.variant} — `{report.artifact}`",
            "",
            f"- best CV average precision per family: {scores}",
            f"- top features by permutation importance: {top}",
            f"- plots: {', '.join(f'[{name}]({name})' for name in report.plots)}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
