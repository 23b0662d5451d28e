"""``python -m training drift``: compare new data with a build's reference profile, in pictures.

Writes a folder (default ``drift/``): one PNG per feature and one for the probability, the
reference shares per bin beside the new data's, and ``summary.md`` with the PSI table (largest
first). The bins and the PSI are the drift sentinel's own (``contract.profile``), so the report
and the ``scorer_feature_drift_psi`` gauges agree on the same events.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import joblib
import matplotlib.pyplot as plt
import numpy as np

from contract.errors import ContractError
from contract.manifest import (
    NumericProfile,
    ReferenceProfile,
    artifact_name,
    read_manifest,
    sha256_file,
)
from contract.profile import ProfileBinner
from contract.schema import LABEL_COLUMN
from training.data import DataError, load_sessions

logger = logging.getLogger(__name__)

__all__ = ["drift_report", "main"]

_DPI = 100


def _reading(value: float) -> str:
    if np.isnan(value):
        return "no data"
    return "major shift" if value > 0.25 else "moderate shift" if value > 0.1 else "stable"


def _bin_labels(profile: ReferenceProfile, name: str | None) -> list[str]:
    feature = profile.prediction if name is None else profile.features[name]
    if isinstance(feature, NumericProfile):
        edges = [f"{edge:.3g}" for edge in feature.edges]
        if not edges:
            return ["all"]
        inner = [f"({low}, {high}]" for low, high in itertools.pairwise(edges)]
        return [f"≤{edges[0]}", *inner, f">{edges[-1]}"]
    return [*feature.categories, "other"]


def _plot(path: Path, title: str, labels: list[str], reference: Sequence[float], new: Any) -> None:
    figure, axes = plt.subplots(figsize=(max(6.0, 0.45 * len(labels) + 2), 4.5))
    positions = np.arange(len(labels))
    axes.bar(positions - 0.2, reference, width=0.4, label="reference (training)")
    axes.bar(positions + 0.2, new, width=0.4, label="new data")
    axes.set_xticks(positions, labels, rotation=45, ha="right")
    axes.set(ylabel="share of non-null values", title=title)
    axes.legend()
    figure.savefig(path, dpi=_DPI, bbox_inches="tight")
    plt.close(figure)


def drift_report(build: Path, data: str, out: Path, variant: str = "full") -> Path:
    """Write the report for ``data`` against ``build``'s ``variant`` into ``out``; return
    the summary's path."""
    manifest = read_manifest(build)
    name = artifact_name(variant)
    entry = manifest.artifacts.get(name)
    if entry is None:
        raise DataError(str(build), f"the build has no artifact {name}")
    if entry.profile is None:
        raise DataError(str(build), f"{name} has no reference profile (an older build)")
    if sha256_file(build / name) != entry.sha256:
        raise DataError(str(build), f"{name} does not match its manifest's sha256")
    frame = load_sessions(data, require_label=False).frame
    pipeline = joblib.load(build / name)
    probabilities = np.asarray(pipeline.predict_proba(frame[entry.required_columns])[:, 1])
    profile = entry.profile
    binner = ProfileBinner(profile)
    counts = binner.counts({column: frame[column] for column in binner.features}, probabilities)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for feature in binner.features:
        new = counts[binner.slices[feature]]
        value = binner.feature_psi(feature, counts)
        shares = new / max(int(new.sum()), 1)
        reference = profile.features[feature]
        _plot(
            out / f"{feature}.png",
            f"{feature}: PSI {value:.3f} ({_reading(value)}); null "
            f"{reference.null_rate:.1%} → {binner.null_ratio(feature, counts):.1%}",
            _bin_labels(profile, feature),
            reference.fractions,
            shares,
        )
        rows.append((value, feature, reference.null_rate, binner.null_ratio(feature, counts)))
    prediction_psi = binner.prediction_psi(counts)
    new_prediction = counts[binner.prediction_slice]
    _plot(
        out / "probability.png",
        f"probability: PSI {prediction_psi:.3f} ({_reading(prediction_psi)})",
        _bin_labels(profile, None),
        profile.prediction.fractions,
        new_prediction / max(int(new_prediction.sum()), 1),
    )
    rows.sort(key=lambda row: -np.nan_to_num(row[0], nan=-1.0))
    positive_share = float(np.mean(probabilities >= entry.threshold)) if len(frame) else np.nan
    lines = [
        f"# Drift of `{data}` against build {manifest.build_id} ({variant})",
        "",
        f"- {len(frame)} events; PSI < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift",
        f"- probability: PSI {prediction_psi:.3f} ({_reading(prediction_psi)}), mean "
        f"{float(np.mean(probabilities)) if len(frame) else np.nan:.4f} (reference "
        f"{profile.mean_probability:.4f}); labelled positive {positive_share:.4f} (reference "
        f"{profile.positive_label_rate:.4f}) [plot](probability.png)",
    ]
    if LABEL_COLUMN in frame.columns:
        lines.append(
            f"- purchases in the new data: {float(frame[LABEL_COLUMN].mean()):.4f} (training "
            f"{profile.positive_rate:.4f})"
        )
    lines += ["", "| feature | PSI | reading | null (reference) | null (new) | plot |"]
    lines.append("|---|---|---|---|---|---|")
    for value, feature, null_reference, null_new in rows:
        lines.append(
            f"| {feature} | {value:.4f} | {_reading(value)} | {null_reference:.2%} | "
            f"{null_new:.2%} | [{feature}.png]({feature}.png) |"
        )
    summary = out / "summary.md"
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("drift report written path=%s prediction_psi=%.3f", out, prediction_psi)
    return summary


def _build_dir(text: str) -> Path:
    """A build directory, a ``file://`` URI of one, or of an artifact inside one."""
    parsed = urlparse(text)
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(text)
    return path.parent if path.suffix == ".joblib" else path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training drift",
        description="Compare new data with a build's reference profile: PNGs and summary.md.",
    )
    parser.add_argument("--build", required=True, help="build directory or file:// URI")
    parser.add_argument("--data", required=True, help="new data: CSV, Parquet or SQLite")
    parser.add_argument("--out", type=Path, default=Path("drift"), help="default ./drift")
    parser.add_argument("--variant", default="full", help="full (default) or no_page_values")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        summary = drift_report(_build_dir(args.build), args.data, args.out, args.variant)
    except (DataError, ContractError, OSError, ValueError) as exc:
        logger.error("drift report failed: %s", exc)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
